// Registry glue of spec group B (composite and multi-signal aggregators): one RewardScheme subclass
// per scheme that fetches its inputs from the RewardInput, calls the scheme's pure function(s) and
// returns a RewardOutput, plus a factory reading the options through the Reader. The math lives in
// gated.h, rubric.h, openrs.h, carr.h, cmo.h, diversity.h, ctrl_u.h, dpa.h, oni.h, retro_agent.h and
// epo_safe.h; nothing here computes a reward.
//
// Naming (spec summary table -> registered name):
//   reward.scheme: gated | hierarchical | directional                -> the value;
//   reward.rubric.aggregation: explicit | pow3r | openrs_pairwise | carr
//       -> rubric (for "explicit": too generic for a global registry; B3's own `reward.scheme: rubric`),
//          pow3r, openrs_pairwise, carr;
//   advantage.estimator: cmo -> cmo (registered as a reward; see CmoScheme);
//   reward.diversity -> diversity;  reward.uncertainty -> uncertainty;  reward.cost_channels ->
//   cost_channels (section names);  reward.intrinsic.type: oni | retro_progress -> the value;
//   reward.intrinsic.model: hashing | classification | ranking -> oni's `model` param (default signal).
// "implicit" rubric aggregation (one holistic judge score) has no math to register: use the score.
//
// Contracts: each factory declares exactly what its score() requires (register_util.h). Where an
// input could come from one of several places, a parameter picks the one (hierarchical channels'
// `input`, openrs_pairwise `input_kind`, carr `rubric_from`), so the requirement is known at load.
#include <algorithm>

#include <torch/torch.h>

#include "rewards/schemes/carr.h"
#include "rewards/schemes/cmo.h"
#include "rewards/schemes/ctrl_u.h"
#include "rewards/schemes/diversity.h"
#include "rewards/schemes/dpa.h"
#include "rewards/schemes/epo_safe.h"
#include "rewards/schemes/gated.h"
#include "rewards/schemes/group_ops.h"
#include "rewards/schemes/oni.h"
#include "rewards/schemes/oni_models.h"
#include "rewards/schemes/openrs.h"
#include "rewards/schemes/register_util.h"
#include "rewards/schemes/retro_agent.h"
#include "rewards/schemes/rubric.h"
#include "base/error.h"
#include "base/reader.h"

namespace keel::rewards::glue {

namespace {

/// T of the batch's token tensors (response_mask, response_tokens or token_logprobs), or -1.
int64_t token_width(const RewardInput& in) {
  for (const torch::Tensor* t : {&in.response_mask, &in.response_tokens, &in.token_logprobs})
    if (t->defined() && t->dim() == 2) return t->size(1);
  return -1;
}

// ---- B1: G-RA gated accumulation ------------------------------------------------------------------------

/// r_high from the `outcome` signal — with meta.<key>, a sample's value may also be an outcome level
/// name (no_submit | empty_patch | fail | pass); r_low,t = step_scores [N, S] over the valid steps.
/// dense: the per-turn placement (spec C4) as token_rewards at step_ends, rewards 0.
class GatedScheme : public RewardScheme {
 public:
  GatedScheme(GraOptions o, std::string outcome, bool dense) : o_(o), outcome_(std::move(outcome)), dense_(dense) {}
  RewardOutput score(const RewardInput& in) override {
    const at::Tensor r_high = outcome(in);
    require_tensor(in, in.step_scores, "step_scores", "gated");
    const at::Tensor r_low = in.step_scores.detach().to(torch::kCPU, torch::kFloat64);
    const at::Tensor mask = step_mask_of(in, r_low, "gated");
    const at::Tensor total = gra_reward(r_high, r_low, mask, o_);
    RewardOutput out;
    if (dense_) {
      require_tensor(in, in.step_ends, "step_ends", "gated");
      const int64_t t = token_width(in);
      TORCH_CHECK(t > 0, "reward scheme 'gated' (dense: true) needs response_mask, response_tokens or token_logprobs [N, T]");
      const at::Tensor turns = gra_turn_rewards(r_high, r_low, mask, o_);  // [N, S]
      const at::Tensor ends = in.step_ends.detach().cpu().to(torch::kLong);
      TORCH_CHECK(ends.masked_select(mask).lt(t).all().item<bool>(), "reward scheme 'gated': step_ends beyond T = ", t);
      out = make_output(torch::zeros({in.size()}, torch::kFloat64));
      out.token_rewards = torch::zeros({in.size(), t}, torch::kFloat64)
                              .scatter_add_(1, ends.clamp_min(0), turns.masked_fill(mask.logical_not(), 0.0))
                              .to(torch::kFloat32);
    } else {
      out = make_output(total);
    }
    const at::Tensor open = o_.gated ? (r_high >= o_.threshold) : torch::ones_like(r_high, torch::kBool);
    out.detail["outcome"] = r_high.to(torch::kFloat32);
    out.metrics["gated/open_frac"] = mean_of(open.to(torch::kFloat64));
    return out;
  }

 private:
  at::Tensor outcome(const RewardInput& in) const {
    if (outcome_.rfind("meta.", 0) != 0) return fetch_vector(in, outcome_, "gated", "outcome");
    const std::string key = outcome_.substr(5);
    require_metadata(in, key, "gated");
    std::vector<double> v;
    for (int64_t i = 0; i < in.size(); ++i) {
      const auto& x = in.meta(i).at(key);
      if (x.is_string()) v.push_back(gra_outcome_value(x.get<std::string>(), o_));
      else {
        TORCH_CHECK(x.is_number(), "reward scheme 'gated': metadata '", key, "' of sample ", i,
                    " must be an outcome level name or a number, got ", x.dump());
        v.push_back(x.get<double>());
      }
    }
    return torch::tensor(v, torch::kFloat64);
  }

