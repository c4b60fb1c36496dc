// Registry glue of spec group A (scalar shaping transforms of an RM / verifier score): one
// RewardScheme subclass per scheme that fetches its inputs from the RewardInput, calls the scheme's
// pure function and returns a RewardOutput, plus a factory reading the scheme's options through the
// Reader. The math lives in par.h, pre_shaping.h, running_norm.h, lsc.h, ssl.h, truthrl.h, arlcp.h,
// dapo_overlong.h and purple.h; nothing here computes a reward.
//
// Naming (spec summary table -> registered name):
//   reward.shaping: par|sigmoid|sigmoidk2|sigmoidk3|tanh|fittedpoly|centered (+ sgfc, A1's older
//     "slow growth then fast converge" sibling), meanstd|clip|minmax, lsc  -> the value itself;
//   reward.length_penalty -> length_penalty;  reward.ceil -> ceil   (the section name);
//   reward.scheme: ssl|truthrl|arlcp -> the value;  reward.length.scheme: dapo_soft -> dapo_soft;
//   reward.precondition.kappa (PURPLE) -> precondition (the section name; "kappa" is a parameter);
//   the PAR repo's whole pipeline (length penalty -> ceil -> one of the reward.shaping names above,
//     plus vanilla / warm) -> shaping (the key itself, its value becoming the `shaping` parameter).
// "vanilla" / "warm" (no transform) exist only inside `shaping`: alone they are the raw signal.
//
// Every shaping transform reads the reward it shapes from the `input` parameter (a signal spec,
// default prior: the (unweighted) sum of the components listed before it; prior.<component> shapes one
// of them, rm_scores a reward-model score) — see register_util.h. Schemes that need correctness
// (ssl, arlcp) read the `correct` signal by default: the verifiers' flag.
//
// Contracts: each factory declares exactly what its score() requires (register_util.h), e.g. the
// centred PAR family the reference rewards meta.<refs_key> (unless missing_refs allows rows without).
#include <torch/torch.h>

#include "rewards/schemes/arlcp.h"
#include "rewards/schemes/dapo_overlong.h"
#include "rewards/schemes/lsc.h"
#include "rewards/schemes/par.h"
#include "rewards/schemes/pre_shaping.h"
#include "rewards/schemes/purple.h"
#include "rewards/schemes/register_util.h"
#include "rewards/schemes/rm_shaping.h"
#include "rewards/schemes/running_norm.h"
#include "rewards/schemes/ssl.h"
#include "rewards/schemes/truthrl.h"
#include "base/reader.h"

namespace keel::rewards::glue {

namespace {

std::string read_input(config::Reader& r, const std::string& def = "prior") {
  std::string spec = def;
  read_signal(r, "input", spec,
              "the reward to shape (prior = the sum of the components listed before this one, unweighted)");
  return spec;
}

// ---- A1: PAR and the sigmoid family ---------------------------------------------------------------

class ParScheme : public RewardScheme {
 public:
  ParScheme(std::string name, ParOptions o, std::string input, std::string refs_key)
      : name_(std::move(name)), o_(std::move(o)), input_(std::move(input)), refs_key_(std::move(refs_key)) {}

  RewardOutput score(const RewardInput& in) override {
    const at::Tensor r = fetch_vector(in, input_, name_, "input");
    Refs refs;
    if (o_.centered) refs = fetch_refs(in, refs_key_, name_);
    RewardOutput out = make_output(par_reward(r, refs.values, refs.mask, o_));
    if (o_.centered) {
      const at::Tensor used = refs.mask.to(torch::kLong).sum(1).clamp_max(o_.max_refs);
      out.metrics[name_ + "/mean_refs"] = mean_of(used);
      out.metrics[name_ + "/no_refs_frac"] = mean_of((used == 0).to(torch::kFloat64));
    }
    return out;
  }

