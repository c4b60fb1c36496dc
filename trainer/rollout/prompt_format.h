// Prompt record -> token ids the policy sees: chat messages are rendered with the configured chat
// template (with the generation prompt); a plain prompt string is used as is with the "plain"
// template, or as one user message with a chat template. The one place this rule lives.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/data/record.h"

namespace keel::models {
class Tokenizer;
}

namespace keel::rollout {

/// The text the policy is conditioned on.
std::string render_prompt(const data::PromptRecord& r, const std::string& chat_template);

/// Token ids of render_prompt(); throws keel::Error naming the record id when the prompt plus
/// `max_new_tokens` would not fit in `context_length` (0 = unchecked) or the prompt is empty.
std::vector<int64_t> encode_prompt(const data::PromptRecord& r, const models::Tokenizer& tok,
                                   const std::string& chat_template, int64_t context_length, int64_t max_new_tokens);

}  // namespace keel::rollout
