// JSONL parsing with nlohmann::json; every error names file:line.
#include "trainer/data/jsonl.h"

#include <fstream>
#include <istream>
#include <optional>
#include <regex>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace keel::data {

namespace {

using nlohmann::json;

/// A top-level field's value as text: strings as they are, numbers as written (number_text holds
/// the non-integers' text), anything else as JSON.
std::string as_text(const json& v, const std::string& key, const std::map<std::string, std::string>& number_text) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number_float())
    if (const auto it = number_text.find(key); it != number_text.end()) return it->second;
  return v.dump();
}

/// A field's value as the JSON text meta keeps (non-integer numbers as written).
std::string meta_text(const json& v, const std::string& key, const std::map<std::string, std::string>& number_text) {
  if (v.is_number_float())
    if (const auto it = number_text.find(key); it != number_text.end()) return it->second;
  return v.dump();
}

/// nlohmann's DOM builder as a SAX handler, noting the text of each top-level non-integer number
/// (JsonlLine::number_text) and keeping a parse error as a message instead of throwing it.
class NumberNotingParser {
 public:
  explicit NumberNotingParser(json& root) : dom_(root, /*allow_exceptions=*/false) {}

  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const std::string& text) {
    if (depth_ == 1) number_text[key_] = text;
    return dom_.number_float(v, text);
  }
  bool string(std::string& v) { return dom_.string(v); }
  bool binary(json::binary_t& v) { return dom_.binary(v); }
  bool start_object(std::size_t n) {
    ++depth_;
    return dom_.start_object(n);
  }
  bool key(std::string& k) {
    if (depth_ == 1) {
      key_ = k;
      number_text.erase(k);  // a repeated key: the last value counts
    }
    return dom_.key(k);
  }
  bool end_object() {
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) {
    ++depth_;
    return dom_.start_array(n);
  }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  template <typename Exception>
  bool parse_error(std::size_t position, const std::string& token, const Exception& e) {
    // 406: a number out of a double's range (1e400), named with the column it starts at (the
    // position is the one after it); everything else is a syntax error, whose position nlohmann
    // counts 1-based within the line.
    error = e.id == 406 ? fmt::format("number {} at column {} is out of the range of a double (quote it to keep it "
                                      "as text)", token, position >= token.size() ? position - token.size() + 1 : position)
                        : fmt::format("invalid JSON at column {}", position);
    return false;
  }

  std::map<std::string, std::string> number_text;
  std::string error;  ///< "" = parsed

 private:
  nlohmann::detail::json_sax_dom_parser<json> dom_;
  int depth_ = 0;
  std::string key_;
};

/// Reads one line of `in` into `line` (without its '\n'), keeping at most `max` bytes (0 = all):
/// the rest of a longer line is consumed, not stored. `length` is the line's whole length. False
/// at the end of the input.
bool read_line(std::istream& in, std::string& line, int64_t max, int64_t& length) {
  line.clear();
  length = 0;
  std::streambuf* sb = in.rdbuf();
  bool any = false;
  for (;;) {
    const int c = sb->sbumpc();
    if (c == std::char_traits<char>::eof()) {
      in.setstate(std::ios::eofbit);
      return any;
    }
    any = true;
    if (c == '\n') return true;
    ++length;
    if (max <= 0 || length <= max) line.push_back(static_cast<char>(c));
  }
}

