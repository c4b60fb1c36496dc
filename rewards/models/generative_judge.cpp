// generative_yes: P("yes") of a judge LM, with the master-key self-test (see generative_judge.h).
#include "rewards/models/generative_judge.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <optional>

#include <fmt/ranges.h>
#include <torch/torch.h>

#include "models/chat_template.h"
#include "models/model_config.h"
#include "models/pretrained.h"
#include "rewards/models/master_keys.h"
#include "rewards/models/reward_model.h"
#include "rewards/models/sequence_scoring.h"
#include "base/error.h"
#include "base/log.h"
#include "base/reader.h"

namespace keel::rewards {

std::string json_text(const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

models::Transformer load_judge_lm(const std::string& path, at::Device device) {
  models::ModelRegistry reg("model family");
  models::register_builtin_models(reg);
  models::LoadOptions lo;
  lo.heads = models::HeadOptions{/*lm_head=*/true, /*value_head=*/false, /*reward_head=*/false};
  lo.device = device;
  auto m = models::load_pretrained(path, reg, lo);
  m.train(false);
  m.set_requires_grad(false);
  return m;
}

void read_generative_judge_options(config::Reader& r, GenerativeJudgeOptions& o, const std::vector<std::string>& fields) {
  read_model_path(r, o.path, "HF causal-LM directory of the judge, or the keel run that trained it");
  r.field("tokenizer", o.tokenizer, "tokenizer file or directory; empty = the judge's directory");
  r.field("template", o.prompt_template, "judge prompt with {prompt}, {response} and optionally {answer}");
  if (o.prompt_template.find("{response}") == std::string::npos)
    r.error("template", "must contain {response} (the policy's response goes there)");
  if (const auto bad = unknown_placeholders(o.prompt_template, fields); !bad.empty())
    r.error("template", fmt::format("unknown field {{{}}} (a template may use {{{}}})", fmt::join(bad, "}, {"),
                                    fmt::join(fields, "}, {")));
  r.field("chat_template", o.chat_template, "wrap the judge prompt as one user turn of this chat template")
      .one_of(models::chat_template_names(), "chat template");
  r.field("yes_tokens", o.yes_tokens, "surface variants of the 'yes' verdict (each must be one token to count)").nonempty();
  r.field("no_tokens", o.no_tokens, "surface variants of the 'no' verdict").nonempty();
  std::string norm = o.normalize == JudgeNormalize::kTwoWay ? "two_way" : "softmax";
  r.field("normalize", norm, "two_way: p_yes / (p_yes + p_no); softmax: p_yes over the whole vocabulary")
      .one_of({"two_way", "softmax"}, "normalisation");
  o.normalize = norm == "softmax" ? JudgeNormalize::kSoftmax : JudgeNormalize::kTwoWay;
  r.field("batch_size", o.batch_size, "judge prompts per forward pass").ge(1);
  r.field("max_length", o.max_length, "longer judge prompts keep their last tokens; 0 = the judge's context").ge(0);
  r.field("robustness_suite", o.robustness_suite, "start-up self-test against content-free 'master key' responses")
      .one_of({"master_keys", "none"}, "robustness suite");
  r.field("robustness_probes", o.robustness_probes,
          "the suite's questions: builtin (natural-language probes) or run (the run's own prompts)")
      .one_of({"builtin", "run"}, "probe set");
  r.field("max_false_positive", o.max_false_positive, "largest accepted share of master-key cases judged 'yes'")
      .ge(0).le(1);
  r.field("false_positive_score", o.false_positive_score, "a master-key case scored above this is a false positive")
      .ge(0).lt(1);
  std::string on = o.refuse ? "refuse" : "warn";
  r.field("on_master_key", on, "what a failed self-test does: refuse to start, or warn and go on")
      .one_of({"refuse", "warn"}, "action");
  o.refuse = on == "refuse";
}

std::string render_judge_prompt(const std::string& tmpl, const std::string& prompt, const std::string& response,
                                const std::string& answer, const std::string& criterion) {
  std::string out;
  out.reserve(tmpl.size() + prompt.size() + response.size());
  size_t i = 0;
  while (i < tmpl.size()) {
    if (tmpl[i] == '{') {
      if (tmpl.compare(i, 8, "{prompt}") == 0) { out += prompt; i += 8; continue; }
      if (tmpl.compare(i, 10, "{response}") == 0) { out += response; i += 10; continue; }
      if (tmpl.compare(i, 8, "{answer}") == 0) { out += answer; i += 8; continue; }
      if (tmpl.compare(i, 11, "{criterion}") == 0) { out += criterion; i += 11; continue; }
    }
    out += tmpl[i++];
  }
  return out;
}

std::vector<std::string> unknown_placeholders(const std::string& tmpl, const std::vector<std::string>& allowed) {
  std::vector<std::string> out;
  for (size_t i = tmpl.find('{'); i != std::string::npos; i = tmpl.find('{', i + 1)) {
    size_t j = i + 1;
    while (j < tmpl.size() && (std::isalnum(static_cast<unsigned char>(tmpl[j])) || tmpl[j] == '_')) ++j;
    if (j == i + 1 || j >= tmpl.size() || tmpl[j] != '}') continue;  // not {identifier}: literal text
    const std::string name = tmpl.substr(i + 1, j - i - 1);
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end() &&
        std::find(out.begin(), out.end(), name) == out.end())
      out.push_back(name);
  }
  return out;
}

torch::Tensor judge_yes_probability(const torch::Tensor& logits, const std::vector<int64_t>& yes_ids,
                                    const std::vector<int64_t>& no_ids, JudgeNormalize mode) {
  TORCH_CHECK(logits.defined() && logits.dim() == 2, "judge_yes_probability: logits must be [N, V], got ",
              logits.defined() ? logits.sizes() : torch::IntArrayRef{});
  const int64_t v = logits.size(1);
  TORCH_CHECK(!yes_ids.empty(), "judge_yes_probability: no yes token ids");
  TORCH_CHECK(mode == JudgeNormalize::kSoftmax || !no_ids.empty(), "judge_yes_probability: two_way needs no token ids");
  for (const auto* ids : {&yes_ids, &no_ids})
    for (int64_t id : *ids) TORCH_CHECK(id >= 0 && id < v, "judge_yes_probability: token id ", id, " outside [0, ", v, ")");
  for (int64_t y : yes_ids)
    for (int64_t n : no_ids) TORCH_CHECK(y != n, "judge_yes_probability: token id ", y, " is both a yes and a no token");
  const auto l = logits.to(torch::kFloat);
  const auto opts = torch::TensorOptions().dtype(torch::kLong).device(l.device());
  const auto lse_yes = l.index_select(1, torch::tensor(yes_ids, opts)).logsumexp(1);  // log Σ_yes e^ℓ  [N]
  if (mode == JudgeNormalize::kSoftmax) return (lse_yes - l.logsumexp(1)).exp();      // Σ_yes softmax(ℓ)
  const auto lse_no = l.index_select(1, torch::tensor(no_ids, opts)).logsumexp(1);    // log Σ_no e^ℓ   [N]
  return torch::sigmoid(lse_yes - lse_no);  // p_yes / (p_yes + p_no)
}

std::vector<int64_t> single_token_ids(const models::Tokenizer& tok, const std::vector<std::string>& variants,
                                      const std::string& what, const std::string& where) {
  std::vector<int64_t> out;
  std::vector<std::string> seen;
  for (const auto& s : variants) {
    const auto ids = tok.encode(s, /*add_special=*/false, /*parse_special=*/false);
    seen.push_back(fmt::format("\"{}\" -> {} token(s)", models::escape_for_display(s), ids.size()));
    if (ids.size() == 1 && std::find(out.begin(), out.end(), ids[0]) == out.end()) out.push_back(ids[0]);
  }
  if (out.empty())
    fail("{}: none of the {} is a single token of the judge's tokenizer ({}); list variants that are (keel tokenize "
         "<tokenizer> <text> shows how a text splits)",
         where, what, fmt::join(seen, ", "));
  return out;
}

GenerativeJudge::GenerativeJudge(GenerativeJudgeOptions opt, std::string where)
    : opt_(std::move(opt)), where_(std::move(where)) {}

void GenerativeJudge::load() {
  if (model_) return;
  model_.emplace(load_judge_lm(opt_.path, opt_.device));
  tok_ = models::load_tokenizer(opt_.tokenizer.empty() ? opt_.path : opt_.tokenizer);
  yes_ids_ = single_token_ids(*tok_, opt_.yes_tokens, "yes_tokens", where_ + ".yes_tokens");
  no_ids_ = single_token_ids(*tok_, opt_.no_tokens, "no_tokens", where_ + ".no_tokens");
  for (int64_t y : yes_ids_)
    if (std::find(no_ids_.begin(), no_ids_.end(), y) != no_ids_.end())
      fail("{}: token {} ('{}') is both a yes and a no token", where_, y, tok_->id_to_piece(y));
  for (const auto* ids : {&yes_ids_, &no_ids_})
    for (int64_t id : *ids)
      if (id >= model_->config().vocab_size)
        fail("{}: token id {} is outside the judge's vocabulary of {}", where_, id, model_->config().vocab_size);
}

void GenerativeJudge::bind(const RewardContext& ctx) {
  if (opt_.run_probes.empty())
    for (const auto& [prompt, answer] : ctx.probes) opt_.run_probes.push_back({prompt, answer});
  load();
  if (!checked_ && opt_.robustness_suite == "master_keys") run_robustness_suite();
  checked_ = true;
}

void GenerativeJudge::run_robustness_suite() {
  if (opt_.robustness_probes == "run" && opt_.run_probes.empty())
    fail("{}.robustness_probes: run asks the run's own prompts, but none were handed to this judge (keel train "
         "hands them to its reward; elsewhere use builtin)", where_);
  const auto suite = master_key_suite(opt_.robustness_probes == "run" ? opt_.run_probes : master_key_probes());
  std::vector<std::string> prompts, responses, answers;
  for (const auto& c : suite) {
    prompts.push_back(c.prompt);
    responses.push_back(c.response);
    answers.push_back(c.answer);
  }
  const std::vector<std::string> templates =
      opt_.suite_templates.empty() ? std::vector<std::string>{opt_.prompt_template} : opt_.suite_templates;
  // The worst template decides (each criterion of a criteria judge is a judge of its own).
  std::optional<MasterKeyReport> worst;
  torch::Tensor worst_scores;
  std::string worst_template;
  for (const auto& t : templates) {
    const auto scores = judge_with(t, prompts, responses, answers);
    auto report = evaluate_master_keys(suite, scores, opt_.false_positive_score);
    if (!worst || report.rate > worst->rate) {
      worst = std::move(report);
      worst_scores = scores;
      worst_template = t;
    }
  }
  fp_rate_ = worst->rate;
  if (worst->rate <= opt_.max_false_positive) return;
  const std::string msg = fmt::format(
      "{}: generative judge '{}' rewards content-free \"master key\" responses: {} of {} suite cases scored above "
      "{} (false-positive rate {:.3f} > max_false_positive {}){}: {}",
      where_, opt_.path, worst->false_positives, worst->total, opt_.false_positive_score, worst->rate,
      opt_.max_false_positive,
      templates.size() > 1 ? fmt::format(" under template \"{}\"", models::escape_for_display(worst_template)) : "",
      describe_failures(suite, worst_scores, *worst));
  if (opt_.refuse)
    fail("{} (use a judge trained with adversarial negatives, e.g. Master-RM, or set on_master_key: warn to run anyway)",
         msg);
  log::warn("{} (on_master_key: warn, going on)", msg);
}

torch::Tensor GenerativeJudge::judge(const std::vector<std::string>& prompts, const std::vector<std::string>& responses,
                                     const std::vector<std::string>& answers) {
  return judge_with(opt_.prompt_template, prompts, responses, answers);
}

torch::Tensor GenerativeJudge::judge_with(const std::string& tmpl, const std::vector<std::string>& prompts,
                                          const std::vector<std::string>& responses,
                                          const std::vector<std::string>& answers) {
  TORCH_CHECK(prompts.size() == responses.size() && answers.size() == responses.size(),
              "GenerativeJudge::judge: prompts, responses and answers must have one entry per sample");
  std::vector<std::string> texts;
  texts.reserve(responses.size());
  for (size_t i = 0; i < responses.size(); ++i) texts.push_back(render_judge_prompt(tmpl, prompts[i], responses[i], answers[i]));
  return judge_texts(texts);
}

torch::Tensor GenerativeJudge::judge_texts(const std::vector<std::string>& texts, int64_t* tokens) {
  return judge_yes_probability(next_logits(texts, tokens), yes_ids_, no_ids_, opt_.normalize);
}

torch::Tensor GenerativeJudge::next_logits(const std::vector<std::string>& texts, int64_t* tokens) {
  load();
  const int64_t ctx = opt_.max_length > 0 ? opt_.max_length : model_->config().max_position_embeddings;
  std::vector<std::vector<int64_t>> seqs;
  int64_t count = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    std::string text = texts[i];
    if (opt_.chat_template != "plain") text = models::render_chat({{"user", text}}, opt_.chat_template, true);
    auto ids = tok_->encode(text, /*add_special=*/true);
    if (ids.empty()) fail("{}: the judge prompt of sample {} is empty after tokenization", where_, i);
    seqs.push_back(keep_last_tokens(ids, ctx));
    count += static_cast<int64_t>(seqs.back().size());
  }
  if (tokens) *tokens = count;
  if (seqs.empty()) return torch::zeros({0, model_->config().vocab_size}, torch::kFloat);
  const int64_t pad = tok_->pad_id() != models::kNoToken ? tok_->pad_id() : 0;
  return next_token_logits(*model_, seqs, opt_.batch_size, pad);  // [N, V]
}

RewardOutput GenerativeJudge::score(const RewardInput& in) {
  const bool with_answer = opt_.prompt_template.find("{answer}") != std::string::npos;
  if (with_answer) require_metadata(in, "answer", "generative_yes");
  std::vector<std::string> answers(in.responses.size());
  if (with_answer)
    for (int64_t i = 0; i < in.size(); ++i) answers[static_cast<size_t>(i)] = json_text(in.meta(i)["answer"]);
  RewardOutput out;
  out.rewards = judge(in.prompts, in.responses, answers);
  out.metrics["judge/p_yes_mean"] = out.rewards.numel() ? out.rewards.mean().item<double>() : 0.0;
  if (fp_rate_) out.metrics["judge/master_key_fp_rate"] = *fp_rate_;
  return out;
}

}  // namespace keel::rewards
