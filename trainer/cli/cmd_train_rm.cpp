// keel train-rm: reward-model training on preference JSONL (spec/rewards.md D1–D3, D6).
// Fixed lifecycle: load + validate config -> run directory -> data (pairs, held-out split) ->
// [rm.ensemble.size: train M members, log their preference strengths] -> [ensemble strengths as
// margins / flips] -> model with a reward head -> optional resume -> loop (mini-batch of pairs,
// reward at the last token of prompt + response, the variant's loss, clip, numerics guard, AdamW +
// lr schedule, metrics, held-out accuracy, atomic checkpoints) -> final checkpoint.
//
// Variants (rm.variant): bt (Bradley–Terry, D1), odin (a second, length head r_L beside the score
// head r_Q, D3), discriminator (BCE with chosen = expert, rejected = agent, D6). Any but odin can add
// the gradient penalty of D6 on interpolated input embeddings.
//
// The checkpoint's model/ directory is an HF *ForSequenceClassification (num_labels 1, the head
// saved as score.weight) with the tokenizer files, so the `reward_model` reward scheme, HF
// transformers and vLLM all load it. For odin, score.weight is the quality head r_Q (all that RL
// scores with) and the length head is kept beside it in odin_length_head.safetensors
// ("length_head.weight" [1, H]), which HF loaders ignore. A pair's text is laid out exactly as
// reward_model scores rollouts: the prompt rendered by model.chat_template (as the policy sees it)
// then the response.
// Deliberately not here: online intrinsic RMs (D4), multi-rank training, weight averaging (WARM:
// keel average-rm, cmd_average_rm.cpp).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/compat.h"
#include "models/embeds_forward.h"
#include "models/generate.h"
#include "models/model_config.h"
#include "models/lora.h"
#include "models/pretrained.h"
#include "models/safetensors.h"
#include "models/tokenizer.h"
#include "models/transformer.h"
#include "rewards/models/reward_model.h"
#include "rewards/models/sequence_scoring.h"
#include "trainer/checkpoint/checkpoint_manager.h"
#include "trainer/checkpoint/run_dir.h"
#include "trainer/checkpoint/trainer_state.h"
#include "trainer/cli/catalog.h"
#include "trainer/cli/commands.h"
#include "trainer/cli/system_info.h"
#include "trainer/cli/train_common.h"
#include "trainer/learner/supervised_update.h"
#include "trainer/loop/registries.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/log.h"
#include "trainer/data/jsonl.h"
#include "trainer/data/prompt_source.h"
#include "trainer/learner/lr_schedule.h"
#include "trainer/learner/numerics_guard.h"
#include "trainer/learner/sequence_batch.h"
#include "trainer/learner/rm_grad_penalty.h"
#include "trainer/learner/rm_loss.h"
#include "trainer/learner/rm_odin_loss.h"
#include "trainer/metrics/metrics.h"
#include "trainer/rollout/prompt_format.h"

