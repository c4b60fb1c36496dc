// JSONL parsing with nlohmann::json; every error names file:line.
#include "trainer/data/jsonl.h"

#include <fstream>
#include <istream>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace keel::data {

namespace {

using nlohmann::json;

std::string as_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  return v.dump();
}

std::vector<Message> parse_messages(const json& v, const std::string& key) {
  if (!v.is_array() || v.empty()) throw BadLine{fmt::format("'{}' must be a non-empty list of {{role, content}}", key)};
  std::vector<Message> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const auto& m = v[i];
    if (!m.is_object() || !m.contains("role") || !m.contains("content") || !m["role"].is_string() ||
        !m["content"].is_string())
      throw BadLine{fmt::format("'{}'[{}] must be an object with string 'role' and 'content'", key, i)};
    out.push_back(Message{m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return out;
}

std::string string_field(const json& o, const std::string& key) {
  if (!o.contains(key)) throw BadLine{fmt::format("missing '{}'", key)};
  if (!o[key].is_string()) throw BadLine{fmt::format("'{}' must be a string, got {}", key, o[key].type_name())};
  return o[key].get<std::string>();
}

template <typename Record, typename Fn>
Loaded<Record> read_lines(const std::string& path, const JsonlOptions& opt, Fn&& parse) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open data file (does it exist and is it readable?)", path);
  Loaded<Record> out;
  const JsonlScan scan = scan_jsonl(in, path, opt.skip_bad_lines,
                                    " (set data.skip_bad_lines: true to skip and count bad lines)",
                                    [&](const json& o, const std::string& where) {
                                      Record r = parse(o);
                                      r.id = where;
                                      out.records.push_back(std::move(r));
                                    });
  out.skipped = scan.skipped;
  out.skipped_reasons = scan.skipped_reasons;
  if (out.records.empty()) fail("{}: no usable records ({} malformed line(s) skipped)", path, out.skipped);
  return out;
}

}  // namespace

void read_prompt(const json& o, const std::string& prompt_key, std::string& prompt, std::vector<Message>& messages) {
  if (o.contains(prompt_key) && o[prompt_key].is_string()) {
    prompt = o[prompt_key].get<std::string>();
  } else if (o.contains(prompt_key) && o[prompt_key].is_array()) {
    messages = parse_messages(o[prompt_key], prompt_key);
  } else if (o.contains("messages")) {
    messages = parse_messages(o["messages"], "messages");
  } else {
    throw BadLine{fmt::format("missing '{}' (a string) or 'messages' (a list of {{role, content}})", prompt_key)};
  }
}

JsonlScan scan_jsonl(std::istream& in, const std::string& source, bool skip_bad_lines, const std::string& skip_hint,
                     const std::function<void(const json& o, const std::string& where)>& fn) {
  JsonlScan scan;
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines are fine
    const std::string where = fmt::format("{}:{}", source, lineno);
    std::string message;  // "SOURCE:LINE: why"
    try {
      json o;
      try {
        o = json::parse(line);
      } catch (const json::parse_error& e) {
        // nlohmann's byte position is 1-based within the line.
        throw BadLine{fmt::format("invalid JSON at column {}", e.byte)};
      }
      if (!o.is_object()) throw BadLine{fmt::format("expected a JSON object, got {}", o.type_name())};
      fn(o, where);
      ++scan.used;
      continue;
    } catch (const BadLine& e) {
      message = fmt::format("{}: {}", where, e.why);
    } catch (const Error& e) {
      message = e.what();
    }
    if (!skip_bad_lines) throw Error(message + skip_hint);
    ++scan.skipped;
    if (scan.skipped_reasons.size() < 10) scan.skipped_reasons.push_back(std::move(message));
  }
  if (in.bad()) fail("{}: read error", source);
  return scan;
}

Loaded<PromptRecord> load_prompts(const std::string& path, const JsonlOptions& opt) {
  return read_lines<PromptRecord>(path, opt, [&](const json& o) {
    PromptRecord r;
    read_prompt(o, opt.prompt_key, r.prompt, r.messages);
    if (o.contains(opt.answer_key)) {
      const auto& a = o[opt.answer_key];
      if (a.is_object() || a.is_array() || a.is_null())
        throw BadLine{fmt::format("'{}' must be a string or a number, got {}", opt.answer_key, a.type_name())};
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
    read_prompt(o, opt.prompt_key, r.prompt, r.messages);
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
      read_prompt(o, opt.prompt_key, r.prompt, r.messages);
      r.response = string_field(o, "response");
    } else if (o.contains("messages")) {
      r.messages = parse_messages(o["messages"], "messages");
      if (r.messages.back().role != "assistant")
        throw BadLine{"the last of 'messages' must be the assistant's response (or give 'response')"};
      r.response = r.messages.back().content;
      r.messages.pop_back();
      if (r.messages.empty()) throw BadLine{"'messages' needs a prompt before the assistant's response"};
    } else {
      throw BadLine{"missing 'response' (with 'prompt'/'messages') or 'messages' ending with the assistant"};
    }
    return r;
  });
}

}  // namespace keel::data
