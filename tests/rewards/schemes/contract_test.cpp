// Tests of the reward schemes' declared contracts (rewards::require_input, schemes/register_util.h):
// every registered verifier and scheme, built with its default params (and in its other modes),
// scores a batch that holds only the always-present fields plus exactly the inputs it declared —
// so a contract is complete — and, for the schemes whose score() checks every declared input,
// scoring without any one of them throws — so no declaration is vacuous. Also: the YAML paths a
// contract names, and the contracts of the learned rewards (built without loading a model).
//
// Legend: N = 4 samples in 2 groups of 2, T = 6 tokens, S = 3 steps, K = 2 criteria.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "../reward_test_util.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/node.h"
#include "base/reader.h"
#include "rewards/composite.h"
#include "rewards/reward.h"
#include "trainer/config/config.h"
#include "trainer/config/reward_config.h"

namespace keel::rewards {
namespace {

using nlohmann::json;
using torch::Tensor;

constexpr int64_t kN = 4, kT = 6, kS = 3, kK = 2;
const std::string kParamsPath = "reward.components.1.params";

/// The verifiers and the shaping / aggregator / process schemes. The learned rewards (reward_model,
/// generative_yes, register_builtin_reward_models) are left out: scoring them needs model files;
/// their contracts are checked without scoring in LearnedRewardsDeclareTheirMetadata below.
const RewardRegistry& registry() {
  static const RewardRegistry reg = [] {
    RewardRegistry r("reward scheme");
    register_builtin_rewards(r);
    register_builtin_reward_schemes(r);
    return r;
  }();
  return reg;
}

/// Builds `scheme` from YAML params at kParamsPath, recording its contract; throws on params errors.
BuiltScheme build(const RewardRegistry& reg, const std::string& scheme, const std::string& yaml) {
  config::Node node = config::parse_yaml_string(yaml, "params.yaml");
  config::Diagnostics diag;
  config::Reader r(&node, kParamsPath, diag);
  BuiltScheme b = rewards::build_scheme(reg, r, scheme);
  r.finish();
  diag.throw_if_any();
  return b;
}

/// Minimal params of the schemes with required keys; every other scheme builds from "{}".
const std::map<std::string, std::string> kRequiredParams = {
    {"format_regex", "{pattern: '[0-9]'}"},
    {"cost_channels", "{cost_channels: [{name: danger}]}"},
};

/// The other modes, each with a contract of its own (scheme, params).
const std::vector<std::pair<std::string, std::string>> kModes = {
    {"par", "{missing_refs: raw}"},
    {"env", "{dense: true}"},
    {"sigmoid", "{input: rm_scores}"},
    {"shaping", "{shaping: lsc}"},
    {"shaping", "{shaping: par, length_penalty: {enabled: true}}"},
    {"shaping", "{shaping: sigmoid}"},
    {"ssl", "{proximity: block_match}"},
    {"ssl", "{steps: true}"},
    {"truthrl", "{use_judge: false}"},
    {"truthrl", "{use_judge: false, reasoning_weight: 0.5}"},
    {"arlcp", "{accuracy: prior.accuracy}"},
    {"gated", "{dense: true}"},
    {"hierarchical",
     "{channels: [{name: a, input: correct}, {name: b, input: meta.quality, depends_on: [a]}, {name: c}]}"},
    {"openrs_pairwise", "{input_kind: criteria}"},
    {"carr", "{rubric_from: meta}"},
    {"uncertainty", "{method: scalar_sq}"},
    {"oni", "{c_llm: 0.4}"},
    {"oni",
     "{model: classification, messages: meta.steps, annotator: {scheme: format_regex, params: {pattern: x}}}"},
    {"retro_progress", "{binary_only: true, external: prior}"},
    {"cost_channels", "{cost_channels: [{name: danger}, {name: spill}], task: correct}"},
    {"prm", "{input_kind: logits, dense: true}"},
    {"dataprm", "{input_kind: scores, outcome: correct, has_answer: meta.has_answer}"},
    {"info_gain", "{outcome: correct, dense: true}"},
    {"info_gain", "{final_score: em}"},
};

/// A plausible metadata value per key the schemes read (default: the number 1).
json meta_value(const std::string& key, int64_t i) {
  if (key == "answer") return 1;  // an integer: math_answer, match_* and task_arithmetic; choice index 1 = "B"
  if (key == "numbers") return json::array({1, 2, 3});
  if (key == "target") return 6;
  if (key == "ref_rewards") return json::array({0.5, i == 0 ? 2.0 : -1.0});
  if (key == "gold_answers") return "paris";
  if (key == "step_judgements") return json::array({"\\boxed{1}", i % 2 ? "\\boxed{0}" : "\\boxed{0.5}"});
  if (key == "steps") return json::array({"step one", "42"});
  if (key == "carr_rubric") return 0.25 * static_cast<double>(i);
  return 1;
}

/// A plausible RewardInput::extra tensor per key (default: [N] float).
Tensor extra_value(const std::string& key) {
  const auto steps = [] {
    return torch::tensor({0.f, 1.f, 0.f, 1.f, 0.f, 0.f, 0.f, 0.f, 1.f, 1.f, 1.f, 0.f}).view({kN, kS});
  };
  if (key == "click") return torch::tensor({100.f, 100.f, 110.f, 95.f, 0.f, 0.f, 50.f, 50.f}).view({kN, 2});
  if (key == "center") return torch::full({kN, 2}, 100.f);
  if (key == "box_size") return torch::full({kN, 2}, 20.f);
  if (key == "matched") return torch::tensor({1.f, 2.f, 0.f, 3.f});
  if (key == "total") return torch::full({kN}, 3.f);
  if (key == "judge_correct") return torch::tensor({1, 0, 1, 0}, torch::kBool);
  if (key == "openrs_scores") return torch::tensor({0.f, 1.f, -1.f, 0.f, 0.f, 0.5f, 0.2f, 0.f}).view({kN, 2});
  if (key == "openrs_types")  // OpenRsType codes [N, G = 2, K = 2]
    return torch::tensor({0, 1, 2, 3, 1, 1, 2, 2, 3, 1, 1, 0, 1, 2, 2, 1}, torch::kLong).view({kN, 2, 2});
  if (key == "openrs_signed")
    return torch::tensor({0.f, 1.f, -1.f, 1.f, 1.f, 0.f, 1.f, -1.f, 0.f, 1.f, 1.f, 1.f, -1.f, 0.f, 1.f, 1.f})
        .view({kN, 2, 2});
  if (key == "judge_logits_1" || key == "judge_logits_2")
    return torch::tensor({2.f, 0.f, 1.f, 1.f, 0.f, 3.f, -1.f, key == "judge_logits_1" ? 2.f : 0.f}).view({kN, 2});
  if (key == "env_rewards" || key == "intrinsic_rewards" || key == "danger" || key == "spill" ||
      key == "env_turn_rewards")
    return steps();
  if (key == "message_ids") return torch::tensor({5, 5, 6, 1, 2, 3, 4, 4, 4, 9, 8, 9}, torch::kLong).view({kN, kS});
  if (key == "subtasks_completed") return torch::tensor({2.f, 1.f, 0.f, 3.f});
  if (key == "subtasks_total") return torch::tensor({5.f, 4.f, 2.f, 3.f});
  if (key == "prm_label_logits") return torch::linspace(-2, 2, kN * kS * 2).view({kN, kS, 2});
  if (key == "gold_logprobs") return torch::log(torch::linspace(0.1, 0.9, kN * (kS + 1) * 2)).view({kN, kS + 1, 2});
  return torch::tensor({1.f, 0.f, 0.5f, 2.f});
}

/// The always-present fields only: prompts, responses, group_ids, response_lengths, the token
/// tensors [N, T] and one empty metadata object per row.
RewardInput bare_batch() {
  RewardInput in;
  in.prompts = {"p0", "p0", "p1", "p1"};
  in.responses = {"wait, so</think>\\boxed{1}", "the answer is 2 </think> \\boxed{Paris}", "B", "hmm but 42"};
  in.group_ids = torch::tensor({0, 0, 1, 1}, torch::kLong);
  in.response_lengths = torch::tensor({6, 4, 1, 3}, torch::kLong);
  in.response_tokens = torch::arange(kN * kT, torch::kLong).view({kN, kT});
  in.response_mask = torch::ones({kN, kT}, torch::kBool);
  in.token_logprobs = torch::full({kN, kT}, -0.5f);
  in.metadata.assign(kN, json::object());
  return in;
}

/// Puts one declared input into the batch.
void provide(RewardInput& in, const std::string& input) {
  if (input == "correct") {
    in.correct = torch::tensor({1, 0, 1, 1}, torch::kBool);
  } else if (input == "prior") {
    in.prior_total = torch::tensor({1.f, 0.f, 0.5f, 1.5f});
  } else if (input.rfind("prior.", 0) == 0) {
    in.prior[input.substr(6)] = torch::tensor({1.f, 0.f, 1.f, 1.f});
  } else if (input == "rm_scores") {
    in.rm_scores = torch::tensor({2.f, 1.f, -0.5f, 3.25f});
  } else if (input == "criterion_scores") {
    in.criterion_scores = torch::tensor({1.f, 0.f, 1.f, 1.f, 0.f, 1.f, 0.5f, 0.5f}).view({kN, kK});
  } else if (input == "step_scores") {  // probabilities
    in.step_scores =
        torch::tensor({0.9f, 0.6f, 0.95f, 0.5f, 0.5f, 0.1f, 0.8f, 0.2f, 1.f, 0.7f, 0.7f, 0.7f}).view({kN, kS});
  } else if (input == "step_ends") {  // token indices < T, -1 = padding
    in.step_ends = torch::tensor({1, 3, 5, 0, 2, -1, 1, 4, 5, 2, 3, 4}, torch::kLong).view({kN, kS});
  } else if (input.rfind("meta.", 0) == 0) {
    const std::string key = input.substr(5);
    for (int64_t i = 0; i < kN; ++i) in.metadata[static_cast<size_t>(i)][key] = meta_value(key, i);
  } else if (input.rfind("extra.", 0) == 0) {
    in.extra[input.substr(6)] = extra_value(input.substr(6));
  } else {
    FAIL() << "no test value for declared input '" << input << "'";
  }
}

RewardInput batch_for(const Contract& contract, const std::string& without = "") {
  RewardInput in = bare_batch();
  for (const auto& req : contract)
    if (req.input != without) provide(in, req.input);
  return in;
}

std::string describe(const Contract& contract) {
  std::string s;
  for (const auto& r : contract) s += (s.empty() ? "" : ", ") + r.input + " <- " + r.key;
  return s.empty() ? "(nothing)" : s;
}

/// Every (scheme, params) the completeness tests run: each registered name with its defaults, then kModes.
std::vector<std::pair<std::string, std::string>> all_configs() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& name : registry().names()) {
    const auto it = kRequiredParams.find(name);
    out.emplace_back(name, it == kRequiredParams.end() ? "{}" : it->second);
  }
  out.insert(out.end(), kModes.begin(), kModes.end());
  return out;
}