  GraOptions o_;
  std::string outcome_;
  bool dense_;
};

// ---- B2: hierarchical conditional gating (DAG of channels) --------------------------------------------------

/// Channel c's value from its `input` signal (default prior.<name>, the earlier component of that name).
class HierarchicalScheme : public RewardScheme {
 public:
  HierarchicalScheme(GatedOptions o, std::vector<std::string> inputs) : o_(std::move(o)), inputs_(std::move(inputs)) {}
  RewardOutput score(const RewardInput& in) override {
    std::vector<at::Tensor> cols;
    for (size_t c = 0; c < o_.channels.size(); ++c)
      cols.push_back(fetch_vector(in, inputs_[c], "hierarchical", "channels." + std::to_string(c) + ".input"));
    const at::Tensor values = torch::stack(cols, 1);  // [N, C]
    RewardOutput out = make_output(gated_reward(values, o_));
    const at::Tensor counted = gated_counted(values, o_);
    for (size_t c = 0; c < o_.channels.size(); ++c)
      out.metrics["hierarchical/" + o_.channels[c].name + "_counted_frac"] =
          mean_of(counted.select(1, static_cast<int64_t>(c)).to(torch::kFloat64));
    return out;
  }

 private:
  GatedOptions o_;
  std::vector<std::string> inputs_;  ///< signal spec of each channel
};

// ---- B3a/b: rubric explicit aggregation and POW3R -----------------------------------------------------------

/// Verdicts c [N, K] = criterion_scores (mask criterion_mask). Weights and categories per sample from
/// metadata[rubric_key]: a list whose j-th item describes column j — a number (weight), or an object
/// with "weight" and/or "category" (weight defaults to the category's weight); columns past the list
/// are masked out. Without that metadata: extra["criterion_weights"] [N, K], else weight 1.
struct RubricBatch {
  at::Tensor verdicts, weights, mask, categories;  // [N, K]; categories int64 (index of the name, -1 none)
};

RubricBatch rubric_batch(const RewardInput& in, const std::string& key, const RubricOptions& o, const std::string& scheme) {
  require_tensor(in, in.criterion_scores, "criterion_scores", scheme);
  RubricBatch b;
  b.verdicts = in.criterion_scores.detach().to(torch::kCPU, torch::kFloat64);
  TORCH_CHECK(b.verdicts.dim() == 2, "reward scheme '", scheme, "': criterion_scores must be [N, K], got ", b.verdicts.sizes());
  const int64_t n = b.verdicts.size(0), k = b.verdicts.size(1);
  b.mask = in.criterion_mask.defined() ? in.criterion_mask.detach().cpu().to(torch::kBool)
                                       : torch::ones({n, k}, torch::kBool);
  TORCH_CHECK(b.mask.sizes() == b.verdicts.sizes(), "reward scheme '", scheme, "': criterion_mask ", b.mask.sizes(),
              " != criterion_scores ", b.verdicts.sizes());
  b.categories = torch::full({n, k}, -1, torch::kLong);
  bool from_meta = static_cast<int64_t>(in.metadata.size()) == n;
  for (int64_t i = 0; from_meta && i < n; ++i) from_meta = in.meta(i).is_object() && in.meta(i).contains(key);
  if (!from_meta) {
    const at::Tensor w = extra_or_undefined(in, "criterion_weights", scheme);
    b.weights = w.defined() ? w.to(torch::kFloat64) : torch::ones({n, k}, torch::kFloat64);
    TORCH_CHECK(b.weights.sizes() == b.verdicts.sizes(), "reward scheme '", scheme, "': extra['criterion_weights'] ",
                b.weights.sizes(), " != criterion_scores ", b.verdicts.sizes());
    return b;
  }
  std::vector<std::string> names;
  for (const auto& [name, w] : o.category_weights) names.push_back(name);
  b.weights = torch::zeros({n, k}, torch::kFloat64);
  at::Tensor listed = torch::zeros({n, k}, torch::kBool);
  for (int64_t i = 0; i < n; ++i) {
    const auto& list = in.meta(i).at(key);
    TORCH_CHECK(list.is_array() && static_cast<int64_t>(list.size()) <= k, "reward scheme '", scheme, "': metadata '", key,
                "' of sample ", i, " must be a list of at most K = ", k, " criteria, got ", list.dump());
    for (size_t j = 0; j < list.size(); ++j) {
      const auto& c = list[j];
      const auto jj = static_cast<int64_t>(j);
      double w = 1.0;
      if (c.is_number()) {
        w = c.get<double>();
      } else {
        TORCH_CHECK(c.is_object(), "reward scheme '", scheme, "': rubric criterion ", j, " of sample ", i,
                    " must be a weight or an object with weight / category, got ", c.dump());
        if (c.contains("category")) {
          const std::string cat = c.at("category").get<std::string>();
          w = rubric_category_weight(cat, o);
          b.categories[i][jj] = std::find(names.begin(), names.end(), cat) - names.begin();
        }
        if (c.contains("weight")) w = c.at("weight").get<double>();
      }
      b.weights[i][jj] = w;
      listed[i][jj] = true;
    }
  }
  b.mask = b.mask.logical_and(listed);
  return b;
}

class RubricScheme : public RewardScheme {
 public:
  RubricScheme(RubricOptions o, std::string key) : o_(std::move(o)), key_(std::move(key)) {}
  RewardOutput score(const RewardInput& in) override {
    const RubricBatch b = rubric_batch(in, key_, o_, "rubric");
    RewardOutput out = make_output(rubric_explicit_reward(b.verdicts, b.weights, b.mask));
    out.metrics["rubric/criteria_per_sample"] = mean_of(b.mask.to(torch::kFloat64).sum(1));
    return out;
  }

