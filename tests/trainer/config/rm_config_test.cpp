// Tests of trainer/config/rm_config.{h,cpp}: defaults, values read, range / choice errors with
// file:line, and the cross-field rule that an adaptive margin or label flipping needs an ensemble.
#include "trainer/config/rm_config.h"

#include <gtest/gtest.h>

#include "base/reader.h"

namespace keel::config {
namespace {

std::vector<std::string> read(const std::string& yaml, RmSection& out) {
  Node root = parse_yaml_string(yaml, "c.yaml");
  Diagnostics d;
  Reader r(&root, "", d);
  r.section("rm", "", [&](Reader& s) { read_rm(s, out); });
  r.finish();
  return d.errors();
}

TEST(RmConfig, DefaultsAreThePlainBradleyTerryLoss) {
  RmSection c;
  EXPECT_TRUE(read("{}\n", c).empty());
  EXPECT_EQ(c.loss.margin, "none");
  EXPECT_EQ(c.loss.margin_key, "margin");
  EXPECT_EQ(c.loss.label_smoothing, 0.0);
  EXPECT_EQ(c.loss.reg_lambda, 0.0);
  EXPECT_TRUE(c.ensemble.paths.empty());
  EXPECT_FALSE(c.ensemble.flip_negative_strength);
}

TEST(RmConfig, ReadsEveryKey) {
  RmSection c;
  const auto errs = read(
      "rm:\n  loss: {margin: adaptive, margin_key: strength, label_smoothing: 0.1, reg_lambda: 0.005}\n"
      "  ensemble: {paths: [a, b], flip_negative_strength: true}\n",
      c);
  EXPECT_TRUE(errs.empty()) << errs.front();
  EXPECT_EQ(c.loss.margin, "adaptive");
  EXPECT_EQ(c.loss.margin_key, "strength");
  EXPECT_EQ(c.loss.label_smoothing, 0.1);
  EXPECT_EQ(c.loss.reg_lambda, 0.005);
  EXPECT_EQ(c.ensemble.paths, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(c.ensemble.flip_negative_strength);
}

TEST(RmConfig, BadValuesNameFileLineAndPath) {
  RmSection c;
  const auto errs = read("rm:\n  loss:\n    margin: huge\n    label_smoothing: 0.5\n    reg_lambda: -1\n    typo: 1\n", c);
  ASSERT_EQ(errs.size(), 4u);
  EXPECT_EQ(errs[0].rfind("c.yaml:3: rm.loss.margin: unknown margin 'huge'", 0), 0u) << errs[0];
  EXPECT_NE(errs[0].find("(known: none, fixed, adaptive)"), std::string::npos) << errs[0];
  EXPECT_EQ(errs[1], "c.yaml:4: rm.loss.label_smoothing: must be < 0.5, got 0.5");
  EXPECT_EQ(errs[2], "c.yaml:5: rm.loss.reg_lambda: must be >= 0.0, got -1.0");
  EXPECT_NE(errs[3].find("c.yaml:6: rm.loss.typo: unknown key"), std::string::npos) << errs[3];
}

TEST(RmConfig, AdaptiveMarginAndFlippingNeedAnEnsemble) {
  for (const char* yaml : {"rm:\n  loss: {margin: adaptive}\n", "rm:\n  ensemble: {flip_negative_strength: true}\n"}) {
    RmSection c;
    const auto errs = read(yaml, c);
    ASSERT_EQ(errs.size(), 1u) << yaml;
    EXPECT_NE(errs[0].find("rm.ensemble: margin: adaptive and flip_negative_strength need ensemble.paths"),
              std::string::npos)
        << errs[0];
  }
  RmSection fixed;
  EXPECT_TRUE(read("rm:\n  loss: {margin: fixed}\n", fixed).empty());
}

}  // namespace
}  // namespace keel::config