namespace keel::cli {

namespace {

namespace stdfs = std::filesystem;
using metrics::Metrics;
using Seq = std::vector<int64_t>;

/// One tokenized preference pair.
struct Pair {
  std::string id;  ///< file:line
  Seq chosen;      ///< prompt ++ chosen response ids
  Seq rejected;    ///< prompt ++ rejected response ids
  double margin = 0;
  double chosen_tokens = 0;    ///< response tokens of chosen (ODIN's length), after truncation
  double rejected_tokens = 0;  ///< response tokens of rejected
};

/// File (in a checkpoint's model/) and tensor name of ODIN's length head.
constexpr const char* kOdinLengthFile = "odin_length_head.safetensors";
constexpr const char* kOdinLengthTensor = "length_head.weight";

/// One reward model's training: the run's data plus this model's weights, optimizer and cursor.
/// Copyable before a model exists (ensemble members start from copies of the data-only state).
struct State {
  config::RunConfig cfg;
  std::string resolved_yaml;  ///< the resolved config: saved in checkpoints, compared on resume
  stdfs::path run_dir;
  std::shared_ptr<models::Tokenizer> tok;
  std::string tokenizer_dir;
  std::optional<models::Transformer> model;
  torch::Tensor length_head;  ///< [1, H] ODIN's r_L head (rm.variant: odin), else undefined
  std::shared_ptr<torch::optim::AdamW> optimizer;
  std::vector<Pair> train, eval;
  data::PromptSource::Cursor cursor;
  int64_t step = 0, opt_step = 0;
  int64_t loaded_skipped_steps = 0;  // the numerics guard's count in the last checkpoint loaded
  int64_t pad_id = 0;
  bool use_margins = false;
};

/// The pair's margin from its JSONL line (rm.loss.margin: fixed).
/// Synthetic preference pairs of the built-in task data.task (keel train-rm without data.train_file):
/// the task's gold response over a wrong one (Task::wrong_response: a changed number, a wrong middle
/// step, the other verdict), on the prompt as the task writes it. Training split: one pair per
/// sample the run will see (mini_batch_size x total_steps, at least 1024, at most 65536);
/// held-out: data.eval_size pairs.
std::vector<data::PreferenceRecord> task_pairs(const config::RunConfig& cfg, data::Split split) {
  config::Diagnostics diag;
  config::Reader r(cfg.data.task_params.is_null() ? nullptr : &cfg.data.task_params, "data.task_params", diag);
  const auto task = loop::registries().tasks.get(cfg.data.task).fn(r);
  diag.throw_if_any();
  const int64_t want = split == data::Split::kEval
                           ? cfg.data.eval_size
                           : std::clamp<int64_t>(cfg.batch.mini_batch_size * cfg.run.total_steps, 1024, 65536);
  std::vector<data::PreferenceRecord> out;
  for (int64_t i = 0; i < want; ++i) {
    const auto rec = task->make(static_cast<uint64_t>(cfg.run.seed), split, static_cast<uint64_t>(i));
    data::PreferenceRecord p;
    p.id = rec.id;
    p.prompt = rec.prompt;
    p.messages = rec.messages;
    p.chosen = task->gold_response(rec);
    p.rejected = task->wrong_response(rec, static_cast<uint64_t>(i));
    if (p.chosen == p.rejected) continue;  // not a preference
    out.push_back(std::move(p));
  }
  return out;
}

double margin_of(const data::PreferenceRecord& r, const std::string& key) {
  const auto it = r.meta.find(key);
  if (it == r.meta.end()) fail("{}: no '{}' (rm.loss.margin: fixed reads each pair's margin from this key)", r.id, key);
  const auto j = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (!j.is_number()) fail("{}: '{}' must be a number (the pair's margin), got {}", r.id, key, it->second);
  return j.get<double>();
}

std::vector<Pair> tokenize_pairs(const std::vector<data::PreferenceRecord>& recs, const State& s, int64_t ctx,
                                 int64_t& truncated) {
  std::vector<Pair> out;
  const auto& c = s.cfg;
  const models::ChatTemplate chat_template = rollout::load_chat_template(c.model);
  for (const auto& r : recs) {
    data::PromptRecord pr;
    pr.id = r.id;
    pr.prompt = r.prompt;
    for (const auto& m : r.messages) pr.messages.push_back(m);
    const std::string prompt = rollout::render_prompt(pr, chat_template);
    Pair p;
    p.id = r.id;
    p.chosen = rewards::reward_model_sequence(*s.tok, prompt, r.chosen, 0);
    p.rejected = rewards::reward_model_sequence(*s.tok, prompt, r.rejected, 0);
    if (p.chosen.empty() || p.rejected.empty()) fail("{}: prompt and response are both empty after tokenization", r.id);
    // Response lengths for ODIN: the sequence minus the prompt's ids, capped by the context.
    const auto prompt_ids = static_cast<double>(rewards::reward_model_sequence(*s.tok, prompt, "", 0).size());
    p.chosen_tokens = std::min(std::max(0.0, static_cast<double>(p.chosen.size()) - prompt_ids), static_cast<double>(ctx));
    p.rejected_tokens =
        std::min(std::max(0.0, static_cast<double>(p.rejected.size()) - prompt_ids), static_cast<double>(ctx));
    truncated += static_cast<int64_t>(p.chosen.size()) > ctx;
    truncated += static_cast<int64_t>(p.rejected.size()) > ctx;
    p.chosen = rewards::keep_last_tokens(p.chosen, ctx);
    p.rejected = rewards::keep_last_tokens(p.rejected, ctx);
    if (c.rm.loss.margin == "fixed") p.margin = margin_of(r, c.rm.loss.margin_key);
    out.push_back(std::move(p));
  }
  return out;
}

/// Preference strengths μ̂, σ̂ [B] (spec D2) of `pairs` under the reward models in `paths`.
learner::PreferenceStrength ensemble_strength(const std::vector<Pair>& pairs, const State& s,
                                              const std::vector<std::string>& paths, const models::ModelRegistry& reg) {
  std::vector<Seq> chosen, rejected;
  for (const auto& p : pairs) chosen.push_back(p.chosen), rejected.push_back(p.rejected);
  std::vector<torch::Tensor> rc, rr;
  for (const auto& path : paths) {
    models::LoadOptions lo;
    lo.heads = models::HeadOptions{/*lm_head=*/false, /*value_head=*/false, /*reward_head=*/true};
    lo.init_missing_heads = false;
    auto m = models::load_pretrained(path, reg, lo);
    m.train(false);
    if (m.config().vocab_size < s.tok->vocab_size())
      fail("rm.ensemble: {} has a vocabulary of {} but the run's tokenizer has {} ids (ensemble members must "
           "share the tokenizer)", path, m.config().vocab_size, s.tok->vocab_size());
    const int64_t bs = s.cfg.batch.micro_batch_size;
    rc.push_back(rewards::score_sequences(m, chosen, bs, s.pad_id).to(torch::kDouble));
    rr.push_back(rewards::score_sequences(m, rejected, bs, s.pad_id).to(torch::kDouble));
  }
  return learner::preference_strength(torch::stack(rc), torch::stack(rr));  // [B] each
}

/// rm/strength_* metrics of strengths over a set of pairs.
Metrics strength_metrics(const learner::PreferenceStrength& st) {
  Metrics m;
  m["rm/strength_mean"] = st.mean.mean().item<double>();
  m["rm/strength_std_mean"] = st.std.mean().item<double>();
  m["rm/strength_negative_frac"] = (st.mean < 0).to(torch::kDouble).mean().item<double>();
  return m;
}

/// Ensemble strengths (spec D2) of `pairs`: the adaptive margin and/or label flipping. Returns metrics.
Metrics apply_ensemble(std::vector<Pair>& pairs, const State& s, const std::vector<std::string>& paths,
                       const models::ModelRegistry& reg) {
  const auto& e = s.cfg.rm.ensemble;
  const auto st = ensemble_strength(pairs, s, paths, reg);
  Metrics m = strength_metrics(st);
  int64_t flipped = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    double mu = st.mean[static_cast<int64_t>(i)].item<double>();
    if (e.flip_negative_strength && mu < 0) {
      std::swap(pairs[i].chosen, pairs[i].rejected);  // likely mislabelled: learn the other order
      mu = -mu;
      ++flipped;
    }
    if (s.cfg.rm.loss.margin == "adaptive") pairs[i].margin = mu;
  }
  m["rm/flipped_pairs"] = static_cast<double>(flipped);
  return m;
}

constexpr models::HeadOptions kRewardOnly{/*lm_head=*/false, /*value_head=*/false, /*reward_head=*/true};

/// What the optimizer steps: the model's parameters, then ODIN's length head if any.
std::vector<torch::Tensor> trained_parameters(const State& s) {
  auto params = s.model->parameters();
  if (s.length_head.defined()) params.push_back(s.length_head);
  return params;
}

std::shared_ptr<torch::optim::AdamW> make_optimizer(const State& s, const std::optional<stdfs::path>& checkpoint) {
  return make_adamw(trained_parameters(s), s.cfg.optim.lr, s.cfg.optim,
                    checkpoint ? std::optional<stdfs::path>(*checkpoint / "optimizer.pt") : std::nullopt);
}

/// A fresh ODIN length head [1, H] initialised like the score head (HF init: N(0, initializer_range)).
torch::Tensor fresh_length_head(const models::Transformer& model) {
  torch::NoGradGuard ng;
  const auto& c = model.config();
  auto w = torch::empty({1, c.hidden_size}, torch::TensorOptions().dtype(model.dtype()).device(model.device()));
  w.normal_(0.0, c.initializer_range);
  return w.requires_grad_(true);
}

void save_checkpoint(State& s, checkpoint::CheckpointManager& mgr, const learner::NumericsGuard& guard) {
  const auto staging = mgr.begin(s.step);
  fs::write_file_atomic(staging / checkpoint::kCheckpointConfig, s.resolved_yaml);
  models::SaveOptions so;
  so.tokenizer_dir = s.tokenizer_dir;
  models::save_pretrained(*s.model, (staging / "model").string(), so);  // with LoRA: merged
  if (s.model->has_lora()) {  // resume needs base and adapter apart (as keel train's checkpoints)
    models::save_adapter(*s.model, (staging / "model_adapter").string(), s.cfg.model.path);
    if (s.cfg.model.path.empty()) models::save_pretrained(s.model->without_adapters(), (staging / "model_base").string(), so);
  }
  if (s.length_head.defined())
    models::save_safetensors((staging / "model" / kOdinLengthFile).string(), {{kOdinLengthTensor, s.length_head.detach()}},
                             {{"format", "pt"}, {"keel", "ODIN length head r_L; score.weight is the quality head r_Q"}});
  checkpoint::save_optimizer(*s.optimizer, staging / "optimizer.pt");
  checkpoint::TrainerState st;
  st.step = s.step;
  st.opt_step = s.opt_step;
  st.data_cursor = {s.cursor.epoch, s.cursor.position};
  st.skipped_steps = guard.skipped_total();
  checkpoint::write_trainer_state(staging, st);
  log::info("checkpoint: {}", mgr.commit(staging, s.step).string());
}

void load_checkpoint(State& s, const stdfs::path& dir, const models::ModelRegistry& reg) {
  models::LoadOptions lo;
  lo.heads = kRewardOnly;
  lo.init_missing_heads = false;
  if (s.cfg.model.lora.enabled()) {
    // The frozen base, then the adapters and the trained score head.
    lo.init_missing_heads = true;
    s.model.emplace(models::load_pretrained(s.cfg.model.path.empty() ? (dir / "model_base").string() : s.cfg.model.path,
                                            reg, lo));
    attach_lora(*s.model, s.cfg.model.lora, (dir / "model_adapter").string(), static_cast<uint64_t>(s.cfg.run.seed));
  } else {
    s.model.emplace(models::load_pretrained((dir / "model").string(), reg, lo));
  }
  if (s.cfg.rm.variant == "odin") {
    const auto file = dir / "model" / kOdinLengthFile;
    if (!stdfs::exists(file)) fail("{}: no {} (the checkpoint was not trained with rm.variant: odin)", (dir / "model").string(), kOdinLengthFile);
    const auto t = models::load_safetensors(file.string());
    const auto it = t.find(kOdinLengthTensor);
    if (it == t.end() || it->second.sizes() != torch::IntArrayRef({1, s.model->config().hidden_size}))
      fail("{}: expected '{}' of shape [1, {}]", file.string(), kOdinLengthTensor, s.model->config().hidden_size);
    s.length_head = it->second.to(s.model->device(), s.model->dtype()).clone().requires_grad_(true);
  }
  const auto st = checkpoint::read_trainer_state(dir);
  s.step = st.step;
  s.opt_step = st.opt_step;
  s.loaded_skipped_steps = st.skipped_steps;
  s.cursor = {st.data_cursor.epoch, st.data_cursor.position};
  s.optimizer = make_optimizer(s, dir);
}

/// The next n training pairs (indices), epoch by epoch in a seeded order.
std::vector<size_t> next_pairs(State& s, size_t n) {
  std::vector<size_t> out;
  const size_t total = s.train.size();
  std::vector<size_t> order;
  int64_t order_epoch = -1;
  while (out.size() < n) {
    if (order_epoch != s.cursor.epoch) {
      if (s.cfg.data.shuffle) {
        const uint64_t seed = static_cast<uint64_t>(s.cfg.run.seed) * 0x9E3779B97F4A7C15ull;
        order = data::seeded_permutation(total, seed + static_cast<uint64_t>(s.cursor.epoch));
      } else {
        order.resize(total);
        std::iota(order.begin(), order.end(), size_t{0});
      }
      order_epoch = s.cursor.epoch;
    }
    out.push_back(order[static_cast<size_t>(s.cursor.position)]);
    if (++s.cursor.position == static_cast<int64_t>(total)) s.cursor = {s.cursor.epoch + 1, 0};
  }
  return out;
}

/// One forward over the pairs `idx` of `pairs` (chosen and rejected in one left-padded batch).
struct PairForward {
  torch::Tensor rc, rr;        ///< [m] score head at the last token (ODIN: r_Q), float32
  torch::Tensor lc, lr;        ///< [m] ODIN's length head r_L, float32; undefined otherwise
  torch::Tensor embeds, mask;  ///< [2m, P, H], [2m, P] input embeddings (kept for the gradient penalty)
};

PairForward forward_pairs(State& s, const std::vector<Pair>& pairs, const std::vector<size_t>& idx, bool keep_embeds) {
  std::vector<Seq> seqs;
  for (size_t i : idx) seqs.push_back(pairs[i].chosen);
  for (size_t i : idx) seqs.push_back(pairs[i].rejected);
  const auto dev = s.model->device();
  PairForward f;
  torch::Tensor last;  // [2m, H]: each sequence's last token
  if (s.cfg.batch.padding_free && !keep_embeds) {
    // The sequences back to back (varlen attention); each is scored at its own last token. The
    // gradient penalty's pass from input embeddings stays padded.
    std::vector<int64_t> flat, lens, ends;
    for (const auto& q : seqs) {
      flat.insert(flat.end(), q.begin(), q.end());
      lens.push_back(static_cast<int64_t>(q.size()));
      ends.push_back(static_cast<int64_t>(flat.size()) - 1);
    }
    const auto hidden = s.model->forward_hidden_packed(torch::tensor(flat, torch::kLong).to(dev).unsqueeze(0), lens)[0];
    last = hidden.index_select(0, torch::tensor(ends, torch::kLong).to(dev));
  } else {
    auto [ids, mask] = models::left_pad(seqs, s.pad_id);  // [2m, P]; the last column is every row's last token
    ids = ids.to(dev);
    mask = mask.to(dev);
    torch::Tensor hidden;  // [2m, P, H]
    if (keep_embeds) {
      f.embeds = models::embed_tokens(*s.model, ids);
      f.mask = mask;
      hidden = models::forward_hidden_from_embeds(*s.model, f.embeds, mask);
    } else {
      hidden = s.model->forward_hidden(ids, mask);
    }
    last = hidden.select(1, hidden.size(1) - 1);
  }
  const auto m = static_cast<int64_t>(idx.size());
  const auto r = s.model->rewards(last).to(torch::kFloat);  // [2m]
  f.rc = r.narrow(0, 0, m);
  f.rr = r.narrow(0, m, m);
  if (s.length_head.defined()) {
    const auto l = torch::linear(last, s.length_head).squeeze(-1).to(torch::kFloat);  // [2m]
    f.lc = l.narrow(0, 0, m);
    f.lr = l.narrow(0, m, m);
  }
  return f;
}

torch::Tensor margins_of(const State& s, const std::vector<Pair>& pairs, const std::vector<size_t>& idx) {
  if (!s.use_margins) return {};
  std::vector<double> m;
  for (size_t i : idx) m.push_back(pairs[i].margin);
  return torch::tensor(m, torch::kDouble).to(torch::kFloat);
}

learner::RmLossOptions loss_options(const config::RmSection& rm) {
  learner::RmLossOptions o;
  o.label_smoothing = rm.loss.label_smoothing;
  o.reg_lambda = rm.loss.reg_lambda;
  return o;
}

/// The variant's loss over one forward: Σ_pairs ℓ / denominator (+ ODIN's batch terms · term_scale).
learner::LossOutput pair_loss(const State& s, const PairForward& f, const std::vector<Pair>& pairs,
                              const std::vector<size_t>& idx, double denominator, double term_scale) {
  const auto& rm = s.cfg.rm;
  if (rm.variant == "odin") {
    learner::OdinLossInputs in;
    in.chosen_quality = f.rc;
    in.rejected_quality = f.rr;
    in.chosen_length = f.lc;
    in.rejected_length = f.lr;
    std::vector<double> tc, tr;
    for (size_t i : idx) tc.push_back(pairs[i].chosen_tokens), tr.push_back(pairs[i].rejected_tokens);
    in.chosen_tokens = torch::tensor(tc, torch::kDouble);
    in.rejected_tokens = torch::tensor(tr, torch::kDouble);
    in.quality_head = s.model->named_parameters().at("score.weight");
    in.length_head = s.length_head;
    in.margins = margins_of(s, pairs, idx);
    in.denominator = denominator;
    in.term_scale = term_scale;
    learner::OdinLossOptions o;
    o.length_weight = rm.odin.length_weight;
    o.ortho_weight = rm.odin.ortho_weight;
    o.bt = loss_options(rm);
    return learner::odin_loss(in, o);
  }
  if (rm.variant == "discriminator") {
    learner::LossOutput out;
    out.loss = learner::discriminator_loss_per_pair(f.rc, f.rr).sum() / denominator;
    torch::NoGradGuard ng;
    const auto delta = (f.rc - f.rr).to(torch::kDouble);
    out.metrics["rm/loss"] = out.loss.item<double>();
    out.metrics["rm/accuracy"] = (delta > 0).to(torch::kDouble).mean().item<double>();
    out.metrics["rm/margin_mean"] = delta.mean().item<double>();
    out.metrics["rm/expert_prob_mean"] = torch::sigmoid(f.rc).to(torch::kDouble).mean().item<double>();
    out.metrics["rm/agent_prob_mean"] = torch::sigmoid(f.rr).to(torch::kDouble).mean().item<double>();
    return out;
  }
  learner::RmLossInputs in{f.rc, f.rr, margins_of(s, pairs, idx), denominator};
  return learner::bt_loss(in, loss_options(rm));
}

/// The gradient penalty of spec D6 for the pairs of `f` (kept embeddings): Σ_pairs penalty and the
/// mean gradient norm. [interp] ẑ interpolates the chosen (expert) and rejected (agent) sequences'
/// input embeddings position by position after both are left-padded to one length (so their last
/// tokens, where the score is read, align); a position real in only one of them interpolates with
/// the pad token's embedding, and the interpolate's attention mask is the union of the two.
std::pair<torch::Tensor, double> grad_penalty(State& s, const PairForward& f) {
  const auto& gp = s.cfg.rm.loss.grad_penalty;
  const int64_t m = f.rc.size(0);
  const auto mask_hat = torch::maximum(f.mask.narrow(0, 0, m), f.mask.narrow(0, m, m));  // [m, P]
  const auto eps = torch::rand({m}, torch::kDouble);                                     // ε ~ U(0, 1) per pair
  auto score_fn = [&](const torch::Tensor& z) {
    const compat::TwiceDifferentiableAttention plain;  // double backward through attention
    const auto h = models::forward_hidden_from_embeds(*s.model, z, mask_hat);
    const auto score = s.model->rewards(h.select(1, h.size(1) - 1));  // [m]
    return gp.output == "probability" ? torch::sigmoid(score) : score;
  };
  learner::GradPenaltyOptions o;
  o.lambda = gp.lambda;
  o.target = gp.target;
  o.one_sided = gp.one_sided;
  const auto out = learner::interpolated_grad_penalty(score_fn, f.embeds.narrow(0, 0, m), f.embeds.narrow(0, m, m), eps, o);
  return {out.penalty.sum().to(torch::kFloat), out.grad_norms.to(torch::kDouble).mean().item<double>()};
}

/// One optimizer step over a mini-batch of pairs, micro-batched. Returns metrics and the verdict.
std::pair<Metrics, learner::NumericsGuard::Verdict> train_step(State& s, learner::NumericsGuard& guard) {
  const auto& cfg = s.cfg;
  const bool gp_on = cfg.rm.loss.grad_penalty.enabled;
  const auto batch = next_pairs(s, static_cast<size_t>(cfg.batch.mini_batch_size));
  const double n = static_cast<double>(batch.size());
  s.model->train(true);
  s.optimizer->zero_grad();
  Metrics sums;  // per-pair metrics weighted by micro-batch size; loss-like ones summed
  double loss_total = 0, base_total = 0, penalty_total = 0, grad_norm_sum = 0;
  // Micro-batches of micro_batch_size pairs, also capped by batch.max_tokens_per_micro_batch (a
  // pair's chosen and rejected tokens).
  std::vector<int64_t> pair_tokens;
  for (size_t i : batch) pair_tokens.push_back(static_cast<int64_t>(s.train[i].chosen.size() + s.train[i].rejected.size()));
  const auto micro = learner::micro_batches(torch::tensor(pair_tokens, torch::kLong), 0,
                                            static_cast<int64_t>(batch.size()), cfg.batch.micro_batch_size,
                                            cfg.batch.max_tokens_per_micro_batch);
  for (const auto& [st, e] : micro) {
    const std::vector<size_t> idx(batch.begin() + st, batch.begin() + e);
    const double share = static_cast<double>(idx.size()) / n;
    const auto f = forward_pairs(s, s.train, idx, gp_on);
    auto out = pair_loss(s, f, s.train, idx, n, share);
    auto loss = out.loss;
    if (gp_on) {
      auto [pen, norm_mean] = grad_penalty(s, f);
      pen = pen / n;
      penalty_total += pen.item<double>();
      grad_norm_sum += norm_mean * static_cast<double>(idx.size());
      loss = loss + pen;
    }
    loss.backward();
    loss_total += loss.item<double>();
    base_total += out.metrics.at("rm/loss");
    for (const auto& [k, v] : out.metrics)
      if (k != "rm/loss") sums[k] += v * share;
  }
  const auto& o = cfg.optim;
  auto step = learner::guarded_step(trained_parameters(s), *s.optimizer, loss_total, o.grad_clip,
                                    {o.lr, o.min_lr_ratio, o.warmup_steps, cfg.run.total_steps, o.lr_schedule}, guard,
                                    s.opt_step);
  Metrics& m = step.metrics;  // actor/grad_norm, actor/lr
  const auto verdict = step.rollback ? learner::NumericsGuard::Verdict::kRollback
                       : step.stepped ? learner::NumericsGuard::Verdict::kOk
                                      : learner::NumericsGuard::Verdict::kSkip;
  for (const auto& [k, v] : sums) m[k] = v;
  m["rm/loss"] = loss_total;
  if (gp_on) {
    m["rm/base_loss"] = base_total;  // the loss without the penalty (BT or BCE)
    m["rm/grad_penalty"] = penalty_total;
    m["rm/input_grad_norm_mean"] = grad_norm_sum / n;
  }
  m["rm/skipped_steps"] = static_cast<double>(guard.skipped_total());
  return {m, verdict};
}

/// Loss, accuracy and mean margin on (up to eval.num_prompts of) the held-out pairs (no gradient
/// penalty). For odin, eval/rm_accuracy is that of the quality head r_Q alone (what RL scores with).
Metrics evaluate(State& s) {
  const size_t n = std::min(s.eval.size(), static_cast<size_t>(s.cfg.eval.num_prompts));
  if (n == 0) return {};
  torch::NoGradGuard ng;
  s.model->train(false);
  double loss = 0, wins = 0, margin = 0;
  const size_t micro = static_cast<size_t>(s.cfg.batch.micro_batch_size);
  const bool odin = s.cfg.rm.variant == "odin";
  for (size_t st = 0; st < n; st += micro) {
    std::vector<size_t> idx;
    for (size_t i = st; i < std::min(n, st + micro); ++i) idx.push_back(i);
    const double share = static_cast<double>(idx.size()) / static_cast<double>(n);
    const auto f = forward_pairs(s, s.eval, idx, false);
    const auto out = pair_loss(s, f, s.eval, idx, static_cast<double>(n), share);
    loss += out.metrics.at("rm/loss");
    wins += out.metrics.at(odin ? "rm/quality_accuracy" : "rm/accuracy") * static_cast<double>(idx.size());
    margin += out.metrics.at("rm/margin_mean") * static_cast<double>(idx.size());
  }
  return {{"eval/rm_loss", loss},
          {"eval/rm_accuracy", wins / static_cast<double>(n)},
          {"eval/rm_margin_mean", margin / static_cast<double>(n)},
          {"eval/rm_pairs", static_cast<double>(n)}};
}

/// Builds the model of `s` (the latest checkpoint under `mgr` when run.resume asks for it, else
/// model.path or model.init) with its optimizer. Returns whether it resumed.
bool setup_model(State& s, checkpoint::CheckpointManager& mgr, const models::ModelRegistry& reg,
                 const std::string& tok_src) {
  const auto& mc = s.cfg.model;
  if (const int n = mgr.discard_incomplete()) log::warn("removed {} interrupted checkpoint(s)", n);
  const auto resume = mgr.resolve_resume(s.cfg.run.resume);
  if (resume) {
    checkpoint::check_resume_matches(*resume, s.resolved_yaml);
    load_checkpoint(s, *resume, reg);
    log::info("resumed from {} (step {})", resume->string(), s.step);
  } else {
    if (!mc.path.empty()) {
      models::LoadOptions lo;
      lo.heads = kRewardOnly;  // a causal LM gets a fresh score head; an RM keeps its own
      s.model.emplace(models::load_pretrained(mc.path, reg, lo));
    } else {
      s.model.emplace(init_config(mc, *s.tok), kRewardOnly);
    }
    // LoRA: the base frozen, the adapters and the score head trained (ensemble members draw their
    // adapters from their own seed).
    if (mc.lora.enabled()) attach_lora(*s.model, mc.lora, mc.lora.adapter, static_cast<uint64_t>(s.cfg.run.seed));
    if (s.cfg.rm.variant == "odin") s.length_head = fresh_length_head(*s.model);
    s.optimizer = make_optimizer(s, std::nullopt);
  }
  if (mc.activation_checkpointing && s.cfg.rm.loss.grad_penalty.enabled)
    log::warn("model.activation_checkpointing: not used with rm.loss.grad_penalty (its forward runs from embeddings)");
  s.model->set_gradient_checkpointing(mc.activation_checkpointing);
  if (s.model->config().vocab_size < s.tok->vocab_size())
    fail("model: the model's vocabulary ({}) is smaller than the tokenizer's ({} ids from {})", s.model->config().vocab_size,
         s.tok->vocab_size(), tok_src);
  return resume.has_value();
}

/// Trains `s` to run.total_steps with metrics and checkpoints in s.run_dir. Returns the final model directory.
stdfs::path train_loop(State& s, checkpoint::CheckpointManager& mgr, const models::ModelRegistry& reg,
                       const Metrics& data_metrics, bool resumed) {
  const auto& cfg = s.cfg;
  learner::NumericsGuard guard(cfg.optim.rollback_after, cfg.optim.max_rollbacks);
  if (resumed) guard.resume_from(s.loaded_skipped_steps);
  std::unique_ptr<metrics::JsonlWriter> jsonl;
  if (cfg.metrics.jsonl) jsonl = std::make_unique<metrics::JsonlWriter>(s.run_dir / "metrics.jsonl", resumed ? s.step : -1);
  std::unique_ptr<metrics::TensorBoardWriter> tb;
  if (cfg.metrics.tensorboard) tb = std::make_unique<metrics::TensorBoardWriter>(s.run_dir / "tensorboard");

  // ---- the loop -------------------------------------------------------------------------------
  const auto loop_t0 = std::chrono::steady_clock::now();
  int64_t steps_here = 0;
  while (s.step < cfg.run.total_steps) {
    const int64_t step = s.step + 1;
    const auto t = std::chrono::steady_clock::now();
    auto [m, verdict] = train_step(s, guard);
    if (verdict == learner::NumericsGuard::Verdict::kRollback) {
      const auto last = mgr.latest_verified();
      if (!last) fail("{} consecutive non-finite steps and no checkpoint to roll back to", cfg.optim.rollback_after);
      if (!guard.may_roll_back())
        fail("non-finite steps again after {} rollback(s) to {} with no finite step since (last: loss {}, gradient norm "
             "{}; optim.max_rollbacks {}): stopping. Lower optim.lr or check the data",
             guard.rollbacks_in_a_row(), last->string(), guard.last_bad_loss(), guard.last_bad_grad_norm(),
             cfg.optim.max_rollbacks);
      log::warn("{} consecutive non-finite steps: rolling back to {}", cfg.optim.rollback_after, last->string());
      load_checkpoint(s, *last, reg);
      guard.after_rollback();
      continue;
    }
    m["time/step_s"] = seconds_since(t);
    if (step == 1 || steps_here == 0)
      for (const auto& [k, v] : data_metrics) m[k] = v;
    s.step = step;
    ++steps_here;
    if (cfg.eval.every > 0 && (step % cfg.eval.every == 0 || step == cfg.run.total_steps))
      for (const auto& [k, v] : evaluate(s)) m[k] = v;
    if (jsonl) jsonl->write(step, m);
    if (tb) tb->write(step, m);
    if (step % cfg.metrics.console_every == 0 || step == cfg.run.total_steps)
      log::info("{} | rm loss {:.4f} | rm acc {:.1f}%{}",
                metrics::progress_line(step, cfg.run.total_steps, m, seconds_since(loop_t0), steps_here), m["rm/loss"],
                100.0 * m["rm/accuracy"],
                m.count("eval/rm_accuracy") ? fmt::format(" | eval acc {:.1f}%", 100.0 * m["eval/rm_accuracy"]) : "");
    if ((cfg.checkpoint.every > 0 && step % cfg.checkpoint.every == 0) || step == cfg.run.total_steps)
      save_checkpoint(s, mgr, guard);
  }
  const auto last = mgr.latest();
  if (!last) fail("{}: no checkpoint after training (run.total_steps = {})", s.run_dir.string(), cfg.run.total_steps);
  return *last / "model";
}

}  // namespace