 private:
  RubricOptions o_;
  std::string key_;
};

class Pow3rScheme : public RewardScheme {
 public:
  Pow3rScheme(RubricOptions ro, Pow3rOptions o, std::string key) : ro_(std::move(ro)), o_(o), key_(std::move(key)) {}
  RewardOutput score(const RewardInput& in) override {
    const RubricBatch b = rubric_batch(in, key_, ro_, "pow3r");
    const at::Tensor gid = in.group_ids.cpu();
    RewardOutput out = make_output(pow3r_reward(b.verdicts, b.weights, b.mask, gid, b.categories, o_));
    const at::Tensor alpha = pow3r_alpha(b.verdicts, b.mask, gid);
    out.metrics["pow3r/alpha_mean"] = mean_of(alpha.masked_select(b.mask));
    out.metrics["pow3r/static_reward_mean"] = mean_of(rubric_explicit_reward(b.verdicts, b.weights, b.mask));
    return out;
  }

 private:
  RubricOptions ro_;
  Pow3rOptions o_;
  std::string key_;
};

// ---- B3c: OpenRS pairwise round robin -------------------------------------------------------------------------

/// Rows of each group in batch order; every group must have the same size G.
std::vector<std::vector<int64_t>> group_members(const at::Tensor& group_ids, const std::string& scheme) {
  const GroupIndex g = make_group_index(group_ids.cpu());
  std::vector<std::vector<int64_t>> members(static_cast<size_t>(g.num_groups));
  for (int64_t i = 0; i < g.index.size(0); ++i) members[static_cast<size_t>(g.index[i].item<int64_t>())].push_back(i);
  for (const auto& m : members)
    TORCH_CHECK(m.size() == members.front().size(), "reward scheme '", scheme,
                "' needs groups of equal size, got sizes ", members.front().size(), " and ", m.size());
  return members;
}

/// The judge's scores of every ordered pair, row i against the j-th rollout of i's group (group
/// members in batch order): input_kind scores, aggregated S = extra["openrs_scores"] [N, G]; or
/// criteria, criterion level extra["openrs_types"] / ["openrs_signed"] [N, G, K] (+ ["openrs_mask"])
/// aggregated here. The backward score of (i, j) is the forward score of (j, i). Optional guardrail
/// extra["openrs_pvr"] [N, G].
class OpenRsScheme : public RewardScheme {
 public:
  OpenRsScheme(OpenRsOptions o, std::string kind) : o_(o), kind_(std::move(kind)) {}
  RewardOutput score(const RewardInput& in) override {
    const auto members = group_members(in.group_ids, "openrs_pairwise");
    const int64_t n = in.size(), g = static_cast<int64_t>(members.front().size());
    at::Tensor s;
    if (kind_ == "scores") {
      s = require_extra(in, "openrs_scores", "openrs_pairwise");
    } else {
      const at::Tensor types = require_extra(in, "openrs_types", "openrs_pairwise").to(torch::kLong);
      const at::Tensor signed_s = require_extra(in, "openrs_signed", "openrs_pairwise").to(torch::kFloat64);
      const at::Tensor mask = extra_or_undefined(in, "openrs_mask", "openrs_pairwise");
      TORCH_CHECK(types.dim() == 3 && types.size(1) == g && signed_s.sizes() == types.sizes(),
                  "reward scheme 'openrs_pairwise': extra openrs_types / openrs_signed must be [N, G, K] with G = ", g,
                  ", got ", types.sizes(), " and ", signed_s.sizes());
      const int64_t k = types.size(2);
      s = openrs_aggregate(types.reshape({n * g, k}), signed_s.reshape({n * g, k}),
                           mask.defined() ? mask.reshape({n * g, k}) : mask, o_)
              .view({n, g});
    }
    s = s.to(torch::kFloat64);
    TORCH_CHECK(s.dim() == 2 && s.size(1) == g, "reward scheme 'openrs_pairwise': pairwise scores must be [N, G] with G = ",
                g, ", got ", s.sizes());
    // fwd[b, i, j] = S(i, j) within group b; the backward score of (i, j) is fwd[b, j, i].
    const int64_t b = static_cast<int64_t>(members.size());
    at::Tensor fwd = torch::zeros({b, g, g}, torch::kFloat64);
    for (int64_t gi = 0; gi < b; ++gi)
      fwd[gi] = s.index_select(0, torch::tensor(members[static_cast<size_t>(gi)], torch::kLong));
    at::Tensor v = openrs_bidirectional(fwd, fwd.transpose(1, 2), o_);  // [B, G, G]
    if (at::Tensor pvr = extra_or_undefined(in, "openrs_pvr", "openrs_pairwise"); pvr.defined()) {
      at::Tensor p = torch::zeros({b, g, g}, torch::kLong);
      for (int64_t gi = 0; gi < b; ++gi)
        p[gi] = pvr.to(torch::kLong).index_select(0, torch::tensor(members[static_cast<size_t>(gi)], torch::kLong));
      v = openrs_guardrail(p, v);
    }
    const at::Tensor per_group = openrs_round_robin_reward(v);  // [B, G]
    at::Tensor rewards = torch::zeros({n}, torch::kFloat64);
    for (int64_t gi = 0; gi < b; ++gi)
      rewards.index_copy_(0, torch::tensor(members[static_cast<size_t>(gi)], torch::kLong), per_group[gi]);
    RewardOutput out = make_output(rewards);
    const at::Tensor off = (1 - torch::eye(g, torch::kLong)).to(torch::kBool).expand({b, g, g});
    out.metrics["openrs_pairwise/tie_frac"] = mean_of((v.masked_select(off) == 0).to(torch::kFloat64));
    return out;
  }

