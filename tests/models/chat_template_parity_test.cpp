// The real chat templates of Qwen2.5, Qwen3, Llama-3.1, Llama-3.2, Mistral-Nemo and Mistral-7B
// (chat_template_parity/templates/, verbatim) rendered by keel's Jinja interpreter must equal
// Python jinja2's rendering under transformers' settings for every conversation in
// chat_template_parity/reference.json (made by gen_reference.py; no Python needed here): tool
// calls and results, <think> handling, enable_thinking, generation prompt on and off, and the
// templates' own raise_exception errors. Then the same templates through keel's ChatTemplate:
// loaded from a model directory, the built-in mistral, and the observation turns of multi-turn
// episodes derived from each template.
#include "models/chat_template.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "models/chat_template_jinja.h"
#include "models/jinja.h"

namespace keel::models {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

const std::string kDir = std::string(KEEL_SOURCE_DIR) + "/tests/models/chat_template_parity/";

std::string read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

const ordered_json& reference() {
  static const ordered_json j = ordered_json::parse(read(kDir + "reference.json"));
  return j;
}

std::string template_source(const std::string& name) { return read(kDir + "templates/" + name + ".jinja"); }

TEST(ChatTemplateParity, EveryReferenceCaseRendersExactly) {
  std::map<std::string, int> checked;
  for (const auto& c : reference()["cases"]) {
    const std::string name = c["template"], id = name + "/" + c["case"].get<std::string>() + " gen=" +
                                                 c["context"]["add_generation_prompt"].dump();
    const auto t = jinja::Template::parse(template_source(name), name + ".jinja");
    if (c.contains("error")) {
      try {
        t.render(c["context"]);
        ADD_FAILURE() << id << ": expected the template to raise";
      } catch (const Error& e) {
        EXPECT_THAT(e.what(), testing::HasSubstr(c["error"].get<std::string>())) << id;
        EXPECT_THAT(e.what(), testing::HasSubstr(name + ".jinja:")) << id;  // names the template and line
      }
    } else {
      EXPECT_EQ(t.render(c["context"]), c["expected"].get<std::string>()) << id;
    }
    ++checked[name];
  }
  // Every template is covered (6 templates, 122 cases as generated).
  EXPECT_EQ(checked.size(), 6u);
  for (const char* n : {"qwen2.5", "qwen3", "llama3.1", "llama3.2", "mistral_nemo", "mistral_v1"})
    EXPECT_GE(checked[n], 12) << n;
}

// A model directory as HF ships it: tokenizer_config.json with the template and special tokens.
std::string model_dir(const std::string& name, const std::string& tmpl, const ordered_json& tokens) {
  const fs::path dir = fs::temp_directory_path() / ("keel_chat_template_" + name + "_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  ordered_json cfg = tokens;
  cfg["chat_template"] = tmpl;
  std::ofstream(dir / "tokenizer_config.json") << cfg.dump(2);
  return dir.string();
}

// A reference case whose variables are only what ChatTemplate passes (messages, the generation
// prompt, special tokens; llama3.1's date_string at its default).
bool only_messages(const ordered_json& ctx) {
  for (const auto& [k, v] : ctx.items()) {
    if (k == "messages" || k == "add_generation_prompt" || k == "bos_token" || k == "eos_token") continue;
    if ((k == "tools" || k == "documents") && v.is_null()) continue;
    if (k == "date_string" && v == "26 Jul 2024") continue;
    return false;
  }
  return true;
}

std::vector<ChatMessage> plain_messages(const ordered_json& msgs) {
  std::vector<ChatMessage> out;
  for (const auto& m : msgs) {
    if (m.size() != 2 || !m["content"].is_string()) return {};  // tool calls etc.: not role/content only
    out.push_back({m["role"], m["content"]});
  }
  return out;
}

TEST(ChatTemplateParity, ModelDirectoryTemplatesRenderRoleContentConversations) {
  const std::map<std::string, ordered_json> tokens = {
      {"qwen2.5", {{"bos_token", nullptr}, {"eos_token", "<|im_end|>"}}},
      {"qwen3", {{"bos_token", nullptr}, {"eos_token", "<|im_end|>"}}},
      {"llama3.1", {{"bos_token", "<|begin_of_text|>"}, {"eos_token", {{"content", "<|eot_id|>"}}}}},
  };
  int checked = 0;
  for (const auto& [name, tok] : tokens) {
    const ChatTemplate t = resolve_chat_template("auto", model_dir(name, template_source(name), tok));
    EXPECT_EQ(t.name(), "model");
    EXPECT_THAT(t.describe(), testing::HasSubstr("tokenizer_config.json chat_template"));
    for (const auto& c : reference()["cases"]) {
      if (c["template"] != name || c.contains("error") || !only_messages(c["context"])) continue;
      const auto msgs = plain_messages(c["context"]["messages"]);
      if (msgs.empty()) continue;
      EXPECT_EQ(t.render(msgs, c["context"]["add_generation_prompt"]), c["expected"].get<std::string>())
          << name << "/" << c["case"];
      ++checked;
    }
  }
  EXPECT_GE(checked, 20);
}

TEST(ChatTemplateParity, BuiltinMistralIsMistralsTemplate) {
  int checked = 0;
  for (const auto& c : reference()["cases"]) {
    if (c["template"] != "mistral_v1" || c.contains("error")) continue;
    const auto msgs = plain_messages(c["context"]["messages"]);
    ASSERT_FALSE(msgs.empty());
    EXPECT_EQ(render_chat(msgs, "mistral", c["context"]["add_generation_prompt"]), c["expected"].get<std::string>())
        << c["case"];
    ++checked;
  }
  EXPECT_GE(checked, 10);
  try {
    render_chat({{"user", "a"}, {"user", "b"}}, "mistral", true);
    FAIL() << "expected keel::Error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), testing::HasSubstr("keel built-in chat template 'mistral':"));
    EXPECT_THAT(e.what(), testing::HasSubstr("roles must alternate"));
  }
}

TEST(ChatTemplateParity, ObservationTurnsDerivedFromTheModelsTemplates) {
  const auto qwen = resolve_chat_template(
      "model", model_dir("obs_qwen3", template_source("qwen3"), {{"eos_token", "<|im_end|>"}}));
  const auto qwen25 = resolve_chat_template(
      "model", model_dir("obs_qwen25", template_source("qwen2.5"), {{"eos_token", "<|im_end|>"}}));
  const auto llama = resolve_chat_template(
      "model", model_dir("obs_llama", template_source("llama3.2"), {{"bos_token", "<|begin_of_text|>"}, {"eos_token", "<|eot_id|>"}}));
  // Qwen's templates continue exactly as keel's built-in chatml does.
  for (const ChatTemplate* t : {&qwen, &qwen25}) {
    EXPECT_EQ(t->render_observation("tool", "63"), render_observation("chatml", "tool", "63"));
    EXPECT_EQ(t->render_observation("user", "wrong"), render_observation("chatml", "user", "wrong"));
  }
  // Llama-3.2's own template writes a tool result as JSON (a str is iterable, so |tojson applies).
  EXPECT_EQ(llama.render_observation("tool", "63"),
            "<|start_header_id|>ipython<|end_header_id|>\n\n\"63\"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(llama.render_observation("user", " wrong "), render_observation("llama3", "user", " wrong "));
  // Continuing a conversation equals rendering it whole (the model wrote "a" then its EOS). Not
  // so for Qwen3, whose template drops <think> blocks from history turns: an episode keeps the
  // tokens the model generated, as its KV cache does.
  const std::string first = qwen25.render({{"user", "q"}}, true) + "a<|im_end|>";
  EXPECT_EQ(first + qwen25.render_observation("tool", "12"),
            qwen25.render({{"user", "q"}, {"assistant", "a"}, {"tool", "12"}}, true));
  // The built-in mistral: user turns continue, tool turns are refused by Mistral's template.
  EXPECT_EQ(render_observation("mistral", "user", "again"), " [INST] again [/INST]");
  EXPECT_THAT([] { render_observation("mistral", "tool", "x"); },
              testing::ThrowsMessage<Error>(testing::HasSubstr("continuing a conversation with a tool turn")));
}

TEST(ChatTemplateParity, ResolveAutoModelAndBuiltins) {
  // auto: a directory without a template (or no directory: random init) keeps the plain fallback.
  const fs::path empty = fs::temp_directory_path() / ("keel_chat_template_empty_" + std::to_string(::getpid()));
  fs::create_directories(empty);
  EXPECT_EQ(resolve_chat_template("auto", "").name(), "plain");
  EXPECT_EQ(resolve_chat_template("auto", empty.string()).name(), "plain");
  EXPECT_EQ(resolve_chat_template("chatml", empty.string()).name(), "chatml");
  EXPECT_THAT([&] { resolve_chat_template("model", empty.string()); },
              testing::ThrowsMessage<Error>(testing::HasSubstr("has no chat template")));
  EXPECT_THAT([] { resolve_chat_template("model", ""); },
              testing::ThrowsMessage<Error>(testing::HasSubstr("randomly initialised model")));
  EXPECT_THAT([] { resolve_chat_template("chatm", ""); },
              testing::ThrowsMessage<Error>(testing::HasSubstr("unknown chat template 'chatm'")));
  // An explicit built-in wins over the directory's own template.
  const std::string qdir = model_dir("explicit", template_source("qwen2.5"), {{"eos_token", "<|im_end|>"}});
  EXPECT_EQ(resolve_chat_template("plain", qdir).name(), "plain");
  // chat_template.jinja (newer transformers) when tokenizer_config.json has none; enable_thinking reaches it.
  const fs::path jdir = fs::temp_directory_path() / ("keel_chat_template_jinja_" + std::to_string(::getpid()));
  fs::create_directories(jdir);
  std::ofstream(jdir / "tokenizer_config.json") << R"({"eos_token": "<|im_end|>"})";
  std::ofstream(jdir / "chat_template.jinja") << template_source("qwen3");
  EXPECT_EQ(resolve_chat_template("auto", jdir.string(), false).render({{"user", "2+2?"}}, true),
            "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  EXPECT_EQ(resolve_chat_template("auto", jdir.string(), true).render({{"user", "2+2?"}}, true),
            "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(chat_template_dir("m", ""), "m");
  EXPECT_EQ(chat_template_dir("m", jdir.string()), jdir.string());
  EXPECT_EQ(chat_template_dir("m", (jdir / "tokenizer.json").string()), jdir.string());
}

TEST(ChatTemplateParity, BrokenModelTemplatesFailAtLoadNamingFileAndLine) {
  auto error_for = [](const std::string& name, const std::string& tmpl) {
    try {
      resolve_chat_template("auto", model_dir(name, tmpl, {{"eos_token", "</s>"}}));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const std::string bad_filter = error_for("bad_filter", "{% for m in messages %}\n{{ m.content | shout }}{% endfor %}");
  EXPECT_THAT(bad_filter, testing::HasSubstr("tokenizer_config.json chat_template:2: unknown filter 'shout'"));
  EXPECT_THAT(error_for("macro", "{% macro f() %}{% endmacro %}"), testing::HasSubstr("{% macro %} is not supported"));
  // Parses, but cannot render even one user message: refused at load too.
  EXPECT_THAT(error_for("render", "{{ messages[0].content + 1 }}"),
              testing::HasSubstr("chat_template:1: unsupported operand types for +: str and int (rendering a one-message "
                                 "test conversation)"));
  const fs::path dir = fs::temp_directory_path() / ("keel_chat_template_badjson_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer_config.json") << "{oops";
  EXPECT_THAT([&] { resolve_chat_template("auto", dir.string()); },
              testing::ThrowsMessage<Error>(testing::HasSubstr("tokenizer_config.json: not valid JSON")));
  std::ofstream(dir / "tokenizer_config.json") << R"({"chat_template": [{"name": "tool_use", "template": "x"}]})";
  EXPECT_THAT([&] { resolve_chat_template("auto", dir.string()); },
              testing::ThrowsMessage<Error>(testing::HasSubstr("without a \"default\" entry")));
  std::ofstream(dir / "tokenizer_config.json") << R"({"chat_template": [{"name": "default", "template": "D{{ messages | length }}"}]})";
  EXPECT_EQ(resolve_chat_template("auto", dir.string()).render({{"user", "x"}}, false), "D1");
}

}  // namespace
}  // namespace keel::models
