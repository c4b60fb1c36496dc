// Chat templates by name: a conversation (role, content messages) -> the prompt text a model was
// trained on. Built in: plain (no special tokens, for tiny models trained from scratch), chatml
// (Qwen2/Qwen2.5/Qwen3 and other <|im_start|> models), llama3 (Llama-3 Instruct).
// Deliberately not a Jinja interpreter: tokenizer_config.json's chat_template is not executed;
// tools, Qwen3's <think> handling and default system prompts are not rendered.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/registry.h"

namespace keel::models {

struct ChatMessage {
  std::string role;  ///< system | user | assistant | tool
  std::string content;
};

/// (messages, add_generation_prompt) -> prompt text. Messages are already validated.
using ChatTemplateFn = std::function<std::string(const std::vector<ChatMessage>&, bool)>;
using ChatTemplateRegistry = Registry<ChatTemplateFn>;

/// Adds plain, chatml and llama3.
void register_builtin_chat_templates(ChatTemplateRegistry& registry);

/// Renders `messages` with the built-in template `template_name`; with `add_generation_prompt`
/// the text ends with the opening of an assistant turn. Throws keel::Error for an unknown template
/// (listing the known ones), an empty conversation, or a role other than system/user/assistant/tool.
std::string render_chat(const std::vector<ChatMessage>& messages, std::string_view template_name,
                        bool add_generation_prompt);

/// The built-in template names, sorted.
std::vector<std::string> chat_template_names();

}  // namespace keel::models
