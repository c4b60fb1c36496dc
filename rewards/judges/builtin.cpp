// The built-in judge types (see judge.h):
//
//   yes_no        a generative judge (an HF causal LM) asked one yes/no question per criterion:
//                 s[i, k] = P(yes | template(prompt_i, response_i, answer_i, criterion_k)), two-way
//                 normalised over the yes / no token variants (RewardDance's P(yes), the rubric
//                 judges of POW3R / OpenRS / CaRR / Auto-Rubric reduced to binary verdicts per
//                 criterion). Criteria from the params (`criteria`) or per prompt from the
//                 records (`criteria_key`: a list of strings or of {criterion|text: ...} objects).
//                 Writes criterion_scores [N, K] and criterion_mask (default), rm_scores [N] (one
//                 criterion) or extra.<key>; `threshold` turns probabilities into 0/1 verdicts
//                 (TruthRL's judge_correct).
//   prm           a process reward model: the response is cut into steps on the policy's tokens
//                 (a step ends on the last token of each run of tokens holding the delimiter,
//                 default a newline, or on every tag token; a response with no boundary is one
//                 step — Math-Shepherd / PRM800K step segmentation), and every step prefix is
//                 scored in one batched pass: P(yes) of a generative judge (head: lm, template
//                 with {response} = the prefix) or σ(score head) of a sequence classifier
//                 (head: score, the `keel train-rm` layout). Writes step_scores [N, S] (p, or 2p − 1
//                 with signed: true), step_ends [N, S] (token index in the response, −1 padding)
//                 and step_mask.
//   pairwise      a generative judge comparing the responses of a group two by two (OpenRS): P(A is
//                 better than B) for every ordered pair -> extra.openrs_scores [N, G] (default).
//   gold_answer   a policy-side signal for IGPO's information gain: log-probs of the gold answer under
//                 an LM (the reference / SFT checkpoint) after the prompt and after each step prefix
//                 -> extra.gold_logprobs [N, S + 1, L], extra.gold_mask, step_ends.
//   reward_model  a scalar reward model's score head on prompt + response: rm_scores [N]
//                 (default) or extra.<key> (e.g. Ctrl-U's second evaluation, extra.rm_scores_2).
//
// Fallbacks (documented, counted): a non-finite score is replaced by `fallback` (P(yes) judges:
// 0.5, "undecided"; reward_model: 0) and, for criteria, masked out; with timeout_s > 0, judge
// prompts not scored when the deadline passes (checked between batches: the first batch always
// runs) take the fallback too.
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <optional>

#include <fmt/ranges.h>
#include <torch/torch.h>

#include "base/error.h"
#include "base/log.h"
#include "base/reader.h"
#include "models/logprobs.h"
#include "models/model_config.h"
#include "models/pretrained.h"
#include "models/tokenizer.h"
#include "rewards/judges/judge.h"
#include "rewards/models/generative_judge.h"
#include "rewards/models/reward_model.h"
#include "rewards/models/sequence_scoring.h"
#include "rewards/schemes/step_boundaries.h"

namespace keel::rewards {

namespace {

bool has_field(const std::string& tmpl, const char* field) { return tmpl.find(field) != std::string::npos; }

/// Scores items [0, m) in batches of `batch` with `fn(begin, end, tokens) -> [end - begin]`; items
/// past the deadline and non-finite scores take `fallback`. Returns (values [m] float, valid [m] bool).
std::pair<torch::Tensor, torch::Tensor> score_in_batches(
    int64_t m, int64_t batch, double timeout_s, double fallback,
    const std::function<torch::Tensor(int64_t, int64_t, int64_t*)>& fn, JudgeStats& st) {
  auto values = torch::full({m}, fallback, torch::kFloat);
  auto valid = torch::zeros({m}, torch::kBool);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t b = 0; b < m; b += batch) {
    const int64_t e = std::min(m, b + batch);
    if (b > 0 && timeout_s > 0 && std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > timeout_s) {
      st.timeouts += m - b;
      break;
    }
    int64_t tokens = 0;
    const auto v = fn(b, e, &tokens).to(torch::kCPU, torch::kFloat).reshape({e - b});
    st.tokens += tokens;
    const auto finite = torch::isfinite(v);
    values.slice(0, b, e).copy_(torch::where(finite, v, torch::full_like(v, fallback)));
    valid.slice(0, b, e).copy_(finite);
    st.invalid += (e - b) - finite.sum().item<int64_t>();
  }
  st.prompts += m;
  const auto ok = values.masked_select(valid);
  st.mean = ok.numel() ? ok.to(torch::kDouble).mean().item<double>() : 0.0;
  return {values, valid};
}

/// fallback and timeout_s; a P(yes) judge's fallback is a probability.
void read_stage_options(config::Reader& r, double& fallback, double& timeout_s, bool probability) {
  auto f = r.field("fallback", fallback, "score of a judge prompt whose output is not finite or that missed the deadline");
  if (probability) f.ge(0).le(1);
  r.field("timeout_s", timeout_s, "deadline of one batch's judging in seconds (checked between forward passes); 0 = none")
      .ge(0);
}

// ---- yes_no ---------------------------------------------------------------------------------------------

struct YesNoOptions {
  GenerativeJudgeOptions gen;
  std::vector<std::string> criteria = {"is the answer correct"};
  std::string criteria_key;  ///< metadata key with per-prompt criteria ("" = the fixed list)
  std::string output = "criterion_scores";
  double threshold = 0;  ///< (0, 1): write P(yes) > threshold as 1 / 0; 0 = probabilities
  std::string logits_output;  ///< extra.<key>: also the verdict's label logits [N, 2] (one criterion)
  double fallback = 0.5;
  double timeout_s = 0;
};

class YesNoJudge : public Judge {
 public:
  YesNoJudge(YesNoOptions o, std::string where) : o_(std::move(o)), where_(std::move(where)) {}

