// JSONL parsing with nlohmann::json; every error names file:line.
#include "trainer/data/jsonl.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "trainer/common/error.h"

namespace keel::data {

namespace {

using nlohmann::json;

/// Thrown for one bad line; turned into keel::Error or a skip by read_lines.
struct LineError {
  std::string why;
};

std::string as_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  return v.dump();
}

std::vector<Message> parse_messages(const json& v, const std::string& key) {
  if (!v.is_array() || v.empty()) throw LineError{fmt::format("'{}' must be a non-empty list of {{role, content}}", key)};
  std::vector<Message> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const auto& m = v[i];
    if (!m.is_object() || !m.contains("role") || !m.contains("content") || !m["role"].is_string() ||
        !m["content"].is_string())
      throw LineError{fmt::format("'{}'[{}] must be an object with string 'role' and 'content'", key, i)};
    out.push_back(Message{m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return out;
}

std::string string_field(const json& o, const std::string& key) {
  if (!o.contains(key)) throw LineError{fmt::format("missing '{}'", key)};
  if (!o[key].is_string()) throw LineError{fmt::format("'{}' must be a string, got {}", key, o[key].type_name())};
  return o[key].get<std::string>();
}

/// Reads the prompt as a string or as chat messages.
void read_prompt(const json& o, const JsonlOptions& opt, std::string& prompt, std::vector<Message>& messages) {
  if (o.contains(opt.prompt_key) && o[opt.prompt_key].is_string()) {
    prompt = o[opt.prompt_key].get<std::string>();
  } else if (o.contains(opt.prompt_key) && o[opt.prompt_key].is_array()) {
    messages = parse_messages(o[opt.prompt_key], opt.prompt_key);
  } else if (o.contains("messages")) {
    messages = parse_messages(o["messages"], "messages");
  } else {
    throw LineError{fmt::format("missing '{}' (a string) or 'messages' (a list of {{role, content}})", opt.prompt_key)};
  }
}

template <typename Record, typename Fn>
Loaded<Record> read_lines(const std::string& path, const JsonlOptions& opt, Fn&& parse) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open data file (does it exist and is it readable?)", path);
  Loaded<Record> out;
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines are fine
    std::string why;
    try {
      json o;
      try {
        o = json::parse(line);
      } catch (const json::parse_error& e) {
        // nlohmann's byte position is 1-based within the line.
        throw LineError{fmt::format("invalid JSON at column {}", e.byte)};
      }
      if (!o.is_object()) throw LineError{fmt::format("expected a JSON object, got {}", o.type_name())};
      Record r = parse(o);
      r.id = fmt::format("{}:{}", path, lineno);
      out.records.push_back(std::move(r));
      continue;
    } catch (const LineError& e) {
      why = e.why;
    }
    if (!opt.skip_bad_lines)
      fail("{}:{}: {} (set data.skip_bad_lines: true to skip and count bad lines)", path, lineno, why);
    ++out.skipped;
    if (out.skipped_reasons.size() < 10) out.skipped_reasons.push_back(fmt::format("{}:{}: {}", path, lineno, why));
  }
  if (in.bad()) fail("{}: read error", path);
  if (out.records.empty()) fail("{}: no usable records ({} malformed line(s) skipped)", path, out.skipped);
  return out;
}

}  // namespace

Loaded<PromptRecord> load_prompts(const std::string& path, const JsonlOptions& opt) {
  return read_lines<PromptRecord>(path, opt, [&](const json& o) {
    PromptRecord r;
    read_prompt(o, opt, r.prompt, r.messages);
    if (o.contains(opt.answer_key)) {
      const auto& a = o[opt.answer_key];
      if (a.is_object() || a.is_array() || a.is_null())
        throw LineError{fmt::format("'{}' must be a string or a number, got {}", opt.answer_key, a.type_name())};
      r.answer = as_text(a);
    }
    for (const auto& [k, v] : o.items())
      if (k != opt.prompt_key && k != "messages" && k != opt.answer_key) r.meta[k] = v.dump();
    return r;
  });
}

Loaded<PreferenceRecord> load_preferences(const std::string& path, const JsonlOptions& opt) {
  return read_lines<PreferenceRecord>(path, opt, [&](const json& o) {
    PreferenceRecord r;
    read_prompt(o, opt, r.prompt, r.messages);
    r.chosen = string_field(o, "chosen");
    r.rejected = string_field(o, "rejected");
    for (const auto& [k, v] : o.items())
      if (k != opt.prompt_key && k != "messages" && k != "chosen" && k != "rejected") r.meta[k] = v.dump();
    return r;
  });
}

Loaded<SftRecord> load_sft(const std::string& path, const JsonlOptions& opt) {
  return read_lines<SftRecord>(path, opt, [&](const json& o) {
    SftRecord r;
    if (o.contains("response")) {
      read_prompt(o, opt, r.prompt, r.messages);
      r.response = string_field(o, "response");
    } else if (o.contains("messages")) {
      r.messages = parse_messages(o["messages"], "messages");
      if (r.messages.back().role != "assistant")
        throw LineError{"the last of 'messages' must be the assistant's response (or give 'response')"};
      r.response = r.messages.back().content;
      r.messages.pop_back();
      if (r.messages.empty()) throw LineError{"'messages' needs a prompt before the assistant's response"};
    } else {
      throw LineError{"missing 'response' (with 'prompt'/'messages') or 'messages' ending with the assistant"};
    }
    return r;
  });
}

}  // namespace keel::data
