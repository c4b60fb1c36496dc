// The built-in chat templates. Each is the Jinja template of the model family written out in C++
// for the message shapes keel produces (string content, no tools); tests/models/chat_template_test
// holds exact expected strings, some checked against the Jinja templates shipped with the models.
#include "models/chat_template.h"

#include "base/error.h"

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
  fail("unknown chat template '{}' (known: {})", template_name, builtin_registry().known());
}

std::vector<std::string> chat_template_names() { return builtin_registry().names(); }

}  // namespace keel::models