  void bind(const JudgeContext& ctx) override {
    if (core_) return;
    auto g = o_.gen;
    g.device = ctx.device;
    g.run_probes = ctx.probes;
    // The master-key suite runs under every fixed criterion ([interp] a generic one for criteria
    // that come with the records): each is a question the judge must not answer "yes" for nothing.
    const auto crits = o_.criteria_key.empty() ? o_.criteria : std::vector<std::string>{"is the response correct"};
    for (const auto& c : crits) g.suite_templates.push_back(render_judge_prompt(g.prompt_template, "{prompt}", "{response}", "{answer}", c));
    core_.emplace(g, where_);
    core_->bind(RewardContext{});
  }

  std::vector<std::string> produces() const override {
    if (o_.logits_output.empty()) return {o_.output};
    return {o_.output, o_.logits_output};
  }

  JudgeStats run(RewardInput& in) override {
    TORCH_CHECK(core_, where_, ": judge used before bind");
    const int64_t n = in.size();
    std::vector<std::vector<std::string>> crits(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) crits[static_cast<size_t>(i)] = criteria_of(in, i);
    int64_t k = 0;
    for (const auto& c : crits) k = std::max<int64_t>(k, static_cast<int64_t>(c.size()));
    const bool with_answer = has_field(o_.gen.prompt_template, "{answer}");
    if (with_answer) require_metadata(in, "answer", where_);
    std::vector<std::string> texts;
    std::vector<int64_t> cell;  // flat index i * K + j of each text
    for (int64_t i = 0; i < n; ++i) {
      const std::string answer = with_answer ? json_text(in.meta(i).at("answer")) : "";
      const auto& c = crits[static_cast<size_t>(i)];
      for (size_t j = 0; j < c.size(); ++j) {
        texts.push_back(render_judge_prompt(o_.gen.prompt_template, in.prompts[static_cast<size_t>(i)],
                                            in.responses[static_cast<size_t>(i)], answer, c[j]));
        cell.push_back(i * k + static_cast<int64_t>(j));
      }
    }
    JudgeStats st;
    // With logits_output, each batch's label logits (ℓ_yes, ℓ_no) = (LSE over the yes variants, LSE
    // over the no variants) are kept too: Ctrl-U's two-pass uncertainty compares two such evaluations.
    std::vector<torch::Tensor> label_logits;
    auto [vals, valid] = score_in_batches(
        static_cast<int64_t>(texts.size()), o_.gen.batch_size, o_.timeout_s, o_.fallback,
        [&](int64_t b, int64_t e, int64_t* tokens) {
          const auto logits = core_->next_logits(std::vector<std::string>(texts.begin() + b, texts.begin() + e), tokens);
          if (!o_.logits_output.empty()) {
            const auto ids = [](const std::vector<int64_t>& v) { return torch::tensor(v, torch::kLong); };
            label_logits.push_back(torch::stack({logits.index_select(1, ids(core_->yes_ids())).logsumexp(1),
                                                 logits.index_select(1, ids(core_->no_ids())).logsumexp(1)}, 1));
          }
          return judge_yes_probability(logits, core_->yes_ids(), core_->no_ids(), o_.gen.normalize);
        },
        st);
    if (!o_.logits_output.empty()) {
      // Rows past the deadline (or with no criterion) get uninformative logits (0, 0): P(yes) = 1/2.
      auto all = torch::zeros({n, 2}, torch::kFloat);
      if (!label_logits.empty()) {
        const auto got = torch::cat(label_logits);
        all.slice(0, 0, got.size(0)).copy_(torch::where(torch::isfinite(got), got, torch::zeros_like(got)));
      }
      in.extra[o_.logits_output.substr(6)] = all;
    }
    auto scores = torch::full({n * k}, o_.fallback, torch::kFloat);
    auto mask = torch::zeros({n * k}, torch::kBool);
    const auto idx = torch::tensor(cell, torch::kLong);
    if (!cell.empty()) {
      scores.index_put_({idx}, vals);
      mask.index_put_({idx}, valid);
    }
    scores = scores.view({n, k});
    mask = mask.view({n, k});
    if (o_.threshold > 0) scores = scores.gt(o_.threshold).to(torch::kFloat);
    if (o_.output == "criterion_scores") {
      in.criterion_scores = scores;
      in.criterion_mask = mask;
    } else {
      write_judge_output(in, o_.output, k == 1 ? scores.squeeze(1) : scores);
    }
    return st;
  }

 private:
  std::vector<std::string> criteria_of(const RewardInput& in, int64_t i) const {
    if (o_.criteria_key.empty()) return o_.criteria;
    const auto& m = in.meta(i);
    if (!m.is_object() || !m.contains(o_.criteria_key))
      fail("{}: sample {} has no metadata '{}' (criteria_key)", where_, i, o_.criteria_key);
    const auto& list = m.at(o_.criteria_key);
    if (!list.is_array()) fail("{}: metadata '{}' of sample {} must be a list of criteria, got {}", where_, o_.criteria_key, i, list.dump());
    std::vector<std::string> out;
    for (const auto& c : list) {
      if (c.is_string()) out.push_back(c.get<std::string>());
      else if (c.is_object() && c.contains("criterion") && c.at("criterion").is_string()) out.push_back(c.at("criterion").get<std::string>());
      else if (c.is_object() && c.contains("text") && c.at("text").is_string()) out.push_back(c.at("text").get<std::string>());
      else fail("{}: a criterion in metadata '{}' of sample {} must be a string or an object with \"criterion\" or \"text\", got {}",
                where_, o_.criteria_key, i, c.dump());
    }
    return out;
  }

