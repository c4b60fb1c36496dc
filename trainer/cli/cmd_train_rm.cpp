// keel train-rm: Bradley–Terry reward-model training on preference JSONL (spec/rewards.md D1–D2).
// Fixed lifecycle: load + validate config -> run directory -> data (pairs, held-out split,
// optional ensemble strengths) -> model with a reward head -> optional resume -> loop (mini-batch
// of pairs, reward at the last token of prompt + response, BT loss, clip, numerics guard, AdamW +
// lr schedule, metrics, held-out accuracy, atomic checkpoints) -> final checkpoint.
//
// The checkpoint's model/ directory is an HF *ForSequenceClassification (num_labels 1, the head
// saved as score.weight) with the tokenizer files, so the `reward_model` reward scheme, HF
// transformers and vLLM all load it. A pair's text is laid out exactly as reward_model scores
// rollouts: the prompt rendered by model.chat_template (as the policy sees it) then the response.
// Deliberately not here: ODIN's two heads (D3), online intrinsic RMs (D4), multi-rank training.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/model_config.h"
#include "models/pretrained.h"
#include "models/tokenizer.h"
#include "models/transformer.h"
#include "rewards/models/reward_model.h"
#include "rewards/models/sequence_scoring.h"
#include "trainer/checkpoint/checkpoint_manager.h"
#include "trainer/checkpoint/run_dir.h"
#include "trainer/cli/catalog.h"
#include "trainer/cli/commands.h"
#include "trainer/cli/system_info.h"
#include "trainer/cli/train_common.h"
#include "trainer/learner/supervised_update.h"
#include "trainer/common/error.h"
#include "trainer/common/fs.h"
#include "trainer/common/log.h"
#include "trainer/data/jsonl.h"
#include "trainer/data/prompt_source.h"
#include "trainer/learner/lr_schedule.h"
#include "trainer/learner/numerics_guard.h"
#include "trainer/learner/rm_loss.h"
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
};

struct State {
  config::RunConfig cfg;
  stdfs::path run_dir;
  std::unique_ptr<models::Tokenizer> tok;
  std::string tokenizer_dir;
  std::optional<models::Transformer> model;
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::vector<Pair> train, eval;
  data::PromptSource::Cursor cursor;
  int64_t step = 0, opt_step = 0;
  int64_t pad_id = 0;
  bool use_margins = false;
};

/// The pair's margin from its JSONL line (rm.loss.margin: fixed).
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
  for (const auto& r : recs) {
    data::PromptRecord pr;
    pr.id = r.id;
    pr.prompt = r.prompt;
    for (const auto& m : r.messages) pr.messages.push_back(m);
    const std::string prompt = rollout::render_prompt(pr, c.model.chat_template);
    Pair p;
    p.id = r.id;
    p.chosen = rewards::reward_model_sequence(*s.tok, prompt, r.chosen, 0);
    p.rejected = rewards::reward_model_sequence(*s.tok, prompt, r.rejected, 0);
    if (p.chosen.empty() || p.rejected.empty()) fail("{}: prompt and response are both empty after tokenization", r.id);
    truncated += static_cast<int64_t>(p.chosen.size()) > ctx;
    truncated += static_cast<int64_t>(p.rejected.size()) > ctx;
    p.chosen = rewards::keep_last_tokens(p.chosen, ctx);
    p.rejected = rewards::keep_last_tokens(p.rejected, ctx);
    if (c.rm.loss.margin == "fixed") p.margin = margin_of(r, c.rm.loss.margin_key);
    out.push_back(std::move(p));
  }
  return out;
}

