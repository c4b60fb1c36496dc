// Registry glue of spec group C (step / process-level rewards): one RewardScheme subclass per scheme
// that fetches its per-step inputs from the RewardInput, calls the scheme's pure functions and
// returns a RewardOutput (optionally dense, on the step-end tokens), plus a factory reading the
// options through the Reader. The math lives in prm.h, dataprm.h, info_gain.h and step_boundaries.h.
//
// Naming (spec summary table -> registered name):
//   reward.prm.aggregate -> prm (the section name; "aggregate" is a parameter);
//   reward.prm.labels (DataPRM) -> dataprm (its own name: "prm" is taken by C1 and "labels" is a parameter);
//   reward.info_gain -> info_gain.
// step_boundaries.h is not a reward: it finds step ends from token ids for whoever builds the
// RewardInput (step_ends); here it only places per-step values on those tokens.
//
// Contracts: each factory declares exactly what its score() requires (register_util.h), by mode.
#include <torch/torch.h>

#include "rewards/schemes/dataprm.h"
#include "rewards/schemes/info_gain.h"
#include "rewards/schemes/prm.h"
#include "rewards/schemes/register_util.h"
#include "rewards/schemes/step_boundaries.h"
#include "rewards/schemes/truthrl.h"
#include "base/reader.h"

namespace keel::rewards::glue {

namespace {

/// Per-step values [N, S] over mask [N, S] placed on the tokens RewardInput::step_ends [N, S] names
/// (token indices, −1 = padding, increasing) -> token rewards [N, T] float32, T from the token tensors.
at::Tensor place_on_step_ends(const RewardInput& in, const at::Tensor& values, const at::Tensor& mask,
                              const std::string& scheme) {
  require_tensor(in, in.step_ends, "step_ends", scheme);
  int64_t t = -1;
  for (const torch::Tensor* x : {&in.response_mask, &in.response_tokens, &in.token_logprobs})
    if (t < 0 && x->defined() && x->dim() == 2) t = x->size(1);
  TORCH_CHECK(t > 0, "reward scheme '", scheme, "' (dense: true) needs response_mask, response_tokens or token_logprobs [N, T]");
  const at::Tensor ends = in.step_ends.detach().cpu().to(torch::kLong);
  TORCH_CHECK(ends.sizes() == values.sizes(), "reward scheme '", scheme, "': step_ends ", ends.sizes(),
              " must match the per-step values ", values.sizes());
  const at::Tensor valid = mask.logical_and(ends >= 0);
  TORCH_CHECK(ends.masked_select(valid).lt(t).all().item<bool>(), "reward scheme '", scheme, "': step_ends beyond T = ", t);
  at::Tensor end_tokens = torch::zeros({in.size(), t}, torch::kBool);
  end_tokens.scatter_(1, ends.clamp_min(0), valid);  // padding (clamped to 0) writes false
  end_tokens.select(1, 0).logical_or_(valid.logical_and(ends == 0).any(1));
  return scatter_to_step_ends(values, valid, end_tokens).to(torch::kFloat32);
}

// ---- C1: PRM step scores and their aggregation ------------------------------------------------------------------

/// p_t from step_scores [N, S] (probabilities), or from two-way label logits extra["prm_label_logits"]
/// [N, S, 2] (good, bad) with input_kind: logits. The PrmOptions boundary / label-token fields are
/// for the scorer that runs the PRM; here only aggregate / dense / differenced / first_prev act.
class PrmScheme : public RewardScheme {
 public:
  PrmScheme(PrmOptions o, std::string kind) : o_(std::move(o)), kind_(std::move(kind)) {}
  RewardOutput score(const RewardInput& in) override {
    at::Tensor p;
    if (kind_ == "logits") {
      const at::Tensor l = require_extra(in, "prm_label_logits", "prm").to(torch::kFloat64);
      TORCH_CHECK(l.dim() == 3 && l.size(2) == 2, "reward scheme 'prm': extra['prm_label_logits'] must be [N, S, 2], got ",
                  l.sizes());
      p = prm_two_way_prob(l.select(2, 0), l.select(2, 1));
    } else {
      require_tensor(in, in.step_scores, "step_scores", "prm");
      p = in.step_scores.detach().to(torch::kCPU, torch::kFloat64);
    }
    TORCH_CHECK(p.dim() == 2, "reward scheme 'prm': step probabilities must be [N, S], got ", p.sizes());
    const at::Tensor mask = step_mask_of(in, p, "prm");
    const at::Tensor agg = prm_aggregate(p, mask, o_.aggregate);
    RewardOutput out;
    if (o_.dense) {
      out = make_output(torch::zeros({in.size()}, torch::kFloat64));
      out.token_rewards = place_on_step_ends(in, prm_dense_rewards(p, mask, o_), mask, "prm");
    } else {
      out = make_output(agg);
    }
    out.detail["aggregate"] = agg.to(torch::kFloat32);
    out.metrics["prm/steps_mean"] = mean_of(mask.to(torch::kFloat64).sum(1));
    out.metrics["prm/step_score_mean"] = mean_of(p.masked_select(mask));
    return out;
  }