  YesNoOptions o_;
  std::string where_;
  std::optional<GenerativeJudge> core_;
};

std::unique_ptr<Judge> make_yes_no(config::Reader& r, const std::string& name) {
  YesNoOptions o;
  o.gen.prompt_template = "{prompt}{response}\nQ: {criterion}?\nA:";
  read_generative_judge_options(r, o.gen, {"prompt", "response", "answer", "criterion"});
  r.field("criteria", o.criteria, "the questions asked of every response, one verdict each ({criterion})").nonempty();
  r.field("criteria_key", o.criteria_key, "metadata key with each prompt's own criteria (replaces criteria)");
  r.field("output", o.output, "where the verdicts go: criterion_scores | rm_scores | extra.<key>");
  const bool out_ok = check_judge_output(r, "output", o.output, {"criterion_scores", "rm_scores"});
  r.field("threshold", o.threshold, "in (0, 1): write P(yes) > threshold as 1 / 0 verdicts; 0 = probabilities").ge(0).lt(1);
  r.field("logits_output", o.logits_output, "extra.<key>: also write the verdict's label logits [N, 2] (ℓ_yes, ℓ_no)");
  if (!o.logits_output.empty() && (o.logits_output.rfind("extra.", 0) != 0 || o.logits_output.size() <= 6))
    r.error("logits_output", fmt::format("expected extra.<key>, got '{}'", o.logits_output));
  read_stage_options(r, o.fallback, o.timeout_s, true);
  const bool many = o.criteria.size() > 1 || !o.criteria_key.empty();
  if (many && !has_field(o.gen.prompt_template, "{criterion}"))
    r.error("template", "several criteria need {criterion} in the template (else every criterion asks the same question)");
  if (!o.logits_output.empty() && many)
    r.error("logits_output", "label logits are one pair per response: give exactly one criterion");
  if (out_ok && o.output == "rm_scores" && many)
    r.error("output", "rm_scores holds one score per response: give exactly one criterion (or write criterion_scores)");
  if (!o.criteria_key.empty()) require_input(r, "meta." + o.criteria_key, "criteria_key");
  if (has_field(o.gen.prompt_template, "{answer}")) require_input(r, "meta.answer", "template");
  return std::make_unique<YesNoJudge>(o, r.path().empty() ? "judge " + name : r.path());
}

// ---- step segmentation on the policy's tokens (prm, gold_answer) ------------------------------------------

/// Cuts responses into steps on the policy's tokens: a step ends on the last token of each run of
/// tokens holding `delimiter` (or on every `tag` token); a response with no boundary is one step; at
/// most max_steps per response ([interp] later ones merge into the last: the first max_steps − 1
/// ends are kept, and the response's last end). With `turns`, the steps are a multi-turn episode's
/// policy turns instead (the step_ends the environment's rollout set), and a step's text runs
/// through the observation that followed it (what the agent knew after the turn; IGPO).
class StepCutter {
 public:
  void bind(const models::Tokenizer* tok, const std::string& delimiter, const std::string& tag, int64_t max_steps,
            const std::string& where, bool turns = false) {
    if (!tok) fail("{}: steps are cut on the policy's tokens, but the run gave this judge no tokenizer", where);
    tok_ = tok;
    max_steps_ = max_steps;
    turns_ = turns;
    if (turns) return;
    if (!tag.empty()) {
      const auto ids = tok->encode(tag, /*add_special=*/false, /*parse_special=*/true);
      if (ids.size() != 1)
        fail("{}.tag: '{}' is {} tokens of the policy's tokenizer; a step tag must be one token", where,
             models::escape_for_display(tag), ids.size());
      tag_id_ = ids[0];
      return;
    }
    for (int64_t id = 0; id < tok->vocab_size(); ++id)
      if (tok->id_to_bytes(id).find(delimiter) != std::string::npos) delimiter_ids_.push_back(id);
    if (delimiter_ids_.empty())
      log::warn("{}: no token of the policy's tokenizer holds the step delimiter '{}': every response is one step", where,
                models::escape_for_display(delimiter));
  }
  bool bound() const { return tok_ != nullptr; }

  struct Steps {
    std::vector<std::vector<int64_t>> ends;      ///< per row, the step-end token indices
    std::vector<std::vector<std::string>> text;  ///< per row, the decoded response through each step end
    int64_t s_max = 1;                           ///< most steps of a row (at least 1)
  };

