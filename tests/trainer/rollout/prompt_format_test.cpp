// trainer/rollout/prompt_format: model.chat_template resolved for a run (auto keeps plain for a
// random-init model, as the embedded quickstart has; a model directory's own Jinja template is
// used under auto and model; enable_thinking reaches it) and prompts rendered through it.
#include "trainer/rollout/prompt_format.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "trainer/config/config.h"

namespace keel::rollout {
namespace {

namespace fs = std::filesystem;

// An HF-style model directory whose tokenizer_config.json carries Qwen3's real chat template.
std::string qwen3_dir() {
  std::ifstream in(std::string(KEEL_SOURCE_DIR) + "/tests/models/chat_template_parity/templates/qwen3.jinja");
  std::stringstream ss;
  ss << in.rdbuf();
  const fs::path dir = fs::temp_directory_path() / ("keel_prompt_format_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  nlohmann::json cfg = {{"eos_token", "<|im_end|>"}, {"chat_template", ss.str()}};
  std::ofstream(dir / "tokenizer_config.json") << cfg.dump();
  return dir.string();
}

data::PromptRecord prompt(const std::string& text) {
  data::PromptRecord r;
  r.id = "t:1";
  r.prompt = text;
  return r;
}

TEST(PromptFormat, AutoKeepsPlainForARandomInitModel) {
  config::ModelSection m;  // the defaults: path "", chat_template auto
  const auto t = load_chat_template(m);
  EXPECT_EQ(t.name(), "plain");
  EXPECT_EQ(render_prompt(prompt("12+7="), t), "12+7=");  // a plain prompt string as is
}

TEST(PromptFormat, AutoAndModelUseTheModelDirectorysTemplate) {
  config::ModelSection m;
  m.path = qwen3_dir();
  for (const char* setting : {"auto", "model"}) {
    m.chat_template = setting;
    const auto t = load_chat_template(m);
    EXPECT_EQ(t.name(), "model") << setting;
    EXPECT_EQ(render_prompt(prompt("2+2?"), t), "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
  }
  m.enable_thinking = "false";
  EXPECT_EQ(render_prompt(prompt("2+2?"), load_chat_template(m)),
            "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  // model.tokenizer names the directory when set (a file: its folder).
  config::ModelSection t;
  t.tokenizer = m.path + "/tokenizer.json";
  EXPECT_EQ(load_chat_template(t).name(), "model");
  // A built-in overrides the directory's own.
  m.chat_template = "chatml";
  EXPECT_EQ(render_prompt(prompt("2+2?"), load_chat_template(m)), "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
}

TEST(PromptFormat, ModelWithoutATemplateIsAnError) {
  config::ModelSection m;
  m.chat_template = "model";
  EXPECT_THAT([&] { load_chat_template(m); }, testing::ThrowsMessage<Error>(testing::HasSubstr("no chat template of its own")));
}

}  // namespace
}  // namespace keel::rollout
