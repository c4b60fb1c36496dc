#include "trainer/loop/checkpoint_io.h"

#include <utility>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "base/error.h"
#include "base/fs.h"
#include "base/log.h"
#include "models/lora.h"
#include "models/pretrained.h"
#include "trainer/checkpoint/checkpoint_manager.h"
#include "trainer/checkpoint/reward_state_io.h"
#include "trainer/checkpoint/run_dir.h"
#include "trainer/checkpoint/trainer_state.h"
#include "trainer/cli/train_common.h"
#include "trainer/dist/optimizer_shards.h"
#include "trainer/dist/batch_transport.h"
#include "trainer/dist/string_blob.h"
#include "trainer/learner/numerics_guard.h"
#include "trainer/loop/run_state.h"

namespace keel::loop {

namespace {

namespace stdfs = std::filesystem;

/// This rank's index among the scorers, or -1 when it scores nothing (disaggregated learners;
/// rollout ranks when there are reward ranks).
int scorer_index(const RunState& c) {
  if (!c.placement) return c.rank;
  if (c.role == dist::Role::kReward || (c.role == dist::Role::kRollout && c.placement->rewards == 0)) return c.rank;
  return -1;
}

bool stateful_reward(const RunState& c) { return c.reward && c.reward->stateful(); }

std::string encoded_reward_state(const RunState& c) {
  rewards::RewardState rs;
  c.reward->save_state(rs);
  return checkpoint::encode_reward_state(rs);
}

/// load_reward_state of checkpoint `dir` with trainer state `st`.
void load_reward_state(RunState& c, const stdfs::path& dir, const checkpoint::TrainerState& st) {
  const int index = scorer_index(c);
  if (!stateful_reward(c) || index < 0) return;
  const int saved = st.extras.value("reward_state_scorers", 0);
  if (saved == 0) {
    log::warn("{}: the checkpoint holds no reward state; the stateful reward scheme starts afresh", dir.string());
    return;
  }
  if (saved != scorer_count(c))
    fail("{}: the checkpoint holds the reward states of {} scoring rank(s), this run has {} (the world size or "
         "dist placement changed); a stateful reward scheme's per-rank state cannot be split or merged",
         dir.string(), saved, scorer_count(c));
  const auto file = dir / checkpoint::reward_state_file(index);
  c.reward->load_state(checkpoint::decode_reward_state(fs::read_file(file, "reward state"), file.string()));
}

}  // namespace

int scorer_count(const RunState& c) {
  if (!c.placement) return c.world;
  return c.placement->rewards > 0 ? c.placement->rewards : c.placement->rollouts;
}

bool checkpoint_step(const config::RunConfig& cfg, int64_t s) {
  return (cfg.checkpoint.every > 0 && s % cfg.checkpoint.every == 0) || s == cfg.run.total_steps;
}

void attach_reward_state(const RunState& c, dist::BatchMessage& msg, int64_t s) {
  if (stateful_reward(c) && checkpoint_step(c.cfg, s)) msg.reward_state = encoded_reward_state(c);
}

std::vector<std::string> checkpoint_reward_states(RunState& c) {
  if (!stateful_reward(c)) return {};
  if (c.placement) return std::exchange(c.scorer_states, {});
  const auto mine = encoded_reward_state(c);
  if (!c.comm) return {mine};
  std::vector<std::string> out;
  for (const auto& t : c.comm->all_gather_varsize(dist::bytes_tensor(mine))) out.push_back(dist::tensor_bytes(t));
  return out;
}

void load_reward_state(RunState& c, const stdfs::path& dir) {
  load_reward_state(c, dir, checkpoint::read_trainer_state(dir));
}

namespace {

/// The first parameter of `m` holding a NaN or infinity, or "". One device sync for the whole
/// model; the parameters are walked by name only when some value is not finite.
std::string first_non_finite(models::Transformer& m) {
  torch::NoGradGuard ng;
  const auto named = m.named_parameters();
  std::vector<at::Tensor> finite;
  for (const auto& [name, p] : named) finite.push_back(torch::isfinite(p).all());
  if (finite.empty() || torch::stack(finite).all().item<bool>()) return "";
  for (const auto& [name, p] : named)
    if (!torch::isfinite(p).all().item<bool>()) return name;
  return "";
}

}  // namespace

bool write_optimizer_shards(RunState& c, checkpoint::CheckpointManager& mgr, bool lead,
                            const std::function<void()>& barrier) {
  const auto* policy = dynamic_cast<const dist::MomentShards*>(c.optimizer.get());
  if (policy == nullptr || !c.comm) return false;
  if (lead) mgr.begin(c.step);
  barrier();  // the staging directory exists
  const auto staging = mgr.staging_dir(c.step);
  const auto write = [&](const dist::MomentShards& opt, const models::Transformer& m, const std::string& prefix) {
    std::vector<int64_t> numels;
    for (const auto& p : m.parameters()) numels.push_back(p.numel());
    dist::write_moment_shard(staging, prefix, c.comm->rank(), c.comm->size(), opt.moment_segments(true), numels);
  };
  write(*policy, *c.policy, "optimizer");
  if (const auto* critic = dynamic_cast<const dist::MomentShards*>(c.critic_optimizer.get()))
    write(*critic, *c.critic, "critic_optimizer");
  barrier();  // every rank's files are written
  return true;
}

bool save_checkpoint(RunState& c, checkpoint::CheckpointManager& mgr, const learner::NumericsGuard& guard,
                     const std::vector<std::string>& reward_states, bool optimizer_shards) {
  // Weights that are not finite would make every later rollback (and resume) land on a broken model
  // again: such a checkpoint is not written.
  for (auto* m : {c.policy ? &*c.policy : nullptr, c.critic ? &*c.critic : nullptr})
    if (m)
      if (const auto bad = first_non_finite(*m); !bad.empty()) {
        log::warn("checkpoint of step {} not written: parameter {} holds NaN or infinite values", c.step, bad);
        return false;
      }
  // The ranks' optimizer shards are staged already: the directory is kept.
  const auto staging = optimizer_shards ? mgr.staging_dir(c.step) : mgr.begin(c.step);
  fs::write_file_atomic(staging / checkpoint::kCheckpointConfig, c.resolved_yaml);
  models::SaveOptions so;
  so.tokenizer_dir = c.tokenizer_dir;
  models::save_pretrained(*c.policy, (staging / "policy").string(), so);  // with LoRA: merged
  if (c.policy->has_lora()) {
    // Resume needs the base and the adapter apart (merged weights cannot be split again): the base
    // is model.path, or written here when the run started from random init.
    models::save_adapter(*c.policy, (staging / "policy_adapter").string(), c.cfg.model.path);
    if (c.cfg.model.path.empty())
      models::save_pretrained(c.policy->without_adapters(), (staging / "policy_base").string(), so);
  } else if (c.reference && c.cfg.model.path.empty()) {
    models::save_pretrained(*c.reference, (staging / "reference").string(), so);
  }
  if (c.critic) models::save_pretrained(*c.critic, (staging / "critic").string(), so);
  if (!optimizer_shards) {
    checkpoint::save_optimizer(*c.optimizer, staging / "optimizer.pt");
    if (c.critic_optimizer) checkpoint::save_optimizer(*c.critic_optimizer, staging / "critic_optimizer.pt");
  }
  checkpoint::TrainerState st;
  st.step = c.step;
  st.opt_step = c.opt_step;
  const auto cur = c.data->cursor();
  st.data_cursor = {cur.epoch, cur.position};
  st.skipped_steps = guard.skipped_total();
  st.extras["critic_opt_step"] = c.critic_opt_step;
  if (c.kl_ctl) st.extras["kl_controller"] = c.kl_ctl->state();
  st.extras["estimator_state"] = c.est_state;
  if (stateful_reward(c) && static_cast<int>(reward_states.size()) != scorer_count(c))
    fail("checkpoint of step {}: {} of {} scorer reward states arrived", c.step, reward_states.size(), scorer_count(c));
  st.extras["reward_state_scorers"] = reward_states.size();
  for (size_t i = 0; i < reward_states.size(); ++i)
    fs::write_file_atomic(staging / checkpoint::reward_state_file(static_cast<int>(i)), reward_states[i]);
  checkpoint::write_trainer_state(staging, st);
  const auto final_dir = mgr.commit(staging, c.step);
  log::info("checkpoint: {}", final_dir.string());
  return true;
}

namespace {

void load_checkpoint_files(RunState& c, const stdfs::path& dir) {
  const auto& reg = c.reg.models;
  models::LoadOptions lo;
  if (c.ppo() && c.cfg.critic.mode == "value_head") lo.heads = models::HeadOptions{true, true, false};
  if (c.cfg.model.lora.enabled()) {
    // The frozen base, then the trained adapters (and heads) on top.
    const std::string base = c.cfg.model.path.empty() ? (dir / "policy_base").string() : c.cfg.model.path;
    c.policy.emplace(models::load_pretrained(base, reg, lo));
    cli::attach_lora(*c.policy, c.cfg.model.lora, (dir / "policy_adapter").string(), static_cast<uint64_t>(c.cfg.run.seed));
    // The reference is this model's base (a rollback must not keep the replaced model alive through it).
    if (c.reference) c.reference.emplace(c.policy->without_adapters());
  } else {
    c.policy.emplace(models::load_pretrained((dir / "policy").string(), reg, lo));
  }
  if (stdfs::exists(dir / "reference")) c.reference.emplace(models::load_pretrained((dir / "reference").string(), reg));
  if (stdfs::exists(dir / "critic")) {
    models::LoadOptions co;
    co.heads = models::HeadOptions{true, true, false};
    co.init_missing_heads = false;
    c.critic.emplace(models::load_pretrained((dir / "critic").string(), reg, co));
  }
  const auto st = checkpoint::read_trainer_state(dir, {"estimator_state"});
  c.step = st.step;
  c.opt_step = st.opt_step;
  c.loaded_skipped_steps = st.skipped_steps;
  c.critic_opt_step = st.extras.value("critic_opt_step", int64_t{0});
  c.data->restore({st.data_cursor.epoch, st.data_cursor.position});
  if (c.kl_ctl && st.extras.contains("kl_controller"))
    c.kl_ctl->load_state(st.extras.at("kl_controller").get<std::map<std::string, double>>());
  c.est_state = st.extras.at("estimator_state").get<credit::EstimatorState>();
  load_reward_state(c, dir, st);
}

}  // namespace

void load_checkpoint(RunState& c, const stdfs::path& dir) {
  try {
    load_checkpoint_files(c, dir);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {  // a LibTorch or JSON error deep in a reader: name the checkpoint
    fail("{}: cannot load the checkpoint: {}", dir.string(), e.what());
  }
}

}  // namespace keel::loop