 private:
  OpenRsOptions o_;
  std::string kind_;  ///< scores | criteria
};

// ---- B3d: CaRR + C-GRPO --------------------------------------------------------------------------------------

/// Outcome o from the `outcome` signal (default: correct). Rubric score (rubric_from) from
/// extra[rubric_key] [N], or metadata[rubric_key] per sample: a number (already scored), or the judged
/// rubrics {rubrics: [{entities: [..], identified, supported}], mapping_ok, has_citations} scored here.
class CarrScheme : public RewardScheme {
 public:
  CarrScheme(CarrScoreOptions so, CgrpoOptions co, std::string outcome, std::string key, bool from_meta)
      : so_(so), co_(std::move(co)), outcome_(std::move(outcome)), key_(std::move(key)), from_meta_(from_meta) {}
  RewardOutput score(const RewardInput& in) override {
    const at::Tensor o = fetch_vector(in, outcome_, "carr", "outcome");
    at::Tensor rubric;
    if (!from_meta_) {
      rubric = require_extra(in, key_, "carr").to(torch::kFloat64);
    } else {
      require_metadata(in, key_, "carr");
      std::vector<double> v;
      for (int64_t i = 0; i < in.size(); ++i) v.push_back(rubric_of(in.meta(i).at(key_), i));
      rubric = torch::tensor(v, torch::kFloat64);
    }
    TORCH_CHECK(rubric.sizes() == o.sizes(), "reward scheme 'carr': rubric scores must be [N], got ", rubric.sizes());
    RewardOutput out = make_output(cgrpo_combine(o, rubric, in.group_ids.cpu(), co_));
    out.detail["rubric"] = rubric.to(torch::kFloat32);
    out.metrics["carr/rubric_mean"] = mean_of(rubric);
    return out;
  }

 private:
  double rubric_of(const nlohmann::json& j, int64_t i) const {
    if (j.is_number()) return j.get<double>();
    TORCH_CHECK(j.is_object() && j.contains("rubrics") && j.at("rubrics").is_array(), "reward scheme 'carr': metadata '",
                key_, "' of sample ", i, " must be a number or {rubrics: [...], mapping_ok, has_citations}, got ", j.dump());
    std::vector<CarrRubric> rubrics;
    for (const auto& r : j.at("rubrics")) {
      CarrRubric c;
      c.entities = r.at("entities").get<std::vector<int64_t>>();
      c.identified = r.value("identified", true);
      c.supported = r.value("supported", false);
      rubrics.push_back(std::move(c));
    }
    return carr_rubric_score(rubrics, j.value("mapping_ok", true), j.value("has_citations", true), so_);
  }

  CarrScoreOptions so_;
  CgrpoOptions co_;
  std::string outcome_, key_;
  bool from_meta_;
};

// ---- B4: CMO ----------------------------------------------------------------------------------------------------

/// CMO produces advantages, not rewards (the spec files it under advantage.estimator). Registered as
/// a reward so a run can select it today: the "reward" is the correlation-weighted, batch-standardised
/// advantage of the concept rewards in criterion_scores [N, K]; pair it with an estimator that does not
/// re-normalise (a later re-normalisation by group changes it).
class CmoScheme : public RewardScheme {
 public:
  explicit CmoScheme(CmoOptions o) : o_(o) {}
  RewardOutput score(const RewardInput& in) override {
    require_tensor(in, in.criterion_scores, "criterion_scores", "cmo");
    const CmoResult res =
        cmo_advantages(in.criterion_scores.detach().to(torch::kCPU, torch::kFloat64), in.group_ids.cpu(), o_);
    RewardOutput out = make_output(res.advantages);
    const at::Tensor w = res.weights.mean(0);
    for (int64_t k = 0; k < w.size(0); ++k) out.metrics["cmo/weight_" + std::to_string(k)] = w[k].item<double>();
    return out;
  }

 private:
  CmoOptions o_;
};

// ---- B5: MultiRole-R1 diversity -----------------------------------------------------------------------------------

class DiversityScheme : public RewardScheme {
 public:
  DiversityScheme(DiversityOptions o, std::string accuracy) : o_(std::move(o)), accuracy_(std::move(accuracy)) {}
  RewardOutput score(const RewardInput& in) override {
    const at::Tensor acc = fetch_vector(in, accuracy_, "diversity", "accuracy");
    std::vector<double> div;
    double sums[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (const auto& resp : in.responses) {
      const DiversityMetrics m = diversity_metrics(resp, o_);
      div.push_back(diversity_score(m, o_));
      const double vals[8] = {m.lex, m.ent, m.len, m.pat, m.adj, m.yule, m.dist, m.func};
      for (int i = 0; i < 8; ++i) sums[i] += vals[i];
    }
    const at::Tensor div_t = torch::tensor(div, torch::kFloat64);
    RewardOutput out = make_output(diversity_reward(acc, div_t, o_));
    out.detail["diversity"] = div_t.to(torch::kFloat32);
    const char* names[8] = {"lex", "ent", "len", "pat", "adj", "yule", "dist", "func"};
    const double nn = std::max<double>(1.0, static_cast<double>(in.size()));
    for (int i = 0; i < 8; ++i) out.metrics[std::string("diversity/") + names[i]] = sums[i] / nn;
    return out;
  }

 private:
  DiversityOptions o_;
  std::string accuracy_;
};

// ---- B6: Ctrl-U uncertainty weighting ----------------------------------------------------------------------------

/// Two evaluations r1, r2 of each response; u from their label logits [N, C] (kl_two_pass) or from
/// r1, r2 themselves (scalar_sq); reward r̄·exp(−u). The loss-side parts of ctrl_u.h (warm-up scale,
/// weighted reward-model loss) belong to reward-model training, not to scoring.
class UncertaintyScheme : public RewardScheme {
 public:
  UncertaintyScheme(CtrlUOptions o, std::string r1, std::string r2, std::string l1, std::string l2)
      : o_(std::move(o)), r1_(std::move(r1)), r2_(std::move(r2)), l1_(std::move(l1)), l2_(std::move(l2)) {}
  RewardOutput score(const RewardInput& in) override {
    const at::Tensor r1 = fetch_vector(in, r1_, "uncertainty", "r1");
    const at::Tensor r2 = fetch_vector(in, r2_, "uncertainty", "r2");
    const at::Tensor u = o_.method == "kl_two_pass"
                             ? ctrlu_kl_uncertainty(fetch_signal(in, l1_, "uncertainty", "logits1"),
                                                    fetch_signal(in, l2_, "uncertainty", "logits2"), o_.scale)
                             : ctrlu_scalar_uncertainty(r1, r2, o_.scale);
    TORCH_CHECK(u.sizes() == r1.sizes(), "reward scheme 'uncertainty': logits must be [N, C], giving u [N]; got u ", u.sizes());
    RewardOutput out = make_output(ctrlu_weighted_reward(r1, r2, u));
    out.detail["uncertainty"] = u.to(torch::kFloat32);
    out.metrics["uncertainty/u_mean"] = mean_of(u);
    return out;
  }

