// JSONL readers for prompt, preference and SFT files. A malformed line is an error naming
// file:line and what was expected — or, with skip_bad_lines, skipped and counted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/data/record.h"

namespace keel::data {

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