 private:
  std::string name_;
  ParOptions o_;
  std::string input_, refs_key_;
};

RewardFactory par_factory(const std::string& name) {
  return [name](config::Reader& r) -> std::unique_ptr<RewardScheme> {
    ParOptions o = par_preset(name);
    read_par_options(r, o);
    const std::string input = read_input(r);
    std::string refs_key = "ref_rewards";
    r.field("refs_key", refs_key, "extra tensor [N, M] (mask: <key>_mask) or metadata list holding the reference rewards")
        .nonempty();
    // Centred with missing_refs: fail, a batch without references throws: the references are required.
    if (o.centered && o.missing_refs == "fail") require_input(r, "meta." + refs_key, "refs_key");
    return std::make_unique<ParScheme>(name, o, input, refs_key);
  };
}

// ---- A2: length penalty, ceiling, running statistics, LSC -------------------------------------------

class LengthPenaltyScheme : public RewardScheme {
 public:
  LengthPenaltyScheme(LengthPenaltyOptions o, std::string input) : o_(o), input_(std::move(input)) {}
  RewardOutput score(const RewardInput& in) override {
    const at::Tensor r = fetch_vector(in, input_, "length_penalty", "input");
    const at::Tensor len = lengths_of(in, "length_penalty");
    RewardOutput out = make_output(length_penalty_reward(r, len, o_));
    out.metrics["length_penalty/over_frac"] = o_.enabled ? mean_of((len > o_.valid_len).to(torch::kFloat64)) : 0.0;
    return out;
  }

 private:
  LengthPenaltyOptions o_;
  std::string input_;
};

class CeilScheme : public RewardScheme {
 public:
  CeilScheme(CeilOptions o, std::string input) : o_(o), input_(std::move(input)) {}
  RewardOutput score(const RewardInput& in) override {
    const at::Tensor r = fetch_vector(in, input_, "ceil", "input");
    RewardOutput out = make_output(ceil_reward(r, o_));
    out.metrics["ceil/clipped_frac"] = o_.ceil ? mean_of((r > *o_.ceil).to(torch::kFloat64)) : 0.0;
    return out;
  }

 private:
  CeilOptions o_;
  std::string input_;
};

/// meanstd and clip: update the running mean / variance with the batch, then shape (newer PAR code).
class RunningMeanStdScheme : public RewardScheme {
 public:
  RunningMeanStdScheme(std::string name, MeanStdOptions o, std::string input)
      : name_(std::move(name)), o_(std::move(o)), input_(std::move(input)) {}
  RewardOutput score(const RewardInput& in) override {
    const at::Tensor r = fetch_vector(in, input_, name_, "input");
    stats_.update(r);
    RewardOutput out = make_output(name_ == "clip" ? clip_reward(r, stats_, o_) : meanstd_reward(r, stats_, o_));
    out.metrics[name_ + "/running_mean"] = stats_.mean();
    out.metrics[name_ + "/running_std"] = running_std(stats_, o_);
    out.metrics[name_ + "/count"] = stats_.count();
    return out;
  }
  bool stateful() const override { return true; }
  void save_state(RewardState& out) const override { stats_.save_state(out); }
  void load_state(const RewardState& in) override { stats_.load_state(in); }

 private:
  std::string name_;
  MeanStdOptions o_;
  std::string input_;
  RunningMeanStd stats_;
};

class MinMaxScheme : public RewardScheme {
 public:
  MinMaxScheme(MinMaxOptions o, std::string input) : o_(o), input_(std::move(input)) {}
  RewardOutput score(const RewardInput& in) override {
    const at::Tensor r = fetch_vector(in, input_, "minmax", "input");
    stats_.update(r);
    RewardOutput out = make_output(minmax_reward(r, stats_, o_));
    out.metrics["minmax/running_min"] = stats_.min();
    out.metrics["minmax/running_max"] = stats_.max();
    return out;
  }
  bool stateful() const override { return true; }
  void save_state(RewardState& out) const override { stats_.save_state(out); }
  void load_state(const RewardState& in) override { stats_.load_state(in); }

