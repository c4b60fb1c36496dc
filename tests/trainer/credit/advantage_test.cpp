// Tests of the estimator registry (names from spec §13/§14, unknown-name errors) and the options
// readers of the `advantage:` subsections.
#include "trainer/credit/advantage.h"

#include <gtest/gtest.h>

#include "trainer/common/error.h"
#include "trainer/config/reader.h"
#include "tests/trainer/credit/credit_test_util.h"

namespace keel::credit {
namespace {

using namespace keel::credit::testing;

const std::vector<std::string> kSpecNames = {
    "agrae", "arena_rank", "dcpo", "dr_grpo", "gae", "grpo", "r3l_opmd", "reinforce_pp",
    "reinforce_pp_baseline", "remax", "rloo", "spo_winrate", "ss_grpo", "thr", "turn_grpo", "verl_rank"};

TEST(AdvantageRegistry, RegistersEverySpecName) {
  auto reg = make_advantage_registry();
  register_builtin_advantages(reg);
  EXPECT_EQ(reg.names(), kSpecNames);  // sorted
  for (const auto& n : reg.names()) EXPECT_FALSE(reg.get(n).description.empty()) << n;
}

TEST(AdvantageRegistry, UnknownNameListsKnownNames) {
  auto reg = make_advantage_registry();
  register_builtin_advantages(reg);
  try {
    reg.get("grpoo");
    FAIL() << "no error";
  } catch (const keel::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("unknown advantage estimator 'grpoo'"), std::string::npos) << msg;
    for (const auto& n : kSpecNames) EXPECT_NE(msg.find(n), std::string::npos) << n;
  }
  EXPECT_THROW(register_builtin_advantages(reg), keel::Error);  // duplicates
}

TEST(AdvantageRegistry, EntriesRunThroughTheUniformSignature) {
  auto reg = make_advantage_registry();
  register_builtin_advantages(reg);
  const Mat m(4, Vec{1, 1});
  const auto in = inputs(outcome_at_last({1, 0, 0, 1}, m), m, {0, 0, 0, 0});
  const auto out = reg.get("grpo").fn(in, AdvantageOptions{});
  EXPECT_TRUE(close(out.advantages.select(1, 0), Vec{0.866024, -0.866024, -0.866024, 0.866024}));
  EXPECT_TRUE(out.metrics.count("adv/mean"));
}

std::vector<std::string> read_errors(const std::string& yaml, AdvantageOptions& o) {
  config::Node root = config::parse_yaml_string(yaml, "a.yaml");
  config::Diagnostics d;
  config::Reader r(&root, "advantage", d);
  read_advantage_subsections(r, o);
  r.finish();
  return d.errors();
}

TEST(AdvantageOptionsReader, ReadsSubsectionsAndReportsBadValues) {
  AdvantageOptions o;
  EXPECT_TRUE(read_errors("agrae:\n  alpha: 0.5\n  easy_term: one_minus_sqrt_p\nthr:\n  p: 0.25\n"
                          "ss:\n  lambda: [1, 0.5, 0, 1]\nrpp:\n  reset_on_holes: true\n", o).empty());
  EXPECT_DOUBLE_EQ(o.agrae.alpha, 0.5);
  EXPECT_EQ(o.agrae.easy_term, "one_minus_sqrt_p");
  EXPECT_DOUBLE_EQ(o.thr.p, 0.25);
  EXPECT_EQ(o.ss.lambda.size(), 4u);
  EXPECT_TRUE(o.rpp.reset_on_holes);
  AdvantageOptions bad;
  const auto e = read_errors("thr:\n  p: 1.5\nss:\n  lambda: [1, 0, 0.3, 1]\ngrpo:\n  singleton: maybe\n", bad);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_NE(e[0].find("advantage.grpo.singleton"), std::string::npos) << e[0];
  EXPECT_NE(e[1].find("advantage.thr.p: must be < 1"), std::string::npos) << e[1];
  EXPECT_NE(e[2].find("below the diagonal"), std::string::npos) << e[2];
}

}  // namespace
}  // namespace keel::credit