 private:
  CtrlUOptions o_;
  std::string r1_, r2_, l1_, l2_;
};

// ---- B7: DPA directional reward --------------------------------------------------------------------------------------

class DirectionalScheme : public RewardScheme {
 public:
  DirectionalScheme(DpaOptions o, std::string scores) : o_(std::move(o)), scores_(std::move(scores)), v_(dpa_direction(o_)) {}
  RewardOutput score(const RewardInput& in) override {
    const at::Tensor r = fetch_signal(in, scores_, "directional", "scores");
    TORCH_CHECK(r.dim() == 2 && r.size(1) == v_.size(0), "reward scheme 'directional': scores must be [N, k] with one column "
                "per attribute (k = ", v_.size(0), "), got ", r.sizes());
    RewardOutput out = make_output(dpa_reward(r, v_));
    for (int64_t k = 0; k < v_.size(0); ++k) out.metrics["directional/v_" + o_.attributes[static_cast<size_t>(k)]] = v_[k].item<double>();
    return out;
  }

 private:
  DpaOptions o_;
  std::string scores_;
  at::Tensor v_;  ///< [k]
};

// ---- B8a: ONI ----------------------------------------------------------------------------------------------------------

/// Per-step r_env [N, S] (an [N] signal is one step per sample). model: signal (the default) reads
/// r_int [N, S] and message ids [N, S] (the same id = the same message string) from signals; the
/// learned models (hashing | classification | ranking, oni_models.h) take the message strings
/// instead — `messages: response` (one step per sample, the response text) or `meta.<key>` (a string
/// or a list of strings per sample, step j's message; steps past the list are padding) — score
/// them, annotate new ones and train online; their state (labels, weights, Adam moments, running
/// statistics, sampler) is checkpointed. Episodes restart at extra[episode_start] (default: each row
/// is one episode). The reward is the masked sum over the steps.
class OniScheme : public RewardScheme {
 public:
  OniScheme(OniOptions o, std::string env, std::string intrinsic, std::string ids, std::string messages,
            OniModel model, std::unique_ptr<OniIntrinsic> learned)
      : o_(o),
        env_(std::move(env)),
        intrinsic_(std::move(intrinsic)),
        ids_(std::move(ids)),
        messages_(std::move(messages)),
        model_(model),
        learned_(std::move(learned)) {}
  RewardOutput score(const RewardInput& in) override {
    at::Tensor r_env = fetch_signal(in, env_, "oni", "env");
    if (r_env.dim() == 1) r_env = r_env.unsqueeze(1);
    TORCH_CHECK(r_env.dim() == 2, "reward scheme 'oni': env rewards must be [N] or [N, S], got ", r_env.sizes());
    at::Tensor mask = step_mask_of(in, r_env, "oni").clone();  // [N, S]; may be narrowed below, never the input's
    at::Tensor r_int, ids;
    std::map<std::string, double> metrics;
    if (model_ == OniModel::kSignal) {
      r_int = fetch_signal(in, intrinsic_, "oni", "intrinsic");
      if (r_int.dim() == 1) r_int = r_int.unsqueeze(1);
      if (o_.c_llm != 0.0) {
        ids = fetch_signal(in, ids_, "oni", "message_ids").to(torch::kLong);
        if (ids.dim() == 1) ids = ids.unsqueeze(1);
      }
    } else {
      TORCH_CHECK(learned_, "reward scheme 'oni': the learned intrinsic model was not built (config errors?)");
      const auto msgs = step_messages(in, r_env.size(1));
      std::vector<std::string> flat;
      std::map<std::string, int64_t> intern;
      ids = torch::full(r_env.sizes(), -1, torch::kLong);  // [N, S], one id per distinct message
      auto valid = mask.accessor<bool, 2>();
      auto id = ids.accessor<int64_t, 2>();
      for (int64_t i = 0; i < r_env.size(0); ++i)
        for (int64_t j = 0; j < r_env.size(1); ++j) {
          const auto& row = msgs[static_cast<size_t>(i)];
          if (j >= static_cast<int64_t>(row.size())) valid[i][j] = false;
          if (!valid[i][j]) continue;
          const std::string& m = row[static_cast<size_t>(j)];
          flat.push_back(m);
          id[i][j] = intern.emplace(m, static_cast<int64_t>(intern.size())).first->second;
        }
      const at::Tensor r_valid = learned_->step(flat, metrics);  // [valid steps]
      r_int = torch::zeros(r_env.sizes(), torch::kFloat64).masked_scatter_(mask, r_valid);
    }
    at::Tensor counts = torch::ones(r_env.sizes(), torch::kLong);
    if (ids.defined()) {
      at::Tensor start = extra_or_undefined(in, "episode_start", "oni");
      if (!start.defined()) {
        start = torch::zeros(ids.sizes(), torch::kBool);
        start.select(1, 0).fill_(true);
      }
      counts = oni_episode_counts(ids, start.to(torch::kBool), mask);
    }
    const at::Tensor per_step = oni_reward(r_env, r_int, counts, o_);
    RewardOutput out = make_output(per_step.masked_fill(mask.logical_not(), 0.0).sum(1));
    out.metrics = std::move(metrics);
    out.metrics["oni/intrinsic_mean"] = mean_of(r_int.masked_select(mask));
    if (model_ != OniModel::kSignal) out.detail["intrinsic"] = r_int.masked_fill(mask.logical_not(), 0.0).sum(1).to(torch::kFloat32);
    return out;
  }
  bool stateful() const override { return model_ != OniModel::kSignal; }
  void save_state(RewardState& out) const override {
    if (learned_) learned_->save_state(out);
  }
  void load_state(const RewardState& in) override {
    if (learned_) learned_->load_state(in);
  }
  void bind(const RewardContext& ctx) override {
    if (learned_) learned_->bind(ctx);
  }

