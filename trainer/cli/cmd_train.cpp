// keel train: the main job (RL learners: grpo, and ppo-style clipped updates with any registered
// critic-free estimator). Fixed lifecycle: load + validate config -> run directory -> build
// components from registries -> optional resume -> loop (rollout, reference, reward, credit,
// update, metrics, eval, checkpoint) -> final checkpoint.
// Not yet here (see the issues): PPO's critic (gae), DPO/SFT/RM learners, multi-rank placement.
#include <chrono>
#include <iostream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/generate.h"
#include "models/logprobs.h"
#include "models/model_config.h"
#include "models/pretrained.h"
#include "models/tokenizer.h"
#include "models/tokenizer_sentencepiece.h"
#include "models/transformer.h"
#include "rewards/composite.h"
#include "trainer/checkpoint/checkpoint_manager.h"
#include "trainer/checkpoint/run_dir.h"
#include "trainer/cli/catalog.h"
#include "trainer/cli/commands.h"
#include "trainer/cli/system_info.h"
#include "trainer/common/error.h"
#include "trainer/common/fs.h"
#include "trainer/common/log.h"
#include "trainer/credit/advantage.h"
#include "trainer/credit/advantage_options.h"
#include "trainer/data/prompt_source.h"
#include "trainer/learner/kl.h"
#include "trainer/learner/rl_update.h"
#include "trainer/metrics/metrics.h"
#include "trainer/rollout/prompt_format.h"
#include "trainer/rollout/rollout.h"

namespace keel::cli {

namespace {

namespace stdfs = std::filesystem;
using metrics::Metrics;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// The tokenizer: model.tokenizer, else the model directory's, else (random init on a built-in
/// task: the embedded default) a small SentencePiece model trained on the task's own text, kept in
/// <run dir>/tokenizer/ so that a resumed run uses the same one. Returns it and its directory.
std::pair<std::unique_ptr<models::Tokenizer>, std::string> load_run_tokenizer(const config::ModelSection& m,
                                                                              const data::PromptSource& src,
                                                                              const stdfs::path& run_dir) {
  if (!m.tokenizer.empty()) return {models::load_tokenizer(m.tokenizer), stdfs::path(m.tokenizer).parent_path().string()};
  if (!m.path.empty()) return {models::load_tokenizer(m.path), m.path};
  if (!src.task())
    fail("model.tokenizer: a randomly initialised model (model.path empty) on a data file needs a tokenizer "
         "(a SentencePiece .model or an HF tokenizer.json)");
  const auto dir = run_dir / "tokenizer";
  const auto model_file = dir / "tokenizer.model";
  if (!stdfs::exists(model_file)) {
    std::vector<std::string> corpus;
    for (uint64_t i = 0; i < 4000; ++i) {
      const auto r = src.task()->make(/*seed=*/0x70C, data::Split::kTrain, i);
      corpus.push_back(r.prompt + src.task()->gold_response(r));
    }
    std::error_code ec;
    stdfs::create_directories(dir, ec);
    models::SentencePieceTrainOptions so;
    so.hard_vocab_limit = false;
    // Staged next to the final name, then renamed: a kill never leaves a half-written tokenizer.
    const auto staged = models::train_sentencepiece(corpus, 64, (dir / "staging").string(), so);
    stdfs::rename(staged, model_file);
    stdfs::remove(dir / "staging.vocab", ec);
    log::info("trained a SentencePiece tokenizer on the task's text: {}", model_file.string());
  }
  return {models::load_tokenizer(model_file.string()), dir.string()};
}

/// A random-init config from model.init sized to the tokenizer.
models::ModelConfig init_config(const config::ModelSection& m, const models::Tokenizer& tok) {
  models::ModelConfig c;
  const auto& i = m.init;
  c.model_type = i.family;
  c.hidden_size = i.hidden_size;
  c.num_hidden_layers = i.num_layers;
  c.num_attention_heads = i.num_heads;
  c.num_key_value_heads = i.num_kv_heads;
  c.head_dim = i.hidden_size / i.num_heads;
  c.intermediate_size = i.intermediate_size;
  c.vocab_size = tok.vocab_size();
  c.max_position_embeddings = i.max_position_embeddings;
  c.rope_theta = i.rope_theta;
  c.rms_norm_eps = 1e-6;
  c.tie_word_embeddings = i.tie_word_embeddings;
  if (tok.eos_id() != models::kNoToken) c.eos_token_ids = {tok.eos_id()};
  if (tok.bos_id() != models::kNoToken) c.bos_token_id = tok.bos_id();
  if (i.family == "qwen2") c.attention_bias = true;
  return c;
}

/// Teacher-forced log-probs of the batch's responses under `model`, micro-batched, no grad.
at::Tensor batch_logprobs(models::Transformer& model, const rollout::RolloutBatch& b, int micro, double temperature) {
  torch::NoGradGuard ng;
  std::vector<at::Tensor> parts;
  models::LogprobOptions lo;
  lo.temperature = temperature;
  for (int64_t s = 0; s < b.size(); s += micro) {
    const int64_t e = std::min(b.size(), s + micro);
    parts.push_back(models::sequence_logprobs(model, b.prompt_ids.slice(0, s, e), b.prompt_mask.slice(0, s, e),
                                              b.response_ids.slice(0, s, e), b.response_mask.slice(0, s, e), lo)
                        .logprobs.to(torch::kFloat));
  }
  return torch::cat(parts);
}

/// RewardInput of a batch: texts, groups, lengths, and each record's answer + meta as JSON.
rewards::RewardInput reward_input(const rollout::RolloutBatch& b, int64_t step) {
  rewards::RewardInput in;
  in.prompts = b.prompt_texts;
  in.responses = b.response_texts;
  in.group_ids = b.group_ids;
  in.response_lengths = b.response_mask.sum(1);
  in.response_tokens = b.response_ids;
  in.response_mask = b.response_mask;
  in.token_logprobs = b.old_logprobs;
  in.step = step;
  for (const auto* r : b.records) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : r->meta) {
      try {
        j[k] = nlohmann::json::parse(v);
      } catch (const nlohmann::json::parse_error&) {
        j[k] = v;
      }
    }
    if (!r->answer.empty()) j["answer"] = r->answer;
    in.metadata.push_back(std::move(j));
  }
  return in;
}

