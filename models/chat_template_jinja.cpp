// Jinja chat templates: the variables transformers passes, the observation turn derived from the
// template, and loading a model directory's template (see chat_template_jinja.h).
#include "models/chat_template_jinja.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "models/chat_template.h"

namespace keel::models {

namespace {

using ojson = nlohmann::ordered_json;

// Stands for the assistant's reply when deriving the observation turn; no template alters it.
constexpr std::string_view kMarker = "KEEL-ASSISTANT-TURN-7F3A";

ojson message(std::string_view role, std::string_view content) {
  ojson m = ojson::object();
  m["role"] = std::string(role);
  m["content"] = std::string(content);
  return m;
}

ojson to_json(const std::vector<ChatMessage>& messages) {
  ojson out = ojson::array();
  for (const ChatMessage& m : messages) out.push_back(message(m.role, m.content));
  return out;
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) fail("{}: cannot read the file (is it readable?)", p.string());
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

ojson read_json(const std::filesystem::path& p) {
  try {
    return ojson::parse(read_text(p));
  } catch (const ojson::parse_error& e) {
    fail("{}: not valid JSON ({})", p.string(), e.what());
  }
}

// A special-token entry of tokenizer_config.json / special_tokens_map.json: "text" or {"content": "text"}.
std::optional<std::string> token_text(const ojson& cfg, const char* key) {
  const auto it = cfg.find(key);
  if (it == cfg.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"].get<std::string>();
  return std::nullopt;
}

// tokenizer_config.json's chat_template: a string, or [{name, template}, ...] of which transformers
// uses "default" when no tools are given.
std::optional<std::string> config_template(const ojson& cfg, const std::string& path) {
  const auto it = cfg.find("chat_template");
  if (it == cfg.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    for (const auto& e : *it)
      if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
        return e["template"].get<std::string>();
    fail("{}: chat_template is a list of named templates without a \"default\" entry", path);
  }
  fail("{}: chat_template must be a string or a list of {{name, template}} objects, got {}", path, it->type_name());
}

}  // namespace

JinjaChatTemplate::JinjaChatTemplate(const std::string& source, const std::string& origin, JinjaChatOptions o)
    : tmpl_(jinja::Template::parse(source, origin)), opt_(std::move(o)) {
  try {
    (void)render(ojson::array({message("user", "Hello")}), nullptr, /*add_generation_prompt=*/true);
  } catch (const Error& e) {
    fail("{} (rendering a one-message test conversation)", e.what());
  }
}

std::string JinjaChatTemplate::render(const ojson& messages, const ojson& tools, bool add_generation_prompt) const {
  ojson ctx = ojson::object();
  ctx["messages"] = messages;
  ctx["tools"] = tools;
  ctx["documents"] = nullptr;
  ctx["add_generation_prompt"] = add_generation_prompt;
  if (opt_.bos_token) ctx["bos_token"] = *opt_.bos_token;
  if (opt_.eos_token) ctx["eos_token"] = *opt_.eos_token;
  if (opt_.enable_thinking) ctx["enable_thinking"] = *opt_.enable_thinking;
  return tmpl_.render(ctx);
}

std::string JinjaChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  return render(to_json(messages), nullptr, add_generation_prompt);
}

std::string JinjaChatTemplate::render_observation(std::string_view role, std::string_view content) const {
  if (role != "tool" && role != "user") fail("render_observation: role '{}' (expected tool or user)", role);
  const ojson msgs = ojson::array({message("user", "Begin."), message("assistant", kMarker), message(role, content)});
  std::string text;
  try {
    text = render(msgs, nullptr, /*add_generation_prompt=*/true);
  } catch (const Error& e) {
    fail("{} (continuing a conversation with a {} turn)", e.what(), role);
  }
  const size_t at = text.rfind(kMarker);
  if (at == std::string::npos)
    fail("{}: the chat template drops the assistant's reply, so keel cannot continue a conversation after it", origin());
  std::string rest = text.substr(at + kMarker.size());
  if (opt_.eos_token && !opt_.eos_token->empty() && rest.rfind(*opt_.eos_token, 0) == 0) rest.erase(0, opt_.eos_token->size());
  return rest;
}

std::shared_ptr<const JinjaChatTemplate> load_model_chat_template(const std::string& dir,
                                                                  std::optional<bool> enable_thinking) {
  namespace fs = std::filesystem;
  const fs::path config_path = fs::path(dir) / "tokenizer_config.json";
  const fs::path tokens_path = fs::path(dir) / "special_tokens_map.json";
  ojson cfg = ojson::object(), tokens = ojson::object();
  if (fs::exists(config_path)) cfg = read_json(config_path);
  if (fs::exists(tokens_path)) tokens = read_json(tokens_path);
  if (!cfg.is_object()) fail("{}: expected a JSON object", config_path.string());
  if (!tokens.is_object()) fail("{}: expected a JSON object", tokens_path.string());

  std::optional<std::string> source = config_template(cfg, config_path.string());
  std::string origin = config_path.string() + " chat_template";
  for (const char* file : {"chat_template.jinja", "chat_template.json"}) {
    const fs::path p = fs::path(dir) / file;
    if (source || !fs::exists(p)) continue;
    if (std::string_view(file) == "chat_template.jinja") {
      source = read_text(p);
      origin = p.string();
    } else {
      source = config_template(read_json(p), p.string());
      origin = p.string() + " chat_template";
    }
  }
  if (!source) return nullptr;
  JinjaChatOptions o;
  o.bos_token = token_text(cfg, "bos_token");
  if (!o.bos_token) o.bos_token = token_text(tokens, "bos_token");
  o.eos_token = token_text(cfg, "eos_token");
  if (!o.eos_token) o.eos_token = token_text(tokens, "eos_token");
  o.enable_thinking = enable_thinking;
  return std::make_shared<const JinjaChatTemplate>(*source, origin, std::move(o));
}

}  // namespace keel::models
