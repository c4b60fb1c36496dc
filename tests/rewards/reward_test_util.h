// Helpers for the reward tests: build a registered scheme from a YAML params snippet and run it over
// a batch of (response, metadata) pairs.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "base/node.h"
#include "base/reader.h"
#include "rewards/composite.h"
#include "rewards/reward.h"
#include "trainer/config/config.h"
#include "trainer/config/reward_config.h"

namespace keel::rewards::testing {

/// Reads `yaml`'s reward: section as the config loader does; with `checked_by`, also its scheme
/// names and each component's params (KnownNames::reward_params). Errors throw together.
inline config::RewardSection read_section(const std::string& yaml, const RewardRegistry* checked_by = nullptr) {
  config::Node root = config::parse_yaml_string(yaml, "r.yaml");
  config::Diagnostics diag;
  config::Reader r(&root, "", diag);
  config::KnownNames known;
  if (checked_by) {
    known.reward_schemes = checked_by->names();
    known.reward_params = [checked_by](config::Reader& p, const std::string& scheme) {
      validate_reward_params(*checked_by, p, scheme);
    };
  }
  config::RewardSection sec;
  r.section("reward", "", [&](config::Reader& s) { config::read_reward(s, sec, known); });
  r.finish();
  diag.throw_if_any();
  return sec;
}

/// A registry with the built-in verifiers.
inline RewardRegistry builtin_registry() {
  RewardRegistry reg("reward scheme");
  register_builtin_rewards(reg);
  return reg;
}

/// Builds `scheme` of `reg` with params from YAML text (e.g. "{answer_key: gold}"); throws
/// keel::Error on any params error.
inline std::unique_ptr<RewardScheme> build_scheme_from(const RewardRegistry& reg, const std::string& scheme,
                                                       const std::string& params_yaml) {
  config::Node node = config::parse_yaml_string(params_yaml, "params.yaml");
  config::Diagnostics diag;
  config::Reader r(&node, "params", diag);
  auto s = reg.get(scheme).fn(r);
  r.finish();
  diag.throw_if_any();
  return s;
}

/// build_scheme_from over the built-in verifiers.
inline std::unique_ptr<RewardScheme> build_scheme(const std::string& scheme, const std::string& params_yaml = "{}") {
  static const RewardRegistry reg = builtin_registry();
  return build_scheme_from(reg, scheme, params_yaml);
}

/// The what() of the exception `f` throws; "" when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

/// A batch with one group per sample.
inline RewardInput make_input(const std::vector<std::string>& responses, const std::vector<nlohmann::json>& metadata) {
  RewardInput in;
  in.responses = responses;
  in.prompts.assign(responses.size(), "prompt");
  in.group_ids = torch::arange(static_cast<int64_t>(responses.size()), torch::kInt64);
  in.metadata = metadata;
  return in;
}

inline std::vector<float> rewards_of(RewardScheme& s, const RewardInput& in) {
  const RewardOutput out = s.score(in);
  const torch::Tensor r = out.rewards.contiguous();
  return std::vector<float>(r.data_ptr<float>(), r.data_ptr<float>() + r.numel());
}

/// One row of a verifier truth table.
struct Case {
  std::string response;
  nlohmann::json meta;
  bool expect;
};

/// Runs every case through `scheme` (one batch) and checks reward == 1 for expected-true rows and
/// 0 otherwise; returns the numbers of true and false rows (for the >= 30 table-size checks).
inline std::pair<int, int> run_table(const std::string& scheme, const std::string& params,
                                     const std::vector<Case>& cases) {
  auto s = build_scheme(scheme, params);
  std::vector<std::string> responses;
  std::vector<nlohmann::json> metas;
  for (const auto& c : cases) {
    responses.push_back(c.response);
    metas.push_back(c.meta);
  }
  const auto r = rewards_of(*s, make_input(responses, metas));
  int t = 0, f = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    (cases[i].expect ? t : f)++;
    EXPECT_FLOAT_EQ(r[i], cases[i].expect ? 1.0f : 0.0f)
        << scheme << " case " << i << ": response <<" << cases[i].response << ">> meta " << cases[i].meta.dump();
  }
  return {t, f};
}

}  // namespace keel::rewards::testing