/// Sequence reward on the last valid token: [N, R].
at::Tensor place_on_last_token(const at::Tensor& rewards, const at::Tensor& mask) {
  auto tok = torch::zeros(mask.sizes(), torch::kFloat);
  const auto len = mask.sum(1);
  const auto last = (len - 1).clamp_min(0);
  tok.scatter_(1, last.unsqueeze(1), rewards.to(torch::kFloat).unsqueeze(1));
  return tok * (len > 0).to(torch::kFloat).unsqueeze(1);  // empty responses get nothing
}

struct Components {
  config::RunConfig cfg;
  std::string resolved_yaml;
  stdfs::path run_dir;
  std::unique_ptr<models::Tokenizer> tok;
  std::string tokenizer_dir;  ///< copied into checkpoints
  std::optional<models::Transformer> policy;
  std::optional<models::Transformer> reference;
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::optional<data::PromptSource> data;
  std::unique_ptr<rewards::CompositeReward> reward;
  credit::AdvantageFn estimator;
  credit::AdvantageOptions adv_opts;
  learner::PolicyLossFn loss_fn;
  learner::RlUpdateOptions update;
  std::optional<learner::KlController> kl_ctl;
  credit::EstimatorState est_state;
  int64_t step = 0;      ///< RL steps completed
  int64_t opt_step = 0;  ///< optimizer steps taken
  data::TaskRegistry tasks{"task"};
};

void save_checkpoint(Components& c, checkpoint::CheckpointManager& mgr, const learner::NumericsGuard& guard) {
  const auto staging = mgr.begin(c.step);
  models::SaveOptions so;
  so.tokenizer_dir = c.tokenizer_dir;
  models::save_pretrained(*c.policy, (staging / "policy").string(), so);
  if (c.reference && c.cfg.model.path.empty()) models::save_pretrained(*c.reference, (staging / "reference").string(), so);
  {
    torch::serialize::OutputArchive a;
    c.optimizer->save(a);
    a.save_to((staging / "optimizer.pt").string());
  }
  if (c.reward->stateful()) {
    rewards::RewardState rs;
    c.reward->save_state(rs);
    torch::serialize::OutputArchive a;
    for (const auto& [k, v] : rs) a.write(k, v);
    a.save_to((staging / "reward_state.pt").string());
  }
  nlohmann::json st;
  st["step"] = c.step;
  st["opt_step"] = c.opt_step;
  const auto cur = c.data->cursor();
  st["data_cursor"] = {{"epoch", cur.epoch}, {"position", cur.position}};
  if (c.kl_ctl) st["kl_controller"] = c.kl_ctl->state();
  st["estimator_state"] = c.est_state;
  st["skipped_steps"] = guard.skipped_total();
  st["reward_state_keys"] = nlohmann::json::array();
  if (c.reward->stateful()) {
    rewards::RewardState rs;
    c.reward->save_state(rs);
    for (const auto& [k, v] : rs) st["reward_state_keys"].push_back(k);
  }
  fs::write_file_atomic(staging / "trainer_state.json", st.dump(2) + "\n");
  const auto final_dir = mgr.commit(staging, c.step);
  log::info("checkpoint: {}", final_dir.string());
}

