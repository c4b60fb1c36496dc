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
#include <optional>

#include <fmt/ranges.h>
#include <torch/torch.h>

#include "base/error.h"
#include "base/log.h"
#include "base/reader.h"
#include "models/tokenizer.h"
#include "rewards/judges/judge.h"
#include "rewards/models/generative_judge.h"
#include "rewards/models/reward_model.h"
#include "rewards/schemes/step_boundaries.h"

namespace keel::rewards {

namespace {

std::string json_text(const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

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

// ---- prm ------------------------------------------------------------------------------------------------

struct PrmJudgeOptions {
  std::string head = "lm";  ///< lm: P(yes) of a generative judge | score: σ(score head)
  GenerativeJudgeOptions gen;
  RewardModelOptions rm;
  std::string delimiter = "\n";
  std::string tag;
  int64_t max_steps = 32;
  bool signed_scores = false;  ///< write 2p − 1 in [−1, 1] (a ternary verdict's continuous form) instead of p
  double fallback = 0.5;
  double timeout_s = 0;
};

class PrmJudge : public Judge {
 public:
  PrmJudge(PrmJudgeOptions o, std::string where) : o_(std::move(o)), where_(std::move(where)) {}

  void bind(const JudgeContext& ctx) override {
    if (gen_ || rm_) return;
    if (!ctx.policy_tokenizer)
      fail("{}: a prm judge cuts responses into steps on the policy's tokens, but the run gave it no tokenizer", where_);
    tok_ = ctx.policy_tokenizer;
    if (!o_.tag.empty()) {
      const auto ids = tok_->encode(o_.tag, /*add_special=*/false, /*parse_special=*/true);
      if (ids.size() != 1)
        fail("{}.tag: '{}' is {} tokens of the policy's tokenizer; a step tag must be one token", where_,
             models::escape_for_display(o_.tag), ids.size());
      tag_id_ = ids[0];
    } else {
      for (int64_t id = 0; id < tok_->vocab_size(); ++id)
        if (tok_->id_to_bytes(id).find(o_.delimiter) != std::string::npos) delimiter_ids_.push_back(id);
      if (delimiter_ids_.empty())
        log::warn("{}: no token of the policy's tokenizer holds the step delimiter '{}': every response is one step",
                  where_, models::escape_for_display(o_.delimiter));
    }
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
    TORCH_CHECK(tok_, where_, ": judge used before bind");
    require_tensor(in, in.response_tokens, "response_tokens", where_);
    require_tensor(in, in.response_mask, "response_mask", where_);
    const auto ids = in.response_tokens.detach().cpu().to(torch::kLong);
    const auto mask = in.response_mask.detach().cpu().to(torch::kBool);
    const int64_t n = ids.size(0);
    auto ends = o_.tag.empty() ? step_ends_from_delimiters(ids, mask, delimiter_ids_) : step_ends_from_tag(ids, mask, tag_id_);
    ends = step_ends_with_fallback(ends, mask);
    // Each row's step-end indices, capped at max_steps ([interp] the steps past the cap merge into
    // the last one: the first max_steps − 1 ends are kept, and the response's last end).
    std::vector<std::vector<int64_t>> rows(static_cast<size_t>(n));
    int64_t s_max = 1;
    for (int64_t i = 0; i < n; ++i) {
      const auto e = ends[i].nonzero().view({-1});
      auto& row = rows[static_cast<size_t>(i)];
      for (int64_t j = 0; j < e.size(0); ++j) row.push_back(e[j].item<int64_t>());
      if (static_cast<int64_t>(row.size()) > o_.max_steps) {
        const int64_t last = row.back();
        row.resize(static_cast<size_t>(o_.max_steps - 1));
        row.push_back(last);
      }
      s_max = std::max<int64_t>(s_max, static_cast<int64_t>(row.size()));
    }
    const bool with_answer = o_.head == "lm" && has_field(o_.gen.prompt_template, "{answer}");
    if (with_answer) require_metadata(in, "answer", where_);
    std::vector<std::string> prompts, prefixes, texts;
    std::vector<int64_t> cell;
    for (int64_t i = 0; i < n; ++i) {
      const auto& row = rows[static_cast<size_t>(i)];
      std::vector<int64_t> toks;
      int64_t prev = -1;
      for (size_t j = 0; j < row.size(); ++j) {
        for (int64_t t = prev + 1; t <= row[j]; ++t)
          if (mask[i][t].item<bool>()) toks.push_back(ids[i][t].item<int64_t>());
        prev = row[j];
        const std::string prefix = tok_->decode(toks, /*skip_special=*/true);
        const std::string& prompt = in.prompts[static_cast<size_t>(i)];
        if (o_.head == "lm")
          texts.push_back(render_judge_prompt(o_.gen.prompt_template, prompt, prefix,
                                              with_answer ? json_text(in.meta(i).at("answer")) : ""));
        prompts.push_back(prompt);
        prefixes.push_back(prefix);
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
    auto scores = torch::full({n * s_max}, o_.fallback, torch::kFloat);
    auto step_ends = torch::full({n * s_max}, -1, torch::kLong);
    if (!cell.empty()) {
      const auto idx = torch::tensor(cell, torch::kLong);
      scores.index_put_({idx}, vals);
      std::vector<int64_t> flat;
      for (const auto& row : rows) flat.insert(flat.end(), row.begin(), row.end());
      step_ends.index_put_({idx}, torch::tensor(flat, torch::kLong));
    }
    if (o_.signed_scores) scores = 2 * scores - 1;
    in.step_scores = scores.view({n, s_max});
    in.step_ends = step_ends.view({n, s_max});
    in.step_mask = in.step_ends.ge(0);
    return st;
  }

 private:
  PrmJudgeOptions o_;
  std::string where_;
  const models::Tokenizer* tok_ = nullptr;
  std::vector<int64_t> delimiter_ids_;
  int64_t tag_id_ = -1;
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
  r.field("signed", o.signed_scores, "write 2p - 1 in [-1, 1] (DataPRM's verdict scale) instead of the probability p");
  read_stage_options(r, o.fallback, o.timeout_s, true);
  return std::make_unique<PrmJudge>(o, r.path().empty() ? "judge " + name : r.path());
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
  reg.add("reward_model", "scalar reward model (score head) on prompt + response -> rm_scores (or extra.<key>)", make_rm);
}

}  // namespace keel::rewards