  Steps cut(const RewardInput& in, const std::string& where) const {
    require_tensor(in, in.response_tokens, "response_tokens", where);
    require_tensor(in, in.response_mask, "response_mask", where);
    const auto ids = in.response_tokens.detach().cpu().to(torch::kLong).contiguous();
    const auto mask = in.response_mask.detach().cpu().to(torch::kBool).contiguous();
    const int64_t n = ids.size(0);
    const auto id = ids.accessor<int64_t, 2>();
    const auto valid = mask.accessor<bool, 2>();
    if (turns_) return cut_turns(in, ids, mask, where);
    auto ends = tag_id_ >= 0 ? step_ends_from_tag(ids, mask, tag_id_) : step_ends_from_delimiters(ids, mask, delimiter_ids_);
    ends = step_ends_with_fallback(ends, mask).to(torch::kBool).contiguous();
    const auto is_end = ends.accessor<bool, 2>();
    Steps out;
    out.ends.resize(static_cast<size_t>(n));
    out.text.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      auto& row = out.ends[static_cast<size_t>(i)];
      for (int64_t t = 0; t < ids.size(1); ++t)
        if (is_end[i][t]) row.push_back(t);
      cap_steps(row);
      out.s_max = std::max<int64_t>(out.s_max, static_cast<int64_t>(row.size()));
      std::vector<int64_t> toks;
      int64_t prev = -1;
      for (const int64_t end : row) {
        for (int64_t t = prev + 1; t <= end; ++t)
          if (valid[i][t]) toks.push_back(id[i][t]);
        prev = end;
        out.text[static_cast<size_t>(i)].push_back(tok_->decode(toks, /*skip_special=*/true));
      }
    }
    return out;
  }

  /// step_ends [N, S] (−1 padding) and step_mask of `steps` into `in`.
  static void write_ends(RewardInput& in, const Steps& steps) {
    const int64_t n = static_cast<int64_t>(steps.ends.size());
    auto e = torch::full({n, steps.s_max}, -1, torch::kLong);
    for (int64_t i = 0; i < n; ++i)
      for (size_t j = 0; j < steps.ends[static_cast<size_t>(i)].size(); ++j)
        e[i][static_cast<int64_t>(j)] = steps.ends[static_cast<size_t>(i)][j];
    in.step_ends = e;
    in.step_mask = e.ge(0);
  }

 private:
  /// At most max_steps ends: the first max_steps − 1, then the row's last (later steps merge into it).
  void cap_steps(std::vector<int64_t>& row) const {
    if (static_cast<int64_t>(row.size()) <= max_steps_) return;
    const int64_t last = row.back();
    row.resize(static_cast<size_t>(max_steps_ - 1));
    row.push_back(last);
  }

  /// Steps = the environment's turns: in.step_ends [N, T] (−1 = not played); step j's text is the
  /// response side (the policy's tokens and the observations, extra.response_attention) up to the
  /// next turn's first token.
  Steps cut_turns(const RewardInput& in, const at::Tensor& ids, const at::Tensor& mask, const std::string& where) const {
    TORCH_CHECK(in.step_ends.defined(), where, " (turns: true): the batch has no turn ends; they come with an environment (env.name)");
    const auto it = in.extra.find("response_attention");
    TORCH_CHECK(it != in.extra.end(), where, " (turns: true): the batch has no extra.response_attention (an environment's rollout sets it)");
    const auto seen_t = it->second.cpu().to(torch::kLong).sum(1).contiguous();
    const auto seen = seen_t.accessor<int64_t, 1>();
    const auto ends = in.step_ends.cpu().to(torch::kLong).contiguous();
    const auto id = ids.accessor<int64_t, 2>();
    const auto m = mask.accessor<bool, 2>();
    const auto e = ends.accessor<int64_t, 2>();
    const int64_t n = ids.size(0), r = ids.size(1);
    Steps out;
    out.ends.resize(static_cast<size_t>(n));
    out.text.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      auto& row = out.ends[static_cast<size_t>(i)];
      for (int64_t j = 0; j < ends.size(1); ++j)
        if (e[i][j] >= 0 && e[i][j] < r) row.push_back(e[i][j]);
      cap_steps(row);
      out.s_max = std::max<int64_t>(out.s_max, static_cast<int64_t>(row.size()));
      const int64_t len = std::min<int64_t>(r, seen[i]);
      for (const int64_t end : row) {
        int64_t upto = end + 1;  // through the observation after the turn: up to the next policy token
        while (upto < len && !m[i][upto]) ++upto;
        std::vector<int64_t> toks;
        for (int64_t t = 0; t < upto; ++t) toks.push_back(id[i][t]);
        out.text[static_cast<size_t>(i)].push_back(tok_->decode(toks, /*skip_special=*/true));
      }
    }
    return out;
  }

  const models::Tokenizer* tok_ = nullptr;
  bool turns_ = false;
  std::vector<int64_t> delimiter_ids_;
  int64_t tag_id_ = -1;
  int64_t max_steps_ = 32;
};

// ---- prm ------------------------------------------------------------------------------------------------

struct PrmJudgeOptions {
  std::string head = "lm";  ///< lm: P(yes) of a generative judge | score: σ(score head)
  GenerativeJudgeOptions gen;
  RewardModelOptions rm;
  std::string delimiter = "\n";
  std::string tag;
  int64_t max_steps = 32;
  bool turns = false;  ///< the steps are a multi-turn episode's turns (StepCutter)
  bool signed_scores = false;  ///< write 2p − 1 in [−1, 1] (a ternary verdict's continuous form) instead of p
  double fallback = 0.5;
  double timeout_s = 0;
};

class PrmJudge : public Judge {
 public:
  PrmJudge(PrmJudgeOptions o, std::string where) : o_(std::move(o)), where_(std::move(where)) {}