/// Ensemble strengths (spec D2) of `pairs`: the adaptive margin and/or label flipping. Returns metrics.
Metrics apply_ensemble(std::vector<Pair>& pairs, const State& s, const models::ModelRegistry& reg) {
  const auto& e = s.cfg.rm.ensemble;
  std::vector<Seq> chosen, rejected;
  for (const auto& p : pairs) chosen.push_back(p.chosen), rejected.push_back(p.rejected);
  std::vector<torch::Tensor> rc, rr;
  for (const auto& path : e.paths) {
    models::LoadOptions lo;
    lo.heads = models::HeadOptions{/*lm_head=*/false, /*value_head=*/false, /*reward_head=*/true};
    lo.init_missing_heads = false;
    auto m = models::load_pretrained(path, reg, lo);
    m.train(false);
    if (m.config().vocab_size < s.tok->vocab_size())
      fail("rm.ensemble.paths: {} has a vocabulary of {} but the run's tokenizer has {} ids (ensemble members must "
           "share the tokenizer)", path, m.config().vocab_size, s.tok->vocab_size());
    const int64_t bs = s.cfg.batch.micro_batch_size;
    rc.push_back(rewards::score_sequences(m, chosen, bs, s.pad_id).to(torch::kDouble));
    rr.push_back(rewards::score_sequences(m, rejected, bs, s.pad_id).to(torch::kDouble));
  }
  const auto st = learner::preference_strength(torch::stack(rc), torch::stack(rr));  // [B] each
  Metrics m;
  m["rm/strength_mean"] = st.mean.mean().item<double>();
  m["rm/strength_std_mean"] = st.std.mean().item<double>();
  m["rm/strength_negative_frac"] = (st.mean < 0).to(torch::kDouble).mean().item<double>();
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

std::unique_ptr<torch::optim::AdamW> make_optimizer(models::Transformer& model, const config::OptimSection& o,
                                                    const std::optional<stdfs::path>& checkpoint) {
  return make_adamw(model.parameters(), o.lr, o,
                    checkpoint ? std::optional<stdfs::path>(*checkpoint / "optimizer.pt") : std::nullopt);
}

void save_checkpoint(State& s, checkpoint::CheckpointManager& mgr, const learner::NumericsGuard& guard) {
  const auto staging = mgr.begin(s.step);
  models::SaveOptions so;
  so.tokenizer_dir = s.tokenizer_dir;
  models::save_pretrained(*s.model, (staging / "model").string(), so);
  {
    torch::serialize::OutputArchive a;
    s.optimizer->save(a);
    a.save_to((staging / "optimizer.pt").string());
  }
  nlohmann::json st;
  st["step"] = s.step;
  st["opt_step"] = s.opt_step;
  st["data_cursor"] = {{"epoch", s.cursor.epoch}, {"position", s.cursor.position}};
  st["skipped_steps"] = guard.skipped_total();
  fs::write_file_atomic(staging / "trainer_state.json", st.dump(2) + "\n");
  log::info("checkpoint: {}", mgr.commit(staging, s.step).string());
}

void load_checkpoint(State& s, const stdfs::path& dir, const models::ModelRegistry& reg) {
  models::LoadOptions lo;
  lo.heads = kRewardOnly;
  lo.init_missing_heads = false;
  s.model.emplace(models::load_pretrained((dir / "model").string(), reg, lo));
  const auto st = nlohmann::json::parse(fs::read_file(dir / "trainer_state.json", "trainer state"));
  s.step = st.at("step").get<int64_t>();
  s.opt_step = st.at("opt_step").get<int64_t>();
  s.cursor = {st.at("data_cursor").at("epoch").get<int64_t>(), st.at("data_cursor").at("position").get<int64_t>()};
  s.optimizer = make_optimizer(*s.model, s.cfg.optim, dir);
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

/// Rewards of the pairs `idx` of `pairs` (chosen and rejected in one forward): ([m], [m]).
std::pair<torch::Tensor, torch::Tensor> pair_rewards(State& s, const std::vector<Pair>& pairs,
                                                     const std::vector<size_t>& idx) {
  std::vector<Seq> seqs;
  for (size_t i : idx) seqs.push_back(pairs[i].chosen);
  for (size_t i : idx) seqs.push_back(pairs[i].rejected);
  const auto r = rewards::last_token_rewards(*s.model, seqs, s.pad_id).to(torch::kFloat);  // [2m]
  const auto m = static_cast<int64_t>(idx.size());
  return {r.narrow(0, 0, m), r.narrow(0, m, m)};
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

/// One optimizer step over a mini-batch of pairs, micro-batched. Returns metrics and the verdict.
std::pair<Metrics, learner::NumericsGuard::Verdict> train_step(State& s, learner::NumericsGuard& guard) {
  const auto& cfg = s.cfg;
  const auto batch = next_pairs(s, static_cast<size_t>(cfg.batch.mini_batch_size));
  const auto lo = loss_options(cfg.rm);
  s.model->train(true);
  s.optimizer->zero_grad();
  double loss_total = 0, wins = 0, margin_sum = 0;
  for (size_t st = 0; st < batch.size(); st += static_cast<size_t>(cfg.batch.micro_batch_size)) {
    const size_t e = std::min(batch.size(), st + static_cast<size_t>(cfg.batch.micro_batch_size));
    const std::vector<size_t> idx(batch.begin() + static_cast<long>(st), batch.begin() + static_cast<long>(e));
    auto [rc, rr] = pair_rewards(s, s.train, idx);
    learner::RmLossInputs in;
    in.chosen_rewards = rc;
    in.rejected_rewards = rr;
    in.margins = margins_of(s, s.train, idx);
    in.denominator = static_cast<double>(batch.size());
    auto out = learner::bt_loss(in, lo);
    out.loss.backward();
    loss_total += out.metrics["rm/loss"];
    wins += out.metrics["rm/accuracy"] * static_cast<double>(idx.size());
    margin_sum += out.metrics["rm/margin_mean"] * static_cast<double>(idx.size());
  }
  const auto& o = cfg.optim;
  auto step = learner::guarded_step(s.model->parameters(), *s.optimizer, loss_total, o.grad_clip,
                                    {o.lr, o.min_lr_ratio, o.warmup_steps, cfg.run.total_steps, o.lr_schedule}, guard,
                                    s.opt_step);
  Metrics& m = step.metrics;  // actor/grad_norm, actor/lr
  const auto verdict = step.rollback ? learner::NumericsGuard::Verdict::kRollback
                       : step.stepped ? learner::NumericsGuard::Verdict::kOk
                                      : learner::NumericsGuard::Verdict::kSkip;
  const double n = static_cast<double>(batch.size());
  m["rm/loss"] = loss_total;
  m["rm/accuracy"] = wins / n;
  m["rm/margin_mean"] = margin_sum / n;
  m["rm/skipped_steps"] = static_cast<double>(guard.skipped_total());
  return {m, verdict};
}

/// Loss, accuracy and mean margin on (up to eval.num_prompts of) the held-out pairs.
Metrics evaluate(State& s) {
  const size_t n = std::min(s.eval.size(), static_cast<size_t>(s.cfg.eval.num_prompts));
  if (n == 0) return {};
  torch::NoGradGuard ng;
  s.model->train(false);
  double loss = 0, wins = 0, margin = 0;
  const size_t micro = static_cast<size_t>(s.cfg.batch.micro_batch_size);
  for (size_t st = 0; st < n; st += micro) {
    std::vector<size_t> idx;
    for (size_t i = st; i < std::min(n, st + micro); ++i) idx.push_back(i);
    auto [rc, rr] = pair_rewards(s, s.eval, idx);
    learner::RmLossInputs in{rc, rr, margins_of(s, s.eval, idx), static_cast<double>(n)};
    const auto out = learner::bt_loss(in, loss_options(s.cfg.rm));
    loss += out.metrics.at("rm/loss");
    wins += out.metrics.at("rm/accuracy") * static_cast<double>(idx.size());
    margin += out.metrics.at("rm/margin_mean") * static_cast<double>(idx.size());
  }
  return {{"eval/rm_loss", loss},
          {"eval/rm_accuracy", wins / static_cast<double>(n)},
          {"eval/rm_margin_mean", margin / static_cast<double>(n)},
          {"eval/rm_pairs", static_cast<double>(n)}};
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
  if (cfg.data.train_file.empty())
    fail("{}: data.train_file: keel train-rm needs a preference JSONL ({{prompt | messages, chosen, rejected}} per line)",
         a.config);
  if (cfg.run.device == "cuda") fail("run.device: cuda training is not wired yet; use cpu or auto");
  log::init(log::parse_level(a.log_level.empty() ? cfg.run.log_level : a.log_level), /*rank=*/0, /*world_size=*/1,
            cfg.run.log_all_ranks);
  init_threads(cfg.run.threads);
  torch::manual_seed(cfg.run.seed);
  s.run_dir = stdfs::path(cfg.run.output_dir) / cfg.run.name;
  checkpoint::prepare_run_dir(s.run_dir, config::render_yaml(doc, false), argv);
  log::info("{} | device cpu | run dir {}", system_summary(), s.run_dir.string());

  // ---- tokenizer, data ------------------------------------------------------------------------
  const auto& mc = cfg.model;
  data::JsonlOptions jo;
  jo.skip_bad_lines = cfg.data.skip_bad_lines;
  auto train = data::load_preferences(cfg.data.train_file, jo);
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
  if (!cfg.data.eval_file.empty()) {
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
  checkpoint::CheckpointManager mgr(s.run_dir / "checkpoints", cfg.checkpoint.keep_last);
  if (const int n = mgr.discard_incomplete()) log::warn("removed {} interrupted checkpoint(s)", n);
  const auto resume = mgr.resolve_resume(cfg.run.resume);
  if (resume) {
    load_checkpoint(s, *resume, model_reg);
    log::info("resumed from {} (step {})", resume->string(), s.step);
  } else {
    if (!mc.path.empty()) {
      models::LoadOptions lo;
      lo.heads = kRewardOnly;  // a causal LM gets a fresh score head; an RM keeps its own
      s.model.emplace(models::load_pretrained(mc.path, model_reg, lo));
    } else {
      s.model.emplace(init_config(mc, *s.tok), kRewardOnly);
    }
    s.optimizer = make_optimizer(*s.model, cfg.optim, std::nullopt);
  }
  s.model->set_gradient_checkpointing(mc.activation_checkpointing);
  if (s.model->config().vocab_size < s.tok->vocab_size())
    fail("model: the model's vocabulary ({}) is smaller than the tokenizer's ({} ids from {})", s.model->config().vocab_size,
         s.tok->vocab_size(), tok_src);

  const int64_t ctx = s.model->config().max_position_embeddings;
  int64_t truncated = 0;
  s.train = tokenize_pairs(train_recs, s, ctx, truncated);
  s.eval = tokenize_pairs(eval_recs, s, ctx, truncated);
  if (truncated > 0) log::warn("data: {} sequence(s) longer than the context of {} tokens keep their last tokens", truncated, ctx);
  Metrics data_metrics{{"rm/train_pairs", static_cast<double>(s.train.size())},
                       {"rm/eval_pairs", static_cast<double>(s.eval.size())},
                       {"rm/truncated_sequences", static_cast<double>(truncated)}};
  if (cfg.rm.loss.margin == "adaptive" || cfg.rm.ensemble.flip_negative_strength) {
    for (const auto& [k, v] : apply_ensemble(s.train, s, model_reg)) data_metrics[k] = v;
    if (cfg.rm.loss.margin == "adaptive") apply_ensemble(s.eval, s, model_reg);
  }
  s.use_margins = cfg.rm.loss.margin != "none";
  log::info("reward model: {} training pairs, {} held out", s.train.size(), s.eval.size());

  learner::NumericsGuard guard(cfg.optim.rollback_after);
  std::unique_ptr<metrics::JsonlWriter> jsonl;
  if (cfg.metrics.jsonl) jsonl = std::make_unique<metrics::JsonlWriter>(s.run_dir / "metrics.jsonl", resume ? s.step : -1);
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
      const auto last = mgr.latest();
      if (!last) fail("{} consecutive non-finite steps and no checkpoint to roll back to", cfg.optim.rollback_after);
      log::warn("{} consecutive non-finite steps: rolling back to {}", cfg.optim.rollback_after, last->string());
      load_checkpoint(s, *last, model_reg);
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
  log::info("done: reward model {} | metrics {}", mgr.latest() ? (*mgr.latest() / "model").string() : std::string("(none)"),
            (s.run_dir / "metrics.jsonl").string());
  return 0;
}

}  // namespace keel::cli