int run_train_rm(const ConfigArgs& a, const std::vector<std::string>& argv) {
  State s;
  config::LoadOptions lopt;
  lopt.overrides = a.overrides;
  lopt.world_size = resolve_world_size(a.world_size);
  config::Doc doc;
  s.cfg = config::load_config(a.config, lopt, known_names(), &doc);
  const auto& cfg = s.cfg;
  if (lopt.world_size > 1) fail("keel train-rm: world size {} > 1 is not supported yet", lopt.world_size);
  if (cfg.learner.algorithm != "rm")
    fail("{}: keel train-rm trains a reward model: set learner.algorithm: rm (got '{}')", a.config, cfg.learner.algorithm);
  const bool from_task = cfg.data.train_file.empty();
  if (from_task && !loop::registries().tasks.contains(cfg.data.task))
    fail("{}: data.train_file: keel train-rm needs a preference JSONL ({{prompt | messages, chosen, rejected}} per line) "
         "or a built-in task (data.task) whose pairs it makes", a.config);
  if (cfg.run.device == "cuda") fail("run.device: cuda training is not wired yet; use cpu or auto");
  log::init(log::parse_level(a.log_level.empty() ? cfg.run.log_level : a.log_level), /*rank=*/0, /*world_size=*/1,
            cfg.run.log_all_ranks);
  init_threads(cfg.run.threads);
  torch::manual_seed(cfg.run.seed);
  s.run_dir = stdfs::path(cfg.run.output_dir) / cfg.run.name;
  s.resolved_yaml = config::render_yaml(doc, false);
  // One job per run directory, and no fresh run over another run's checkpoints (as keel train).
  checkpoint::RunDirLock run_dir_lock(s.run_dir);
  if (cfg.run.resume == "none")
    checkpoint::prepare_fresh_run(
        s.run_dir, checkpoint::CheckpointManager(s.run_dir / "checkpoints", cfg.checkpoint.keep_last).complete(),
        cfg.run.overwrite);
  checkpoint::prepare_run_dir(s.run_dir, s.resolved_yaml, argv);
  log::info("{} | device cpu | run dir {}", system_summary(), s.run_dir.string());

  // ---- tokenizer, data ------------------------------------------------------------------------
  const auto& mc = cfg.model;
  data::JsonlOptions jo;
  jo.skip_bad_lines = cfg.data.skip_bad_lines;
  auto train = from_task ? data::Loaded<data::PreferenceRecord>{task_pairs(cfg, data::Split::kTrain), 0, {}}
                         : data::load_preferences(cfg.data.train_file, jo);
  std::string tok_src = mc.tokenizer.empty() ? mc.path : mc.tokenizer;
  if (tok_src.empty()) {
    // A randomly initialised reward model with no tokenizer: one trained on the pairs' text (as
    // keel train does), kept in the run directory.
    std::vector<std::string> corpus;
    for (const auto& r : train.records) {
      std::string text = r.prompt;
      for (const auto& msg : r.messages) text += " " + msg.content;
      corpus.push_back(text + " " + r.chosen + " " + r.rejected);
    }
    tok_src = train_run_tokenizer(corpus, s.run_dir).string();
  }
  s.tok = models::load_tokenizer(tok_src);
  s.tokenizer_dir = stdfs::is_directory(tok_src) ? tok_src : stdfs::path(tok_src).parent_path().string();
  s.pad_id = s.tok->pad_id() != models::kNoToken ? s.tok->pad_id() : 0;
  std::vector<data::PreferenceRecord> train_recs = std::move(train.records), eval_recs;
  int64_t skipped = train.skipped;
  if (from_task) {
    eval_recs = task_pairs(cfg, data::Split::kEval);
  } else if (!cfg.data.eval_file.empty()) {
    auto ev = data::load_preferences(cfg.data.eval_file, jo);
    eval_recs = std::move(ev.records);
    skipped += ev.skipped;
  } else if (cfg.data.eval_fraction > 0 && train_recs.size() >= 2) {
    // A seeded held-out split (independent of run.seed, so every run of a file holds out the same pairs).
    const auto perm = data::seeded_permutation(train_recs.size(), 0xE7A1ull);
    const size_t n_eval = std::clamp<size_t>(
        static_cast<size_t>(std::llround(cfg.data.eval_fraction * static_cast<double>(train_recs.size()))), 1,
        train_recs.size() - 1);
    std::vector<char> held(train_recs.size(), 0);
    for (size_t i = 0; i < n_eval; ++i) held[perm[i]] = 1;
    std::vector<data::PreferenceRecord> kept;
    for (size_t i = 0; i < train_recs.size(); ++i) (held[i] ? eval_recs : kept).push_back(std::move(train_recs[i]));
    train_recs = std::move(kept);
  }
  if (skipped > 0) log::warn("data: skipped {} malformed line(s)", skipped);

  models::ModelRegistry model_reg("model family");
  models::register_builtin_models(model_reg);
  auto mgr = std::make_unique<checkpoint::CheckpointManager>(s.run_dir / "checkpoints", cfg.checkpoint.keep_last);
  const bool resumed = setup_model(s, *mgr, model_reg, tok_src);

  const int64_t ctx = s.model->config().max_position_embeddings;
  int64_t truncated = 0;
  s.train = tokenize_pairs(train_recs, s, ctx, truncated);
  s.eval = tokenize_pairs(eval_recs, s, ctx, truncated);
  if (truncated > 0) log::warn("data: {} sequence(s) longer than the context of {} tokens keep their last tokens", truncated, ctx);
  Metrics data_metrics{{"rm/train_pairs", static_cast<double>(s.train.size())},
                       {"rm/eval_pairs", static_cast<double>(s.eval.size())},
                       {"rm/truncated_sequences", static_cast<double>(truncated)}};
  log::info("reward model: {} training pairs, {} held out", s.train.size(), s.eval.size());

  // ---- ensemble members trained here (spec D2) ----------------------------------------------------
  std::vector<std::string> members = cfg.rm.ensemble.paths;
  if (cfg.rm.ensemble.size >= 2) {
    members.clear();
    for (int64_t m = 0; m < cfg.rm.ensemble.size; ++m) {
      State ms = s;  // the data; a model of its own
      ms.model.reset();
      ms.length_head = torch::Tensor();
      ms.optimizer.reset();
      ms.step = ms.opt_step = 0;
      ms.cursor = {};
      ms.cfg.run.seed = cfg.run.seed + m;  // [interp] "different data orders": the seed sets order and init
      ms.run_dir = s.run_dir / fmt::format("member_{}", m);
      stdfs::create_directories(ms.run_dir);
      torch::manual_seed(ms.cfg.run.seed);
      checkpoint::CheckpointManager member_mgr(ms.run_dir / "checkpoints", cfg.checkpoint.keep_last);
      log::info("ensemble member {}/{} (run.seed {}) in {}", m + 1, cfg.rm.ensemble.size, ms.cfg.run.seed, ms.run_dir.string());
      const bool member_resumed = setup_model(ms, member_mgr, model_reg, tok_src);
      members.push_back(train_loop(ms, member_mgr, model_reg, data_metrics, member_resumed).string());
    }
    // Strengths of the training pairs under the members: summary metrics and one line per pair.
    const auto st = ensemble_strength(s.train, s, members, model_reg);
    const auto sm = strength_metrics(st);
    nlohmann::json summary = {{"members", members}};
    for (const auto& [k, v] : sm) summary[k] = v;
    fs::write_file_atomic(s.run_dir / "ensemble_strength.json", summary.dump(2) + "\n");
    std::string lines;
    for (size_t i = 0; i < s.train.size(); ++i)
      lines += nlohmann::json{{"id", s.train[i].id},
                              {"strength_mean", st.mean[static_cast<int64_t>(i)].item<double>()},
                              {"strength_std", st.std[static_cast<int64_t>(i)].item<double>()}}
                   .dump() +
               "\n";
    fs::write_file_atomic(s.run_dir / "preference_strength.jsonl", lines);
    log::info("ensemble of {}: μ̂ mean {:.4f}, σ̂ mean {:.4f}, {:.1f}% of pairs with μ̂ < 0 | {}", members.size(),
              sm.at("rm/strength_mean"), sm.at("rm/strength_std_mean"), 100.0 * sm.at("rm/strength_negative_frac"),
              (s.run_dir / "preference_strength.jsonl").string());
    for (const auto& [k, v] : sm) data_metrics[k] = v;
  }

  // ---- the run's own reward model -------------------------------------------------------------
  const bool uses_strength = cfg.rm.loss.margin == "adaptive" || cfg.rm.ensemble.flip_negative_strength;
  if (cfg.rm.ensemble.size >= 2 && !uses_strength) {
    log::info("done: {} ensemble members (no margin: adaptive / flip_negative_strength, so no reward model of the run)",
              members.size());
    return 0;
  }
  if (uses_strength) {
    for (const auto& [k, v] : apply_ensemble(s.train, s, members, model_reg)) data_metrics[k] = v;
    if (cfg.rm.loss.margin == "adaptive") apply_ensemble(s.eval, s, members, model_reg);
  }
  s.use_margins = cfg.rm.loss.margin != "none";
  torch::manual_seed(cfg.run.seed + 7919);  // the loop's own draws (gradient-penalty ε), independent of the members
  const auto final_dir = train_loop(s, *mgr, model_reg, data_metrics, resumed);
  log::info("done: reward model {} | metrics {}", final_dir.string(), (s.run_dir / "metrics.jsonl").string());
  return 0;
}

}  // namespace keel::cli