TEST(RewardContracts, EveryDeclaredContractIsEnoughToScore) {
  EXPECT_EQ(registry().size(), 45u);  // 8 verifiers + 37 schemes: a new one joins this test automatically
  for (const auto& cfg : all_configs()) {
    const std::string scheme = cfg.first, params = cfg.second;
    SCOPED_TRACE(scheme + " " + params);
    BuiltScheme b;
    ASSERT_NO_THROW(b = build(registry(), scheme, params))
        << testing::error_of([&] { build(registry(), scheme, params); });
    for (const auto& req : b.contract)
      EXPECT_EQ(req.key.rfind(kParamsPath, 0), 0u) << req.input << " declared under " << req.key;
    const RewardInput in = batch_for(b.contract);
    in.check();
    RewardOutput out;
    ASSERT_NO_THROW(out = b.impl->score(in)) << "contract: " << describe(b.contract) << "\n"
                                             << testing::error_of([&] { b.impl->score(batch_for(b.contract)); });
    ASSERT_TRUE(out.rewards.defined());
    ASSERT_EQ(out.rewards.dim(), 1);
    ASSERT_EQ(out.rewards.size(0), kN);
    EXPECT_TRUE(torch::isfinite(out.rewards).all().item<bool>()) << out.rewards;
  }
}