 private:
  PrmOptions o_;
  std::string kind_;
};

// ---- C2: DataPRM ------------------------------------------------------------------------------------------------------

/// Step scores (input_kind): judgements, the judge outputs in metadata[judge_key] (a list of strings
/// per sample, parsed here); or scores, step_scores [N, S] as already-parsed scores (−1 = judge
/// failure). The final-step rule needs
/// `has_answer` (a signal; none = rule off). R = outcome + β·aggregate with outcome from a signal
/// (default none: the composite adds the outcome component itself).
class DataPrmScheme : public RewardScheme {
 public:
  DataPrmScheme(DataPrmOptions o, std::string outcome, std::string has_answer, std::string judge_key, bool from_meta)
      : o_(std::move(o)),
        outcome_(std::move(outcome)),
        has_answer_(std::move(has_answer)),
        judge_key_(std::move(judge_key)),
        from_meta_(from_meta) {}
  RewardOutput score(const RewardInput& in) override {
    at::Tensor scores, mask;
    if (from_meta_) {
      require_metadata(in, judge_key_, "dataprm");
      size_t s = 0;
      for (int64_t i = 0; i < in.size(); ++i) {
        TORCH_CHECK(in.meta(i).at(judge_key_).is_array(), "reward scheme 'dataprm': metadata '", judge_key_, "' of sample ",
                    i, " must be a list of judge outputs");
        s = std::max(s, in.meta(i).at(judge_key_).size());
      }
      scores = torch::zeros({in.size(), static_cast<int64_t>(s)}, torch::kFloat64);
      mask = torch::zeros({in.size(), static_cast<int64_t>(s)}, torch::kBool);
      for (int64_t i = 0; i < in.size(); ++i) {
        const auto& list = in.meta(i).at(judge_key_);
        for (size_t j = 0; j < list.size(); ++j) {
          const std::string text = list[j].is_string() ? list[j].get<std::string>() : list[j].dump();
          scores[i][static_cast<int64_t>(j)] = dataprm_parse_score(text, o_);
          mask[i][static_cast<int64_t>(j)] = true;
        }
      }
    } else {
      require_tensor(in, in.step_scores, "step_scores", "dataprm");
      scores = in.step_scores.detach().to(torch::kCPU, torch::kFloat64);
      mask = step_mask_of(in, scores, "dataprm");
    }
    if (has_answer_ != "none")
      scores = dataprm_final_step_rule(scores, mask, fetch_vector(in, has_answer_, "dataprm", "has_answer") > 0.5, o_);
    const at::Tensor outcome = outcome_ == "none" ? torch::zeros({in.size()}, torch::kFloat64)
                                                  : fetch_vector(in, outcome_, "dataprm", "outcome");
    RewardOutput out = make_output(dataprm_reward(outcome, scores, mask, o_));
    const DataPrmAggregate agg = dataprm_aggregate(scores, mask, o_.aggregate, o_);
    out.detail["judge_failed"] = agg.flagged.to(torch::kFloat32);
    out.metrics["dataprm/judge_failed_frac"] = mean_of(agg.flagged.to(torch::kFloat64));
    out.metrics["dataprm/aggregate_mean"] = mean_of(agg.value);
    return out;
  }

 private:
  DataPrmOptions o_;
  std::string outcome_, has_answer_, judge_key_;
  bool from_meta_;  ///< input_kind: judgements
};

// ---- C3: information-gain turn reward ---------------------------------------------------------------------------------

/// Gold-answer log-probs extra["gold_logprobs"] [N, T + 1, L] (+ extra["gold_mask"] [N, L]) give P;
/// turns are the steps (step_mask / step_ends over [N, T], else all). The last turn's outcome comes
/// from the `outcome` signal, or with outcome: none it is graded here — INTERPRETATION: the last
/// \boxed{} of the response (else the whole response) against metadata[answer_key] (a string or a
/// list: the best match), by token F1 (final_score: f1) or normalised exact match (em).
/// The reward is the sum of the turn rewards, or with dense: true the turn rewards on the step ends.
class InfoGainScheme : public RewardScheme {
 public:
  InfoGainScheme(InfoGainOptions o, std::string outcome, std::string answer_key, bool dense)
      : o_(std::move(o)), outcome_(std::move(outcome)), answer_key_(std::move(answer_key)), dense_(dense) {}
  RewardOutput score(const RewardInput& in) override {
    const at::Tensor lp = require_extra(in, "gold_logprobs", "info_gain").to(torch::kFloat64);
    TORCH_CHECK(lp.dim() == 3 && lp.size(1) >= 2, "reward scheme 'info_gain': extra['gold_logprobs'] must be [N, T + 1, L] "
                "with T >= 1, got ", lp.sizes());
    at::Tensor gold_mask = extra_or_undefined(in, "gold_mask", "info_gain");
    if (!gold_mask.defined()) gold_mask = torch::ones({lp.size(0), lp.size(2)}, torch::kBool);
    const at::Tensor p = info_gain_probs(lp, gold_mask);  // [N, T + 1]
    const at::Tensor turn_mask = step_mask_of(in, torch::zeros({in.size(), lp.size(1) - 1}), "info_gain");
    const at::Tensor outcome = outcome_ == "none" ? graded(in) : fetch_vector(in, outcome_, "info_gain", "outcome");
    const at::Tensor turns = info_gain_turn_rewards(p, turn_mask, outcome);  // [N, T]
    RewardOutput out;
    if (dense_) {
      out = make_output(torch::zeros({in.size()}, torch::kFloat64));
      out.token_rewards = place_on_step_ends(in, turns, turn_mask, "info_gain");
    } else {
      out = make_output(turns.sum(1));
    }
    out.detail["outcome"] = outcome.to(torch::kFloat32);
    out.metrics["info_gain/p0_mean"] = mean_of(p.select(1, 0));
    out.metrics["info_gain/outcome_mean"] = mean_of(outcome);
    return out;
  }

