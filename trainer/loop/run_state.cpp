#include "trainer/loop/run_state.h"

#include "rewards/models/reward_model.h"

#include <utility>

#include <torch/torch.h>

#include "base/error.h"
#include "base/log.h"
#include "models/lora.h"
#include "models/pretrained.h"
#include "trainer/cli/train_common.h"
#include "trainer/credit/advantage_options.h"
#include "trainer/dist/data_parallel.h"
#include "trainer/dist/optimizer_shards.h"
#include "trainer/dist/sharded_adamw.h"
#include "trainer/dist/sharded_model.h"
#include "trainer/rollout/prompt_format.h"
#include "trainer/dist/rendezvous.h"
#include "trainer/learner/policy_loss.h"
#include "trainer/loop/checkpoint_io.h"
#include "trainer/loop/contracts.h"
#include "trainer/loop/fit_data.h"

namespace keel::loop {

namespace {

namespace stdfs = std::filesystem;

/// The tokenizer: model.tokenizer, else the model directory's, else (random init: the embedded
/// default, tests) a small SentencePiece model trained on the training data's own text — the
/// task's problems and gold responses, or the file's prompts and responses — kept in
/// <run dir>/tokenizer/ so that a resumed run uses the same one. Returns it and its directory.
std::pair<std::unique_ptr<models::Tokenizer>, std::string> load_run_tokenizer(const config::ModelSection& m,
                                                                              const data::PromptSource& src,
                                                                              const stdfs::path& run_dir,
                                                                              const RunState& c) {
  if (!m.tokenizer.empty())
    return {models::load_tokenizer(m.tokenizer), stdfs::path(m.tokenizer).parent_path().string()};
  if (!m.path.empty()) return {models::load_tokenizer(m.path), m.path};
  const auto dir = run_dir / "tokenizer";
  if (!stdfs::exists(dir / "tokenizer.model")) {
    std::vector<std::string> corpus;
    if (src.task()) {
      for (uint64_t i = 0; i < 4000; ++i) {
        const auto r = src.task()->make(/*seed=*/0x70C, data::Split::kTrain, i);
        // With an environment: its expert episodes as the policy sees them (observations rendered
        // by the chat template), so every piece of a conversation is in the vocabulary.
        if (c.env) corpus.push_back(env::expert_transcript(*c.env, r, i, c.chat_template, c.episode));
        else corpus.push_back(r.prompt + src.task()->gold_response(r));
      }
    } else {
      for (const auto& r : src.train_records()) {
        std::string text = r.prompt;
        for (const auto& msg : r.messages) text += " " + msg.content;
        if (!r.answer.empty()) text += " " + r.answer;
        for (const char* k : {"response", "chosen", "rejected"})
          if (r.meta.count(k)) text += " " + data::meta_string(r, k);
        corpus.push_back(std::move(text));
        if (c.env) corpus.push_back(env::expert_transcript(*c.env, r, corpus.size(), c.chat_template, c.episode));
      }
    }
    cli::train_run_tokenizer(corpus, run_dir, src.task() ? src.task()->tokenizer_symbols() : std::vector<std::string>{},
                             src.task() ? src.task()->tokenizer_extra_pieces() : 16);
  }
  const auto model_file = dir / "tokenizer.model";
  return {models::load_tokenizer(model_file.string()), dir.string()};
}

/// data.format resolved: auto = sft for the SFT learner, preferences for offline DPO, else prompts.
std::string data_format(const config::RunConfig& cfg) {
  if (cfg.data.format != "auto") return cfg.data.format;
  if (cfg.learner.algorithm == "sft") return cfg.env.name.empty() ? "sft" : "prompts";  // env: expert episodes
  if (cfg.learner.algorithm == "dpo" && !cfg.dpo.online) return "preferences";
  return "prompts";
}

}  // namespace

RunState::RunState() = default;
RunState::~RunState() = default;

void init_ranks(RunState& c, const std::string& config_name) {
  const auto& cfg = c.cfg;
  const bool disagg = cfg.dist.placement == "disaggregated";
  // (Which learners run on several ranks or disaggregated, and with which estimators and filters,
  // the contract check refuses at config load: trainer/loop/contracts.h.)
  if (!c.reg.learners.contains(c.algorithm)) fail("{}: unknown learner.algorithm {}", config_name, c.algorithm);
  if (const auto& cmd = c.reg.learners.get(c.algorithm).fn; cmd != "train")
    fail("{}: learner.algorithm {} is run by `keel {} {}`", config_name, c.algorithm, cmd, config_name);
  if (c.world > 1) {
    if (disagg) {
      // (the rank counts against the world size and prompts_per_step % rollout_ranks are checked at load)
      if (cfg.batch.mini_batch_size % cfg.dist.learner_ranks != 0)
        fail("{}: batch.mini_batch_size {} must divide among {} learner ranks", config_name, cfg.batch.mini_batch_size,
             cfg.dist.learner_ranks);
    } else if (c.rl() && (cfg.batch.prompts_per_step % c.world != 0 || cfg.batch.mini_batch_size % c.world != 0)) {
      fail("{}: batch.prompts_per_step {} and batch.mini_batch_size {} must divide among {} ranks", config_name,
           cfg.batch.prompts_per_step, cfg.batch.mini_batch_size, c.world);
    }
  }
  if (c.world > 1) {
    const auto info = dist::read_rendezvous_env(dist::process_env());
    if (info.world_size != c.world)
      fail("keel train: WORLD_SIZE {} but the rendezvous environment says {}", c.world, info.world_size);
    c.rank = info.rank;
    c.global_rank = info.rank;
    dist::DataParallelOptions dpo;
    dpo.bucket_mb = cfg.dist.bucket_mb;
    if (!disagg) {
      c.comm = dist::init_communicator(info, dist::comm_options(cfg.dist));
      c.dp_hooks = dist::learner_hooks(*c.comm, dpo);
    } else {
      // Roles by rank (trainer/dist/placement.h); every rank creates both groups, in this order.
      c.placement =
          dist::make_placement(cfg.dist.learner_ranks, cfg.dist.rollout_ranks, cfg.dist.reward_ranks, c.world);
      c.world_comm = dist::init_communicator(info, dist::comm_options(cfg.dist));
      auto learners = c.world_comm->new_group(c.placement->learner_group());
      c.sync_comm = c.world_comm->new_group(c.placement->sync_group());
      c.role = c.placement->role_of(c.global_rank);
      c.rank = c.placement->index_of(c.global_rank);
      c.world = c.role == dist::Role::kLearner ? c.placement->learners
                : c.role == dist::Role::kRollout ? c.placement->rollouts
                                                  : c.placement->rewards;
      if (c.role == dist::Role::kLearner && c.placement->learners > 1) {
        c.comm = std::move(learners);
        c.dp_hooks = dist::learner_hooks(*c.comm, dpo);
      }
    }
  }
}

void resolve_device(RunState& c, int local_rank) {
  const auto& cfg = c.cfg;
  c.device = cli::select_device(cfg.run.device, "run.device", local_rank);
  if (c.device.is_cuda()) {
    if (cfg.model.dtype != "float32") c.autocast = at::kBFloat16;
  } else if (cfg.model.dtype == "bfloat16") {
    fail("model.dtype bfloat16 means bf16 autocast on CUDA; on the CPU keel computes in float32 (use auto or float32)");
  }
}

void build_components(RunState& c, const rewards::RewardRegistry& reward_schemes, bool lead,
                      const std::function<void()>& barrier) {
  // model.path may name a run directory (a chain's earlier stage): its newest checkpoint's policy.
  // (Neither a model nor a run: kept, for the loader's error.)
  if (!c.cfg.model.path.empty())
    if (auto dir = rewards::resolve_model_dir(c.cfg.model.path); !dir.empty()) c.cfg.model.path = dir;
  const auto& cfg = c.cfg;
  const std::string format = data_format(cfg);
  if (c.samples() && format != "prompts")
    fail("data.format: learner {} samples responses to prompts; it needs prompt data, got format '{}'", c.algorithm,
         format);
  if (c.is("sft") && format != (cfg.env.name.empty() ? "sft" : "prompts"))
    fail("data.format: learner sft needs {}, got format '{}'",
         cfg.env.name.empty() ? "SFT data" : "prompts (with env.name it trains on the environment's expert episodes)",
         format);
  if (c.is("dpo") && !cfg.dpo.online && format != "preferences")
    fail("data.format: offline DPO needs preference data, got format '{}'", format);
  c.data.emplace(data::PromptSource::from_config(cfg.data, static_cast<uint64_t>(cfg.run.seed), c.reg.tasks, format));
  if (!cfg.env.name.empty()) {
    config::Diagnostics d;
    config::Reader r(cfg.env.params.is_null() ? nullptr : &cfg.env.params, "env.params", d);
    c.env = c.reg.environments.get(cfg.env.name).fn(r);
    r.finish();
    d.throw_if_any();
    rewards::ScorerOptions po;
    po.timeout_ms = cfg.env.step_timeout_s * 1000.0;
    po.threads = cfg.env.threads;
    c.env_pool = std::make_unique<rewards::Scorer>(po);
    c.episode.max_turns = cfg.env.max_turns;
    c.episode.max_tokens = cfg.env.max_tokens;
    c.episode.observation_role = cfg.env.observation_role;
    c.episode.reuse_kv = cfg.env.reuse_kv;
  }
  check_data_contracts(cfg, *c.data);  // a prompts file's fields against the reward's meta.<key> needs
  // The chat template first: a model's own is parsed (and refused, naming its line) before any
  // work, and the tokenizer trained for a random-init run sees episodes in its format.
  c.chat_template = rollout::load_chat_template(cfg.model);
  if (c.chat_template.jinja()) log::info("chat template: {}", c.chat_template.describe());
  // Rank 0 trains the run's tokenizer (when one is trained); the others load it.
  if (lead) std::tie(c.tok, c.tokenizer_dir) = load_run_tokenizer(cfg.model, *c.data, c.run_dir, c);
  if (barrier) barrier();
  if (!lead) std::tie(c.tok, c.tokenizer_dir) = load_run_tokenizer(cfg.model, *c.data, c.run_dir, c);
  if (c.data->skipped_lines() > 0) log::warn("data: skipped {} malformed line(s)", c.data->skipped_lines());
  if (c.samples() || c.data->task() || c.env || !cfg.reward.components.empty()) {
    // Offline learners on files need no reward (their evaluation is on held-out pairs / loss); with
    // an environment its outcome is the default (the "env" scheme).
    const std::string default_scheme = c.env ? "env" : c.data->task() ? c.data->task()->verifier() : "";
    // The judges run where this process computes: the learner's device, or a reward rank's.
    rewards::JudgeContext jc;
    jc.policy_tokenizer = c.tok.get();
    jc.device = c.device;
    // The master-key suite's questions for judges with robustness_probes: run: three training
    // prompts as the policy sees them, with their answers.
    std::vector<data::PromptRecord> recs;
    if (c.data->task())
      for (uint64_t i = 0; i < 3; ++i) recs.push_back(c.data->task()->make(static_cast<uint64_t>(cfg.run.seed), data::Split::kTrain, i));
    else
      recs.assign(c.data->train_records().begin(), c.data->train_records().begin() +
                                                       static_cast<std::ptrdiff_t>(std::min<size_t>(3, c.data->train_records().size())));
    for (const auto& r : recs) jc.probes.push_back({rollout::render_prompt(r, c.chat_template), r.answer});
    c.reward = rewards::build_composite_reward(cfg.reward, reward_schemes, default_scheme, jc);
    c.score_watch = ScoreWatch(cfg.reward.warn_error_share, cfg.reward.max_all_error_steps);
  }
  // Every record against the model's context now, not at the step that would draw it.
  fit_data_to_context(c);
  {
    c.estimator = c.reg.estimators.get(cfg.advantage.estimator).fn;
    c.adv_opts = credit::advantage_options_from(cfg.advantage);
    config::Diagnostics d;
    config::Reader r(&cfg.advantage.raw, "advantage", d);
    credit::read_advantage_subsections(r, c.adv_opts);
    d.throw_if_any();
    c.loss_fn = c.reg.policy_losses.get(cfg.learner.policy_loss).fn;
    c.dpo_fn = c.reg.dpo_losses.get(cfg.dpo.loss).fn;
    c.dpo_opts = learner::dpo_options(cfg.dpo);
  }
  if (c.rl() && c.uses_reference())
    c.kl_ctl.emplace(learner::KlController::from_config(cfg.kl.controller, cfg.kl.coef, cfg.kl.target, cfg.kl.horizon));
}

void build_models(RunState& c, const std::optional<stdfs::path>& resume) {
  const auto& cfg = c.cfg;
  const bool learner_role = c.role == dist::Role::kLearner;
  const bool value_head = c.ppo() && cfg.critic.mode == "value_head";
  if (c.role == dist::Role::kReward) {
    // Reward ranks hold no policy (they score texts; learned reward models load their own weights).
  } else if (resume && learner_role) {
    load_checkpoint(c, *resume);
    log::info("resumed from {} (step {})", resume->string(), c.step);
  } else if (!cfg.model.path.empty()) {
    models::LoadOptions lo;
    // A fresh value head unless the checkpoint has one.
    if (value_head) lo.heads = models::HeadOptions{true, true, false};
    c.policy.emplace(models::load_pretrained(cfg.model.path, c.reg.models, lo));
  } else {
    c.policy.emplace(cli::init_config(cfg.model, *c.tok), models::HeadOptions{true, value_head, false});
  }
  // Every rank draws the same adapters from the run's seed (data-parallel ranks also get rank 0's by broadcast).
  if (cfg.model.lora.enabled() && c.policy && !c.policy->has_lora())
    cli::attach_lora(*c.policy, cfg.model.lora, cfg.model.lora.adapter, static_cast<uint64_t>(cfg.run.seed));
  if (c.uses_reference() && !c.reference && learner_role && cfg.model.lora.enabled()) {
    // The reference is the base: the policy's own parameters with the adapters left out.
    c.reference.emplace(c.policy->without_adapters());
  } else if (c.uses_reference() && !c.reference && learner_role) {
    c.reference.emplace(cfg.model.path.empty() || !resume ? c.policy->clone()
                                                          : models::load_pretrained(cfg.model.path, c.reg.models));
  }
  if (c.reference && !cfg.model.lora.enabled()) {  // a LoRA reference shares the policy's (frozen) base
    c.reference->set_requires_grad(false);
    c.reference->train(false);
  }
  if (c.ppo() && !value_head && !c.critic && learner_role) {
    // The separate critic starts as a copy of the initial policy with a fresh value head (verl);
    // with LoRA a full copy of the merged model (the critic is trained whole).
    c.critic.emplace(c.policy->clone());
    c.critic->add_value_head();
  }
  place_models(c);
  if (c.policy) c.policy->set_gradient_checkpointing(cfg.model.activation_checkpointing);
  if (c.critic) c.critic->set_gradient_checkpointing(cfg.model.activation_checkpointing);
}

void place_models(RunState& c) {
  for (auto* m : {&c.policy, &c.reference, &c.critic}) {
    if (!*m) continue;
    (*m)->to(c.device);
    (*m)->set_autocast(c.autocast);
  }
}

void replicate_models(RunState& c) {
  if (!c.comm) return;
  dist::replicate_parameters(*c.comm, c.policy->parameters(), 0, c.cfg.dist.bucket_mb);
  if (c.critic) dist::replicate_parameters(*c.comm, c.critic->parameters(), 0, c.cfg.dist.bucket_mb);
}

void make_optimizers(RunState& c, const std::optional<stdfs::path>& checkpoint) {
  const auto& o = c.cfg.optim;
  // A checkpoint holds the moments whole (optimizer.pt) or as the ranks' shards of a sharded run.
  const auto sharded_in = [&](const std::string& prefix) {
    return checkpoint && !stdfs::exists(*checkpoint / (prefix + ".pt")) && dist::has_moment_shards(*checkpoint, prefix);
  };
  const bool policy_shards = sharded_in("optimizer"), critic_shards = c.critic && sharded_in("critic_optimizer");
  const auto whole_file = [&](const std::string& prefix, bool shards) -> std::optional<stdfs::path> {
    if (!checkpoint || shards) return std::nullopt;
    return *checkpoint / (prefix + ".pt");
  };
  c.optimizer = cli::make_adamw(c.policy->parameters(), o.lr, o, whole_file("optimizer", policy_shards));
  if (c.critic)
    c.critic_optimizer =
        cli::make_adamw(c.critic->parameters(), c.cfg.critic.lr, o, whole_file("critic_optimizer", critic_shards));
  const auto& level = c.cfg.dist.sharding;
  const bool shard = level != "none" && c.comm && c.comm->size() > 1;
  const auto build = [&](std::unique_ptr<torch::optim::AdamW>& opt, const models::Transformer& m, const std::string& prefix,
                         bool from_shards) {
    const auto params = m.parameters();
    if (shard) {
      // ZeRO-1 / 2 / 3: each rank keeps its slice of the (loaded or fresh) whole state and drops the rest.
      const auto& options = static_cast<const torch::optim::AdamWOptions&>(opt->defaults());
      if (level == "optimizer")
        opt = std::make_unique<dist::ShardedAdamW>(*c.comm, params, options, opt.get());
      else
        opt = std::make_unique<dist::ShardedModel>(
            *c.comm, m, level == "full" ? dist::ShardLevel::kFull : dist::ShardLevel::kGradients, options, opt.get());
    }
    if (!from_shards) return;
    // A sharded checkpoint, written by any number of ranks: this rank reads what overlaps its slices
    // (or, unsharded, the whole moments).
    if (auto* shards = dynamic_cast<dist::MomentShards*>(opt.get())) {
      std::vector<int64_t> numels;
      for (const auto& p : params) numels.push_back(p.numel());
      auto segments = shards->moment_segments(false);
      dist::read_moment_segments(*checkpoint, prefix, numels, segments, params.front().device());
      shards->load_moments(segments);
    } else {
      dist::load_whole_moments(*checkpoint, prefix, params, *opt);
    }
  };
  build(c.optimizer, *c.policy, "optimizer", policy_shards);
  if (c.critic_optimizer) build(c.critic_optimizer, *c.critic, "critic_optimizer", critic_shards);
}

void set_update_options(RunState& c) {
  const auto& cfg = c.cfg;
  const auto& o = cfg.optim;
  auto& u = c.update;
  u.epochs = cfg.batch.epochs;
  u.mini_batch_size = cfg.batch.mini_batch_size;
  u.micro_batch_size = cfg.batch.micro_batch_size;
  u.padding_free = cfg.batch.padding_free;
  u.max_tokens_per_micro_batch = cfg.batch.max_tokens_per_micro_batch;
  u.grad_clip = o.grad_clip;
  u.temperature = cfg.rollout.temperature > 0 ? cfg.rollout.temperature : 1.0;
  u.loss = learner::policy_loss_options(cfg.learner, cfg.kl);
  u.lr = learner::LrScheduleOptions{
      o.lr, o.min_lr_ratio, o.warmup_steps,
      c.rl() ? cfg.run.total_steps * cfg.batch.epochs * c.cfg.derived.mini_batches_per_epoch : cfg.run.total_steps,
      o.lr_schedule};
}

}  // namespace keel::loop
