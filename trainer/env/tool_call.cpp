#include "trainer/env/tool_call.h"

#include <nlohmann/json.hpp>

namespace keel::env {

namespace {

std::string trim(std::string_view s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return std::string(s.substr(b, s.find_last_not_of(ws) - b + 1));
}

/// One call from its JSON text; `args_key` is "arguments" (qwen) or "parameters" (llama3, which
/// also accepts "arguments"). Returns "" or why it is malformed.
std::string read_call(std::string_view text, const char* args_key, ToolCall& out) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error&) {
    return "the tool call is not valid JSON";
  }
  if (!j.is_object()) return "the tool call is not a JSON object";
  const auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get<std::string>().empty())
    return "the tool call has no \"name\" string";
  out.name = name->get<std::string>();
  auto args = j.find(args_key);
  if (args == j.end() && std::string_view(args_key) == "parameters") args = j.find("arguments");
  if (args == j.end()) {
    out.arguments = "{}";
    return "";
  }
  if (!args->is_object()) return std::string("the tool call's \"") + args_key + "\" is not an object";
  out.arguments = args->dump();
  return "";
}

}  // namespace

ToolFormat tool_format_for(std::string_view chat_template) {
  return chat_template == "llama3" ? ToolFormat::kLlama3 : ToolFormat::kQwen;
}

const char* tool_format_name(ToolFormat f) { return f == ToolFormat::kLlama3 ? "llama3" : "qwen"; }

ParsedTurn parse_tool_calls(std::string_view turn, ToolFormat f) {
  ParsedTurn out;
  if (f == ToolFormat::kLlama3) {
    std::string body = trim(turn);
    constexpr std::string_view tag = "<|python_tag|>";
    if (body.rfind(tag, 0) == 0) body = trim(std::string_view(body).substr(tag.size()));
    if (body.empty() || body[0] != '{') {
      out.text = body;
      return out;
    }
    ToolCall c;
    out.error = read_call(body, "parameters", c);
    if (out.error.empty()) out.calls.push_back(std::move(c));
    return out;
  }
  constexpr std::string_view open = "<tool_call>", close = "</tool_call>";
  std::string rest;
  size_t pos = 0;
  while (pos <= turn.size()) {
    const size_t b = turn.find(open, pos);
    if (b == std::string_view::npos) {
      rest += turn.substr(pos);
      break;
    }
    rest += turn.substr(pos, b - pos);
    const size_t e = turn.find(close, b + open.size());
    if (e == std::string_view::npos) {
      out.error = "<tool_call> is not closed by </tool_call>";
      break;
    }
    ToolCall c;
    const std::string why = read_call(trim(turn.substr(b + open.size(), e - b - open.size())), "arguments", c);
    if (!why.empty() && out.error.empty()) out.error = why;
    if (why.empty()) out.calls.push_back(std::move(c));
    pos = e + close.size();
  }
  if (!out.error.empty()) out.calls.clear();
  out.text = trim(rest);
  return out;
}

std::string format_tool_call(const ToolCall& call, ToolFormat f) {
  nlohmann::ordered_json j;  // "name" first, as the models write it
  j["name"] = call.name;
  j[f == ToolFormat::kLlama3 ? "parameters" : "arguments"] =
      nlohmann::ordered_json::parse(call.arguments.empty() ? "{}" : call.arguments);
  if (f == ToolFormat::kLlama3) return j.dump();
  return "<tool_call>\n" + j.dump() + "\n</tool_call>";
}

}  // namespace keel::env
