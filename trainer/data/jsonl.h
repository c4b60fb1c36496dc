// JSONL readers for prompt, preference and SFT files. A malformed line is an error naming
// file:line and what was expected — or, with skip_bad_lines, skipped and counted.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
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

/// Calls fn(object, "SOURCE:LINE") for every non-blank line of `in` (a trailing \r dropped). A line
/// that is not a JSON object, or for which fn throws BadLine (or a keel::Error, whose message
/// already names the line), fails with that message followed by `skip_hint` — or, with
/// skip_bad_lines, is counted and skipped. A read error fails naming `source`.
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
};

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
