// Chat templates: exact rendered strings for every built-in template, registry behaviour and
// errors. The chatml / llama3 strings below are also what the models' own Jinja templates render
// for these conversations (checked for Qwen3 and Llama-3 in tokenizer_parity_test.cpp against
// transformers.js output).
#include "models/chat_template.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/error.h"

namespace keel::models {
namespace {

std::vector<ChatMessage> conversation() {
  return {{"system", "You are terse."}, {"user", "2+2?"}, {"assistant", "4"}, {"user", "3+3?"}};
}

TEST(ChatTemplate, ChatmlExact) {
  EXPECT_EQ(render_chat(conversation(), "chatml", /*add_generation_prompt=*/true),
            "<|im_start|>system\nYou are terse.<|im_end|>\n"
            "<|im_start|>user\n2+2?<|im_end|>\n"
            "<|im_start|>assistant\n4<|im_end|>\n"
            "<|im_start|>user\n3+3?<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(render_chat({{"user", "hi"}}, "chatml", /*add_generation_prompt=*/false),
            "<|im_start|>user\nhi<|im_end|>\n");
}

TEST(ChatTemplate, Llama3Exact) {
  // Content is trimmed (Jinja |trim); BOS is part of the text.
  EXPECT_EQ(render_chat({{"system", "  Be brief.\n"}, {"user", "hi"}}, "llama3", /*add_generation_prompt=*/true),
            "<|begin_of_text|>"
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(render_chat({{"user", "a"}, {"assistant", "b"}}, "llama3", /*add_generation_prompt=*/false),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\na<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nb<|eot_id|>");
}

TEST(ChatTemplate, PlainExact) {
  EXPECT_EQ(render_chat(conversation(), "plain", /*add_generation_prompt=*/true),
            "System: You are terse.\nUser: 2+2?\nAssistant: 4\nUser: 3+3?\nAssistant:");
  EXPECT_EQ(render_chat({{"user", "12+7="}}, "plain", /*add_generation_prompt=*/false), "User: 12+7=\n");
  EXPECT_EQ(render_chat({{"tool", "result 3"}}, "plain", /*add_generation_prompt=*/false), "Tool: result 3\n");
}

TEST(ChatTemplate, RegistryNamesAndDescriptions) {
  EXPECT_EQ(chat_template_names(), (std::vector<std::string>{"chatml", "llama3", "mistral", "plain"}));
  ChatTemplateRegistry r("chat template");
  register_builtin_chat_templates(r);
  EXPECT_EQ(r.size(), 4u);
  for (const std::string& n : r.names()) EXPECT_FALSE(r.get(n).description.empty()) << n;
  EXPECT_THROW(register_builtin_chat_templates(r), keel::Error);  // duplicates are rejected
}

TEST(ChatTemplate, Errors) {
  try {
    render_chat({{"user", "x"}}, "chatm", true);
    FAIL() << "expected keel::Error";
  } catch (const keel::Error& e) {
    EXPECT_THAT(e.what(), testing::HasSubstr("unknown chat template 'chatm'"));
    EXPECT_THAT(e.what(), testing::HasSubstr("chatml, llama3, mistral, plain"));
  }
  try {
    render_chat({{"user", "x"}, {"robot", "y"}}, "chatml", true);
    FAIL() << "expected keel::Error";
  } catch (const keel::Error& e) {
    EXPECT_THAT(e.what(), testing::HasSubstr("message 1 has role 'robot'"));
  }
  EXPECT_THROW(render_chat({}, "plain", true), keel::Error);
  EXPECT_THROW(render_chat({{"", "x"}}, "plain", true), keel::Error);
}

}  // namespace
}  // namespace keel::models

namespace keel::models {
namespace {

TEST(ChatTemplate, ObservationTurnsContinueEachTemplate) {
  EXPECT_EQ(render_observation("plain", "tool", "63"), "\nTool: 63\nAssistant:");
  EXPECT_EQ(render_observation("plain", "user", "wrong"), "\nUser: wrong\nAssistant:");
  EXPECT_EQ(render_observation("chatml", "tool", "63"),
            "\n<|im_start|>user\n<tool_response>\n63\n</tool_response><|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(render_observation("chatml", "user", "wrong"), "\n<|im_start|>user\nwrong<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(render_observation("llama3", "tool", " 63 "),
            "<|start_header_id|>ipython<|end_header_id|>\n\n63<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  // A conversation rendered whole equals its first turns plus the observation's continuation
  // (chatml: the assistant turn closed by <|im_end|> as the model writes it).
  const std::string first = render_chat({{"user", "q"}}, "chatml", true) + "a<|im_end|>";
  const std::string whole = render_chat({{"user", "q"}, {"assistant", "a"}, {"user", "wrong"}}, "chatml", true);
  EXPECT_EQ(first + render_observation("chatml", "user", "wrong"), whole);
  EXPECT_THROW(render_observation("plain", "system", "x"), Error);
  EXPECT_THROW(render_observation("nope", "tool", "x"), Error);
}

}  // namespace
}  // namespace keel::models