 private:
  MinMaxOptions o_;
  std::string input_;
  RunningMinMax stats_;
};

class LscScheme : public RewardScheme {
 public:
  LscScheme(LscOptions o, std::string input, std::string refs_key)
      : o_(o), input_(std::move(input)), refs_key_(std::move(refs_key)) {}
  RewardOutput score(const RewardInput& in) override {
    const at::Tensor r = fetch_vector(in, input_, "lsc", "input");
    const Refs refs = fetch_refs(in, refs_key_, "lsc");
    RewardOutput out = make_output(lsc_reward(r, refs.values, refs.mask, o_));
    out.metrics["lsc/mean_refs"] = mean_of(refs.mask.to(torch::kFloat64).sum(1));
    return out;
  }

 private:
  LscOptions o_;
  std::string input_, refs_key_;
};

// ---- A3: SSL ---------------------------------------------------------------------------------------

/// Proximity s [N]: per-step values in step_scores (steps: true), else from the geometry in
/// RewardInput::extra — gaussian: click, center, box_size [N, 2] (+ click_valid [N], screen [N, 2]);
/// block_match: matched, total [N]. C comes from the `success` signal (default: correct).
class SslScheme : public RewardScheme {
 public:
  SslScheme(SslOptions o, std::string success, bool steps) : o_(std::move(o)), success_(std::move(success)), steps_(steps) {}
  RewardOutput score(const RewardInput& in) override {
    const at::Tensor c = fetch_vector(in, success_, "ssl", "success");
    const at::Tensor valid = extra_or_undefined(in, "click_valid", "ssl");
    at::Tensor s;
    if (steps_) {
      require_tensor(in, in.step_scores, "step_scores", "ssl");
      const at::Tensor steps = in.step_scores.detach().to(torch::kCPU, torch::kFloat64);
      s = ssl_aggregate_steps(steps, step_mask_of(in, steps, "ssl"));
    } else if (o_.proximity == "block_match") {
      s = ssl_block_match_proximity(require_extra(in, "matched", "ssl"), require_extra(in, "total", "ssl"));
    } else {
      s = ssl_gaussian_proximity(require_extra(in, "click", "ssl").to(torch::kFloat64),
                                 require_extra(in, "center", "ssl").to(torch::kFloat64),
                                 require_extra(in, "box_size", "ssl").to(torch::kFloat64), valid,
                                 extra_or_undefined(in, "screen", "ssl"), o_);
    }
    RewardOutput out = make_output(ssl_reward(c, s, valid, o_));
    out.detail["proximity"] = s.to(torch::kFloat32);
    out.metrics["ssl/proximity_mean"] = mean_of(s);
    const at::Tensor tier = ssl_tier(s, o_);
    for (int64_t k = 0; k < o_.num_tiers; ++k)
      out.metrics["ssl/tier" + std::to_string(k) + "_frac"] = mean_of((tier == k).to(torch::kFloat64));
    return out;
  }

 private:
  SslOptions o_;
  std::string success_;
  bool steps_;
};

// ---- A4: TruthRL ---------------------------------------------------------------------------------------

/// The verdict is exact match after SQuAD normalisation against metadata[answer_key]; with use_judge
/// (the paper's LLM judge), a response that does not match exactly takes the judge's verdict from
/// RewardInput::extra["judge_correct"] [N] (non-zero = the judge accepts the boxed answer), which a
/// yes_no judge of the judge stage writes (output: extra.judge_correct, threshold: 0.5); without one
/// the contract (extra.judge_correct) makes `keel validate` refuse use_judge: true rather than train
/// on a silent substitute; use_judge: false is exact match only.
/// The out-of-knowledge flag is metadata[ook_key] (false if absent).
/// Reasoning-enhanced variant (reasoning_weight > 0): the 0/1 judge score of the thinking text comes
/// from the `reasoning` signal.
class TruthRlScheme : public RewardScheme {
 public:
  static constexpr const char* kJudgeKey = "judge_correct";

