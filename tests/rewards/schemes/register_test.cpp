// Tests of register_builtin_reward_schemes (rewards/schemes/register*.cpp): every registered name
// builds from a YAML params snippet through config::Reader and scores a small batch exactly as its
// pure function does when called directly; unknown params are config errors with file:line and
// path; stateful schemes round-trip their state; missing inputs name the scheme; a composite of a
// verifier and shaping schemes works from a YAML reward: section.
#include <functional>
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "../reward_test_util.h"
#include "rewards/composite.h"
#include "rewards/schemes/arlcp.h"
#include "rewards/schemes/carr.h"
#include "rewards/schemes/cmo.h"
#include "rewards/schemes/ctrl_u.h"
#include "rewards/schemes/dataprm.h"
#include "rewards/schemes/dapo_overlong.h"
#include "rewards/schemes/diversity.h"
#include "rewards/schemes/dpa.h"
#include "rewards/schemes/epo_safe.h"
#include "rewards/schemes/gated.h"
#include "rewards/schemes/info_gain.h"
#include "rewards/schemes/lsc.h"
#include "rewards/schemes/oni.h"
#include "rewards/schemes/openrs.h"
#include "rewards/schemes/par.h"
#include "rewards/schemes/prm.h"
#include "rewards/schemes/pre_shaping.h"
#include "rewards/schemes/purple.h"
#include "rewards/schemes/retro_agent.h"
#include "rewards/schemes/rm_shaping.h"
#include "rewards/schemes/rubric.h"
#include "rewards/schemes/running_norm.h"
#include "rewards/schemes/ssl.h"
#include "rewards/schemes/truthrl.h"
#include "base/error.h"
#include "trainer/config/config.h"
#include "trainer/config/reward_config.h"

