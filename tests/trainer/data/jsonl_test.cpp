// JSONL loading: good records, and every malformed line an error naming file:line (or skipped
// and counted with skip_bad_lines).
#include "trainer/data/jsonl.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "base/error.h"

namespace keel::data {
namespace {

class Jsonl : public ::testing::Test {
 protected:
  std::string write(const std::string& text) {
    path_ = (std::filesystem::temp_directory_path() / ("keel_jsonl_" + std::to_string(::getpid()) + ".jsonl")).string();
    std::ofstream(path_) << text;
    return path_;
  }
  void TearDown() override { std::filesystem::remove(path_); }
  std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what()).substr(path_.size());
    }
    return "no error";
  }
  std::string path_;
};

TEST_F(Jsonl, LoadsPromptsMessagesAnswersAndMeta) {
  const auto p = write(
      "{\"prompt\": \"2+2=\", \"answer\": 4, \"level\": 1}\n"
      "\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"answer\": \"x\", \"tags\": [1,2], \"src\": \"web\"}\r\n");
  const auto l = load_prompts(p);
  ASSERT_EQ(l.records.size(), 2u);
  EXPECT_EQ(l.records[0].prompt, "2+2=");
  EXPECT_EQ(l.records[0].answer, "4");
  EXPECT_EQ(l.records[0].meta.at("level"), "1");  // JSON text
  EXPECT_EQ(l.records[0].id, p + ":1");
  EXPECT_EQ(l.records[1].messages.size(), 1u);
  EXPECT_EQ(l.records[1].messages[0].content, "hi");
  EXPECT_EQ(l.records[1].meta.at("tags"), "[1,2]");
  EXPECT_EQ(l.records[1].meta.at("src"), "\"web\"");
  EXPECT_EQ(l.records[1].id, p + ":3");
}

struct BadLine {
  const char* text;
  const char* error;  // after the path
};

TEST_F(Jsonl, EveryMalformedLineNamesFileAndLine) {
  const BadLine cases[] = {
      {"{\"prompt\": \"a\"\n", ":1: invalid JSON at column 15"},
      {"[1, 2]\n", ":1: expected a JSON object, got array"},
      {"{\"question\": \"a\"}\n", ":1: missing 'prompt' (a string) or 'messages' (a list of {role, content})"},
      {"{\"prompt\": \"a\"}\n{\"prompt\": 3}\n", ":2: missing 'prompt' (a string) or 'messages' (a list of {role, content})"},
      {"{\"messages\": []}\n", ":1: 'messages' must be a non-empty list of {role, content}"},
      {"{\"messages\": [{\"role\": \"user\"}]}\n", ":1: 'messages'[0] must be an object with string 'role' and 'content'"},
      {"{\"prompt\": \"a\", \"answer\": {\"x\": 1}}\n", ":1: 'answer' must be a string or a number, got object"},
      {"", ": no usable records (0 malformed line(s) skipped)"},
  };
  for (const auto& c : cases) {
    const auto p = write(c.text);
    std::string expected = c.error;
    if (expected.rfind(": no usable", 0) != 0) expected += " (set data.skip_bad_lines: true to skip and count bad lines)";
    EXPECT_EQ(error_of([&] { load_prompts(p); }), expected) << c.text;
  }
}

TEST_F(Jsonl, SkipBadLinesCountsThem) {
  const auto p = write("{\"prompt\": \"a\"}\nnot json\n{\"prompt\": \"b\"}\n[]\n");
  JsonlOptions o;
  o.skip_bad_lines = true;
  const auto l = load_prompts(p, o);
  EXPECT_EQ(l.records.size(), 2u);
  EXPECT_EQ(l.skipped, 2);
  ASSERT_EQ(l.skipped_reasons.size(), 2u);
  EXPECT_EQ(l.skipped_reasons[0], p + ":2: invalid JSON at column 2");
}

TEST_F(Jsonl, PreferencesAndSft) {
  auto p = write("{\"prompt\": \"q\", \"chosen\": \"good\", \"rejected\": \"bad\"}\n");
  const auto prefs = load_preferences(p);
  EXPECT_EQ(prefs.records[0].chosen, "good");
  EXPECT_EQ(prefs.records[0].rejected, "bad");
  p = write("{\"prompt\": \"q\", \"chosen\": \"good\"}\n");
  EXPECT_EQ(error_of([&] { load_preferences(p); }), ":1: missing 'rejected' (set data.skip_bad_lines: true to skip and count bad lines)");

  p = write("{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"a\"}]}\n"
            "{\"prompt\": \"q2\", \"response\": \"a2\"}\n");
  const auto sft = load_sft(p);
  ASSERT_EQ(sft.records.size(), 2u);
  EXPECT_EQ(sft.records[0].response, "a");
  EXPECT_EQ(sft.records[0].messages.size(), 1u);
  EXPECT_EQ(sft.records[1].response, "a2");
  p = write("{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}]}\n");
  EXPECT_EQ(error_of([&] { load_sft(p); }),
            ":1: the last of 'messages' must be the assistant's response (or give 'response') (set data.skip_bad_lines: "
            "true to skip and count bad lines)");
}

TEST_F(Jsonl, PreferenceExtraKeysLandInMeta) {
  auto p = write("{\"prompt\": \"q\", \"chosen\": \"good\", \"rejected\": \"bad\", \"margin\": 0.5, \"src\": \"hh\"}\n");
  const auto prefs = load_preferences(p);
  ASSERT_EQ(prefs.records.size(), 1u);
  const auto& meta = prefs.records[0].meta;
  EXPECT_EQ(meta.size(), 2u);
  EXPECT_EQ(meta.at("margin"), "0.5");
  EXPECT_EQ(meta.at("src"), "\"hh\"");
}

TEST_F(Jsonl, MissingFileIsAnError) {
  path_ = "/nonexistent/data.jsonl";
  EXPECT_EQ(error_of([&] { load_prompts(path_); }), ": cannot open data file (does it exist and is it readable?)");
}

}  // namespace
}  // namespace keel::data