  TruthRlScheme(TruthRlOptions o, std::string answer_key, std::string ook_key, std::string reasoning)
      : o_(std::move(o)), answer_key_(std::move(answer_key)), ook_key_(std::move(ook_key)), reasoning_(std::move(reasoning)) {}
  RewardOutput score(const RewardInput& in) override {
    require_metadata(in, answer_key_, "truthrl");
    const int64_t n = in.size();
    at::Tensor judged;  // [N] bool, the judge's verdicts (use_judge)
    if (o_.use_judge) {
      judged = require_extra(in, kJudgeKey, "truthrl");
      TORCH_CHECK(judged.dim() == 1, "reward scheme 'truthrl': extra['", kJudgeKey, "'] must be [N], got ",
                  judged.sizes());
      judged = judged.to(torch::kBool);
    }
    std::vector<TruthVerdict> verdicts;
    std::vector<uint8_t> ook(static_cast<size_t>(n), 0);
    for (int64_t i = 0; i < n; ++i) {
      TruthJudge judge;
      if (o_.use_judge) judge = [&judged, i](const std::string&, const std::string&) { return judged[i].item<bool>(); };
      verdicts.push_back(truthrl_classify(in.responses[static_cast<size_t>(i)], gold_strings(in, i, answer_key_, "truthrl"),
                                          judge, o_));
      const nlohmann::json& m = in.meta(i);
      if (m.contains(ook_key_)) {
        TORCH_CHECK(m.at(ook_key_).is_boolean(), "reward scheme 'truthrl': metadata '", ook_key_, "' of sample ", i,
                    " must be a bool, got ", m.at(ook_key_).dump());
        ook[static_cast<size_t>(i)] = m.at(ook_key_).get<bool>();
      }
    }
    const at::Tensor ook_t = torch::tensor(std::vector<int64_t>(ook.begin(), ook.end()), torch::kLong).to(torch::kBool);
    at::Tensor r = truthrl_rewards(verdicts, ook_t, o_);
    if (o_.reasoning_weight > 0.0) {
      std::vector<int64_t> correct;
      for (auto v : verdicts) correct.push_back(v == TruthVerdict::kCorrect);
      r = truthrl_reasoning_enhanced(r, fetch_vector(in, reasoning_, "truthrl", "reasoning"),
                                     torch::tensor(correct, torch::kLong).to(torch::kBool), o_);
    }
    RewardOutput out = make_output(r);
    out.metrics["truthrl/truthfulness"] = truthfulness_score(verdicts);
    double counts[5] = {0, 0, 0, 0, 0};
    for (auto v : verdicts) counts[static_cast<int>(v)] += 1.0;
    const double nn = std::max<double>(1.0, static_cast<double>(n));
    out.metrics["truthrl/format_failure_frac"] = counts[static_cast<int>(TruthVerdict::kFormatFailure)] / nn;
    out.metrics["truthrl/abstain_frac"] = counts[static_cast<int>(TruthVerdict::kAbstain)] / nn;
    out.metrics["truthrl/invalid_frac"] = counts[static_cast<int>(TruthVerdict::kInvalidQuestion)] / nn;
    out.metrics["truthrl/correct_frac"] = counts[static_cast<int>(TruthVerdict::kCorrect)] / nn;
    out.metrics["truthrl/hallucination_frac"] = counts[static_cast<int>(TruthVerdict::kHallucination)] / nn;
    return out;
  }