 private:
  at::Tensor graded(const RewardInput& in) const {
    require_metadata(in, answer_key_, "info_gain");
    std::vector<double> v;
    for (int64_t i = 0; i < in.size(); ++i) {
      std::string pred = in.responses[static_cast<size_t>(i)];
      std::string boxed;
      if (extract_last_boxed(pred, boxed)) pred = boxed;
      double best = 0.0;
      for (const auto& g : gold_strings(in, i, answer_key_, "info_gain"))
        best = std::max(best, o_.final_score == "em" ? (squad_normalize(pred) == squad_normalize(g) ? 1.0 : 0.0)
                                                     : token_f1(pred, g));
      v.push_back(best);
    }
    return torch::tensor(v, torch::kFloat64);
  }

  InfoGainOptions o_;
  std::string outcome_, answer_key_;
  bool dense_;
};

}  // namespace

void register_group_c(RewardRegistry& reg) {
  reg.add("prm", "process reward: min / prod / last / mean of PRM step probabilities (or dense per step)",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            PrmOptions o;
            read_prm_options(r, o);
            std::string kind = "probs";
            r.field("input_kind", kind, "step_scores hold probabilities, or extra prm_label_logits [N, S, 2] hold (good, bad) logits")
                .one_of({"probs", "logits"}, "input_kind");
            require_input(r, kind == "logits" ? "extra.prm_label_logits" : "step_scores", "input_kind");
            if (o.dense) require_input(r, "step_ends", "dense");
            return std::make_unique<PrmScheme>(o, kind);
          });
  reg.add("dataprm", "DataPRM: outcome + beta * aggregate of ternary step verdicts (judge failures dropped)",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            DataPrmOptions o;
            read_dataprm_options(r, o);
            std::string outcome = "none", has_answer = "none", judge_key = "step_judgements";
            read_signal(r, "outcome", outcome, "outcome reward the step term is added to", /*allow_none=*/true);
            read_signal(r, "has_answer", has_answer, "1 if the trajectory gave an answer (final-step rule; none = off)",
                        /*allow_none=*/true);
            std::string kind = "judgements";
            r.field("input_kind", kind, "step verdicts: judgements = metadata judge_key (judge outputs, parsed here); "
                                        "scores = step_scores [N, S] (parsed scores)")
                .one_of({"judgements", "scores"}, "input_kind");
            r.field("judge_key", judge_key, "metadata list of per-step judge outputs (input_kind: judgements)")
                .nonempty();
            if (kind == "judgements") require_input(r, "meta." + judge_key, "judge_key");
            else require_input(r, "step_scores", "input_kind");
            return std::make_unique<DataPrmScheme>(o, outcome, has_answer, judge_key, kind == "judgements");
          });
  reg.add("info_gain", "IGPO: per-turn gain in the gold answer's probability, outcome on the last turn",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            InfoGainOptions o;
            read_info_gain_options(r, o);
            std::string outcome = "none", answer_key = "answer";
            read_signal(r, "outcome", outcome, "last-turn outcome (none = grade the response against answer_key)",
                        /*allow_none=*/true);
            r.field("answer_key", answer_key, "metadata field with the gold answer(s) (outcome: none)").nonempty();
            bool dense = false;
            r.field("dense", dense, "put each turn's reward on its step_ends token (token_rewards) instead of the sum");
            require_input(r, "extra.gold_logprobs");
            if (outcome == "none") require_input(r, "meta." + answer_key, "answer_key");
            if (dense) require_input(r, "step_ends", "dense");
            return std::make_unique<InfoGainScheme>(o, outcome, answer_key, dense);
          });
}

}  // namespace keel::rewards::glue
