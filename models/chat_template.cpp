// The built-in chat templates and the ChatTemplate choice. plain / chatml / llama3 are the model
// families' Jinja templates written out in C++ for the message shapes keel produces (string
// content, no tools); mistral is Mistral's own Jinja template run by keel's interpreter.
// tests/models/chat_template_test holds exact expected strings, checked against the Jinja
// templates shipped with the models (tests/models/chat_template_parity).
#include "models/chat_template.h"

#include <filesystem>

#include "base/error.h"
#include "models/chat_template_jinja.h"

namespace keel::models {
namespace {

// Jinja's |trim (Python str.strip()) for the whitespace that occurs in practice.
std::string trim(std::string_view s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

// plain: "System: ...\nUser: ...\nAssistant: ...\n", generation prompt "Assistant:".
// The prompt ends at the colon so that a BPE / SentencePiece model attaches the space to the
// first answer token (" 42"), as it saw in training text.
std::string render_plain(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  std::string out;
  for (const ChatMessage& m : messages) {
    std::string role = m.role;
    role[0] = static_cast<char>(role[0] - 'a' + 'A');
    out += role + ": " + m.content + "\n";
  }
  if (add_generation_prompt) out += "Assistant:";
  return out;
}

// chatml: "<|im_start|>{role}\n{content}<|im_end|>\n" per message; generation prompt
// "<|im_start|>assistant\n". Qwen2.5's default system prompt is not inserted.
std::string render_chatml(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  std::string out;
  for (const ChatMessage& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

// llama3 (Meta-Llama-3-*-Instruct): "<|begin_of_text|>" then
// "<|start_header_id|>{role}<|end_header_id|>\n\n{content|trim}<|eot_id|>" per message; generation
// prompt "<|start_header_id|>assistant<|end_header_id|>\n\n". The BOS is part of the text, so encode
// the result with add_special=false.
std::string render_llama3(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  std::string out = "<|begin_of_text|>";
  for (const ChatMessage& m : messages)
    out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) + "<|eot_id|>";
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

// mistral: the "v1" template of mistralai/Mistral-7B-Instruct-v0.2 (Apache-2.0), verbatim: an
// optional system message joins the first user turn; roles must alternate user / assistant.
constexpr const char* kMistralSource = R"JINJA({%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}
            {{- ' [INST] ' + system_message + '\n\n' + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- ' [INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}
)JINJA";

const JinjaChatTemplate& mistral() {
  static const JinjaChatTemplate t(kMistralSource, "keel built-in chat template 'mistral'",
                                   JinjaChatOptions{"<s>", "</s>", std::nullopt});
  return t;
}

std::string render_mistral(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  return mistral().render(messages, add_generation_prompt);
}

const ChatTemplateRegistry& builtin_registry() {
  static const ChatTemplateRegistry registry = [] {
    ChatTemplateRegistry r("chat template");
    register_builtin_chat_templates(r);
    return r;
  }();
  return registry;
}

}  // namespace

void register_builtin_chat_templates(ChatTemplateRegistry& registry) {
  registry.add("plain", "Role: content lines, no special tokens (tiny models trained from scratch)", render_plain);
  registry.add("chatml", "<|im_start|>role ... <|im_end|> turns (Qwen2, Qwen2.5, Qwen3)", render_chatml);
  registry.add("llama3", "<|start_header_id|>role<|end_header_id|> turns (Llama-3 Instruct)", render_llama3);
  registry.add("mistral", "[INST] ... [/INST] turns (Mistral-7B-Instruct's template, for Mistral models without one)",
               render_mistral);
}

std::string render_chat(const std::vector<ChatMessage>& messages, std::string_view template_name,
                        bool add_generation_prompt) {
  const ChatTemplateRegistry::Entry& entry = builtin_registry().get(std::string(template_name));
  if (messages.empty()) fail("chat template '{}': the conversation has no messages", template_name);
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& r = messages[i].role;
    if (r != "system" && r != "user" && r != "assistant" && r != "tool")
      fail("chat template '{}': message {} has role '{}' (expected system, user, assistant or tool)", template_name,
           i, r);
  }
  return entry.fn(messages, add_generation_prompt);
}

std::string render_observation(std::string_view template_name, std::string_view role, std::string_view content) {
  if (role != "tool" && role != "user")
    fail("render_observation: role '{}' (expected tool or user)", role);
  const std::string c(content);
  if (template_name == "plain") return std::string("\n") + (role == "tool" ? "Tool: " : "User: ") + c + "\nAssistant:";
  if (template_name == "chatml") {
    const std::string body = role == "tool" ? "<tool_response>\n" + c + "\n</tool_response>" : c;
    return "\n<|im_start|>user\n" + body + "<|im_end|>\n<|im_start|>assistant\n";
  }
  if (template_name == "llama3")
    return std::string("<|start_header_id|>") + (role == "tool" ? "ipython" : "user") + "<|end_header_id|>\n\n" +
           trim(c) + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
  if (template_name == "mistral") return mistral().render_observation(role, content);
  fail("unknown chat template '{}' (known: {})", template_name, builtin_registry().known());
}

std::vector<std::string> chat_template_names() { return builtin_registry().names(); }

ChatTemplate::ChatTemplate(std::string name) : name_(std::move(name)) {
  if (!builtin_registry().contains(name_))
    fail("unknown chat template '{}' (built in: {}; auto and model choose the model directory's own)", name_,
         builtin_registry().known());
}

ChatTemplate::ChatTemplate(std::shared_ptr<const JinjaChatTemplate> model) : name_("model"), model_(std::move(model)) {}

std::string ChatTemplate::describe() const { return model_ ? "model (" + model_->origin() + ")" : name_; }

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  if (!model_) return render_chat(messages, name_, add_generation_prompt);
  if (messages.empty()) fail("chat template {}: the conversation has no messages", describe());
  return model_->render(messages, add_generation_prompt);
}

std::string ChatTemplate::render_observation(std::string_view role, std::string_view content) const {
  return model_ ? model_->render_observation(role, content) : models::render_observation(name_, role, content);
}

ChatTemplate resolve_chat_template(const std::string& setting, const std::string& dir,
                                   std::optional<bool> enable_thinking) {
  if (setting != "auto" && setting != "model") return ChatTemplate(setting);
  auto own = dir.empty() ? nullptr : load_model_chat_template(dir, enable_thinking);
  if (own) return ChatTemplate(std::move(own));
  if (setting == "auto") return ChatTemplate("plain");
  if (dir.empty())
    fail("model.chat_template model: a randomly initialised model (model.path empty) has no chat template of its "
         "own; choose one of {} or auto", builtin_registry().known());
  fail("model.chat_template model: {} has no chat template (no chat_template in tokenizer_config.json, no "
       "chat_template.jinja); choose one of {} (mistral for Mistral models)",
       dir, builtin_registry().known());
}

std::string chat_template_dir(const std::string& model_path, const std::string& tokenizer) {
  if (tokenizer.empty()) return model_path;
  if (std::filesystem::is_directory(tokenizer)) return tokenizer;
  return std::filesystem::path(tokenizer).parent_path().string();
}

}  // namespace keel::models
