// Tests for trainer/env/tool_call: Qwen (<tool_call> blocks) and Llama-3.1 (one JSON object) tool
// calls parsed from assistant turns, malformed calls named, and format_tool_call round trips.
#include "trainer/env/tool_call.h"

#include <gtest/gtest.h>

namespace keel::env {
namespace {

TEST(ToolCall, QwenBlocksInOrderWithTheRestAsText) {
  const auto p = parse_tool_calls(
      "Let me compute.\n<tool_call>\n{\"name\": \"calc\", \"arguments\": {\"expression\": \"3*4\"}}\n</tool_call>\n"
      "<tool_call>{\"name\":\"search\",\"arguments\":{\"query\":\"owl\"}}</tool_call> done",
      ToolFormat::kQwen);
  EXPECT_EQ(p.error, "");
  ASSERT_EQ(p.calls.size(), 2u);
  EXPECT_EQ(p.calls[0].name, "calc");
  EXPECT_EQ(p.calls[0].arguments, "{\"expression\":\"3*4\"}");
  EXPECT_EQ(p.calls[1].name, "search");
  EXPECT_EQ(p.text, "Let me compute.\n\n done");
  EXPECT_TRUE(p.attempted());
}

TEST(ToolCall, AnAnswerWithoutACallIsText) {
  const auto p = parse_tool_calls("  42 \n", ToolFormat::kQwen);
  EXPECT_TRUE(p.calls.empty());
  EXPECT_FALSE(p.attempted());
  EXPECT_EQ(p.text, "42");
  const auto l = parse_tool_calls("The answer is 42.", ToolFormat::kLlama3);
  EXPECT_FALSE(l.attempted());
  EXPECT_EQ(l.text, "The answer is 42.");
}

TEST(ToolCall, MalformedCallsAreNamedAndDropEveryCall) {
  const auto why = [](const std::string& turn, ToolFormat f = ToolFormat::kQwen) { return parse_tool_calls(turn, f).error; };
  EXPECT_EQ(why("<tool_call>{\"name\": \"calc\""), "<tool_call> is not closed by </tool_call>");
  EXPECT_EQ(why("<tool_call>{name: calc}</tool_call>"), "the tool call is not valid JSON");
  EXPECT_EQ(why("<tool_call>[1, 2]</tool_call>"), "the tool call is not a JSON object");
  EXPECT_EQ(why("<tool_call>{\"arguments\": {}}</tool_call>"), "the tool call has no \"name\" string");
  EXPECT_EQ(why("<tool_call>{\"name\": \"\"}</tool_call>"), "the tool call has no \"name\" string");
  EXPECT_EQ(why("<tool_call>{\"name\": \"calc\", \"arguments\": 3}</tool_call>"),
            "the tool call's \"arguments\" is not an object");
  // One good and one bad call: the turn has no calls (a half-executed turn would be confusing).
  const auto p = parse_tool_calls("<tool_call>{\"name\":\"a\"}</tool_call><tool_call>{x}</tool_call>", ToolFormat::kQwen);
  EXPECT_TRUE(p.calls.empty());
  EXPECT_TRUE(p.attempted());
  EXPECT_EQ(why("{\"parameters\": {}}", ToolFormat::kLlama3), "the tool call has no \"name\" string");
  EXPECT_EQ(why("{\"name\": \"calc\", \"parameters\": \"x\"", ToolFormat::kLlama3), "the tool call is not valid JSON");
}

TEST(ToolCall, Llama3JsonCallWithParametersOrArgumentsAndThePythonTag) {
  auto p = parse_tool_calls("<|python_tag|>{\"name\": \"calc\", \"parameters\": {\"expression\": \"1+2\"}}", ToolFormat::kLlama3);
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.calls[0].name, "calc");
  EXPECT_EQ(p.calls[0].arguments, "{\"expression\":\"1+2\"}");
  p = parse_tool_calls(" {\"name\": \"open\", \"arguments\": {\"id\": 3}} ", ToolFormat::kLlama3);
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.calls[0].arguments, "{\"id\":3}");
  p = parse_tool_calls("{\"name\": \"noargs\"}", ToolFormat::kLlama3);
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.calls[0].arguments, "{}");
}

TEST(ToolCall, FormatRoundTripsAndPutsTheNameFirst) {
  const ToolCall c{"calc", "{\"expression\":\"7*8-2\"}"};
  const auto q = format_tool_call(c, ToolFormat::kQwen);
  EXPECT_EQ(q, "<tool_call>\n{\"name\":\"calc\",\"arguments\":{\"expression\":\"7*8-2\"}}\n</tool_call>");
  const auto l = format_tool_call(c, ToolFormat::kLlama3);
  EXPECT_EQ(l, "{\"name\":\"calc\",\"parameters\":{\"expression\":\"7*8-2\"}}");
  for (const auto f : {ToolFormat::kQwen, ToolFormat::kLlama3}) {
    const auto p = parse_tool_calls(format_tool_call(c, f), f);
    ASSERT_EQ(p.calls.size(), 1u);
    EXPECT_EQ(p.calls[0].name, c.name);
    EXPECT_EQ(p.calls[0].arguments, c.arguments);
  }
  EXPECT_EQ(tool_format_for("llama3"), ToolFormat::kLlama3);
  EXPECT_EQ(tool_format_for("chatml"), ToolFormat::kQwen);
  EXPECT_EQ(tool_format_for("plain"), ToolFormat::kQwen);
  EXPECT_STREQ(tool_format_name(ToolFormat::kLlama3), "llama3");
}

}  // namespace
}  // namespace keel::env