// Every scheme whose score() TORCH_CHECKs its inputs throws without any one declared input. Left out:
// the verifiers (a missing gold answer is a scorer error: the fallback reward) and lsc / shaping: lsc,
// which score without references (reference point 0): declared because that is not the documented LSC.
TEST(RewardContracts, EveryDeclaredInputIsNeeded) {
  const std::set<std::string> lenient = {"math_answer", "match_exact", "match_normalized", "match_choice",
                                         "task_arithmetic", "task_countdown", "lsc"};
  int checked = 0;
  for (const auto& cfg : all_configs()) {
    const std::string scheme = cfg.first, params = cfg.second;
    if (lenient.count(scheme) || (scheme == "shaping" && params.find("lsc") != std::string::npos)) continue;
    SCOPED_TRACE(scheme + " " + params);
    const BuiltScheme b = build(registry(), scheme, params);
    for (const auto& req : b.contract) {
      auto fresh = build(registry(), scheme, params);
      EXPECT_THROW(fresh.impl->score(batch_for(fresh.contract, req.input)), std::exception)
          << "scores without its declared input " << req.input << " (" << req.key << ")";
      ++checked;
    }
  }
  EXPECT_GT(checked, 60);
}

// The defaults a plain verifier run provides, spelled out: a component after a verifier gets `prior`
// and `correct`, nothing else.
TEST(RewardContracts, DefaultContractsOfTheShapingFamilyAndCorrectnessReaders) {
  const auto inputs = [](const std::string& scheme, const std::string& params = "{}") {
    std::vector<std::string> v;
    for (const auto& r : build(registry(), scheme, params).contract) v.push_back(r.input);
    return v;
  };
  using V = std::vector<std::string>;
  for (const char* s : {"sigmoid", "sigmoidk2", "sigmoidk3", "shaping", "length_penalty", "ceil", "meanstd", "clip",
                        "minmax", "precondition"})
    EXPECT_EQ(inputs(s), V{"prior"}) << s;
  EXPECT_EQ(inputs("par"), (V{"prior", "meta.ref_rewards"}));
  EXPECT_EQ(inputs("lsc"), (V{"prior", "meta.ref_rewards"}));
  EXPECT_EQ(inputs("arlcp"), V{"correct"});
  EXPECT_EQ(inputs("diversity"), V{"correct"});
  EXPECT_EQ(inputs("retro_progress"), (V{"correct", "extra.subtasks_completed", "extra.subtasks_total"}));
  EXPECT_EQ(inputs("retro_progress", "{binary_only: true}"), V{"correct"});
  EXPECT_EQ(inputs("carr"), (V{"correct", "extra.carr_rubric"}));
  EXPECT_EQ(inputs("ssl"), (V{"correct", "extra.click", "extra.center", "extra.box_size"}));
  EXPECT_EQ(inputs("truthrl"), (V{"meta.gold_answers", "extra.judge_correct"}));
  EXPECT_EQ(inputs("truthrl", "{use_judge: false}"), V{"meta.gold_answers"});
  EXPECT_EQ(inputs("dapo_soft"), V{});
  EXPECT_EQ(inputs("format_tags"), V{});
  EXPECT_EQ(inputs("math_answer"), V{"meta.answer"});
}