  void bind(const JudgeContext& ctx) override {
    if (gen_ || rm_) return;
    steps_.bind(ctx.policy_tokenizer, o_.delimiter, o_.tag, o_.max_steps, where_, o_.turns);
    if (o_.head == "lm") {
      auto g = o_.gen;
      g.device = ctx.device;
      g.run_probes = ctx.probes;
      gen_.emplace(g, where_);
      gen_->bind(RewardContext{});
    } else {
      auto m = o_.rm;
      m.device = ctx.device;
      rm_.emplace(m, where_);
      rm_->bind(RewardContext{});
    }
  }

  std::vector<std::string> produces() const override { return {"step_scores", "step_ends"}; }

  JudgeStats run(RewardInput& in) override {
    TORCH_CHECK(steps_.bound(), where_, ": judge used before bind");
    const auto steps = steps_.cut(in, where_);
    const int64_t n = in.size(), s_max = steps.s_max;
    const bool with_answer = o_.head == "lm" && has_field(o_.gen.prompt_template, "{answer}");
    if (with_answer) require_metadata(in, "answer", where_);
    std::vector<std::string> prompts, prefixes, texts;
    std::vector<int64_t> cell;
    for (int64_t i = 0; i < n; ++i) {
      const std::string& prompt = in.prompts[static_cast<size_t>(i)];
      const auto& row = steps.text[static_cast<size_t>(i)];
      for (size_t j = 0; j < row.size(); ++j) {
        if (o_.head == "lm")
          texts.push_back(render_judge_prompt(o_.gen.prompt_template, prompt, row[j],
                                              with_answer ? json_text(in.meta(i).at("answer")) : ""));
        prompts.push_back(prompt);
        prefixes.push_back(row[j]);
        cell.push_back(i * s_max + static_cast<int64_t>(j));
      }
    }
    JudgeStats st;
    const int64_t batch = o_.head == "lm" ? o_.gen.batch_size : o_.rm.batch_size;
    auto [vals, valid] = score_in_batches(
        static_cast<int64_t>(cell.size()), batch, o_.timeout_s, o_.fallback,
        [&](int64_t b, int64_t e, int64_t* tokens) -> torch::Tensor {
          if (gen_) return gen_->judge_texts(std::vector<std::string>(texts.begin() + b, texts.begin() + e), tokens);
          return torch::sigmoid(rm_->raw_scores(std::vector<std::string>(prompts.begin() + b, prompts.begin() + e),
                                                std::vector<std::string>(prefixes.begin() + b, prefixes.begin() + e),
                                                tokens));
        },
        st);
    (void)valid;
    auto scores = torch::full({n * s_max}, o_.fallback, torch::kFloat);
    if (!cell.empty()) scores.index_put_({torch::tensor(cell, torch::kLong)}, vals);
    if (o_.signed_scores) scores = 2 * scores - 1;
    in.step_scores = scores.view({n, s_max});
    StepCutter::write_ends(in, steps);
    return st;
  }

 private:
  PrmJudgeOptions o_;
  std::string where_;
  StepCutter steps_;
  std::optional<GenerativeJudge> gen_;
  std::optional<RewardModelScheme> rm_;
};

std::unique_ptr<Judge> make_prm(config::Reader& r, const std::string& name) {
  PrmJudgeOptions o;
  r.field("head", o.head, "lm: P(yes) of a generative judge on each step prefix; score: sigmoid of a score head")
      .one_of({"lm", "score"}, "PRM head");
  if (o.head == "score") {
    read_reward_model_options(r, o.rm);
  } else {
    o.gen.prompt_template = "{prompt}{response}\nQ: is the last step correct?\nA:";
    read_generative_judge_options(r, o.gen);
    if (has_field(o.gen.prompt_template, "{answer}")) require_input(r, "meta.answer", "template");
  }
  r.field("delimiter", o.delimiter, "a step ends on the last token of each run of tokens holding this text").nonempty();
  r.field("tag", o.tag, "a step ends on every occurrence of this one-token tag (replaces delimiter)");
  r.field("max_steps", o.max_steps, "most steps scored per response (later ones merge into the last)").ge(1);
  r.field("turns", o.turns, "the steps are a multi-turn episode's turns (an environment's), not delimiter runs");
  if (o.turns) require_input(r, "step_ends", "turns");
  r.field("signed", o.signed_scores, "write 2p - 1 in [-1, 1] (DataPRM's verdict scale) instead of the probability p");
  read_stage_options(r, o.fallback, o.timeout_s, true);
  return std::make_unique<PrmJudge>(o, r.path().empty() ? "judge " + name : r.path());
}

// ---- gold_answer ----------------------------------------------------------------------------------------

struct GoldAnswerOptions {
  std::string path;       ///< HF causal LM (resolve_model_dir) that reads the gold answer
  std::string tokenizer;  ///< "" = path
  std::string answer_key = "answer";
  std::string separator = "\n";
  std::string delimiter = "\n";
  std::string tag;
  int64_t max_steps = 32;
  bool turns = false;  ///< the steps are a multi-turn episode's turns (StepCutter)
  int64_t max_answer_tokens = 32;
  int64_t batch_size = 16;
};

/// IGPO's belief in the gold answer after each turn: log p(answer tokens | prompt + response through
/// step t) for t = 0 (the prompt alone) .. S, teacher-forced, one batched no-grad pass. [interp] The
/// model is a frozen LM named by `path` (the reference / SFT checkpoint — the issue's "under the
/// policy or the reference"); the live policy is not read here. The answer follows the context
/// after `separator`. Writes extra.gold_logprobs [N, S + 1, L], extra.gold_mask [N, L] and the
/// step ends it cut (step_ends, step_mask).
class GoldAnswerJudge : public Judge {
 public:
  GoldAnswerJudge(GoldAnswerOptions o, std::string where) : o_(std::move(o)), where_(std::move(where)) {}

