// A chat template written in Jinja — a model's own (tokenizer_config.json's chat_template, or
// chat_template.jinja beside it) or keel's built-in mistral — rendered by models/jinja.h with
// the variables transformers' apply_chat_template passes: messages, tools (none when absent),
// add_generation_prompt, bos_token / eos_token and, when set, enable_thinking.
// Deliberately not here: picking a template by name (chat_template.h) and tokenizing.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "models/jinja.h"

namespace keel::models {

struct ChatMessage;

struct JinjaChatOptions {
  std::optional<std::string> bos_token, eos_token;  ///< nullopt = not passed (undefined in the template)
  std::optional<bool> enable_thinking;              ///< nullopt = not passed (the template's default)
};

class JinjaChatTemplate {
 public:
  /// Parses `source` (errors name `origin` and the line) and renders a one-message conversation
  /// once, so that a template keel cannot render fails here, at load, rather than mid-run.
  JinjaChatTemplate(const std::string& source, const std::string& origin, JinjaChatOptions o);

  /// Renders JSON messages ({role, content, tool_calls, ...}) and `tools` (null = none).
  std::string render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                     bool add_generation_prompt) const;
  /// Renders role / content messages.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;

  /// The text that continues a conversation after an assistant turn the model ended with its EOS
  /// token, to show it `content` from `role` and open its next turn. Derived from the template
  /// itself: it renders [user, assistant <marker>, role: content] with the generation prompt and
  /// keeps what follows the marker, less the EOS text when the turn closes with it (the model
  /// generated that token). Throws keel::Error naming the template when it refuses the role.
  std::string render_observation(std::string_view role, std::string_view content) const;

  const std::string& origin() const { return tmpl_.origin(); }

 private:
  jinja::Template tmpl_;
  JinjaChatOptions opt_;
};

/// The chat template a model directory ships: tokenizer_config.json's "chat_template" (a string,
/// or the "default" entry of a list of named templates), else chat_template.jinja, else
/// chat_template.json; BOS / EOS text from tokenizer_config.json (else special_tokens_map.json).
/// nullptr when the directory has none. Throws keel::Error (naming the file, and the template line
/// for template errors) for malformed files or a template outside keel's Jinja subset.
std::shared_ptr<const JinjaChatTemplate> load_model_chat_template(const std::string& dir,
                                                                  std::optional<bool> enable_thinking);

}  // namespace keel::models