void load_checkpoint(Components& c, const stdfs::path& dir, const models::ModelRegistry& reg) {
  c.policy.emplace(models::load_pretrained((dir / "policy").string(), reg));
  if (stdfs::exists(dir / "reference")) c.reference.emplace(models::load_pretrained((dir / "reference").string(), reg));
  const auto st = nlohmann::json::parse(fs::read_file(dir / "trainer_state.json", "trainer state"));
  c.step = st.at("step").get<int64_t>();
  c.opt_step = st.at("opt_step").get<int64_t>();
  c.data->restore({st.at("data_cursor").at("epoch").get<int64_t>(), st.at("data_cursor").at("position").get<int64_t>()});
  if (c.kl_ctl && st.contains("kl_controller")) c.kl_ctl->load_state(st.at("kl_controller").get<std::map<std::string, double>>());
  c.est_state = st.at("estimator_state").get<credit::EstimatorState>();
  if (st.contains("reward_state_keys") && !st.at("reward_state_keys").empty()) {
    torch::serialize::InputArchive a;
    a.load_from((dir / "reward_state.pt").string());
    rewards::RewardState rs;
    for (const auto& k : st.at("reward_state_keys")) {
      at::Tensor t;
      a.read(k.get<std::string>(), t);
      rs[k.get<std::string>()] = t;
    }
    c.reward->load_state(rs);
  }
}

/// pass@1 (greedy) and pass@k (k samples at the rollout temperature) on the held-out prompts.
Metrics evaluate(Components& c) {
  const auto& evalset = c.data->eval_set();
  const size_t n = std::min(evalset.size(), static_cast<size_t>(c.cfg.eval.num_prompts));
  if (n == 0) return {};
  std::vector<data::PromptRecord> prompts(evalset.begin(), evalset.begin() + static_cast<long>(n));
  rollout::RolloutOptions ro;
  ro.samples_per_prompt = 1;
  ro.max_new_tokens = c.cfg.rollout.max_new_tokens;
  ro.temperature = 0;
  ro.batch_size = c.cfg.rollout.batch_size;
  ro.chat_template = c.cfg.model.chat_template;
  ro.stop_token_ids = c.cfg.rollout.stop_token_ids;
  const auto greedy = rollout::generate_rollouts(*c.policy, *c.tok, prompts, ro);
  auto r1 = c.reward->score(reward_input(greedy, c.step)).rewards;
  Metrics m;
  m["eval/pass@1"] = (r1 > 0.5).to(torch::kFloat).mean().item<double>();
  if (c.cfg.eval.k > 1) {
    ro.samples_per_prompt = c.cfg.eval.k;
    ro.temperature = c.cfg.rollout.temperature > 0 ? c.cfg.rollout.temperature : 1.0;
    ro.seed = 0xEEu;  // fixed: evaluations are comparable across steps
    const auto sampled = rollout::generate_rollouts(*c.policy, *c.tok, prompts, ro);
    auto rk = c.reward->score(reward_input(sampled, c.step)).rewards;
    auto solved = torch::zeros({static_cast<int64_t>(n)});
    solved.index_add_(0, sampled.group_ids, (rk > 0.5).to(torch::kFloat));
    m[fmt::format("eval/pass@{}", c.cfg.eval.k)] = (solved > 0).to(torch::kFloat).mean().item<double>();
    m["eval/mean@k"] = (rk > 0.5).to(torch::kFloat).mean().item<double>();
  }
  return m;
}

