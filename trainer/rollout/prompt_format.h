// Prompt record -> token ids the policy sees: chat messages are rendered with the run's chat
// template (with the generation prompt); a plain prompt string is used as is with the "plain"
// template, or as one user message with any other (a model's own Jinja template included). The
// one place this rule lives, and where model.chat_template is resolved for a run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/chat_template.h"
#include "trainer/data/record.h"

namespace keel::models {
class Tokenizer;
}
namespace keel::config {
struct ModelSection;
}

namespace keel::rollout {

/// model.chat_template resolved (models::resolve_chat_template) against the model's tokenizer
/// directory (model.tokenizer's, else model.path; none for random init), with model.enable_thinking.
models::ChatTemplate load_chat_template(const config::ModelSection& m);

/// The text the policy is conditioned on.
std::string render_prompt(const data::PromptRecord& r, const models::ChatTemplate& chat_template);

/// Token ids of render_prompt(); throws keel::Error naming the record id when the prompt plus
/// `max_new_tokens` would not fit in `context_length` (0 = unchecked) or the prompt is empty.
std::vector<int64_t> encode_prompt(const data::PromptRecord& r, const models::Tokenizer& tok,
                                   const models::ChatTemplate& chat_template, int64_t context_length,
                                   int64_t max_new_tokens);

}  // namespace keel::rollout
