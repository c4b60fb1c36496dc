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

// Issue 22 item 9: a number out of a double's range was "internal error" with no file:line and
// could not be skipped; now it is a bad line like any other.
TEST_F(Jsonl, NumberOverflowIsABadLineNamingFileAndLine) {
  const auto p = write("{\"prompt\": \"a\", \"answer\": 1}\n{\"prompt\": \"b\", \"answer\": 1e400}\n");
  EXPECT_EQ(error_of([&] { load_prompts(p); }),
            ":2: number 1e400 at column 27 is out of the range of a double (quote it to keep it as text) (set "
            "data.skip_bad_lines: true to skip and count bad lines)");
  JsonlOptions o;
  o.skip_bad_lines = true;
  const auto l = load_prompts(p, o);
  ASSERT_EQ(l.records.size(), 1u);
  EXPECT_EQ(l.skipped, 1);
  // Deeper in the record too (a meta field, a list element).
  const auto q = write("{\"prompt\": \"a\", \"meta\": {\"x\": [-1e999]}}\n");
  EXPECT_NE(error_of([&] { load_prompts(q); }).find(":1: number -1e999 at column"), std::string::npos);
}

// Answers are compared as text: an unsigned 64-bit integer was "-1", a wider one or a float lost
// its digits. Each keeps the text it was written with.
TEST_F(Jsonl, NumbersKeepTheTextTheyWereWrittenWith) {
  const auto p = write(
      "{\"prompt\": \"a\", \"answer\": 18446744073709551615}\n"
      "{\"prompt\": \"b\", \"answer\": 123456789012345678901234567890}\n"
      "{\"prompt\": \"c\", \"answer\": 1.50, \"weight\": 2.50, \"n\": -9223372036854775808}\n"
      "{\"prompt\": \"d\", \"answer\": -7, \"answer\": 2.0e3}\n");
  const auto l = load_prompts(p);
  ASSERT_EQ(l.records.size(), 4u);
  EXPECT_EQ(l.records[0].answer, "18446744073709551615");
  EXPECT_EQ(l.records[1].answer, "123456789012345678901234567890");
  EXPECT_EQ(l.records[2].answer, "1.50");
  EXPECT_EQ(l.records[2].meta.at("weight"), "2.50");  // JSON text, as written
  EXPECT_EQ(l.records[2].meta.at("n"), "-9223372036854775808");
  EXPECT_EQ(l.records[3].answer, "2.0e3");  // a repeated key: the last value
}

// A 50 MB SFT response ended in std::bad_alloc; a line over data.max_record_bytes is a bad line
// now (never held in memory whole), and the next line reads normally.
TEST_F(Jsonl, LineOverTheRecordLimitIsABadLine) {
  const std::string big(5000, 'x');
  const auto p = write("{\"prompt\": \"q\", \"response\": \"" + big + "\"}\n{\"prompt\": \"q2\", \"response\": \"a2\"}\n");
  JsonlOptions o;
  o.max_record_bytes = 1000;
  EXPECT_EQ(error_of([&] { load_sft(p, o); }),
            ":1: the line is 5031 bytes, over data.max_record_bytes 1000 (set data.skip_bad_lines: true to skip and "
            "count bad lines)");
  o.skip_bad_lines = true;
  const auto l = load_sft(p, o);
  ASSERT_EQ(l.records.size(), 1u);
  EXPECT_EQ(l.records[0].response, "a2");
  EXPECT_EQ(l.records[0].id, p + ":2");
  o.max_record_bytes = 0;  // no limit
  EXPECT_EQ(load_sft(p, o).records.size(), 2u);
}

// Issue 22 item 12: GSM8K files ({question, answer: "... #### 72"}) through data.prompt_key,
// data.answer_key and data.answer_extract.
TEST_F(Jsonl, Gsm8kStyleRecordsGiveTheirFinalAnswer) {
  const auto p = write(
      "{\"question\": \"Natalia sold 48 clips...\", \"answer\": \"She sold 48/2 = 24 in May.\\n#### 72\"}\n"
      "{\"question\": \"How many?\", \"answer\": \"a #### b #### 1,234 \"}\n"
      "{\"question\": \"Number?\", \"answer\": 5}\n");
  JsonlOptions o;
  o.prompt_key = "question";
  o.answer_extract = "gsm8k";
  const auto l = load_prompts(p, o);
  ASSERT_EQ(l.records.size(), 3u);
  EXPECT_EQ(l.records[0].prompt, "Natalia sold 48 clips...");
  EXPECT_EQ(l.records[0].answer, "72");
  EXPECT_EQ(l.records[1].answer, "1,234");  // after the last "####", trimmed
  EXPECT_EQ(l.records[2].answer, "5");      // a number is the answer as it is
  EXPECT_TRUE(l.records[0].meta.empty());   // the prompt and answer fields are not meta

  const auto q = write("{\"question\": \"q\", \"answer\": \"no marker\"}\n");
  EXPECT_EQ(error_of([&] { load_prompts(q, o); }),
            ":1: 'answer' has no '####' before its final answer (data.answer_extract: gsm8k) (set "
            "data.skip_bad_lines: true to skip and count bad lines)");

  o.answer_extract = "regex";
  o.answer_key = "solution";
  o.answer_regex = "The answer is (-?[0-9]+)";
  const auto r = write("{\"question\": \"q\", \"solution\": \"so... The answer is -4.\"}\n"
                       "{\"question\": \"q\", \"solution\": \"unsure\"}\n");
  EXPECT_EQ(error_of([&] { load_prompts(r, o); }),
            ":2: 'solution' does not match data.answer_regex 'The answer is (-?[0-9]+)' (with its group 1) (set "
            "data.skip_bad_lines: true to skip and count bad lines)");
  o.skip_bad_lines = true;
  const auto lr = load_prompts(r, o);
  ASSERT_EQ(lr.records.size(), 1u);
  EXPECT_EQ(lr.records[0].answer, "-4");
  EXPECT_EQ(extract_answer("x #### 9", JsonlOptions{.answer_extract = "gsm8k"}), "9");
}

TEST_F(Jsonl, MissingFileIsAnError) {
  path_ = "/nonexistent/data.jsonl";
  EXPECT_EQ(error_of([&] { load_prompts(path_); }), ": cannot open data file (does it exist and is it readable?)");
}

}  // namespace
}  // namespace keel::data