 private:
  TruthRlOptions o_;
  std::string answer_key_, ook_key_, reasoning_;
};

// ---- A5: ARLCP, A5b: DAPO soft overlong penalty --------------------------------------------------------

/// acc comes from the `accuracy` signal (default: correct, the verifiers' flag); with
/// format_gate the released code's format rule (no "<think>", exactly one "</think>") also zeroes it.
class ArlcpScheme : public RewardScheme {
 public:
  ArlcpScheme(ArlcpOptions o, std::string accuracy, bool format_gate)
      : o_(std::move(o)), accuracy_(std::move(accuracy)), format_gate_(format_gate) {}
  RewardOutput score(const RewardInput& in) override {
    at::Tensor acc = fetch_vector(in, accuracy_, "arlcp", "accuracy");
    const at::Tensor len = lengths_of(in, "arlcp");
    const int64_t n = in.size();
    std::vector<double> n_ref(static_cast<size_t>(n)), fmt_ok(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const std::string& resp = in.responses[static_cast<size_t>(i)];
      n_ref[static_cast<size_t>(i)] = static_cast<double>(arlcp_reflection_count(resp, o_.keywords));
      fmt_ok[static_cast<size_t>(i)] = arlcp_format_ok(resp) ? 1.0 : 0.0;
    }
    const at::Tensor nref_t = torch::tensor(n_ref, torch::kFloat64);
    if (format_gate_) acc = acc * torch::tensor(fmt_ok, torch::kFloat64);
    RewardOutput out = make_output(arlcp_reward(nref_t, len, acc, in.group_ids.cpu(), o_));
    out.detail["reflections"] = nref_t.to(torch::kFloat32);
    out.metrics["arlcp/reflections_mean"] = mean_of(nref_t);
    out.metrics["arlcp/format_ok_frac"] = mean_of(torch::tensor(fmt_ok, torch::kFloat64));
    return out;
  }

 private:
  ArlcpOptions o_;
  std::string accuracy_;
  bool format_gate_;
};

/// Returns the penalty alone (≤ 0): the composite adds it to the task reward (DAPO adds it too).
class DapoSoftScheme : public RewardScheme {
 public:
  explicit DapoSoftScheme(DapoOverlongOptions o) : o_(o) {}
  RewardOutput score(const RewardInput& in) override {
    const at::Tensor p = dapo_overlong_penalty(lengths_of(in, "dapo_soft"), o_);
    RewardOutput out = make_output(p);
    out.metrics["dapo_soft/penalized_frac"] = mean_of((p < 0).to(torch::kFloat64));
    return out;
  }

 private:
  DapoOverlongOptions o_;
};

// ---- A6: PURPLE κ-preconditioning ------------------------------------------------------------------------

/// input_kind: reward (scale the input as is), discriminator (input is D ∈ [0,1): r = −log(1 − D)),
/// logits (input is the discriminator logit: r = softplus). κ follows RewardInput::step.
class PreconditionScheme : public RewardScheme {
 public:
  PreconditionScheme(PurpleOptions o, std::string input, std::string kind)
      : o_(std::move(o)), input_(std::move(input)), kind_(std::move(kind)) {}
  RewardOutput score(const RewardInput& in) override {
    at::Tensor r = fetch_vector(in, input_, "precondition", "input");
    if (kind_ == "discriminator") r = discriminator_reward(r);
    else if (kind_ == "logits") r = discriminator_reward_from_logits(r);
    const double kappa = purple_kappa(in.step, o_);
    RewardOutput out = make_output(purple_precondition(r, kappa));
    out.metrics["precondition/kappa"] = kappa;
    return out;
  }

 private:
  PurpleOptions o_;
  std::string input_, kind_;
};

// ---- A1–A2 as one pipeline: RmShaper ---------------------------------------------------------------------------

/// length penalty (response_lengths, when enabled) -> ceil -> the one `shaping` transform; references
/// (fetched as for par / lsc) only when the transform centres on them. Running statistics checkpointed.
class ShapingScheme : public RewardScheme {
 public:
  ShapingScheme(RmShapingOptions o, std::string input, std::string refs_key)
      : shaper_(std::move(o)), input_(std::move(input)), refs_key_(std::move(refs_key)) {}
  RewardOutput score(const RewardInput& in) override {
    const RmShapingOptions& o = shaper_.options();
    const at::Tensor r = fetch_vector(in, input_, "shaping", "input");
    const at::Tensor len = o.length_penalty.enabled ? lengths_of(in, "shaping") : at::Tensor();
    Refs refs;
    if (o.shaping == "lsc" || (uses_par() && o.par.centered)) refs = fetch_refs(in, refs_key_, "shaping");
    RewardOutput out = make_output(shaper_.apply(r, len, refs.values, refs.mask));
    out.metrics["shaping/raw_mean"] = mean_of(r);
    return out;
  }
  bool stateful() const override {
    const std::string& s = shaper_.options().shaping;
    return s == "meanstd" || s == "clip" || s == "minmax";
  }
  void save_state(RewardState& out) const override { shaper_.save_state(out); }
  void load_state(const RewardState& in) override { shaper_.load_state(in); }