/// AdamW over the policy's parameters from the optim section, with the optimizer state of a
/// checkpoint directory when one is given.
std::unique_ptr<torch::optim::AdamW> make_optimizer(models::Transformer& policy, const config::OptimSection& o,
                                                    const std::optional<stdfs::path>& checkpoint) {
  auto opt = std::make_unique<torch::optim::AdamW>(
      policy.parameters(),
      torch::optim::AdamWOptions(o.lr).betas({o.adam_beta1, o.adam_beta2}).eps(o.adam_eps).weight_decay(o.weight_decay));
  if (checkpoint) {
    torch::serialize::InputArchive ar;
    ar.load_from((*checkpoint / "optimizer.pt").string());
    opt->load(ar);
  }
  return opt;
}

/// One supervised step (learner.algorithm sft): a mini-batch of (prompt, gold response + EOS)
/// pairs from the task, token-mean cross-entropy over response tokens across the whole
/// mini-batch, micro-batched; then clip, guard and an AdamW step.
Metrics sft_step(Components& c, learner::NumericsGuard& guard) {
  const auto& cfg = c.cfg;
  const auto prompts = c.data->next_batch(static_cast<size_t>(cfg.batch.mini_batch_size));
  std::vector<std::vector<int64_t>> p_ids, r_ids;
  const int64_t ctx = c.policy->config().max_position_embeddings;
  for (const auto& r : prompts) {
    auto resp = c.tok->encode(c.data->task()->gold_response(r), /*add_special=*/false);
    if (c.tok->eos_id() != models::kNoToken) resp.push_back(c.tok->eos_id());
    p_ids.push_back(rollout::encode_prompt(r, *c.tok, cfg.model.chat_template, ctx, static_cast<int64_t>(resp.size())));
    r_ids.push_back(std::move(resp));
  }
  int64_t total_tokens = 0;
  for (const auto& r : r_ids) total_tokens += static_cast<int64_t>(r.size());
  c.policy->train(true);
  c.optimizer->zero_grad();
  double loss_total = 0;
  for (size_t s = 0; s < prompts.size(); s += static_cast<size_t>(cfg.batch.micro_batch_size)) {
    const size_t e = std::min(prompts.size(), s + static_cast<size_t>(cfg.batch.micro_batch_size));
    std::vector<std::vector<int64_t>> pp(p_ids.begin() + static_cast<long>(s), p_ids.begin() + static_cast<long>(e));
    auto [pid, pm] = models::left_pad(pp, 0);
    int64_t rmax = 0;
    for (size_t i = s; i < e; ++i) rmax = std::max<int64_t>(rmax, static_cast<int64_t>(r_ids[i].size()));
    auto rid = torch::zeros({static_cast<int64_t>(e - s), rmax}, torch::kLong);
    auto rm = torch::zeros({static_cast<int64_t>(e - s), rmax}, torch::kLong);
    for (size_t i = s; i < e; ++i)
      for (size_t t = 0; t < r_ids[i].size(); ++t) {
        rid[static_cast<int64_t>(i - s)][static_cast<int64_t>(t)] = r_ids[i][t];
        rm[static_cast<int64_t>(i - s)][static_cast<int64_t>(t)] = 1;
      }
    const auto lp = models::sequence_logprobs(*c.policy, pid, pm, rid, rm).logprobs;
    auto loss = -(lp * rm.to(lp.scalar_type())).sum() / static_cast<double>(total_tokens);
    loss.backward();
    loss_total += loss.item<double>();
  }
  const auto& o = cfg.optim;
  const double grad_norm = torch::nn::utils::clip_grad_norm_(
      c.policy->parameters(), o.grad_clip > 0 ? o.grad_clip : std::numeric_limits<double>::infinity());
  Metrics m;
  if (guard.check(loss_total, grad_norm) == learner::NumericsGuard::Verdict::kOk) {
    const double lr = learner::lr_at(c.update.lr, c.opt_step);
    for (auto& g : c.optimizer->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    c.optimizer->step();
    ++c.opt_step;
    m["actor/lr"] = lr;
  }
  c.optimizer->zero_grad();
  m["sft/loss"] = loss_total;
  m["sft/tokens"] = static_cast<double>(total_tokens);
  m["actor/grad_norm"] = grad_norm;
  return m;
}

}  // namespace