/// opt.answer_extract compiled once per file.
class AnswerExtractor {
 public:
  explicit AnswerExtractor(const JsonlOptions& opt) : opt_(opt) {
    if (opt.answer_extract == "regex") {
      try {
        re_.emplace(opt.answer_regex, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        fail("data.answer_regex: '{}' is not a valid ECMAScript regex ({})", opt.answer_regex, e.what());
      }
      if (re_->mark_count() < 1) fail("data.answer_regex: '{}' has no capture group (the answer is group 1)", opt.answer_regex);
    } else if (opt.answer_extract != "none" && opt.answer_extract != "gsm8k") {
      fail("data.answer_extract: unknown rule '{}' (none | gsm8k | regex)", opt.answer_extract);
    }
  }

  std::string operator()(const std::string& text) const {
    if (opt_.answer_extract == "gsm8k") {
      const auto at = text.rfind("####");
      if (at == std::string::npos)
        throw BadLine{fmt::format("'{}' has no '####' before its final answer (data.answer_extract: gsm8k)", opt_.answer_key)};
      const std::string out = trim(text.substr(at + 4));
      if (out.empty()) throw BadLine{fmt::format("'{}' has nothing after its last '####' (data.answer_extract: gsm8k)", opt_.answer_key)};
      return out;
    }
    if (re_) {
      std::smatch m;
      if (!std::regex_search(text, m, *re_) || !m[1].matched)
        throw BadLine{fmt::format("'{}' does not match data.answer_regex '{}' (with its group 1)", opt_.answer_key,
                                  opt_.answer_regex)};
      return m[1].str();
    }
    return text;
  }

 private:
  static std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
  }
  const JsonlOptions& opt_;
  std::optional<std::regex> re_;
};

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
  ScanOptions so;
  so.skip_bad_lines = opt.skip_bad_lines;
  so.skip_hint = " (set data.skip_bad_lines: true to skip and count bad lines)";
  so.max_line_bytes = opt.max_record_bytes;
  so.max_line_key = "data.max_record_bytes";
  const JsonlScan scan = scan_jsonl(in, path, so, [&](const JsonlLine& line) {
    Record r = parse(line);
    r.id = line.where;
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

std::string extract_answer(const std::string& text, const JsonlOptions& opt) { return AnswerExtractor(opt)(text); }

JsonlScan scan_jsonl(std::istream& in, const std::string& source, const ScanOptions& opt,
                     const std::function<void(const JsonlLine& line)>& fn) {
  JsonlScan scan;
  std::string line;
  int64_t lineno = 0, length = 0;
  while (read_line(in, line, opt.max_line_bytes, length)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines are fine
    const std::string where = fmt::format("{}:{}", source, lineno);
    std::string message;  // "SOURCE:LINE: why"
    try {
      if (opt.max_line_bytes > 0 && length > opt.max_line_bytes)
        throw BadLine{fmt::format("the line is {} bytes, over {} {}", length,
                                  opt.max_line_key.empty() ? "the limit of" : opt.max_line_key, opt.max_line_bytes)};
      json o;
      NumberNotingParser sax(o);
      json::sax_parse(line, &sax);
      if (!sax.error.empty()) throw BadLine{sax.error};
      if (!o.is_object()) throw BadLine{fmt::format("expected a JSON object, got {}", o.type_name())};
      fn(JsonlLine{o, where, sax.number_text});
      ++scan.used;
      continue;
    } catch (const BadLine& e) {
      message = fmt::format("{}: {}", where, e.why);
    } catch (const Error& e) {
      message = e.what();
    } catch (const json::exception& e) {
      // A record parser's slip (a value of an unexpected type); still this line's fault.
      message = fmt::format("{}: {}", where, e.what());
    }
    if (!opt.skip_bad_lines) throw Error(message + opt.skip_hint);
    ++scan.skipped;
    if (scan.skipped_reasons.size() < 10) scan.skipped_reasons.push_back(std::move(message));
  }
  if (in.bad()) fail("{}: read error", source);
  return scan;
}

JsonlScan scan_jsonl(std::istream& in, const std::string& source, bool skip_bad_lines, const std::string& skip_hint,
                     const std::function<void(const json& o, const std::string& where)>& fn) {
  ScanOptions opt;
  opt.skip_bad_lines = skip_bad_lines;
  opt.skip_hint = skip_hint;
  return scan_jsonl(in, source, opt, [&](const JsonlLine& l) { fn(l.object, l.where); });
}

Loaded<PromptRecord> load_prompts(const std::string& path, const JsonlOptions& opt) {
  const AnswerExtractor extract(opt);
  return read_lines<PromptRecord>(path, opt, [&](const JsonlLine& line) {
    const json& o = line.object;
    PromptRecord r;
    read_prompt(o, opt.prompt_key, r.prompt, r.messages);
    if (o.contains(opt.answer_key)) {
      const auto& a = o[opt.answer_key];
      if (a.is_object() || a.is_array() || a.is_null())
        throw BadLine{fmt::format("'{}' must be a string or a number, got {}", opt.answer_key, a.type_name())};
      // Only text is cut by answer_extract: a number already is the answer.
      r.answer = a.is_string() ? extract(a.get<std::string>()) : as_text(a, opt.answer_key, line.number_text);
    }
    for (const auto& [k, v] : o.items())
      if (k != opt.prompt_key && k != "messages" && k != opt.answer_key) r.meta[k] = meta_text(v, k, line.number_text);
    return r;
  });
}

Loaded<PreferenceRecord> load_preferences(const std::string& path, const JsonlOptions& opt) {
  return read_lines<PreferenceRecord>(path, opt, [&](const JsonlLine& line) {
    const json& o = line.object;
    PreferenceRecord r;
    read_prompt(o, opt.prompt_key, r.prompt, r.messages);
    r.chosen = string_field(o, "chosen");
    r.rejected = string_field(o, "rejected");
    for (const auto& [k, v] : o.items())
      if (k != opt.prompt_key && k != "messages" && k != "chosen" && k != "rejected")
        r.meta[k] = meta_text(v, k, line.number_text);
    return r;
  });
}

Loaded<SftRecord> load_sft(const std::string& path, const JsonlOptions& opt) {
  return read_lines<SftRecord>(path, opt, [&](const JsonlLine& line) {
    const json& o = line.object;
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
