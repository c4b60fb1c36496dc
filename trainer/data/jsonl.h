// JSONL readers for prompt, preference and SFT files. A malformed line is an error naming
// file:line and what was expected — or, with skip_bad_lines, skipped and counted.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "trainer/data/record.h"

namespace keel::data {

/// What a scan_jsonl callback throws for a bad line: what is wrong, without the place (the scanner
/// prefixes "SOURCE:LINE: ").
struct BadLine {
  std::string why;
};

struct JsonlScan {
  int64_t used = 0;                          ///< lines the callback accepted
  int64_t skipped = 0;                       ///< bad lines skipped (skip_bad_lines)
  std::vector<std::string> skipped_reasons;  ///< the first few, "SOURCE:LINE: why"
};

/// One line of a JSONL file, as scan_jsonl hands it to its callback.
struct JsonlLine {
  const nlohmann::json& object;
  const std::string& where;  ///< "SOURCE:LINE"
  /// The text as written of each top-level field holding a non-integer number (a float, or an
  /// integer too large for 64 bits, which nlohmann keeps as a double): answers are compared as
  /// text, so "1.50" or a 30-digit integer must not come back as "1.5" or "1.2345678901234568e+29".
  const std::map<std::string, std::string>& number_text;
};

struct ScanOptions {
  bool skip_bad_lines = false;
  std::string skip_hint;       ///< appended to the message of a bad line that is not skipped
  int64_t max_line_bytes = 0;  ///< a longer line is a bad line (never held in memory whole); 0 = no limit
  std::string max_line_key;    ///< the config key that sets max_line_bytes, for its message
};

/// Calls fn(line) for every non-blank line of `in` (a trailing \r dropped). A line that is not a
/// JSON object (a syntax error, a number out of a double's range), that is longer than
/// max_line_bytes, or for which fn throws BadLine (or a keel::Error, whose message already names
/// the line), fails with that message followed by `skip_hint` — or, with skip_bad_lines, is
/// counted and skipped. A read error fails naming `source`.
JsonlScan scan_jsonl(std::istream& in, const std::string& source, const ScanOptions& opt,
                     const std::function<void(const JsonlLine& line)>& fn);
/// The same with the object and "SOURCE:LINE" only, and no line limit.
JsonlScan scan_jsonl(std::istream& in, const std::string& source, bool skip_bad_lines, const std::string& skip_hint,
                     const std::function<void(const nlohmann::json& o, const std::string& where)>& fn);

/// The prompt of a record: o[prompt_key] as a string, or as a list of {role, content} messages,
/// else o["messages"]. Throws BadLine when there is neither or a message is malformed.
void read_prompt(const nlohmann::json& o, const std::string& prompt_key, std::string& prompt,
                 std::vector<Message>& messages);

struct JsonlOptions {
  bool skip_bad_lines = false;
  std::string prompt_key = "prompt";      ///< or "messages" (list of {role, content})
  std::string answer_key = "answer";
  /// How the gold answer is cut from answer_key's text (a number is taken as written): none (the
  /// whole text) | gsm8k (the text after the last "####", trimmed) | regex (answer_regex's first
  /// capture group at its first match). A text it finds nothing in is a bad line.
  std::string answer_extract = "none";
  std::string answer_regex;
  int64_t max_record_bytes = int64_t{8} << 20;  ///< a longer line is a bad line (data.max_record_bytes); 0 = no limit
};

/// The gold answer cut from `text` by opt.answer_extract (see JsonlOptions); throws BadLine naming
/// opt.answer_key when there is none. A bad answer_regex is keel::Error.
std::string extract_answer(const std::string& text, const JsonlOptions& opt);

template <typename Record>
struct Loaded {
  std::vector<Record> records;
  int64_t skipped = 0;                    ///< malformed lines skipped (skip_bad_lines)
  std::vector<std::string> skipped_reasons;  ///< first few, "file:line: why"
};

/// {prompt | messages, answer?, ...}: every other key lands in meta.
Loaded<PromptRecord> load_prompts(const std::string& path, const JsonlOptions& opt = {});
/// {prompt | messages, chosen, rejected}.
Loaded<PreferenceRecord> load_preferences(const std::string& path, const JsonlOptions& opt = {});
/// {prompt | messages, response} or {messages} whose last message is the assistant's response.
Loaded<SftRecord> load_sft(const std::string& path, const JsonlOptions& opt = {});

}  // namespace keel::data
