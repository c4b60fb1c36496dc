#include "trainer/rollout/prompt_format.h"

#include "models/tokenizer.h"
#include "base/error.h"
#include "trainer/config/config.h"

namespace keel::rollout {

models::ChatTemplate load_chat_template(const config::ModelSection& m) {
  const std::optional<bool> thinking =
      m.enable_thinking == "auto" ? std::nullopt : std::optional<bool>(m.enable_thinking == "true");
  return models::resolve_chat_template(m.chat_template, models::chat_template_dir(m.path, m.tokenizer), thinking);
}

std::string render_prompt(const data::PromptRecord& r, const models::ChatTemplate& chat_template) {
  std::vector<models::ChatMessage> msgs;
  if (!r.messages.empty()) {
    for (const auto& m : r.messages) msgs.push_back({m.role, m.content});
  } else if (chat_template.is_plain()) {
    return r.prompt;
  } else {
    msgs.push_back({"user", r.prompt});
  }
  return chat_template.render(msgs, /*add_generation_prompt=*/true);
}

std::vector<int64_t> encode_prompt(const data::PromptRecord& r, const models::Tokenizer& tok,
                                   const models::ChatTemplate& chat_template, int64_t context_length,
                                   int64_t max_new_tokens) {
  auto ids = tok.encode(render_prompt(r, chat_template), /*add_special=*/true);
  if (ids.empty()) fail("{}: the prompt is empty after tokenization", r.id);
  if (context_length > 0 && static_cast<int64_t>(ids.size()) + max_new_tokens > context_length)
    fail("{}: prompt of {} tokens + max_new_tokens {} exceeds the model's context of {} tokens", r.id, ids.size(),
         max_new_tokens, context_length);
  return ids;
}

}  // namespace keel::rollout