 private:
  /// The message of every step [N][<= S]: the response (S = 1) or metadata[key] (a string or a list).
  std::vector<std::vector<std::string>> step_messages(const RewardInput& in, int64_t s) const {
    std::vector<std::vector<std::string>> out(static_cast<size_t>(in.size()));
    if (messages_ == "response") {
      TORCH_CHECK(s == 1, "reward scheme 'oni' (messages: response): one message per sample needs env rewards [N] or [N, 1], got S = ", s);
      for (int64_t i = 0; i < in.size(); ++i) out[static_cast<size_t>(i)] = {in.responses[static_cast<size_t>(i)]};
      return out;
    }
    const std::string key = messages_.substr(5);
    require_metadata(in, key, "oni");
    for (int64_t i = 0; i < in.size(); ++i) {
      const nlohmann::json& v = in.meta(i).at(key);
      auto& row = out[static_cast<size_t>(i)];
      const auto one = [&](const nlohmann::json& x) {
        TORCH_CHECK(x.is_string(), "reward scheme 'oni': metadata '", key, "' of sample ", i,
                    " must be a message string or a list of them, got ", x.dump());
        row.push_back(x.get<std::string>());
      };
      if (v.is_array()) for (const auto& x : v) one(x);
      else one(v);
      TORCH_CHECK(static_cast<int64_t>(row.size()) <= s, "reward scheme 'oni': sample ", i, " has ", row.size(),
                  " messages in metadata '", key, "' but the env rewards have S = ", s, " steps");
    }
    return out;
  }

  OniOptions o_;
  std::string env_, intrinsic_, ids_, messages_;
  OniModel model_;
  std::unique_ptr<OniIntrinsic> learned_;
};

// ---- B8b: RetroAgent progress reward ------------------------------------------------------------------------------------

/// success [N] from a signal; subtask counts from extra["subtasks_completed"] / ["subtasks_total"]
/// (+ optional ["reflection_parsed"]) unless binary_only; the task of a row is metadata[task_key]
/// (default task_id), else its prompt. Returns r_ext + c_int·r_int with r_ext from `external`
/// (default none: the composite adds the task reward), then folds the batch into the per-task baseline.
class RetroScheme : public RewardScheme {
 public:
  RetroScheme(RetroOptions o, std::string success, std::string external, std::string task_key)
      : o_(std::move(o)), success_(std::move(success)), external_(std::move(external)), task_key_(std::move(task_key)) {}
  RewardOutput score(const RewardInput& in) override {
    const at::Tensor success = fetch_vector(in, success_, "retro_progress", "success");
    at::Tensor completed = torch::zeros_like(success), total = torch::zeros_like(success), parsed;
    if (!o_.binary_only) {
      completed = require_extra(in, "subtasks_completed", "retro_progress");
      total = require_extra(in, "subtasks_total", "retro_progress");
      parsed = extra_or_undefined(in, "reflection_parsed", "retro_progress");
    }
    std::vector<std::string> tasks;
    for (int64_t i = 0; i < in.size(); ++i) {
      const nlohmann::json& m = in.meta(i);
      if (m.is_object() && m.contains(task_key_))
        tasks.push_back(m.at(task_key_).is_string() ? m.at(task_key_).get<std::string>() : m.at(task_key_).dump());
      else
        tasks.push_back(in.prompts[static_cast<size_t>(i)]);
    }
    const at::Tensor gid = in.group_ids.cpu();
    const at::Tensor phi = retro_potential(success, completed, total, parsed, o_);
    const at::Tensor phi_prev = baseline_.lookup(tasks);
    const at::Tensor r_int = retro_intrinsic(phi, phi_prev, gid, o_);
    const at::Tensor r_ext = external_ == "none" ? torch::zeros_like(success)
                                                 : fetch_vector(in, external_, "retro_progress", "external");
    RewardOutput out = make_output(retro_reward(r_ext, r_int, o_));
    baseline_.update(tasks, success, gid, o_);
    out.detail["intrinsic"] = r_int.to(torch::kFloat32);
    out.metrics["retro_progress/intrinsic_mean"] = mean_of(r_int);
    out.metrics["retro_progress/phi_prev_mean"] = mean_of(phi_prev);
    out.metrics["retro_progress/tasks"] = static_cast<double>(baseline_.values().size());
    return out;
  }
  bool stateful() const override { return true; }
  void save_state(RewardState& out) const override { baseline_.save_state(out); }
  void load_state(const RewardState& in) override { baseline_.load_state(in); }