  void bind(const JudgeContext& ctx) override {
    if (model_) return;
    steps_.bind(ctx.policy_tokenizer, o_.delimiter, o_.tag, o_.max_steps, where_, o_.turns);
    model_.emplace(load_judge_lm(o_.path, ctx.device));
    tok_ = models::load_tokenizer(o_.tokenizer.empty() ? o_.path : o_.tokenizer);
  }

  std::vector<std::string> produces() const override { return {"extra.gold_logprobs", "step_ends"}; }

  JudgeStats run(RewardInput& in) override {
    TORCH_CHECK(model_, where_, ": judge used before bind");
    require_metadata(in, o_.answer_key, where_);
    const auto steps = steps_.cut(in, where_);
    const int64_t n = in.size(), s1 = steps.s_max + 1;
    std::vector<std::vector<int64_t>> gold(static_cast<size_t>(n));
    int64_t l = 1;
    for (int64_t i = 0; i < n; ++i) {
      auto g = tok_->encode(o_.separator + json_text(in.meta(i).at(o_.answer_key)), /*add_special=*/false);
      if (static_cast<int64_t>(g.size()) > o_.max_answer_tokens) g.resize(static_cast<size_t>(o_.max_answer_tokens));
      if (g.empty()) fail("{}: the gold answer of sample {} is empty after tokenization", where_, i);
      l = std::max<int64_t>(l, static_cast<int64_t>(g.size()));
      gold[static_cast<size_t>(i)] = std::move(g);
    }
    const int64_t room = model_->config().max_position_embeddings - l;
    if (room < 1) fail("{}: gold answers of {} tokens leave no context in the model's {} positions", where_, l,
                       model_->config().max_position_embeddings);
    // Every (row, turn) context: the prompt, then the response through the turn's step.
    std::vector<std::vector<int64_t>> ctxs;
    std::vector<int64_t> rows;
    for (int64_t i = 0; i < n; ++i) {
      const auto& text = steps.text[static_cast<size_t>(i)];
      for (int64_t t = 0; t < s1; ++t) {
        // Turns past a row's last step repeat its last context (the step mask leaves them out).
        const std::string prefix = t == 0 || text.empty() ? "" : text[static_cast<size_t>(std::min<int64_t>(t, text.size()) - 1)];
        ctxs.push_back(keep_last_tokens(tok_->encode(in.prompts[static_cast<size_t>(i)] + prefix, /*add_special=*/true), room));
        rows.push_back(i);
      }
    }
    JudgeStats st;
    const int64_t pad = tok_->pad_id() != models::kNoToken ? tok_->pad_id() : 0;
    auto lp = torch::zeros({n * s1, l}, torch::kFloat);
    auto gold_mask = torch::zeros({n, l}, torch::kBool);
    for (int64_t i = 0; i < n; ++i) gold_mask[i].slice(0, 0, static_cast<int64_t>(gold[static_cast<size_t>(i)].size())).fill_(true);
    torch::NoGradGuard ng;
    for (int64_t b = 0; b < static_cast<int64_t>(ctxs.size()); b += o_.batch_size) {
      const int64_t e = std::min<int64_t>(static_cast<int64_t>(ctxs.size()), b + o_.batch_size);
      int64_t p = 1;
      for (int64_t k = b; k < e; ++k) p = std::max<int64_t>(p, static_cast<int64_t>(ctxs[static_cast<size_t>(k)].size()));
      auto ids = torch::full({e - b, p}, pad, torch::kLong), mask = torch::zeros({e - b, p}, torch::kLong);
      auto gids = torch::full({e - b, l}, pad, torch::kLong), gmask = torch::zeros({e - b, l}, torch::kLong);
      for (int64_t k = b; k < e; ++k) {
        const auto& c = ctxs[static_cast<size_t>(k)];
        const auto& g = gold[static_cast<size_t>(rows[static_cast<size_t>(k)])];
        const int64_t off = p - static_cast<int64_t>(c.size());
        for (size_t j = 0; j < c.size(); ++j) {
          ids[k - b][off + static_cast<int64_t>(j)] = c[j];
          mask[k - b][off + static_cast<int64_t>(j)] = 1;
        }
        for (size_t j = 0; j < g.size(); ++j) {
          gids[k - b][static_cast<int64_t>(j)] = g[j];
          gmask[k - b][static_cast<int64_t>(j)] = 1;
        }
        st.tokens += static_cast<int64_t>(c.size() + g.size());
      }
      const auto dev = model_->device();
      const auto out = models::sequence_logprobs(*model_, ids.to(dev), mask.to(dev), gids.to(dev), gmask.to(dev));
      lp.slice(0, b, e).copy_(out.logprobs.to(torch::kCPU, torch::kFloat));
    }
    st.prompts = static_cast<int64_t>(ctxs.size());
    const auto finite = torch::isfinite(lp);
    st.invalid = (~finite).logical_and(gold_mask.repeat_interleave(s1, 0)).sum().item<int64_t>();
    lp = torch::where(finite, lp, torch::zeros_like(lp));  // [interp] a non-finite log-prob counts as certainty (0)
    const auto lp3 = lp.view({n, s1, l});
    st.mean = lp3.masked_select(gold_mask.unsqueeze(1).expand({n, s1, l})).mean().item<double>();
    in.extra["gold_logprobs"] = lp3;
    in.extra["gold_mask"] = gold_mask;
    StepCutter::write_ends(in, steps);
    return st;
  }

