// model.chat_template and model.enable_thinking at config load: auto (the default) and model
// select the model directory's own template, a built-in name selects it, anything else is refused
// with the choices; enable_thinking takes auto | true | false. The template itself is resolved at
// run setup (tests/trainer/rollout/prompt_format_test.cpp), where the model directory is read.
#include "trainer/config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/error.h"
#include "base/reader.h"

namespace keel::config {
namespace {

RunConfig load(const std::string& yaml) {
  KnownNames known;
  known.chat_templates = {"chatml", "llama3", "mistral", "plain"};
  return load_config_node(parse_yaml_string(yaml, "c.yaml"), LoadOptions{}, known);
}

std::string load_error(const std::string& yaml) {
  try {
    load(yaml);
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

TEST(ChatTemplateConfig, DefaultsToAutoAndAcceptsEveryChoice) {
  EXPECT_EQ(load("{}").model.chat_template, "auto");
  EXPECT_EQ(load("{}").model.enable_thinking, "auto");
  for (const char* v : {"auto", "model", "chatml", "llama3", "mistral", "plain"})
    EXPECT_EQ(load(std::string("model:\n  chat_template: ") + v + "\n").model.chat_template, v);
  EXPECT_EQ(load("model:\n  enable_thinking: false\n").model.enable_thinking, "false");
  EXPECT_EQ(load("model:\n  enable_thinking: true\n").model.enable_thinking, "true");
}

TEST(ChatTemplateConfig, UnknownValuesAreRefusedWithTheChoices) {
  EXPECT_THAT(load_error("model:\n  chat_template: qwen\n"),
              testing::AllOf(testing::HasSubstr("c.yaml:2: model.chat_template"),
                             testing::HasSubstr("auto, model, chatml, llama3, mistral, plain")));
  EXPECT_THAT(load_error("model:\n  enable_thinking: maybe\n"), testing::HasSubstr("c.yaml:2: model.enable_thinking"));
}

}  // namespace
}  // namespace keel::config