 private:
  RetroOptions o_;
  std::string success_, external_, task_key_;
  RetroTaskBaseline baseline_;
};

// ---- B9: EPO-Safe cost channels ---------------------------------------------------------------------------------------

/// Danger bits of channel c: extra[c.name] [N, S] over the valid steps (step_mask / step_ends, else
/// all). R = r_task − Σ_c λ_c·C_c with r_task from `task` (default none: the composite adds the task
/// reward); then each Lagrangian λ takes its step from the batch's mean cost (used from the next batch).
class CostChannelsScheme : public RewardScheme {
 public:
  CostChannelsScheme(std::vector<CostChannelOptions> channels, std::string task) : channels_(std::move(channels)), task_(std::move(task)) {
    for (const auto& c : channels_) multipliers_.emplace_back(c);
  }
  RewardOutput score(const RewardInput& in) override {
    at::Tensor r = task_ == "none" ? torch::zeros({in.size()}, torch::kFloat64)
                                   : fetch_vector(in, task_, "cost_channels", "task");
    std::map<std::string, torch::Tensor> detail;
    std::map<std::string, double> metrics;
    std::vector<at::Tensor> costs;
    for (size_t c = 0; c < channels_.size(); ++c) {
      const at::Tensor bits = require_extra(in, channels_[c].name, "cost_channels").to(torch::kFloat64);
      TORCH_CHECK(bits.dim() == 2, "reward scheme 'cost_channels': extra['", channels_[c].name,
                  "'] must be per-step bits [N, S], got ", bits.sizes());
      const at::Tensor cost = episode_cost(bits, step_mask_of(in, bits, "cost_channels"), channels_[c]);
      metrics["cost/" + channels_[c].name + "/lambda"] = multipliers_[c].lambda();
      r = cost_penalized_reward(r, cost, multipliers_[c].lambda());
      detail["cost/" + channels_[c].name] = cost.to(torch::kFloat32);
      metrics["cost/" + channels_[c].name + "/mean"] = mean_of(cost);
      costs.push_back(cost);
    }
    for (size_t c = 0; c < channels_.size(); ++c) multipliers_[c].update(costs[c]);
    RewardOutput out = make_output(r);
    out.detail = std::move(detail);
    out.metrics = std::move(metrics);
    return out;
  }
  bool stateful() const override { return true; }
  void save_state(RewardState& out) const override {
    for (size_t c = 0; c < channels_.size(); ++c) multipliers_[c].save_state(out, channels_[c].name + "/");
  }
  void load_state(const RewardState& in) override {
    for (size_t c = 0; c < channels_.size(); ++c) multipliers_[c].load_state(in, channels_[c].name + "/");
  }