 private:
  GoldAnswerOptions o_;
  std::string where_;
  StepCutter steps_;
  std::optional<models::Transformer> model_;
  std::unique_ptr<models::Tokenizer> tok_;
};

std::unique_ptr<Judge> make_gold_answer(config::Reader& r, const std::string& name) {
  GoldAnswerOptions o;
  read_model_path(r, o.path, "HF causal LM that reads the gold answer (e.g. the SFT / reference checkpoint)");
  r.field("tokenizer", o.tokenizer, "tokenizer file or directory; empty = the model's directory");
  r.field("answer_key", o.answer_key, "metadata field with the gold answer").nonempty();
  r.field("separator", o.separator, "text between the context and the gold answer");
  r.field("delimiter", o.delimiter, "a turn ends on the last token of each run of tokens holding this text").nonempty();
  r.field("tag", o.tag, "a turn ends on every occurrence of this one-token tag (replaces delimiter)");
  r.field("max_steps", o.max_steps, "most turns per response (later ones merge into the last)").ge(1);
  r.field("turns", o.turns, "the turns are a multi-turn episode's (an environment's), each through its observation");
  if (o.turns) require_input(r, "step_ends", "turns");
  r.field("max_answer_tokens", o.max_answer_tokens, "gold answers keep their first this many tokens").ge(1);
  r.field("batch_size", o.batch_size, "contexts per forward pass").ge(1);
  require_input(r, "meta." + o.answer_key, "answer_key");
  return std::make_unique<GoldAnswerJudge>(o, r.path().empty() ? "judge " + name : r.path());
}

// ---- pairwise -------------------------------------------------------------------------------------------

struct PairwiseJudgeOptions {
  GenerativeJudgeOptions gen;
  std::string output = "extra.openrs_scores";
  bool signed_scores = true;  ///< write 2p − 1 in [−1, 1] (OpenRS's signed S: > 0 A wins) instead of p
  double fallback = 0.5;
  double timeout_s = 0;
};

/// A pairwise generative judge inside each group: S[i, j] = P(yes | template(prompt, A = response i,
/// B = the j-th response of i's group)) for j ≠ i, S[i, i] = 1/2 ([interp] a response against
/// itself is a tie); [N, G] with G the largest group (columns past a smaller group: the fallback);
/// with signed (default) 2S − 1, OpenRS's signed score (> 0: A wins, 0: tie). With output
/// pair_judge the probabilities go to extra["pair_prefs"], which CompositeReward hands the credit
/// stage (RewardOutput::pair_prefs) as the estimators' pairwise judge.
/// Both orders of every pair are asked (OpenRS debiases with the backward score S[j, i]).
class PairwiseJudge : public Judge {
 public:
  PairwiseJudge(PairwiseJudgeOptions o, std::string where) : o_(std::move(o)), where_(std::move(where)) {}

  void bind(const JudgeContext& ctx) override {
    if (core_) return;
    auto g = o_.gen;
    g.device = ctx.device;
    g.run_probes = ctx.probes;
    // The self-test pits each content-free response (as A) against the probe's gold answer (as B):
    // A judge that prefers saying nothing to the right answer is refused.
    g.suite_templates = {render_judge_prompt(g.prompt_template, "{prompt}", "{response}", "{answer}", "{answer}")};
    core_.emplace(g, where_);
    core_->bind(RewardContext{});
  }

  std::vector<std::string> produces() const override { return {o_.output}; }

  JudgeStats run(RewardInput& in) override {
    TORCH_CHECK(core_, where_, ": judge used before bind");
    const int64_t n = in.size();
    const auto gid = in.group_ids.detach().cpu().to(torch::kLong);
    std::map<int64_t, std::vector<int64_t>> members;  // group id -> rows, in batch order
    for (int64_t i = 0; i < n; ++i) members[gid[i].item<int64_t>()].push_back(i);
    int64_t g_max = 1;
    for (const auto& [g, rows] : members) g_max = std::max<int64_t>(g_max, static_cast<int64_t>(rows.size()));
    const bool with_answer = has_field(o_.gen.prompt_template, "{answer}");
    if (with_answer) require_metadata(in, "answer", where_);
    std::vector<std::string> texts;
    std::vector<int64_t> cell;
    auto scores = torch::full({n, g_max}, o_.fallback, torch::kFloat);
    for (int64_t i = 0; i < n; ++i) {
      const auto& rows = members[gid[i].item<int64_t>()];
      for (size_t j = 0; j < rows.size(); ++j) {
        if (rows[j] == i) {
          scores[i][static_cast<int64_t>(j)] = 0.5f;
          continue;
        }
        // {other} is carried in the criterion slot of the one-pass renderer (see make_pairwise).
        texts.push_back(render_judge_prompt(o_.gen.prompt_template, in.prompts[static_cast<size_t>(i)],
                                            in.responses[static_cast<size_t>(i)],
                                            with_answer ? json_text(in.meta(i).at("answer")) : "",
                                            in.responses[static_cast<size_t>(rows[j])]));
        cell.push_back(i * g_max + static_cast<int64_t>(j));
      }
    }
    JudgeStats st;
    auto [vals, valid] = score_in_batches(
        static_cast<int64_t>(texts.size()), o_.gen.batch_size, o_.timeout_s, o_.fallback,
        [&](int64_t b, int64_t e, int64_t* tokens) {
          return core_->judge_texts(std::vector<std::string>(texts.begin() + b, texts.begin() + e), tokens);
        },
        st);
    (void)valid;
    if (!cell.empty()) scores.view({-1}).index_put_({torch::tensor(cell, torch::kLong)}, vals);
    if (o_.output == "pair_judge") {
      in.extra["pair_prefs"] = scores;  // probabilities: the estimators' preference oracle
      return st;
    }
    if (o_.signed_scores) scores = 2 * scores - 1;
    write_judge_output(in, o_.output, scores);
    return st;
  }

