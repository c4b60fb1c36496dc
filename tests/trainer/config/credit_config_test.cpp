// Tests of trainer/config/credit_config.{h,cpp} through the config loader (load_config_node):
// advantage.singleton, the KL estimator names, and the DPO rule that label smoothing belongs to
// cdpo / robust — sigmoid with label_smoothing > 0 used to run cDPO under the name sigmoid.
#include "trainer/config/credit_config.h"

#include <gtest/gtest.h>

#include "base/error.h"
#include "trainer/config/config.h"
#include "base/reader.h"
#include "tests/trainer/config/config_test_util.h"

namespace keel::config {
namespace {

using testing::load_error;

TEST(CreditConfig, DpoSigmoidWithLabelSmoothingIsAnError) {
  EXPECT_EQ(load_error("learner: {algorithm: dpo}\ndpo:\n  loss: sigmoid\n  label_smoothing: 0.1\n"),
            "c.yaml:4: dpo.label_smoothing: only dpo.loss cdpo and robust use label smoothing, got 0.1 with "
            "dpo.loss sigmoid; for label-smoothed DPO set dpo.loss: cdpo");
  // sigmoid is the default loss: leaving dpo.loss out is the same mistake.
  EXPECT_NE(load_error("dpo:\n  label_smoothing: 0.2\n").find("dpo.label_smoothing: only dpo.loss cdpo and robust"),
            std::string::npos);
  // ipo and hinge have no ε at all.
  for (const char* loss : {"ipo", "hinge"}) {
    const std::string e = load_error(std::string("dpo:\n  loss: ") + loss + "\n  label_smoothing: 0.1\n");
    EXPECT_NE(e.find("c.yaml:3: dpo.label_smoothing: only dpo.loss cdpo and robust use label smoothing, got 0.1 "
                     "with dpo.loss " + std::string(loss)),
              std::string::npos) << e;
    EXPECT_EQ(e.find("set dpo.loss: cdpo"), std::string::npos) << e;
  }
}

TEST(CreditConfig, CdpoAndRobustKeepTheirLabelSmoothing) {
  for (const char* loss : {"cdpo", "robust"}) {
    RunConfig cfg;
    EXPECT_EQ(load_error(std::string("learner: {algorithm: dpo}\ndpo: {loss: ") + loss + ", label_smoothing: 0.1}\n", &cfg),
              "") << loss;
    EXPECT_EQ(cfg.dpo.loss, loss);
    EXPECT_EQ(cfg.dpo.label_smoothing, 0.1);
  }
  RunConfig cfg;
  EXPECT_EQ(load_error("dpo: {loss: sigmoid, label_smoothing: 0.0}\n", &cfg), "");  // plain DPO
  EXPECT_EQ(cfg.dpo.loss, "sigmoid");
}

TEST(CreditConfig, AdvantageSingletonIsOneKeyWithThreeChoices) {
  RunConfig cfg;
  EXPECT_EQ(load_error("{}\n", &cfg), "");
  EXPECT_EQ(cfg.advantage.singleton, "error");  // spec §2.1 default
  for (const char* v : {"zero", "raw", "error"}) {
    EXPECT_EQ(load_error(std::string("advantage: {estimator: rloo, singleton: ") + v + "}\n", &cfg), "") << v;
    EXPECT_EQ(cfg.advantage.singleton, v);
  }
  const std::string e = load_error("advantage:\n  singleton: drop\n");
  EXPECT_NE(e.find("c.yaml:2: advantage.singleton: unknown singleton policy 'drop'"), std::string::npos) << e;
  EXPECT_NE(e.find("error, zero, raw"), std::string::npos) << e;
}

TEST(CreditConfig, KlEstimatorAbsIsKnown) {
  RunConfig cfg;
  EXPECT_EQ(load_error("kl: {in_loss: true, estimator: abs}\n", &cfg), "");
  EXPECT_EQ(cfg.kl.estimator, "abs");
  EXPECT_NE(load_error("kl: {estimator: l1}\n").find("kl.estimator: unknown KL estimator 'l1'"), std::string::npos);
}

// kl.coef=0.05 with neither kl.in_loss nor kl.in_reward trained without any KL term, silently.
TEST(CreditConfig, KlCoefWithoutAKlTermIsAnError) {
  EXPECT_EQ(load_error("kl:\n  coef: 0.05\n"),
            "c.yaml:2: kl.coef: 0.05 is set but neither kl.in_loss nor kl.in_reward is true, so no KL term would be "
            "computed: set one of them to true, or drop the coefficient (or set it to 0)");
  EXPECT_EQ(load_error("kl: {coef: 0.05, in_loss: true}\n"), "");
  EXPECT_EQ(load_error("kl: {coef: 0.05, in_reward: true}\n"), "");
  EXPECT_EQ(load_error("kl: {coef: 0}\n"), "");  // "no KL", said explicitly
  // The default as print-config writes it (every key) reloads.
  EXPECT_EQ(load_error("kl: {coef: " + format_value(KlSection{}.coef) + ", in_loss: false, in_reward: false}\n"), "");
  EXPECT_EQ(load_error("kl: {estimator: k3}\n"), "");  // the default coefficient alone is not a request
}

}  // namespace
}  // namespace keel::config
