#include "trainer/rollout/prompt_format.h"

#include "models/chat_template.h"
#include "models/tokenizer.h"
#include "base/error.h"

namespace keel::rollout {

std::string render_prompt(const data::PromptRecord& r, const std::string& chat_template) {
  std::vector<models::ChatMessage> msgs;
  if (!r.messages.empty()) {
    for (const auto& m : r.messages) msgs.push_back({m.role, m.content});
  } else if (chat_template == "plain") {
    return r.prompt;
  } else {
    msgs.push_back({"user", r.prompt});
  }
  return models::render_chat(msgs, chat_template, /*add_generation_prompt=*/true);
}

std::vector<int64_t> encode_prompt(const data::PromptRecord& r, const models::Tokenizer& tok,
                                   const std::string& chat_template, int64_t context_length, int64_t max_new_tokens) {
  auto ids = tok.encode(render_prompt(r, chat_template), /*add_special=*/true);
  if (ids.empty()) fail("{}: the prompt is empty after tokenization", r.id);
  if (context_length > 0 && static_cast<int64_t>(ids.size()) + max_new_tokens > context_length)
    fail("{}: prompt of {} tokens + max_new_tokens {} exceeds the model's context of {} tokens", r.id, ids.size(),
         max_new_tokens, context_length);
  return ids;
}

}  // namespace keel::rollout