int run_train(const ConfigArgs& a, const std::vector<std::string>& argv) {
  Components c;
  config::LoadOptions lopt;
  lopt.overrides = a.overrides;
  lopt.world_size = resolve_world_size(a.world_size);
  config::Doc doc;
  c.cfg = config::load_config(a.config, lopt, known_names(), &doc);
  c.resolved_yaml = config::render_yaml(doc, false);
  const auto& cfg = c.cfg;
  if (lopt.world_size > 1) fail("keel train: world size {} > 1 needs the distributed runtime (not landed yet)", lopt.world_size);
  const bool sft = cfg.learner.algorithm == "sft";
  if (cfg.learner.algorithm != "grpo" && !sft)
    fail("{}: learner.algorithm {} is not implemented by `keel train` yet (grpo and sft are)", a.config, cfg.learner.algorithm);
  if (cfg.run.device == "cuda") fail("run.device: cuda training is not wired yet; use cpu or auto");
  log::init(log::parse_level(a.log_level.empty() ? cfg.run.log_level : a.log_level),
            /*rank=*/0, /*world_size=*/1, cfg.run.log_all_ranks);
  init_threads(cfg.run.threads);
  torch::manual_seed(cfg.run.seed);

  c.run_dir = stdfs::path(cfg.run.output_dir) / cfg.run.name;
  checkpoint::prepare_run_dir(c.run_dir, c.resolved_yaml, argv);
  log::info("{} | device cpu | run dir {}", system_summary(), c.run_dir.string());

  // ---- components from registries -------------------------------------------------------------
  models::ModelRegistry model_reg("model family");
  models::register_builtin_models(model_reg);
  data::register_builtin_tasks(c.tasks);
  c.data.emplace(data::PromptSource::from_config(cfg.data, static_cast<uint64_t>(cfg.run.seed), c.tasks));
  if (sft && !c.data->task()) fail("data.train_file: sft from SFT JSONL is not wired yet; use a built-in task (data.task)");
  std::tie(c.tok, c.tokenizer_dir) = load_run_tokenizer(cfg.model, *c.data, c.run_dir);
  if (c.data->skipped_lines() > 0) log::warn("data: skipped {} malformed line(s)", c.data->skipped_lines());
  {
    rewards::RewardRegistry rr("reward scheme");
    rewards::register_builtin_rewards(rr);
    const std::string default_scheme = c.data->task() ? c.data->task()->verifier() : "";
    c.reward = rewards::build_composite_reward(cfg.reward, rr, default_scheme);
  }
  {
    auto reg = credit::make_advantage_registry();
    credit::register_builtin_advantages(reg);
    c.estimator = reg.get(cfg.advantage.estimator).fn;
    c.adv_opts = credit::advantage_options_from(cfg.advantage);
    config::Diagnostics d;
    config::Reader r(&cfg.advantage.raw, "advantage", d);
    credit::read_advantage_subsections(r, c.adv_opts);
    d.throw_if_any();
    learner::PolicyLossRegistry pl("policy loss");
    learner::register_builtin_policy_losses(pl);
    c.loss_fn = pl.get(cfg.learner.policy_loss).fn;
  }
  const bool use_ref = cfg.kl.in_reward || cfg.kl.in_loss;
  if (use_ref) c.kl_ctl.emplace(learner::KlController::from_config(cfg.kl.controller, cfg.kl.coef, cfg.kl.target, cfg.kl.horizon));

  checkpoint::CheckpointManager mgr(c.run_dir / "checkpoints", cfg.checkpoint.keep_last);
  if (const int n = mgr.discard_incomplete()) log::warn("removed {} interrupted checkpoint(s)", n);
  const auto resume = mgr.resolve_resume(cfg.run.resume);
  if (resume) {
    load_checkpoint(c, *resume, model_reg);
    log::info("resumed from {} (step {})", resume->string(), c.step);
  } else if (!cfg.model.path.empty()) {
    c.policy.emplace(models::load_pretrained(cfg.model.path, model_reg));
  } else {
    c.policy.emplace(init_config(cfg.model, *c.tok));
  }
  if (use_ref && !c.reference) {
    c.reference.emplace(cfg.model.path.empty() || !resume ? c.policy->clone()
                                                          : models::load_pretrained(cfg.model.path, model_reg));
  }
  if (c.reference) {
    c.reference->set_requires_grad(false);
    c.reference->train(false);
  }
  c.policy->set_gradient_checkpointing(cfg.model.activation_checkpointing);
  const auto& o = cfg.optim;
  c.optimizer = make_optimizer(*c.policy, o, resume);

  auto& u = c.update;
  u.epochs = cfg.batch.epochs;
  u.mini_batch_size = cfg.batch.mini_batch_size;
  u.micro_batch_size = cfg.batch.micro_batch_size;
  u.grad_clip = o.grad_clip;
  u.temperature = cfg.rollout.temperature > 0 ? cfg.rollout.temperature : 1.0;
  u.loss = learner::policy_loss_options(cfg.learner, cfg.kl);
  u.lr = learner::LrScheduleOptions{
      o.lr, o.min_lr_ratio, o.warmup_steps,
      sft ? cfg.run.total_steps : cfg.run.total_steps * cfg.batch.epochs * c.cfg.derived.mini_batches_per_epoch,
      o.lr_schedule};
  learner::NumericsGuard guard(o.rollback_after);

  std::unique_ptr<metrics::JsonlWriter> jsonl;
  if (cfg.metrics.jsonl) jsonl = std::make_unique<metrics::JsonlWriter>(c.run_dir / "metrics.jsonl", resume ? c.step : -1);
  std::unique_ptr<metrics::TensorBoardWriter> tb;
  if (cfg.metrics.tensorboard) tb = std::make_unique<metrics::TensorBoardWriter>(c.run_dir / "tensorboard");

  // ---- the loop -------------------------------------------------------------------------------
  const auto loop_t0 = std::chrono::steady_clock::now();
  int64_t steps_here = 0;
  while (c.step < cfg.run.total_steps) {
    const int64_t step = c.step + 1;
    Metrics m;
    auto t = std::chrono::steady_clock::now();
    if (sft) {
      m = sft_step(c, guard);
      m["time/step_s"] = seconds_since(t);
      m["perf/tokens_per_s"] = m["sft/tokens"] / std::max(1e-9, m["time/step_s"]);
      c.step = step;
      ++steps_here;
      if (cfg.eval.every > 0 && (step % cfg.eval.every == 0 || step == cfg.run.total_steps))
        for (const auto& [k, v] : evaluate(c)) m[k] = v;
      if (jsonl) jsonl->write(step, m);
      if (tb) tb->write(step, m);
      if (step % cfg.metrics.console_every == 0 || step == cfg.run.total_steps)
        log::info("{} | loss {:.4f}", metrics::progress_line(step, cfg.run.total_steps, m, seconds_since(loop_t0), steps_here),
                  m["sft/loss"]);
      if ((cfg.checkpoint.every > 0 && step % cfg.checkpoint.every == 0) || step == cfg.run.total_steps)
        save_checkpoint(c, mgr, guard);
      continue;
    }
    const auto prompts = c.data->next_batch(static_cast<size_t>(cfg.batch.prompts_per_step));
    rollout::RolloutOptions ro;
    ro.samples_per_prompt = cfg.rollout.samples_per_prompt;
    ro.max_new_tokens = cfg.rollout.max_new_tokens;
    ro.temperature = cfg.rollout.temperature;
    ro.top_k = cfg.rollout.top_k;
    ro.top_p = cfg.rollout.top_p;
    ro.stop_token_ids = cfg.rollout.stop_token_ids;
    ro.batch_size = cfg.rollout.batch_size;
    ro.chat_template = cfg.model.chat_template;
    ro.seed = static_cast<uint64_t>(cfg.run.seed) * 1000003ull + static_cast<uint64_t>(step);
    c.policy->train(false);
    auto b = rollout::generate_rollouts(*c.policy, *c.tok, prompts, ro);
    b.policy_version = c.step;
    m["time/rollout_s"] = seconds_since(t);

    t = std::chrono::steady_clock::now();
    if (c.reference) b.ref_logprobs = batch_logprobs(*c.reference, b, cfg.batch.micro_batch_size, u.temperature);
    m["time/reference_s"] = seconds_since(t);

    t = std::chrono::steady_clock::now();
    auto rout = c.reward->score(reward_input(b, step));
    b.rewards = rout.rewards.to(torch::kFloat);
    m["time/reward_s"] = seconds_since(t);
    for (const auto& [k, v] : rout.metrics) m[k] = v;

    // ---- credit ----
    b.token_rewards = place_on_last_token(b.rewards, b.response_mask);
    credit::AdvantageInputs ain;
    ain.token_rewards = b.token_rewards;
    ain.response_mask = b.response_mask;
    ain.group_ids = b.group_ids;
    ain.old_logprobs = b.old_logprobs;
    ain.state = c.est_state;
    if (c.reference) ain.ref_logprobs = b.ref_logprobs;
    if (cfg.kl.in_reward) {
      const auto kr = learner::apply_kl_in_reward(b.token_rewards, b.old_logprobs, b.ref_logprobs, b.response_mask,
                                                  learner::parse_kl_estimator(cfg.kl.estimator), c.kl_ctl->value());
      ain.kl_rewards = kr.token_rewards - b.token_rewards;
      for (const auto& [k, v] : kr.metrics) m[k] = v;
      c.kl_ctl->update(kr.current_kl, b.size());
    }
    auto aout = c.estimator(ain, c.adv_opts);
    // Fault injection for the rollback test: KEEL_TEST_INJECT_NAN_STEP=k poisons step k's
    // advantages once per process.
    static bool injected = false;
    if (const char* inj = std::getenv("KEEL_TEST_INJECT_NAN_STEP"); inj && !injected && std::atoll(inj) == step) {
      aout.advantages = aout.advantages * std::numeric_limits<float>::quiet_NaN();
      injected = true;
      log::warn("KEEL_TEST_INJECT_NAN_STEP: poisoned the advantages of step {}", step);
    }
    b.advantages = aout.advantages.to(torch::kFloat);
    b.returns = aout.returns;
    b.loss_mask = aout.loss_mask.defined() ? aout.loss_mask : b.response_mask;
    c.est_state = aout.state;
    for (const auto& [k, v] : aout.metrics) m[k] = v;

    // ---- update ----
    t = std::chrono::steady_clock::now();
    auto upd = learner::rl_update(*c.policy, *c.optimizer, b, c.loss_fn, u, guard, c.opt_step);
    m["time/update_s"] = seconds_since(t);
    for (const auto& [k, v] : upd.metrics) m[k] = v;
    if (upd.rollback) {
      const auto last = mgr.latest();
      if (!last) fail("{} consecutive non-finite steps and no checkpoint to roll back to", o.rollback_after);
      log::warn("{} consecutive non-finite steps: rolling back to {}", o.rollback_after, last->string());
      load_checkpoint(c, *last, model_reg);
      c.optimizer = make_optimizer(*c.policy, o, last);
      guard.after_rollback();
      continue;
    }

    // ---- step metrics ----
    const auto len = b.response_mask.sum(1).to(torch::kFloat);
    m["reward/mean"] = b.rewards.mean().item<double>();
    m["reward/std"] = b.rewards.std(/*unbiased=*/false).item<double>();
    m["reward/accuracy"] = (b.rewards > 0.5).to(torch::kFloat).mean().item<double>();
    m["response/length_mean"] = len.mean().item<double>();
    m["response/length_max"] = len.max().item<double>();
    int64_t truncated = 0;
    for (const auto& r : b.finish_reasons) truncated += r == "length";
    m["response/clip_ratio"] = static_cast<double>(truncated) / static_cast<double>(b.size());
    const double total_s = m["time/rollout_s"] + m["time/reference_s"] + m["time/reward_s"] + m["time/update_s"];
    m["time/step_s"] = total_s;
    m["perf/tokens_per_s"] = len.sum().item<double>() / std::max(1e-9, total_s);
    if (c.kl_ctl) m["actor/kl_coef"] = c.kl_ctl->value();
    c.step = step;
    ++steps_here;
    if (cfg.eval.every > 0 && (step % cfg.eval.every == 0 || step == cfg.run.total_steps)) {
      t = std::chrono::steady_clock::now();
      for (const auto& [k, v] : evaluate(c)) m[k] = v;
      m["time/eval_s"] = seconds_since(t);
    }
    if (jsonl) jsonl->write(step, m);
    if (tb) tb->write(step, m);
    if (step % cfg.metrics.console_every == 0 || step == cfg.run.total_steps)
      log::info("{}", metrics::progress_line(step, cfg.run.total_steps, m, seconds_since(loop_t0), steps_here));
    if ((cfg.checkpoint.every > 0 && step % cfg.checkpoint.every == 0) || step == cfg.run.total_steps)
      save_checkpoint(c, mgr, guard);
  }
  log::info("done: checkpoint {} | metrics {} | plot: scripts/plot_metrics {}",
            mgr.latest() ? (*mgr.latest() / "policy").string() : std::string("(none)"),
            (c.run_dir / "metrics.jsonl").string(), (c.run_dir / "metrics.jsonl").string());
  return 0;
}

}  // namespace keel::cli
