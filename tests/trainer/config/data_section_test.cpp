// Tests of the data section's keys (trainer/config/config.cpp read_data) through the loader: the
// record fields and answer extraction a GSM8K-style file needs (issue 22 item 12), the too-long
// policy (item 1) and the record size limit (item 9), each checked at load naming file:line.
#include "trainer/config/config.h"

#include <gtest/gtest.h>

#include "base/error.h"
#include "base/reader.h"
#include "tests/trainer/config/config_test_util.h"

namespace keel::config {
namespace {

using testing::load_error;

TEST(DataSection, RecordKeysAndAnswerExtractionLoad) {
  RunConfig cfg;
  ASSERT_EQ(load_error("data:\n  prompt_key: question\n  answer_key: final\n  answer_extract: gsm8k\n"
                       "  too_long: skip\n  max_record_bytes: 1000\n",
                       &cfg),
            "");
  EXPECT_EQ(cfg.data.prompt_key, "question");
  EXPECT_EQ(cfg.data.answer_key, "final");
  EXPECT_EQ(cfg.data.answer_extract, "gsm8k");
  EXPECT_EQ(cfg.data.too_long, "skip");
  EXPECT_EQ(cfg.data.max_record_bytes, 1000);
  ASSERT_EQ(load_error("data:\n  answer_extract: regex\n  answer_regex: 'answer: (\\S+)'\n", &cfg), "");
  EXPECT_EQ(cfg.data.answer_regex, "answer: (\\S+)");
  // Defaults: the keys keel always read, the whole answer text, errors over skipping.
  const DataSection d;
  EXPECT_EQ(d.prompt_key, "prompt");
  EXPECT_EQ(d.answer_key, "answer");
  EXPECT_EQ(d.answer_extract, "none");
  EXPECT_EQ(d.too_long, "error");
  EXPECT_EQ(d.max_record_bytes, int64_t{8} << 20);
}

TEST(DataSection, BadValuesNameTheKeyAndWhatWasExpected) {
  EXPECT_NE(load_error("data:\n  answer_extract: last_number\n").find("c.yaml:2: data.answer_extract: "),
            std::string::npos);
  EXPECT_NE(load_error("data:\n  too_long: truncate\n").find("c.yaml:2: data.too_long: "), std::string::npos);
  EXPECT_NE(load_error("data:\n  prompt_key: ''\n").find("data.prompt_key"), std::string::npos);
  EXPECT_NE(load_error("data:\n  max_record_bytes: -1\n").find("data.max_record_bytes: must be >= 0, got -1"),
            std::string::npos);
  EXPECT_NE(load_error("data:\n  answer_extract: regex\n")
                .find("data.answer_regex: answer_extract regex needs a pattern with a capture group"),
            std::string::npos);
  EXPECT_NE(load_error("data:\n  answer_extract: regex\n  answer_regex: '[0-9]+'\n")
                .find("c.yaml:3: data.answer_regex: '[0-9]+' has no capture group"),
            std::string::npos);
  EXPECT_NE(load_error("data:\n  answer_extract: regex\n  answer_regex: '(['\n")
                .find("data.answer_regex: '([' is not a valid ECMAScript regex"),
            std::string::npos);
  EXPECT_NE(load_error("data:\n  answer_regex: '(x)'\n").find("data.answer_regex: is only read with answer_extract regex"),
            std::string::npos);
}

}  // namespace
}  // namespace keel::config
