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

/// The text that follows an assistant turn (ended by its end-of-turn token: EOS for plain,
/// <|im_end|> for chatml, <|eot_id|> for llama3) to show the model `content` from `role` (tool |
/// user) and open its next assistant turn — what a multi-turn rollout appends, in the template's
/// own turn format:
///   plain:  "\nTool: {content}\nAssistant:" (role capitalised as render_chat does)
///   chatml: "\n<|im_start|>user\n<tool_response>\n{content}\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
///           for a tool (Qwen2.5 / Qwen3 render tool results inside a user turn), or
///           "\n<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n" for a user;
///   llama3: "<|start_header_id|>ipython<|end_header_id|>\n\n{content}<|eot_id|>" (a tool's role is
///           ipython) or the user header, then "<|start_header_id|>assistant<|end_header_id|>\n\n".
/// Throws keel::Error for an unknown template or a role other than tool / user.
std::string render_observation(std::string_view template_name, std::string_view role, std::string_view content);

/// The built-in template names, sorted.
std::vector<std::string> chat_template_names();

}  // namespace keel::models