 private:
  bool uses_par() const {
    const std::string& s = shaper_.options().shaping;
    return s != "vanilla" && s != "warm" && s != "meanstd" && s != "clip" && s != "minmax" && s != "lsc";
  }
  RmShaper shaper_;
  std::string input_, refs_key_;
};

}  // namespace

void register_group_a(RewardRegistry& reg) {
  const std::pair<const char*, const char*> par_family[] = {
      {"par", "PAR: mean sigmoid(k(r - r_ref)) over stored reference rewards (preference as reward)"},
      {"sigmoid", "sigmoid(k r), no reference (PAR sibling)"},
      {"sigmoidk2", "sigmoid(2 r), no reference (PAR sibling)"},
      {"sigmoidk3", "sigmoid(3 r), no reference (PAR sibling)"},
      {"tanh", "mean tanh(r - r_ref) over reference rewards (PAR sibling)"},
      {"fittedpoly", "PAR with the fitted 5th-order polynomial instead of sigmoid"},
      {"centered", "mean (r - r_ref) over reference rewards, unbounded (PAR sibling)"},
      {"sgfc", "PAR applied to r - 3 ('slow growth then fast converge', older PAR code)"},
  };
  for (const auto& [name, doc] : par_family) reg.add(name, doc, par_factory(name));

  reg.add("shaping", "PAR-repo pipeline: length penalty -> ceil -> one transform (vanilla, meanstd, par, lsc ...)",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            RmShapingOptions o;
            read_rm_shaping_options(r, o);
            const std::string input = read_input(r);
            std::string refs_key = "ref_rewards";
            r.field("refs_key", refs_key, "extra tensor [N, M] (mask: <key>_mask) or metadata list of reference rewards")
                .nonempty();
            // lsc without references is logsigmoid(r), not LSC; a centred PAR transform with
            // missing_refs: fail throws without them.
            const bool sigmoid_family = o.shaping != "vanilla" && o.shaping != "warm" && o.shaping != "meanstd" &&
                                        o.shaping != "clip" && o.shaping != "minmax" && o.shaping != "lsc";
            if (o.shaping == "lsc" || (sigmoid_family && o.par.centered && o.par.missing_refs == "fail"))
              require_input(r, "meta." + refs_key, "refs_key");
            return std::make_unique<ShapingScheme>(o, input, refs_key);
          });
  reg.add("length_penalty", "r - c * max(0, L - L0), linear penalty beyond valid_len tokens",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            LengthPenaltyOptions o;
            read_length_penalty_options(r, o);
            return std::make_unique<LengthPenaltyScheme>(o, read_input(r));
          });
  reg.add("ceil", "min(r, value), a ceiling on the reward", [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
    CeilOptions o;
    read_ceil_options(r, o);
    return std::make_unique<CeilScheme>(o, read_input(r));
  });
  for (const char* name : {"meanstd", "clip"}) {
    const std::string n = name;
    reg.add(name,
            n == "meanstd" ? "(r - mu) / sigma with whole-training running mean / std (checkpointed)"
                           : "clamp(r, mu - sigma, mu + sigma) with whole-training running statistics (checkpointed)",
            [n](config::Reader& r) -> std::unique_ptr<RewardScheme> {
              MeanStdOptions o;
              read_meanstd_options(r, o);
              return std::make_unique<RunningMeanStdScheme>(n, o, read_input(r));
            });
  }
  reg.add("minmax", "(r - min) / (max - min) with the running min / max of all rewards seen (checkpointed)",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            MinMaxOptions o;
            read_minmax_options(r, o);
            return std::make_unique<MinMaxScheme>(o, read_input(r));
          });
  reg.add("lsc", "log-sigmoid centred: logsigmoid(r - (mean + z_q std) of the reference rewards)",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            LscOptions o;
            read_lsc_options(r, o);
            const std::string input = read_input(r);
            std::string refs_key = "ref_rewards";
            r.field("refs_key", refs_key, "extra tensor [N, M] (mask: <key>_mask) or metadata list of reference rewards")
                .nonempty();
            // Without references the reference point is 0 (logsigmoid(r)): not the documented LSC.
            require_input(r, "meta." + refs_key, "refs_key");
            return std::make_unique<LscScheme>(o, input, refs_key);
          });
  reg.add("ssl", "Sweet Spot Learning: success + alpha * tiered proximity value [interp]",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            SslOptions o;
            read_ssl_options(r, o);
            std::string success = "correct";
            read_signal(r, "success", success, "binary outcome C");
            bool steps = false;
            r.field("steps", steps, "proximity = mean of per-step values in step_scores (else from extra geometry)");
            if (steps) {
              require_input(r, "step_scores", "steps");
            } else if (o.proximity == "block_match") {
              for (const char* k : {"extra.matched", "extra.total"}) require_input(r, k, "proximity");
            } else {
              for (const char* k : {"extra.click", "extra.center", "extra.box_size"}) require_input(r, k, "proximity");
            }
            return std::make_unique<SslScheme>(o, success, steps);
          });
  reg.add("truthrl", "TruthRL ternary reward: correct +1, abstain 0, wrong / no \\boxed{} -1 (exact match or judge)",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            TruthRlOptions o;
            read_truthrl_options(r, o);
            std::string answer_key = "gold_answers", ook_key = "ook";
            r.field("answer_key", answer_key, "metadata field with the gold answer(s)").nonempty();
            r.field("ook_key", ook_key, "metadata bool: question is out of the model's knowledge (ternary_ook)").nonempty();
            require_input(r, "meta." + answer_key, "answer_key");
            if (o.use_judge) require_input(r, std::string("extra.") + TruthRlScheme::kJudgeKey, "use_judge");
            std::string reasoning = "extra.reasoning_score";
            const bool reasoning_ok =
                read_signal_spec(r, "reasoning", reasoning, "0/1 judge score of the thinking text (reasoning_weight > 0)");
            if (reasoning_ok && o.reasoning_weight > 0.0)
              declare_signal(r, "reasoning", reasoning);
            return std::make_unique<TruthRlScheme>(o, answer_key, ook_key, reasoning);
          });
  reg.add("arlcp", "ARLCP: 1 - w1 s_ref - w2 s_len for correct answers (reflection + length penalty), 0 otherwise",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            ArlcpOptions o;
            read_arlcp_options(r, o);
            std::string accuracy = "correct";
            read_signal(r, "accuracy", accuracy, "0/1 correctness of each response");
            bool format_gate = true;
            r.field("format_gate", format_gate, "also require no <think> and exactly one </think> (released code)");
            return std::make_unique<ArlcpScheme>(o, accuracy, format_gate);
          });
  reg.add("dapo_soft", "DAPO soft overlong penalty (<= 0) from response length, added to the task reward",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            DapoOverlongOptions o;
            read_dapo_overlong_options(r, o);
            return std::make_unique<DapoSoftScheme>(o);
          });
  reg.add("precondition", "PURPLE: kappa * r, pessimistic down-scaling of a learned reward (kappa schedule [interp])",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            PurpleOptions o;
            read_purple_options(r, o);
            const std::string input = read_input(r);
            std::string kind = "reward";
            r.field("input_kind", kind, "input is a reward, a discriminator probability D (r = -log(1-D)) or its logit")
                .one_of({"reward", "discriminator", "logits"}, "input_kind");
            return std::make_unique<PreconditionScheme>(o, input, kind);
          });
}

}  // namespace keel::rewards::glue