// TruthRL with use_judge reads the judge's verdict: it rescues a response that misses exact match.
TEST(RewardContracts, TruthRlJudgeVerdictComesFromItsDeclaredInput) {
  const BuiltScheme b = build(registry(), "truthrl", "{variant: ternary}");
  RewardInput in = bare_batch();
  in.responses = {"\\boxed{Paris}", "\\boxed{the capital of France}", "\\boxed{Lyon}", "\\boxed{I don't know}"};
  for (auto& m : in.metadata) m["gold_answers"] = "paris";
  EXPECT_NE(testing::error_of([&] { b.impl->score(in); }).find("needs RewardInput::extra['judge_correct']"),
            std::string::npos);
  in.extra["judge_correct"] = torch::tensor({0, 1, 0, 1}, torch::kBool);
  // exact match; judged correct; judged wrong; abstains before any judging.
  const Tensor want = torch::tensor({1.f, 1.f, -1.f, 0.f});
  EXPECT_TRUE(torch::equal(b.impl->score(in).rewards, want)) << b.impl->score(in).rewards;
  const BuiltScheme exact = build(registry(), "truthrl", "{variant: ternary, use_judge: false}");
  EXPECT_TRUE(torch::equal(exact.impl->score(in).rewards, torch::tensor({1.f, -1.f, -1.f, 0.f})));
}

config::RewardSection read_section(const std::string& yaml, const RewardRegistry& reg) { return testing::read_section(yaml, &reg); }

