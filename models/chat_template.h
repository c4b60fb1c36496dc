// Chat templates: a conversation (role, content messages) -> the prompt text a model was trained
// on. Built in by name: plain (no special tokens, for tiny models trained from scratch), chatml
// (Qwen2/Qwen2.5/Qwen3 and other <|im_start|> models), llama3 (Llama-3 Instruct), mistral
// (Mistral-7B-Instruct's [INST] template, for Mistral models whose directory has none). A
// ChatTemplate is one of those or a model's own Jinja template (chat_template_jinja.h), chosen
// from model.chat_template by resolve_chat_template.
#pragma once

#include <functional>
#include <memory>
#include <optional>
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

/// Adds plain, chatml, llama3 and mistral.
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
///   mistral: " [INST] {content} [/INST]" for a user (its template refuses tool turns).
/// Throws keel::Error for an unknown template or a role other than tool / user.
std::string render_observation(std::string_view template_name, std::string_view role, std::string_view content);

/// The built-in template names, sorted.
std::vector<std::string> chat_template_names();

class JinjaChatTemplate;

/// A chat template ready to render: a built-in one or a model's own Jinja template. Cheap to copy.
class ChatTemplate {
 public:
  /// The built-in template `name` (implicit, so "chatml" converts); throws keel::Error for an
  /// unknown name, listing the known ones ("auto" / "model" need resolve_chat_template).
  ChatTemplate(std::string name);
  ChatTemplate(const char* name) : ChatTemplate(std::string(name)) {}
  /// A model's own template, shown as "model" (origin: its file).
  explicit ChatTemplate(std::shared_ptr<const JinjaChatTemplate> model);

  /// "plain" | "chatml" | "llama3" | "mistral" | "model".
  const std::string& name() const { return name_; }
  /// For logs: the name, or "model (<file> chat_template)".
  std::string describe() const;
  /// plain: a prompt string is used as is rather than as one user message.
  bool is_plain() const { return name_ == "plain"; }
  /// The model's Jinja template (nullptr for a built-in one).
  const JinjaChatTemplate* jinja() const { return model_.get(); }

  /// As render_chat, with this template.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  /// As render_observation, with this template (a model's: derived from its Jinja template).
  std::string render_observation(std::string_view role, std::string_view content) const;

 private:
  std::string name_;
  std::shared_ptr<const JinjaChatTemplate> model_;
};

/// model.chat_template resolved against the model directory `dir` ("" = random init, none):
///   auto  -> the directory's own template (load_model_chat_template) when it has one, else plain;
///   model -> the directory's own template; a keel::Error when it has none;
///   a built-in name -> that template (the directory's is ignored).
/// `enable_thinking` is passed to a model's template (nullopt = not passed). Throws keel::Error for
/// an unknown name or a template keel cannot parse (naming its file and line).
ChatTemplate resolve_chat_template(const std::string& setting, const std::string& dir,
                                   std::optional<bool> enable_thinking = std::nullopt);

/// The directory whose tokenizer files hold the chat template: `tokenizer` when set (itself if a
/// directory, else its folder), else `model_path`.
std::string chat_template_dir(const std::string& model_path, const std::string& tokenizer);

}  // namespace keel::models