 private:
  std::vector<CostChannelOptions> channels_;
  std::string task_;
  std::vector<CostMultiplier> multipliers_;
};

std::string read_rubric_key(config::Reader& r) {
  std::string key = "rubric";
  r.field("rubric_key", key, "metadata list describing each criterion column: weight or {weight, category}").nonempty();
  return key;
}

}  // namespace

void register_group_b(RewardRegistry& reg) {
  reg.add("gated", "G-RA: outcome + step rewards counted only when the outcome reaches the threshold",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            GraOptions o;
            read_gra_options(r, o);
            std::string outcome = "meta.outcome";
            read_signal(r, "outcome", outcome, "terminal outcome r_high (meta values may be level names)");
            bool dense = false;
            r.field("dense", dense, "put each turn's reward on its step_ends token (token_rewards) instead of the sum");
            require_input(r, "step_scores");
            if (dense) require_input(r, "step_ends", "dense");
            return std::make_unique<GatedScheme>(o, outcome, dense);
          });
  reg.add("hierarchical", "conditional gating: a DAG of reward channels, each counted only if its gates pass",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            GatedOptions o = hierarchical_default_options();
            const bool given = r.has("channels");
            read_gated_options(r, o);
            std::vector<std::string> inputs;
            for (size_t c = 0; c < o.channels.size(); ++c) {
              const GatedChannel& ch = o.channels[c];
              const std::string item = "channels." + std::to_string(c);
              inputs.push_back(ch.input.empty() ? "prior." + ch.name : ch.input);
              if (!ch.input.empty() && !check_signal(r, item + ".input", ch.input)) continue;
              declare_signal(r, !given ? "channels" : item + (ch.input.empty() ? ".name" : ".input"), inputs.back());
            }
            return std::make_unique<HierarchicalScheme>(o, inputs);
          });
  reg.add("rubric", "rubric explicit aggregation: sum_j w_j c_j / sum_j w_j over judged criteria",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            RubricOptions o;
            read_rubric_options(r, o);
            require_input(r, "criterion_scores");
            return std::make_unique<RubricScheme>(o, read_rubric_key(r));
          });
  reg.add("pow3r", "POW3R: rubric weights scaled by each criterion's within-group contrast [interp]",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            RubricOptions ro;
            read_rubric_options(r, ro);
            Pow3rOptions o;
            read_pow3r_options(r, o);
            require_input(r, "criterion_scores");
            return std::make_unique<Pow3rScheme>(ro, o, read_rubric_key(r));
          });
  reg.add("openrs_pairwise", "OpenRS: round-robin of debiased pairwise rubric verdicts within the group",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            OpenRsOptions o;
            read_openrs_options(r, o);
            std::string kind = "scores";
            r.field("input_kind", kind,
                    "the judge's pairwise verdicts: scores = extra openrs_scores [N, G]; criteria = extra openrs_types / "
                    "openrs_signed [N, G, K] aggregated here")
                .one_of({"scores", "criteria"}, "input_kind");
            if (kind == "scores") {
              require_input(r, "extra.openrs_scores", "input_kind");
            } else {
              for (const char* k : {"extra.openrs_types", "extra.openrs_signed"}) require_input(r, k, "input_kind");
            }
            return std::make_unique<OpenRsScheme>(o, kind);
          });
  reg.add("carr", "CaRR + C-GRPO: outcome combined with the citation-aware rubric reward",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            CarrScoreOptions so;
            read_carr_score_options(r, so);
            CgrpoOptions co;
            read_cgrpo_options(r, co);
            std::string outcome = "correct", key = "carr_rubric", from = "extra";
            read_signal(r, "outcome", outcome, "0/1 outcome o");
            r.field("rubric_key", key, "extra [N] or metadata (score or judged rubrics) with the rubric reward").nonempty();
            r.field("rubric_from", from,
                    "where rubric_key is: extra (a judge's scores [N]) or meta (per-sample score or judged rubrics)")
                .one_of({"extra", "meta"}, "rubric_from");
            require_input(r, from + "." + key, "rubric_key");
            return std::make_unique<CarrScheme>(so, co, outcome, key, from == "meta");
          });
  reg.add("cmo", "CMO: correlation-weighted, batch-standardised advantage of criterion_scores (an advantage)",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            CmoOptions o;
            read_cmo_options(r, o);
            require_input(r, "criterion_scores");
            return std::make_unique<CmoScheme>(o);
          });
  reg.add("diversity", "MultiRole-R1: (1 - w) accuracy + w text-diversity score of the response",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            DiversityOptions o;
            read_diversity_options(r, o);
            std::string accuracy = "correct";
            read_signal(r, "accuracy", accuracy, "accuracy reward R_acc");
            return std::make_unique<DiversityScheme>(o, accuracy);
          });
  reg.add("uncertainty", "Ctrl-U: mean of two evaluations times exp(-u), u their disagreement",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            CtrlUOptions o;
            read_ctrlu_options(r, o);
            std::string r1 = "rm_scores", r2 = "extra.rm_scores_2", l1 = "extra.judge_logits_1", l2 = "extra.judge_logits_2";
            read_signal(r, "r1", r1, "first evaluation");
            read_signal(r, "r2", r2, "second evaluation");
            const bool ok1 =
                read_signal_spec(r, "logits1", l1, "label logits [N, C] of the first evaluation (kl_two_pass)");
            const bool ok2 =
                read_signal_spec(r, "logits2", l2, "label logits [N, C] of the second evaluation (kl_two_pass)");
            if (o.method == "kl_two_pass") {
              if (ok1) declare_signal(r, "logits1", l1);
              if (ok2) declare_signal(r, "logits2", l2);
            }
            return std::make_unique<UncertaintyScheme>(o, r1, r2, l1, l2);
          });
  reg.add("directional", "DPA: v^T r, a unit preference direction over multi-objective RM scores",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            DpaOptions o;
            read_dpa_options(r, o);
            std::string scores = "criterion_scores";
            read_signal(r, "scores", scores, "RM attribute scores [N, k], one column per attribute");
            return std::make_unique<DirectionalScheme>(o, scores);
          });
  reg.add("oni", "ONI: sum over steps of c_ext r_env + c_llm r_int / count^beta; r_int given, hashed, classified or ranked",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            OniOptions o;
            read_oni_options(r, o);
            std::string env = "extra.env_rewards", intrinsic = "extra.intrinsic_rewards", ids = "extra.message_ids";
            std::string messages = "response";
            read_signal(r, "env", env, "per-step environment rewards [N, S] (or [N]: one step per sample)");
            const bool intrinsic_ok =
                read_signal_spec(r, "intrinsic", intrinsic, "per-step intrinsic rewards [N, S] (model: signal)");
            const bool ids_ok = read_signal_spec(r, "message_ids", ids,
                                                 "per-step message ids [N, S] (model: signal, needed when c_llm > 0)");
            r.field("messages", messages, "message of each step for the learned models: response | meta.<key>");
            if (messages != "response" && (messages.rfind("meta.", 0) != 0 || messages.size() == 5))
              r.error("messages", fmt::format("'{}' is not a message source (expected response or meta.<key>)", messages));
            OniIntrinsicOptions io;
            std::unique_ptr<RewardScheme> annotator = read_oni_intrinsic_options(r, io);
            const OniModel model = io.model == "hashing"          ? OniModel::kHashing
                                   : io.model == "classification" ? OniModel::kClassification
                                   : io.model == "ranking"        ? OniModel::kRanking
                                                                  : OniModel::kSignal;
            if (model == OniModel::kSignal) {
              if (intrinsic_ok) declare_signal(r, "intrinsic", intrinsic);
              if (ids_ok && o.c_llm != 0.0) declare_signal(r, "message_ids", ids);
            } else if (messages != "response") {
              require_input(r, messages, "messages");  // meta.<key>: the step messages
            }
            std::unique_ptr<OniIntrinsic> learned;
            if (model != OniModel::kSignal && annotator && r.diagnostics().ok())
              learned = std::make_unique<OniIntrinsic>(io, std::move(annotator));
            return std::make_unique<OniScheme>(o, env, intrinsic, ids, messages, model, std::move(learned));
          });
  reg.add("retro_progress", "RetroAgent: c_int * max(0, subtask progress - best group success so far) (checkpointed)",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            RetroOptions o;
            read_retro_options(r, o);
            std::string success = "correct", external = "none", task_key = "task_id";
            read_signal(r, "success", success, "0/1 episode success");
            read_signal(r, "external", external, "extrinsic reward added to the intrinsic term", /*allow_none=*/true);
            r.field("task_key", task_key, "metadata field naming the task of the per-task baseline (else the prompt)").nonempty();
            if (!o.binary_only)
              for (const char* k : {"extra.subtasks_completed", "extra.subtasks_total"})
                require_input(r, k, "binary_only");
            return std::make_unique<RetroScheme>(o, success, external, task_key);
          });
  reg.add("cost_channels", "EPO-Safe: -sum_c lambda_c * cost_c from per-step danger bits (Lagrangian lambda checkpointed)",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            std::vector<CostChannelOptions> channels;
            read_cost_channels(r, channels);
            for (size_t c = 0; c < channels.size(); ++c)
              if (!channels[c].name.empty())
                require_input(r, "extra." + channels[c].name, "cost_channels." + std::to_string(c) + ".name");
            if (channels.empty()) {
              r.error("cost_channels", "expected at least one cost channel");
              channels.push_back(CostChannelOptions{});
            }
            std::string task = "none";
            read_signal(r, "task", task, "task reward the costs are subtracted from", /*allow_none=*/true);
            return std::make_unique<CostChannelsScheme>(channels, task);
          });
}

}  // namespace keel::rewards::glue