 private:
  PairwiseJudgeOptions o_;
  std::string where_;
  std::optional<GenerativeJudge> core_;
};

std::unique_ptr<Judge> make_pairwise(config::Reader& r, const std::string& name) {
  PairwiseJudgeOptions o;
  o.gen.prompt_template = "{prompt}\nA: {response}\nB: {other}\nQ: is A better than B?\nA:";
  read_generative_judge_options(r, o.gen, {"prompt", "response", "answer", "other"});
  if (!has_field(o.gen.prompt_template, "{other}"))
    r.error("template", "a pairwise template needs {other} (the response it is compared with)");
  // The one-pass renderer knows {criterion}, not {other}: the template carries {other} in that slot.
  for (size_t at = o.gen.prompt_template.find("{other}"); at != std::string::npos;
       at = o.gen.prompt_template.find("{other}", at))
    o.gen.prompt_template.replace(at, 7, "{criterion}");
  r.field("output", o.output,
          "where the [N, G] preference matrix goes: extra.<key> (a reward scheme's input, e.g. openrs_pairwise) or "
          "pair_judge (the estimators' pairwise judge: spo_winrate, arena_rank with judge: none)");
  r.field("signed", o.signed_scores, "write 2p - 1 in [-1, 1] (OpenRS's signed score, > 0: A wins) instead of p");
  if (o.output != "pair_judge" && (o.output.rfind("extra.", 0) != 0 || o.output.size() <= 6))
    r.error("output", fmt::format("expected extra.<key> or pair_judge, got '{}'", o.output));
  read_stage_options(r, o.fallback, o.timeout_s, true);
  if (has_field(o.gen.prompt_template, "{answer}")) require_input(r, "meta.answer", "template");
  return std::make_unique<PairwiseJudge>(o, r.path().empty() ? "judge " + name : r.path());
}

// ---- reward_model ---------------------------------------------------------------------------------------

struct RmJudgeOptions {
  RewardModelOptions rm;
  std::string output = "rm_scores";
  double fallback = 0;
  double timeout_s = 0;
};

class RmJudge : public Judge {
 public:
  RmJudge(RmJudgeOptions o, std::string where) : o_(std::move(o)), where_(std::move(where)) {}
  void bind(const JudgeContext& ctx) override {
    if (rm_) return;
    auto m = o_.rm;
    m.device = ctx.device;
    rm_.emplace(m, where_);
    rm_->bind(RewardContext{});
  }
  std::vector<std::string> produces() const override { return {o_.output}; }
  JudgeStats run(RewardInput& in) override {
    TORCH_CHECK(rm_, where_, ": judge used before bind");
    JudgeStats st;
    auto [vals, valid] = score_in_batches(
        in.size(), o_.rm.batch_size, o_.timeout_s, o_.fallback,
        [&](int64_t b, int64_t e, int64_t* tokens) {
          auto raw = rm_->raw_scores(std::vector<std::string>(in.prompts.begin() + b, in.prompts.begin() + e),
                                     std::vector<std::string>(in.responses.begin() + b, in.responses.begin() + e), tokens);
          if (o_.rm.normalize == "sigmoid") raw = torch::sigmoid(raw);
          else if (o_.rm.normalize == "minimax") raw = torch::nn::functional::softplus(raw);
          return raw;
        },
        st);
    (void)valid;
    write_judge_output(in, o_.output, vals);
    return st;
  }

 private:
  RmJudgeOptions o_;
  std::string where_;
  std::optional<RewardModelScheme> rm_;
};

std::unique_ptr<Judge> make_rm(config::Reader& r, const std::string& name) {
  RmJudgeOptions o;
  read_reward_model_options(r, o.rm);
  r.field("output", o.output, "where the scores go: rm_scores | extra.<key>");
  check_judge_output(r, "output", o.output, {"rm_scores"});
  read_stage_options(r, o.fallback, o.timeout_s, false);
  return std::make_unique<RmJudge>(o, r.path().empty() ? "judge " + name : r.path());
}

}  // namespace

void register_builtin_judges(JudgeRegistry& reg) {
  reg.add("yes_no", "generative judge: P(yes) per criterion of an HF causal LM -> criterion_scores (or rm_scores / extra)",
          make_yes_no);
  reg.add("prm", "process reward model: each step prefix scored in one batched pass -> step_scores, step_ends", make_prm);
  reg.add("pairwise", "pairwise generative judge: P(A better than B) for every ordered pair of a group -> extra.openrs_scores",
          make_pairwise);
  reg.add("gold_answer", "policy-side signal: log-probs of the gold answer after each step prefix (IGPO) -> extra.gold_logprobs",
          make_gold_answer);
  reg.add("reward_model", "scalar reward model (score head) on prompt + response -> rm_scores (or extra.<key>)", make_rm);
}

}  // namespace keel::rewards