namespace keel::rewards {
namespace {

using nlohmann::json;
using torch::Tensor;

const RewardRegistry& scheme_registry() {
  static const RewardRegistry reg = [] {
    RewardRegistry r("reward scheme");
    register_builtin_reward_schemes(r);
    return r;
  }();
  return reg;
}

RewardRegistry full_registry() {
  RewardRegistry r("reward scheme");
  register_builtin_rewards(r);
  register_builtin_reward_schemes(r);
  return r;
}

/// Builds `scheme` from YAML params text; throws keel::Error with all collected errors.
std::unique_ptr<RewardScheme> build(const std::string& scheme, const std::string& yaml) {
  return testing::build_scheme_from(scheme_registry(), scheme, yaml);
}

Tensor f64(std::vector<double> v) { return torch::tensor(v, torch::kFloat64); }
Tensor f32(std::vector<float> v) { return torch::tensor(v, torch::kFloat32); }

/// Four samples in two groups: ids [7, 7, 3, 3].
RewardInput base_batch(std::vector<std::string> responses = {"a", "b", "c", "d"}) {
  RewardInput in;
  in.responses = std::move(responses);
  in.prompts = {"p7", "p7", "p3", "p3"};
  in.group_ids = torch::tensor({7, 7, 3, 3}, torch::kLong);
  in.rm_scores = f32({2.0f, 1.0f, -0.5f, 3.25f});
  in.response_lengths = torch::tensor({100, 350, 400, 20}, torch::kLong);
  in.prior["accuracy"] = f32({1.0f, 0.0f, 1.0f, 1.0f});
  return in;
}

Tensor rm64(const RewardInput& in) { return in.rm_scores.to(torch::kFloat64); }
Tensor acc64(const RewardInput& in) { return in.prior.at("accuracy").to(torch::kFloat64); }

/// One registered name: its params, a batch, and the reward computed with the pure function.
struct Case {
  std::string name;
  std::string yaml;  ///< block YAML, one key per line (the unknown-key test appends a line)
  std::function<RewardInput()> input;
  std::function<Tensor(const RewardInput&)> expected;
  /// Stateful schemes: a second, different batch for the state round trip.
  std::function<RewardInput()> input_b;
};

// ---- group A -------------------------------------------------------------------------------------------

// Ragged metadata references: [1, 3], [0.5], [2, -1, 0], [1.5].
RewardInput with_meta_refs(RewardInput in) {
  in.metadata = {json{{"ref_rewards", {1.0, 3.0}}}, json{{"ref_rewards", {0.5}}}, json{{"ref_rewards", {2.0, -1.0, 0.0}}},
                 json{{"ref_rewards", {1.5}}}};
  return in;
}
Tensor meta_refs_values() { return f64({1, 3, 0, 0.5, 0, 0, 2, -1, 0, 1.5, 0, 0}).view({4, 3}); }
Tensor meta_refs_mask() {
  return torch::tensor({1, 1, 0, 1, 0, 0, 1, 1, 1, 1, 0, 0}, torch::kLong).view({4, 3}).to(torch::kBool);
}

Case par_case(const std::string& name, const std::string& yaml, std::function<void(ParOptions&)> set) {
  return {name, yaml, [] { return with_meta_refs(base_batch()); },
          [name, set](const RewardInput& in) {
            ParOptions o = par_preset(name);
            set(o);
            return par_reward(rm64(in), meta_refs_values(), meta_refs_mask(), o);
          },
          nullptr};
}

std::vector<Case> group_a_cases() {
  std::vector<Case> c;
  c.push_back(par_case("par", "k: 2.0\nmax_refs: 2\ninput: rm_scores\n", [](ParOptions& o) { o.k = 2.0; o.max_refs = 2; }));
  c.push_back(par_case("sigmoid", "k: 1.5\ninput: rm_scores\n", [](ParOptions& o) { o.k = 1.5; }));
  c.push_back(par_case("sigmoidk2", "shift: 0.5\ninput: rm_scores\n", [](ParOptions& o) { o.shift = 0.5; }));
  c.push_back(par_case("sigmoidk3", "squash: tanh\ninput: rm_scores\n", [](ParOptions& o) { o.squash = "tanh"; }));
  c.push_back(par_case("fittedpoly", "max_refs: 1\ninput: rm_scores\n", [](ParOptions& o) { o.max_refs = 1; }));
  c.push_back(par_case("centered", "num_refs: 3\ninput: rm_scores\n", [](ParOptions& o) { o.num_refs = 3; }));
  c.push_back(par_case("sgfc", "k: 0.5\ninput: rm_scores\n", [](ParOptions& o) { o.k = 0.5; }));
  // tanh: references from an extra tensor [N, 2] with its mask, shaping an earlier component.
  c.push_back({"tanh", "input: prior.accuracy\nrefs_key: refs\n",
               [] {
                 RewardInput in = base_batch();
                 in.extra["refs"] = f32({0.5f, 9.f, 1.f, 2.f, 0.f, 0.f, -1.f, 4.f}).view({4, 2});
                 in.extra["refs_mask"] = torch::tensor({1, 0, 1, 1, 1, 0, 1, 1}, torch::kBool).view({4, 2});
                 return in;
               },
               [](const RewardInput& in) {
                 return par_reward(acc64(in), in.extra.at("refs").to(torch::kFloat64), in.extra.at("refs_mask"),
                                   par_preset("tanh"));
               },
               nullptr});
  c.push_back({"length_penalty", "valid_len: 300\nper_token: 0.02\ninput: rm_scores\n", [] { return base_batch(); },
               [](const RewardInput& in) {
                 LengthPenaltyOptions o;
                 o.valid_len = 300;
                 o.per_token = 0.02;
                 return length_penalty_reward(rm64(in), in.response_lengths.to(torch::kFloat64), o);
               },
               nullptr});
  c.push_back({"ceil", "value: 1.5\ninput: rm_scores\n", [] { return base_batch(); },
               [](const RewardInput& in) {
                 CeilOptions o;
                 o.ceil = 1.5;
                 return ceil_reward(rm64(in), o);
               },
               nullptr});
  const auto batch_b = [] {
    RewardInput in = base_batch();
    in.rm_scores = f32({0.5f, 1.0f, 1.5f, 0.0f});  // inside batch A's range: the running state shows
    return in;
  };
  c.push_back({"meanstd", "zero_std: one\ninput: rm_scores\n", [] { return base_batch(); },
               [](const RewardInput& in) {
                 RunningMeanStd s;
                 s.update(rm64(in));
                 MeanStdOptions o;
                 o.zero_std = "one";
                 return meanstd_reward(rm64(in), s, o);
               },
               batch_b});
  c.push_back({"clip", "var_floor: 0.001\ninput: rm_scores\n", [] { return base_batch(); },
               [](const RewardInput& in) {
                 RunningMeanStd s;
                 s.update(rm64(in));
                 MeanStdOptions o;
                 o.var_floor = 0.001;
                 return clip_reward(rm64(in), s, o);
               },
               batch_b});
  c.push_back({"minmax", "range_floor: 0.01\ninput: rm_scores\n", [] { return base_batch(); },
               [](const RewardInput& in) {
                 RunningMinMax s;
                 s.update(rm64(in));
                 MinMaxOptions o;
                 o.range_floor = 0.01;
                 return minmax_reward(rm64(in), s, o);
               },
               batch_b});
  // The pipeline: length penalty -> ceil -> meanstd, stateful.
  c.push_back({"shaping", "shaping: meanstd\nlength_penalty:\n  valid_len: 300\n  per_token: 0.01\nceil: 2.5\ninput: rm_scores\n",
               [] { return base_batch(); },
               [](const RewardInput& in) {
                 RmShapingOptions o;
                 o.shaping = "meanstd";
                 o.length_penalty.valid_len = 300;
                 o.length_penalty.per_token = 0.01;
                 o.ceil.ceil = 2.5;
                 RmShaper shaper(o);
                 return shaper.apply(rm64(in), in.response_lengths.to(torch::kFloat64), {}, {});
               },
               batch_b});
  c.push_back({"lsc", "quantile: 0.9\ninput: rm_scores\n", [] { return with_meta_refs(base_batch()); },
               [](const RewardInput& in) {
                 LscOptions o;
                 o.quantile = 0.9;
                 return lsc_reward(rm64(in), meta_refs_values(), meta_refs_mask(), o);
               },
               nullptr});
  c.push_back({"ssl", "alpha: 0.25\nsuccess: prior.accuracy\n",
               [] {
                 RewardInput in = base_batch();
                 in.extra["click"] = f32({103, 100, 110, 110, 50, 50, 0, 0}).view({4, 2});
                 in.extra["center"] = f32({100, 100, 100, 100, 100, 100, 0, 0}).view({4, 2});
                 in.extra["box_size"] = f32({20, 20, 20, 20, 20, 20, 0, 0}).view({4, 2});
                 in.extra["click_valid"] = torch::tensor({1, 1, 1, 0}, torch::kBool);
                 return in;
               },
               [](const RewardInput& in) {
                 SslOptions o;
                 o.alpha = 0.25;
                 const Tensor valid = in.extra.at("click_valid");
                 const Tensor s = ssl_gaussian_proximity(in.extra.at("click").to(torch::kFloat64),
                                                         in.extra.at("center").to(torch::kFloat64),
                                                         in.extra.at("box_size").to(torch::kFloat64), valid, {}, o);
                 return ssl_reward(acc64(in), s, valid, o);
               },
               nullptr});
  c.push_back({"truthrl", "variant: ternary_ook\nanswer_key: gold\nuse_judge: false\n",
               [] {
                 RewardInput in = base_batch({"\\boxed{Paris}", "\\boxed{I don't know}", "\\boxed{Lyon}", "Paris"});
                 in.metadata = {json{{"gold", "paris"}}, json{{"gold", {"x"}}, {"ook", true}},
                                json{{"gold", {"paris", "Paris, France"}}}, json{{"gold", "paris"}}};
                 return in;
               },
               [](const RewardInput& in) {
                 TruthRlOptions o;
                 o.variant = "ternary_ook";
                 std::vector<TruthVerdict> v = {
                     truthrl_classify(in.responses[0], {"paris"}, {}, o), truthrl_classify(in.responses[1], {"x"}, {}, o),
                     truthrl_classify(in.responses[2], {"paris", "Paris, France"}, {}, o),
                     truthrl_classify(in.responses[3], {"paris"}, {}, o)};
                 return truthrl_rewards(v, torch::tensor({0, 1, 0, 0}, torch::kBool), o);
               },
               nullptr});
  c.push_back({"arlcp", "std_eps: 0.001\naccuracy: prior.accuracy\n",
               [] {
                 return base_batch({"wait, hmm. but check</think>\\boxed{1}", "however</think>x",
                                    "<think>oh</think>\\boxed{2}", "Wait wait but</think>\\boxed{2}"});
               },
               [](const RewardInput& in) {
                 ArlcpOptions o;
                 o.std_eps = 0.001;
                 std::vector<double> n, fmt;
                 for (const auto& r : in.responses) {
                   n.push_back(static_cast<double>(arlcp_reflection_count(r, o.keywords)));
                   fmt.push_back(arlcp_format_ok(r) ? 1.0 : 0.0);
                 }
                 return arlcp_reward(f64(n), in.response_lengths.to(torch::kFloat64), acc64(in) * f64(fmt), in.group_ids, o);
               },
               nullptr});
  c.push_back({"dapo_soft", "max_len: 400\ncache_len: 100\nfactor: 0.5\n", [] { return base_batch(); },
               [](const RewardInput& in) {
                 DapoOverlongOptions o;
                 o.max_len = 400;
                 o.cache_len = 100;
                 o.factor = 0.5;
                 return dapo_overlong_penalty(in.response_lengths, o);
               },
               nullptr});
  c.push_back({"precondition",
               "kappa: 0.5\nschedule: linear\nkappa_min: 0.25\ndecay_steps: 10\ninput_kind: discriminator\ninput: rm_scores\n",
               [] {
                 RewardInput in = base_batch();
                 in.rm_scores = f32({0.75f, 0.1f, 0.0f, 0.5f});
                 in.step = 4;
                 return in;
               },
               [](const RewardInput& in) {
                 PurpleOptions o;
                 o.kappa = 0.5;
                 o.schedule = "linear";
                 o.kappa_min = 0.25;
                 o.decay_steps = 10;
                 return purple_precondition(discriminator_reward(rm64(in)), purple_kappa(4, o));
               },
               nullptr});
  return c;
}

// ---- group B -------------------------------------------------------------------------------------------

RewardInput rubric_batch() {
  RewardInput in = base_batch();
  in.criterion_scores = f32({1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1}).view({4, 3});
  in.criterion_mask = torch::tensor({1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1}, torch::kBool).view({4, 3});
  const json crit = {json{{"category", "essential"}}, json{{"category", "important"}}, json{{"category", "pitfall"}}};
  const json two = {json{{"category", "optional"}}, json{{"weight", 2.0}, {"category", "essential"}}};
  in.metadata = {json{{"rubric", crit}}, json{{"rubric", crit}}, json{{"rubric", two}}, json{{"rubric", {0.5, 1.5, 1.0}}}};
  return in;
}
// Weights, validity and category indices (sorted names: essential 0, important 1, optional 2, pitfall 3)
// that the metadata above describes: row 2 lists only two criteria.
Tensor rubric_weights() { return f64({1.0, 0.7, 0.9, 1.0, 0.7, 0.9, 0.3, 2.0, 0.0, 0.5, 1.5, 1.0}).view({4, 3}); }
Tensor rubric_mask() { return torch::tensor({1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1}, torch::kBool).view({4, 3}); }
Tensor rubric_categories() { return torch::tensor({0, 1, 3, 0, 1, 3, 2, 0, -1, -1, -1, -1}, torch::kLong).view({4, 3}); }

std::vector<Case> group_b_cases() {
  std::vector<Case> c;
  c.push_back({"gated", "threshold: 0.0\noutcome: meta.outcome\n",
               [] {
                 RewardInput in = base_batch();
                 in.metadata = {json{{"outcome", "pass"}}, json{{"outcome", "fail"}}, json{{"outcome", "empty_patch"}},
                                json{{"outcome", -2.0}}};
                 in.step_scores = f32({0.1f, 0.1f, -0.05f, 0.2f, 0.3f, 9.f, 0.5f, 0.5f, 0.5f, 1.f, 1.f, 1.f}).view({4, 3});
                 in.step_mask = torch::tensor({1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1}, torch::kBool).view({4, 3});
                 return in;
               },
               [](const RewardInput& in) {
                 GraOptions o;
                 return gra_reward(f64({1.0, 0.0, -0.5, -2.0}), in.step_scores.to(torch::kFloat64), in.step_mask, o);
               },
               nullptr});
  c.push_back({"hierarchical",
               "channels:\n  - {name: format, weight: 0.0, threshold: 1.0}\n"
               "  - {name: correct, weight: 0.5, threshold: 1.0, depends_on: [format], input: extra.correct}\n"
               "  - {name: quality, weight: 0.3, depends_on: [correct], input: meta.quality}\n"
               "  - {name: process, weight: 0.2, input: meta.process}\n",
               [] {
                 RewardInput in = base_batch();
                 in.prior["format"] = f32({1, 1, 0, 1});
                 in.extra["correct"] = f32({1.0f, 0.5f, 1.0f, 1.0f});
                 in.metadata = {json{{"quality", 0.8}, {"process", 0.5}}, json{{"quality", 0.8}, {"process", 0.5}},
                                json{{"quality", 0.8}, {"process", 0.5}}, json{{"quality", 0.2}, {"process", true}}};
                 return in;
               },
               [](const RewardInput& in) {
                 GatedOptions o = hierarchical_default_options();  // the same chain as the YAML
                 const Tensor v = torch::stack({in.prior.at("format").to(torch::kFloat64),
                                                in.extra.at("correct").to(torch::kFloat64), f64({0.8, 0.8, 0.8, 0.2}),
                                                f64({0.5, 0.5, 0.5, 1.0})},
                                               1);
                 return gated_reward(v, o);
               },
               nullptr});
  c.push_back({"rubric", "rubric_key: rubric\ncategory_weights:\n  important: 0.7\n", rubric_batch,
               [](const RewardInput& in) {
                 return rubric_explicit_reward(in.criterion_scores.to(torch::kFloat64), rubric_weights(), rubric_mask());
               },
               nullptr});
  c.push_back({"pow3r", "eps: 0.1\ncategory_balance: true\n", rubric_batch,
               [](const RewardInput& in) {
                 Pow3rOptions o;
                 o.eps = 0.1;
                 o.category_balance = true;
                 return pow3r_reward(in.criterion_scores.to(torch::kFloat64), rubric_weights(), rubric_mask(),
                                     in.group_ids, rubric_categories(), o);
               },
               nullptr});
  c.push_back({"openrs_pairwise", "min_score: 0.5\n",
               [] {
                 RewardInput in = base_batch();
                 // Row i, column j: S(i as A, j-th rollout of i's group as B). Groups: rows {0, 1} and {2, 3}.
                 in.extra["openrs_scores"] = f32({0, 2, -1, 0, 0, 0.2f, 0.3f, 0}).view({4, 2});
                 in.extra["openrs_pvr"] = torch::tensor({0, 0, 0, 0, 0, 0, 0, 0}, torch::kLong).view({4, 2});
                 return in;
               },
               [](const RewardInput& in) {
                 OpenRsOptions o;
                 o.min_score = 0.5;
                 const Tensor s = in.extra.at("openrs_scores").to(torch::kFloat64);
                 // Group order: dense index by sorted id -> id 3 (rows 2, 3) first, then id 7 (rows 0, 1).
                 const Tensor fwd = torch::stack({s.slice(0, 2, 4), s.slice(0, 0, 2)});  // [2, 2, 2]
                 const Tensor rr = openrs_round_robin_reward(openrs_bidirectional(fwd, fwd.transpose(1, 2), o));
                 return torch::cat({rr[1], rr[0]});
               },
               nullptr});
  c.push_back({"carr", "alpha: 0.3\nmode: only_positive\nrubric_norm: group_max\nbfs: true\noutcome: prior.accuracy\n"
                       "rubric_from: meta\n",
               [] {
                 RewardInput in = base_batch();
                 const json judged = {{"rubrics",
                                       {json{{"entities", {0, 1}}, {"supported", true}},
                                        json{{"entities", {1, 2}}, {"supported", true}},
                                        json{{"entities", {3}}, {"supported", true}}}}};
                 in.metadata = {json{{"carr_rubric", judged}}, json{{"carr_rubric", 0.6}}, json{{"carr_rubric", 0.5}},
                                json{{"carr_rubric", 0.1}}};
                 return in;
               },
               [](const RewardInput& in) {
                 CarrScoreOptions so;
                 CgrpoOptions co;
                 co.alpha = 0.3;
                 co.mode = "only_positive";
                 co.rubric_norm = "group_max";
                 const double r0 = carr_rubric_score({{{0, 1}, true, true}, {{1, 2}, true, true}, {{3}, true, true}}, true,
                                                     true, so);  // 2/3
                 return cgrpo_combine(acc64(in), f64({r0, 0.6, 0.5, 0.1}), in.group_ids, co);
               },
               nullptr});
  c.push_back({"cmo", "temperature: 0.5\nbatch_standardize: true\n",
               [] {
                 RewardInput in = base_batch();
                 in.criterion_scores = f32({1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0}).view({4, 3});
                 return in;
               },
               [](const RewardInput& in) {
                 CmoOptions o;
                 return cmo_advantages(in.criterion_scores.to(torch::kFloat64), in.group_ids, o).advantages;
               },
               nullptr});
  c.push_back({"diversity", "weight: 0.2\nmetrics: [lex, ent, dist]\naccuracy: prior.accuracy\n",
               [] {
                 return base_batch({"the cat the dog", "Why? Because. It is so!", "", "one two three four five six"});
               },
               [](const RewardInput& in) {
                 DiversityOptions o;
                 o.weight = 0.2;
                 o.metrics = {"lex", "ent", "dist"};
                 std::vector<double> d;
                 for (const auto& r : in.responses) d.push_back(diversity_score(diversity_metrics(r, o), o));
                 return diversity_reward(acc64(in), f64(d), o);
               },
               nullptr});
  c.push_back({"uncertainty", "scale: 2.0\nr2: extra.second\nlogits1: extra.l1\nlogits2: extra.l2\n",
               [] {
                 RewardInput in = base_batch();
                 in.extra["second"] = f32({1.5f, 1.0f, 0.5f, 3.0f});
                 in.extra["l1"] = f32({2, 0, 1, 1, 0, 3, -1, 2}).view({4, 2});
                 in.extra["l2"] = f32({0, 0, 1, 1, 1, 1, 2, -1}).view({4, 2});
                 return in;
               },
               [](const RewardInput& in) {
                 const Tensor u = ctrlu_kl_uncertainty(in.extra.at("l1").to(torch::kFloat64),
                                                       in.extra.at("l2").to(torch::kFloat64), 2.0);
                 return ctrlu_weighted_reward(rm64(in), in.extra.at("second").to(torch::kFloat64), u);
               },
               nullptr});
  c.push_back({"directional", "angle_deg: -15\n",
               [] {
                 RewardInput in = base_batch();
                 in.criterion_scores = f32({70, 40, 50, 50, 90, 10, 0, 100}).view({4, 2});
                 return in;
               },
               [](const RewardInput& in) {
                 DpaOptions o;
                 o.angle_deg = -15;
                 return dpa_reward(in.criterion_scores.to(torch::kFloat64), dpa_direction(o));
               },
               nullptr});
  c.push_back({"oni", "c_ext: 0.1\nc_llm: 0.4\nbeta: 3\n",
               [] {
                 RewardInput in = base_batch();
                 in.extra["env_rewards"] = f32({0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0}).view({4, 3});
                 in.extra["intrinsic_rewards"] = f32({1, 1, 1, 0, 1, 0, 1, 1, 1, 1, 0, 1}).view({4, 3});
                 in.extra["message_ids"] = torch::tensor({5, 5, 6, 1, 2, 3, 4, 4, 4, 9, 8, 9}, torch::kLong).view({4, 3});
                 in.step_mask = torch::tensor({1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1}, torch::kBool).view({4, 3});
                 return in;
               },
               [](const RewardInput& in) {
                 OniOptions o;
                 o.c_ext = 0.1;
                 o.c_llm = 0.4;
                 Tensor start = torch::zeros({4, 3}, torch::kBool);
                 start.select(1, 0).fill_(true);
                 const Tensor counts = oni_episode_counts(in.extra.at("message_ids"), start, in.step_mask);
                 const Tensor r = oni_reward(in.extra.at("env_rewards").to(torch::kFloat64),
                                             in.extra.at("intrinsic_rewards").to(torch::kFloat64), counts, o);
                 return r.masked_fill(in.step_mask.logical_not(), 0.0).sum(1);
               },
               nullptr});
  const auto retro_batch = [] {
    RewardInput in = base_batch();
    in.extra["subtasks_completed"] = f32({2, 1, 0, 3});
    in.extra["subtasks_total"] = f32({5, 4, 0, 3});
    in.metadata = {json{{"task_id", "t7"}}, json{{"task_id", "t7"}}, json{{"task_id", "t3"}}, json{{"task_id", "t3"}}};
    return in;
  };
  c.push_back({"retro_progress", "coef: 0.5\ngroup_relative: true\nexternal: rm_scores\nsuccess: prior.accuracy\n", retro_batch,
               [](const RewardInput& in) {
                 RetroOptions o;
                 o.coef = 0.5;
                 o.group_relative = true;
                 const Tensor phi = retro_potential(acc64(in), in.extra.at("subtasks_completed"),
                                                    in.extra.at("subtasks_total"), {}, o);
                 return retro_reward(rm64(in), retro_intrinsic(phi, torch::zeros({4}, torch::kFloat64), in.group_ids, o), o);
               },
               [retro_batch] {
                 RewardInput in = retro_batch();
                 in.prior["accuracy"] = f32({0, 0, 0, 1});
                 in.extra["subtasks_completed"] = f32({4, 3, 1, 3});
                 return in;
               }});
  const auto cost_batch = [] {
    RewardInput in = base_batch();
    in.extra["danger"] = f32({0, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 0}).view({4, 3});
    in.extra["spill"] = f32({1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0}).view({4, 3});
    return in;
  };
  c.push_back({"cost_channels",
               "cost_channels:\n  - {name: danger, lambda: 0.5, lagrangian: true, lr: 0.1, budget: 0.25}\n"
               "  - {name: spill, reduce: mean, lambda: 2.0}\ntask: prior.accuracy\n",
               cost_batch,
               [](const RewardInput& in) {
                 CostChannelOptions d, s;
                 d.name = "danger";
                 d.lambda = 0.5;
                 d.lagrangian = true;
                 d.lr = 0.1;
                 d.budget = 0.25;
                 s.name = "spill";
                 s.reduce = "mean";
                 s.lambda = 2.0;
                 const Tensor r = cost_penalized_reward(
                     acc64(in), episode_cost(in.extra.at("danger").to(torch::kFloat64), {}, d), 0.5);
                 return cost_penalized_reward(r, episode_cost(in.extra.at("spill").to(torch::kFloat64), {}, s), 2.0);
               },
               [cost_batch] {
                 RewardInput in = cost_batch();
                 in.extra["danger"] = torch::ones({4, 3}, torch::kFloat32);
                 return in;
               }});
  return c;
}

// ---- group C -------------------------------------------------------------------------------------------

const std::vector<std::vector<std::string>> kJudgements = {
    {"\\boxed{1}", "\\boxed{0.5}", "\\boxed{1}"}, {"score: 0", "no verdict"}, {"\\boxed{0.5}"}, {"1", "1", "0"}};

std::vector<Case> group_c_cases() {
  std::vector<Case> c;
  c.push_back({"prm", "aggregate: prod\n",
               [] {
                 RewardInput in = base_batch();
                 in.step_scores = f32({0.9f, 0.6f, 0.95f, 0.5f, 0.5f, 0.1f, 0.8f, 0.2f, 1.0f, 0.7f, 0.7f, 0.7f}).view({4, 3});
                 in.step_ends = torch::tensor({2, 5, 9, 3, 7, -1, 1, 2, 3, 0, 1, -1}, torch::kLong).view({4, 3});
                 return in;
               },
               [](const RewardInput& in) {
                 return prm_aggregate(in.step_scores.to(torch::kFloat64), in.step_ends >= 0, "prod");
               },
               nullptr});
  c.push_back({"dataprm", "beta: 0.5\naggregate: mean\noutcome: prior.accuracy\n",
               [] {
                 RewardInput in = base_batch();
                 for (const auto& j : kJudgements) in.metadata.push_back(json{{"step_judgements", j}});
                 return in;
               },
               [](const RewardInput& in) {
                 DataPrmOptions o;
                 Tensor scores = torch::zeros({4, 3}, torch::kFloat64);
                 Tensor mask = torch::zeros({4, 3}, torch::kBool);
                 for (size_t i = 0; i < kJudgements.size(); ++i)
                   for (size_t j = 0; j < kJudgements[i].size(); ++j) {
                     scores[i][j] = dataprm_parse_score(kJudgements[i][j], o);
                     mask[i][j] = true;
                   }
                 return dataprm_reward(acc64(in), scores, mask, o);
               },
               nullptr});
  c.push_back({"info_gain", "final_score: f1\nanswer_key: gold\n",
               [] {
                 RewardInput in = base_batch({"\\boxed{the cat sat}", "a dog", "\\boxed{Paris}", "xyz"});
                 in.metadata = {json{{"gold", "cat sat"}}, json{{"gold", "the dog"}}, json{{"gold", {"x", "paris"}}},
                                json{{"gold", "abc"}}};
                 in.extra["gold_logprobs"] =
                     torch::log(f32({0.2f, 0.4f, 0.5f, 0.8f, 0.9f, 0.9f, 0.1f, 0.1f, 0.3f, 0.3f, 0.2f, 0.6f,
                                     0.5f, 0.5f, 0.6f, 0.6f, 0.7f, 0.7f, 0.4f, 0.9f, 0.2f, 0.9f, 0.1f, 0.9f}))
                         .view({4, 3, 2});
                 in.extra["gold_mask"] = torch::tensor({1, 1, 1, 0, 1, 1, 1, 1}, torch::kBool).view({4, 2});
                 in.step_mask = torch::tensor({1, 1, 1, 1, 1, 1, 1, 0}, torch::kBool).view({4, 2});
                 return in;
               },
               [](const RewardInput& in) {
                 const Tensor p = info_gain_probs(in.extra.at("gold_logprobs").to(torch::kFloat64), in.extra.at("gold_mask"));
                 const Tensor outcome = f64({token_f1("the cat sat", "cat sat"), token_f1("a dog", "the dog"),
                                             std::max(token_f1("Paris", "x"), token_f1("Paris", "paris")),
                                             token_f1("xyz", "abc")});
                 return info_gain_turn_rewards(p, in.step_mask, outcome).sum(1);
               },
               nullptr});
  return c;
}

// ---- the environment's outcome ------------------------------------------------------------------------

std::vector<Case> env_cases() {
  std::vector<Case> c;
  // Episode returns 1, 0.5, 0.25, 2; the third episode's environment failed: failed_reward -1.
  c.push_back({"env", "failed_reward: -1\n",
               [] {
                 RewardInput in = base_batch();
                 in.extra["env_return"] = f32({1.f, 0.5f, 0.25f, 2.f});
                 in.extra["success"] = f32({1.f, 0.f, 1.f, 1.f});
                 in.extra["env_failed"] = f32({0.f, 0.f, 1.f, 0.f});
                 return in;
               },
               [](const RewardInput&) { return f64({1.0, 0.5, -1.0, 2.0}); },
               nullptr});
  return c;
}

std::vector<Case> all_cases() {
  std::vector<Case> c = group_a_cases();
  for (auto& x : env_cases()) c.push_back(std::move(x));
  for (auto& x : group_b_cases()) c.push_back(std::move(x));
  for (auto& x : group_c_cases()) c.push_back(std::move(x));
  return c;
}

void expect_equal_rewards(const RewardOutput& out, const Tensor& expected, const std::string& name) {
  ASSERT_TRUE(out.rewards.defined()) << name;
  EXPECT_EQ(out.rewards.scalar_type(), torch::kFloat32) << name;
  ASSERT_EQ(out.rewards.sizes(), expected.sizes()) << name;
  EXPECT_TRUE(torch::equal(out.rewards, expected.to(torch::kFloat32)))
      << name << ": got " << out.rewards << " expected " << expected;
}

TEST(RegisterRewardSchemes, EveryRegisteredNameHasACaseAndADescription) {
  std::set<std::string> cased;
  for (const auto& c : all_cases()) EXPECT_TRUE(cased.insert(c.name).second) << "duplicate case " << c.name;
  std::set<std::string> registered;
  for (const auto& n : scheme_registry().names()) {
    registered.insert(n);
    EXPECT_FALSE(scheme_registry().get(n).description.empty()) << n;
  }
  EXPECT_EQ(cased, registered);
  EXPECT_EQ(registered.size(), 37u);
  // Beside the verifiers, without name clashes (Registry::add throws on a duplicate).
  EXPECT_EQ(full_registry().size(), registered.size() + 8u);
}

TEST(RegisterRewardSchemes, EverySchemeScoresLikeItsPureFunction) {
  for (const auto& c : all_cases()) {
    SCOPED_TRACE(c.name);
    std::unique_ptr<RewardScheme> s;
    ASSERT_NO_THROW(s = build(c.name, c.yaml)) << testing::error_of([&] { build(c.name, c.yaml); });
    const RewardInput in = c.input();
    in.check();
    const Tensor want = c.expected(in);
    ASSERT_TRUE(torch::isfinite(want).all().item<bool>()) << c.name << " expected " << want;
    const RewardOutput out = s->score(in);
    expect_equal_rewards(out, want, c.name);
    // Not a constant: the batch is chosen so that the rewards differ between samples.
    EXPECT_GT(want.max().item<double>() - want.min().item<double>(), 1e-6) << c.name << ": " << want;
    for (const auto& [k, v] : out.metrics) EXPECT_EQ(k.rfind(c.name == "cost_channels" ? "cost/" : c.name + "/", 0), 0u) << k;
  }
}

TEST(RegisterRewardSchemes, UnknownParamIsAConfigErrorWithFileLineAndPath) {
  for (const auto& c : all_cases()) {
    const std::string yaml = c.yaml + "bogus_param: 1\n";
    const int64_t line = std::count(c.yaml.begin(), c.yaml.end(), '\n') + 1;
    const std::string e = testing::error_of([&] { build(c.name, yaml); });
    EXPECT_NE(e.find("params.yaml:" + std::to_string(line) + ": params.bogus_param: unknown key"), std::string::npos)
        << c.name << ": " << e;
  }
  // Ill-typed and out-of-range values and a malformed signal spec, each at its line.
  const std::string e = testing::error_of([] { build("par", "k: -1\nmissing_refs: sometimes\ninput: rm\n"); });
  EXPECT_NE(e.find("params.yaml:1: params.k: must be >"), std::string::npos) << e;
  EXPECT_NE(e.find("params.yaml:2: params.missing_refs:"), std::string::npos) << e;
  EXPECT_NE(e.find("params.yaml:3: params.input: 'rm' is not an input signal"), std::string::npos) << e;
  const std::string e2 = testing::error_of([] { build("cost_channels", "task: none\n"); });
  EXPECT_NE(e2.find("params.cost_channels: expected at least one cost channel"), std::string::npos) << e2;
}

TEST(RegisterRewardSchemes, StatefulSchemesRoundTripTheirState) {
  const std::set<std::string> stateful = {"meanstd", "clip", "minmax", "shaping", "retro_progress", "cost_channels"};
  for (const auto& c : all_cases()) {
    SCOPED_TRACE(c.name);
    auto s = build(c.name, c.yaml);
    EXPECT_EQ(s->stateful(), stateful.count(c.name) == 1);
    if (!s->stateful()) {
      const RewardInput in = c.input();
      EXPECT_TRUE(torch::equal(s->score(in).rewards, s->score(in).rewards));  // no hidden state
      continue;
    }
    ASSERT_TRUE(c.input_b) << "stateful case without a second batch";
    const RewardInput a = c.input(), b = c.input_b();
    s->score(a);
    RewardState st;
    s->save_state(st);
    ASSERT_FALSE(st.empty());
    const Tensor first = s->score(b).rewards;
    s->load_state(st);
    const Tensor again = s->score(b).rewards;
    EXPECT_TRUE(torch::equal(first, again)) << first << " vs " << again;
    // A fresh instance restored from the state scores like the original; without it, differently.
    auto fresh = build(c.name, c.yaml);
    fresh->load_state(st);
    EXPECT_TRUE(torch::equal(fresh->score(b).rewards, first));
    auto cold = build(c.name, c.yaml);
    EXPECT_FALSE(torch::equal(cold->score(b).rewards, first)) << "the state does not change the reward";
    // The saved values themselves survive a round trip bit for bit.
    RewardState st2;
    fresh = build(c.name, c.yaml);
    fresh->load_state(st);
    fresh->save_state(st2);
    ASSERT_EQ(st2.size(), st.size());
    for (const auto& [k, t] : st) EXPECT_TRUE(torch::equal(st2.at(k), t)) << k;
  }
  // A missing key is an error naming it.
  auto s = build("meanstd", "zero_std: floor\n");
  const std::string e = testing::error_of([&] { s->load_state(RewardState{}); });
  EXPECT_NE(e.find("missing key 'count'"), std::string::npos) << e;
}

TEST(RegisterRewardSchemes, MissingInputsNameTheSchemeAndTheInput) {
  RewardInput in = base_batch();
  in.rm_scores = Tensor();
  EXPECT_NE(testing::error_of([&] { build("meanstd", "zero_std: floor\ninput: rm_scores\n")->score(in); }).find("reward scheme 'meanstd' (parameter input = rm_scores): the input is not set"),
            std::string::npos);
  EXPECT_NE(testing::error_of([&] { build("arlcp", "accuracy: prior.correct\n")->score(base_batch()); })
                .find("reward scheme 'arlcp' (parameter accuracy = prior.correct): no earlier reward component named 'correct' (earlier components: accuracy)"),
            std::string::npos);
  EXPECT_NE(testing::error_of([&] { build("par", "k: 1\ninput: rm_scores\n")->score(base_batch()); }).find("no reference rewards"),
            std::string::npos);
  EXPECT_NE(testing::error_of([&] { build("truthrl", "variant: binary\n")->score(base_batch()); })
                .find("reward scheme 'truthrl' needs per-sample metadata with key 'gold_answers'"),
            std::string::npos);
  EXPECT_NE(testing::error_of([&] { build("ssl", "alpha: 0.5\nsuccess: prior.accuracy\n")->score(base_batch()); }).find("reward scheme 'ssl' needs RewardInput::extra['"),
            std::string::npos);
  EXPECT_NE(testing::error_of([&] { build("cmo", "temperature: 1\n")->score(base_batch()); }).find("reward scheme 'cmo' needs RewardInput::criterion_scores"),
            std::string::npos);
  in = base_batch();
  in.response_lengths = Tensor();
  EXPECT_NE(testing::error_of([&] { build("dapo_soft", "factor: 1\n")->score(in); }).find("reward scheme 'dapo_soft' needs RewardInput::response_lengths"),
            std::string::npos);
}

// Worked examples of the spec through the registry (atol 1e-4 as the spec's digits).
TEST(RegisterRewardSchemes, SpecWorkedExamplesThroughTheRegistry) {
  // A1: r = 2, refs [1, 3], k = 1 -> (σ(1) + σ(−1))/2 = 0.5; r = 1, refs [0] -> σ(1) = 0.7310586.
  RewardInput in = testing::make_input({"x", "y"}, {json{{"ref_rewards", {1.0, 3.0}}}, json{{"ref_rewards", {0.0}}}});
  in.rm_scores = f32({2.0f, 1.0f});
  auto par = build("par", "k: 1.0\ninput: rm_scores\n")->score(in).rewards;
  EXPECT_NEAR(par[0].item<float>(), 0.5, 1e-4);
  EXPECT_NEAR(par[1].item<float>(), 0.7310586, 1e-4);
  // A2 meanstd, first batch [1, 2, 3] -> [−1.2247449, 0, 1.2247449]; minmax [1, 2, 5] -> [0, 0.25, 1].
  RewardInput three = testing::make_input({"a", "b", "c"}, {});
  three.rm_scores = f32({1, 2, 3});
  auto ms = build("meanstd", "zero_std: floor\ninput: rm_scores\n")->score(three).rewards;
  EXPECT_NEAR(ms[0].item<float>(), -1.2247449, 1e-4);
  EXPECT_NEAR(ms[2].item<float>(), 1.2247449, 1e-4);
  three.rm_scores = f32({1, 2, 5});
  auto mm = build("minmax", "range_floor: 1e-8\ninput: rm_scores\n")->score(three).rewards;
  EXPECT_NEAR(mm[1].item<float>(), 0.25, 1e-4);
  // A5b: L_max 20480, L_cache 4096: L = 16000 -> 0, 18432 -> −0.5, 20480 -> −1.
  three.response_lengths = torch::tensor({16000, 18432, 20480}, torch::kLong);
  auto dapo = build("dapo_soft", "max_len: 20480\n")->score(three).rewards;
  EXPECT_NEAR(dapo[0].item<float>(), 0.0, 1e-4);
  EXPECT_NEAR(dapo[1].item<float>(), -0.5, 1e-4);
  EXPECT_NEAR(dapo[2].item<float>(), -1.0, 1e-4);
  // A5 ARLCP, one prompt, correct responses (n_ref, L) = (20, 1000), (40, 2000), (30, 3000): the third
  // gets 1 − 0.05·σ(0) − 0.15·σ(1) = 0.8653412, the first 1 − 0.2·σ(−1) = 0.9462117.
  const auto words = [](int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += "hmm ";
    return s + "</think>\\boxed{1}";
  };
  RewardInput ar = testing::make_input({words(20), words(40), words(30)}, {});
  ar.group_ids = torch::zeros({3}, torch::kLong);
  ar.response_lengths = torch::tensor({1000, 2000, 3000}, torch::kLong);
  ar.prior["accuracy"] = torch::ones({3});
  auto arlcp = build("arlcp", "w_total: 0.2\naccuracy: prior.accuracy\n")->score(ar).rewards;
  EXPECT_NEAR(arlcp[2].item<float>(), 0.8653412, 1e-4);
  EXPECT_NEAR(arlcp[0].item<float>(), 0.9462117, 1e-4);
  // B7: θ = −15°, r = (70, 40) -> 57.26205.
  RewardInput d = testing::make_input({"a"}, {});
  d.criterion_scores = f32({70, 40}).view({1, 2});
  EXPECT_NEAR(build("directional", "angle_deg: -15\n")->score(d).rewards[0].item<float>(), 57.26205, 1e-3);
  // B9: R_task = 1, bits [0, 1, 0, 1], λ = 0.5 -> 0.
  RewardInput e = testing::make_input({"a"}, {});
  e.prior["accuracy"] = f32({1});
  e.extra["danger"] = f32({0, 1, 0, 1}).view({1, 4});
  EXPECT_NEAR(build("cost_channels", "cost_channels: [{name: danger, lambda: 0.5}]\ntask: prior.accuracy\n")
                  ->score(e).rewards[0].item<float>(),
              0.0, 1e-6);
}

// The pipeline with a centred PAR transform reads the references; TruthRL's reasoning-enhanced variant
// adds the weighted reasoning score of correct answers.
TEST(RegisterRewardSchemes, ShapingPipelineAndTruthRlVariants) {
  RewardInput in = with_meta_refs(base_batch());
  auto s = build("shaping", "shaping: par\nlength_penalty: {enabled: false}\npar: {k: 2.0}\ninput: rm_scores\n");
  EXPECT_FALSE(s->stateful());
  ParOptions po = par_preset("par");
  po.k = 2.0;
  expect_equal_rewards(s->score(in), par_reward(rm64(in), meta_refs_values(), meta_refs_mask(), po), "shaping: par");
  in.response_lengths = Tensor();
  EXPECT_NE(testing::error_of([&] { build("shaping", "shaping: vanilla\ninput: rm_scores\n")->score(in); })
                .find("reward scheme 'shaping' needs RewardInput::response_lengths"),
            std::string::npos);

  RewardInput t = base_batch({"\\boxed{Paris}", "\\boxed{Lyon}", "\\boxed{paris}", "none"});
  for (int i = 0; i < 4; ++i) t.metadata.push_back(json{{"gold_answers", "paris"}});
  t.extra["think"] = f32({1, 1, 0, 1});
  auto tr = build("truthrl", "reasoning_weight: 0.5\nreasoning: extra.think\nuse_judge: false\n");
  TruthRlOptions o;
  o.reasoning_weight = 0.5;
  // verdicts: correct, hallucination, correct, format failure -> [1, −1, 1, −1] + 0.5·think·correct
  const Tensor want = truthrl_reasoning_enhanced(f64({1, -1, 1, -1}), f64({1, 1, 0, 1}),
                                                 torch::tensor({1, 0, 1, 0}, torch::kBool), o);
  expect_equal_rewards(tr->score(t), want, "truthrl reasoning");
  EXPECT_FLOAT_EQ(tr->score(t).rewards[0].item<float>(), 1.5f);
}

// Dense placement: per-step values land on the step-end tokens and sum to the aggregate reward.
TEST(RegisterRewardSchemes, DenseSchemesPutStepRewardsOnStepEndTokens) {
  RewardInput in = testing::make_input({"a", "b"}, {});
  in.step_scores = f32({0.9f, 0.6f, 0.95f, 0.5f, 0.25f, 0.f}).view({2, 3});
  in.step_ends = torch::tensor({1, 4, 5, 0, 3, -1}, torch::kLong).view({2, 3});
  in.response_mask = torch::ones({2, 6}, torch::kBool);
  const RewardOutput prm = build("prm", "dense: true\ndifferenced: true\n")->score(in);
  EXPECT_TRUE(torch::equal(prm.rewards, torch::zeros({2})));
  // Row 0: p = [0.9, 0.6, 0.95] differenced from p_0 = 0 -> [0.9, −0.3, 0.35] on tokens 1, 4, 5.
  // Row 1: p = [0.5, 0.25] -> [0.5, −0.25] on tokens 0, 3.
  const Tensor want = f32({0, 0.9f, 0, 0, -0.3f, 0.35f, 0.5f, 0, 0, -0.25f, 0, 0}).view({2, 6});
  EXPECT_TRUE(torch::allclose(prm.token_rewards, want, 1e-6, 1e-6)) << prm.token_rewards;
  // G-RA: outcome 1 (gate open) -> step rewards on their tokens, the outcome added on the last step.
  in.metadata = {json{{"outcome", "pass"}}, json{{"outcome", "no_submit"}}};
  const RewardOutput gra = build("gated", "dense: true\n")->score(in);
  const Tensor want_g = f32({0, 0.9f, 0, 0, 0.6f, 1.95f, 0, 0, 0, -1.f, 0, 0}).view({2, 6});
  EXPECT_TRUE(torch::allclose(gra.token_rewards, want_g, 1e-6, 1e-6)) << gra.token_rewards;
  const RewardOutput sum = build("gated", "dense: false\n")->score(in);
  EXPECT_TRUE(torch::allclose(gra.token_rewards.sum(1), sum.rewards, 1e-6, 1e-6));
  // Dense without token tensors is an error naming the scheme.
  in.response_mask = Tensor();
  EXPECT_NE(testing::error_of([&] { build("prm", "dense: true\n")->score(in); }).find("reward scheme 'prm' (dense: true) needs"),
            std::string::npos);
}

config::RewardSection read_section(const std::string& yaml, const RewardRegistry& reg) { return testing::read_section(yaml, &reg); }

// A verifier, a shaping of its reward that reads it through `prior`, a length penalty and a
// running normalisation, from one YAML reward: section, scored and checkpointed end to end.
TEST(RegisterRewardSchemes, CompositeOfVerifierAndShapingFromYaml) {
  const RewardRegistry reg = full_registry();
  const std::string yaml = R"(reward:
  components:
    - scheme: math_answer
      name: accuracy
      weight: 0.0
    - scheme: arlcp
      weight: 1.0
      params:
        accuracy: prior.accuracy
        format_gate: false
    - scheme: dapo_soft
      name: overlong
      weight: 1.0
      params: {max_len: 300, cache_len: 100}
    - scheme: meanstd
      name: norm_acc
      weight: 0.5
      params:
        input: prior.accuracy
)";
  auto c = build_composite_reward(read_section(yaml, reg), reg);
  ASSERT_EQ(c->components().size(), 4u);
  EXPECT_TRUE(c->stateful());
  const json g = json{{"answer", "4"}};
  RewardInput in = testing::make_input({"wait \\boxed{4}", "\\boxed{4}", "\\boxed{5}", "hmm but \\boxed{4}"}, {g, g, g, g});
  in.group_ids = torch::tensor({0, 0, 1, 1}, torch::kLong);
  in.response_lengths = torch::tensor({100, 250, 400, 300}, torch::kLong);
  const RewardOutput out = c->score(in);
  // By hand with the pure functions: accuracy [1, 1, 0, 1].
  const Tensor acc = f64({1, 1, 0, 1});
  ArlcpOptions ao;
  const Tensor nref = f64({1, 0, 0, 2});
  const Tensor arlcp = arlcp_reward(nref, f64({100, 250, 400, 300}), acc, in.group_ids, ao);
  DapoOverlongOptions dopt;
  dopt.max_len = 300;
  dopt.cache_len = 100;
  const Tensor dapo = dapo_overlong_penalty(f64({100, 250, 400, 300}), dopt);
  RunningMeanStd st;
  st.update(acc);
  const Tensor norm = meanstd_reward(acc, st, MeanStdOptions{});
  const Tensor want = (arlcp.to(torch::kFloat32) + dapo.to(torch::kFloat32)) + 0.5f * norm.to(torch::kFloat32);
  EXPECT_TRUE(torch::allclose(out.rewards, want, 1e-6, 1e-6)) << out.rewards << " vs " << want;
  EXPECT_TRUE(torch::equal(out.detail.at("arlcp"), arlcp.to(torch::kFloat32)));
  EXPECT_TRUE(out.detail.count("arlcp/reflections"));
  EXPECT_TRUE(out.metrics.count("reward/norm_acc/meanstd/running_mean"));
  EXPECT_TRUE(out.metrics.count("reward/overlong/dapo_soft/penalized_frac"));
  // Checkpoint: the composite namespaces the running statistics under the component name.
  RewardState state;
  c->save_state(state);
  EXPECT_TRUE(state.count("norm_acc/count") && state.count("norm_acc/mean") && state.count("norm_acc/m2"));
  auto c2 = build_composite_reward(read_section(yaml, reg), reg);
  c2->load_state(state);
  EXPECT_TRUE(torch::equal(c2->score(in).rewards, c->score(in).rewards));
  // A params error of a scheme component is reported at load with file:line and path.
  const std::string bad = "reward:\n  components:\n    - scheme: lsc\n      params:\n        quantil: 0.8\n";
  const std::string e = testing::error_of([&] { read_section(bad, reg); });
  EXPECT_NE(e.find("r.yaml:5: reward.components.0.params.quantil: unknown key"), std::string::npos) << e;
}

}  // namespace
}  // namespace keel::rewards