bool has(const Contract& c, const std::string& input, const std::string& key) {
  for (const auto& r : c)
    if (r.input == input && r.key == key) return true;
  return false;
}

// A contract names each requirement by the YAML path of the setting that asked for it.
TEST(RewardContracts, RequirementsNameTheirYamlPaths) {
  const std::string yaml = R"(reward:
  components:
    - {scheme: task_arithmetic, name: correct}
    - {scheme: shaping, name: shaped, params: {input: prior.correct, shaping: par}}
    - {scheme: cost_channels, params: {cost_channels: [{name: danger}]}}
    - {scheme: hierarchical}
    - scheme: truthrl
      params:
        answer_key: gold
)";
  const auto contracts = reward_contracts(read_section(yaml, registry()), registry());
  ASSERT_EQ(contracts.size(), 5u);
  EXPECT_TRUE(contracts[0].judges_correctness);
  EXPECT_TRUE(has(contracts[0].contract, "meta.answer", "reward.components.0.params.answer_key"))
      << describe(contracts[0].contract);
  const Contract& shaped = contracts[1].contract;
  EXPECT_EQ(shaped.size(), 2u) << describe(shaped);
  EXPECT_TRUE(has(shaped, "prior.correct", "reward.components.1.params.input")) << describe(shaped);
  EXPECT_TRUE(has(shaped, "meta.ref_rewards", "reward.components.1.params.refs_key")) << describe(shaped);
  EXPECT_TRUE(has(contracts[2].contract, "extra.danger", "reward.components.2.params.cost_channels.0.name"))
      << describe(contracts[2].contract);
  // Default channels: declared under the channels key the defaults stand for.
  EXPECT_TRUE(has(contracts[3].contract, "prior.format", "reward.components.3.params.channels"))
      << describe(contracts[3].contract);
  EXPECT_TRUE(has(contracts[4].contract, "meta.gold", "reward.components.4.params.answer_key"))
      << describe(contracts[4].contract);
  EXPECT_TRUE(has(contracts[4].contract, "extra.judge_correct", "reward.components.4.params.use_judge"))
      << describe(contracts[4].contract);
  // Flow-style params of a build: the same paths.
  const BuiltScheme b = build(registry(), "shaping", "{input: prior.correct}");
  ASSERT_EQ(b.contract.size(), 1u);
  EXPECT_EQ(b.contract[0].input, "prior.correct");
  EXPECT_EQ(b.contract[0].key, kParamsPath + ".input");
}

// An ONI annotator sees only the prompt and the message: one that needs more is a config error.
TEST(RewardContracts, OniAnnotatorThatNeedsInputsIsRefused) {
  const std::string e = testing::error_of(
      [] { build(registry(), "oni", "{model: classification, annotator: {scheme: math_answer}}"); });
  EXPECT_NE(e.find("annotator 'math_answer' needs input meta.answer"), std::string::npos) << e;
  // Its requirement does not leak into the ONI component's contract.
  const BuiltScheme ok =
      build(registry(), "oni", "{model: classification, annotator: {scheme: format_regex, params: {pattern: x}}}");
  EXPECT_EQ(describe(ok.contract), "extra.env_rewards <- " + kParamsPath + ".env");
}

// The learned rewards' factories read params only (no model is loaded), so their contracts are
// checked without scoring: generative_yes needs metadata "answer" exactly when its template shows it.
TEST(RewardContracts, LearnedRewardsDeclareTheirMetadata) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "keel_contract_test_model";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.json") << "{}";
  RewardRegistry reg("reward scheme");
  register_builtin_reward_models(reg);
  const std::string path = "{path: " + dir.string() + "}";
  EXPECT_TRUE(build(reg, "reward_model", path).contract.empty());
  EXPECT_TRUE(build(reg, "generative_yes", path).contract.empty());
  const BuiltScheme g = build(reg, "generative_yes", "{path: " + dir.string() +
                                                         ", template: 'Q: {prompt} A: {response} Gold: {answer}'}");
  ASSERT_EQ(g.contract.size(), 1u);
  EXPECT_EQ(g.contract[0].input, "meta.answer");
  EXPECT_EQ(g.contract[0].key, kParamsPath + ".template");
  keel::fs::remove_tree(dir);
}

}  // namespace
}  // namespace keel::rewards
