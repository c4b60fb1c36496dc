// keel train: the main job. Learners (learner.algorithm): grpo (any critic-free estimator), ppo
// (a critic — value head or separate model — and gae), dpo (offline from preference data or a
// task's synthetic pairs; online from each step's rollouts), sft (task gold responses or SFT
// JSONL). Fixed lifecycle: load + validate config -> run directory -> build components from
// registries -> optional resume -> loop (one learner step; metrics, eval, checkpoint) -> final
// checkpoint. An RL step is: rollout (with DAPO dynamic sampling when on) -> reference -> values
// -> reward (+ overlong shaping) -> credit -> update.
// Several ranks (keel launch / torchrun, dist.placement colocated): each rank samples and scores
// its share of the step's prompts, the batch is all-gathered so that credit is computed on the
// global batch on every rank, and each rank trains on its slice of every global mini-batch with
// gradients all-reduced (trainer/dist/data_parallel.h) — the same steps as one process. Rank 0
// logs, evaluates and checkpoints.
// Disaggregated placement (dist.placement disaggregated; trainer/dist/placement.h): learner ranks
// 0..L-1 (data-parallel among themselves, as colocated), rollout ranks, reward ranks (or none: the
// rollout ranks score). Every rank derives each step's prompts from the seed; rollout ranks generate
// their share, reward ranks score it, and every learner rank receives every share (rollout order,
// so the batch is one process's), trains, and learner 0 broadcasts the weights to the rollout
// ranks in dist.bucket_mb buckets. rollout.max_staleness k > 0 lets rollout run k versions ahead
// (async); staler rows are dropped and counted. See the schedule above rollout_loop().
// SFT and offline DPO run data-parallel too (each rank takes its share of every mini-batch). A
// stateful reward keeps one state per scoring rank; each is checkpointed (reward_state_io.h).
// Not here: reward-model training (keel train-rm); online DPO with several ranks; dynamic sampling
// and remax with disaggregated placement.
#include <chrono>
#include <cmath>
#include <deque>
#include <functional>
#include <iostream>
#include <utility>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/compat.h"
#include "models/generate.h"
#include "models/logprobs.h"
#include "models/model_config.h"
#include "models/pretrained.h"
#include "models/tokenizer.h"
#include "models/tokenizer_sentencepiece.h"
#include "models/transformer.h"
#include "rewards/composite.h"
#include "trainer/checkpoint/checkpoint_manager.h"
#include "trainer/checkpoint/reward_state_io.h"
#include "trainer/checkpoint/run_dir.h"
#include "trainer/cli/catalog.h"
#include "trainer/cli/commands.h"
#include "trainer/cli/system_info.h"
#include "trainer/cli/train_common.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/log.h"
#include "trainer/credit/advantage.h"
#include "trainer/credit/advantage_options.h"
#include "trainer/data/prompt_source.h"
#include "trainer/learner/kl.h"
#include "trainer/credit/group_filter.h"
#include "trainer/dist/batch_gather.h"
#include "trainer/dist/communicator.h"
#include "trainer/dist/batch_transport.h"
#include "trainer/dist/data_parallel.h"
#include "trainer/dist/placement.h"
#include "trainer/dist/rendezvous.h"
#include "trainer/dist/string_blob.h"
#include "trainer/dist/weight_sync.h"
#include "trainer/learner/dpo_loss.h"
#include "trainer/learner/overlong_penalty.h"
#include "trainer/learner/rl_update.h"
#include "trainer/learner/supervised_update.h"
#include "trainer/metrics/metrics.h"
#include "trainer/rollout/prompt_format.h"
#include "trainer/rollout/rollout.h"
#include "trainer/rollout/staleness.h"

namespace keel::cli {

namespace {

namespace stdfs = std::filesystem;
using metrics::Metrics;


/// The tokenizer: model.tokenizer, else the model directory's, else (random init: the embedded
/// default, tests) a small SentencePiece model trained on the training data's own text — the
/// task's problems and gold responses, or the file's prompts and responses — kept in
/// <run dir>/tokenizer/ so that a resumed run uses the same one. Returns it and its directory.
std::pair<std::unique_ptr<models::Tokenizer>, std::string> load_run_tokenizer(const config::ModelSection& m,
                                                                              const data::PromptSource& src,
                                                                              const stdfs::path& run_dir) {
  if (!m.tokenizer.empty()) return {models::load_tokenizer(m.tokenizer), stdfs::path(m.tokenizer).parent_path().string()};
  if (!m.path.empty()) return {models::load_tokenizer(m.path), m.path};
  const auto dir = run_dir / "tokenizer";
  if (!stdfs::exists(dir / "tokenizer.model")) {
    std::vector<std::string> corpus;
    if (src.task()) {
      for (uint64_t i = 0; i < 4000; ++i) {
        const auto r = src.task()->make(/*seed=*/0x70C, data::Split::kTrain, i);
        corpus.push_back(r.prompt + src.task()->gold_response(r));
      }
    } else {
      for (const auto& r : src.train_records()) {
        std::string text = r.prompt;
        for (const auto& msg : r.messages) text += " " + msg.content;
        if (!r.answer.empty()) text += " " + r.answer;
        for (const char* k : {"response", "chosen", "rejected"})
          if (r.meta.count(k)) text += " " + data::meta_string(r, k);
        corpus.push_back(std::move(text));
      }
    }
    train_run_tokenizer(corpus, run_dir);
  }
  const auto model_file = dir / "tokenizer.model";
  return {models::load_tokenizer(model_file.string()), dir.string()};
}

/// The batch's sequences (for the no-grad passes: reference log-probs, critic values).
learner::SequenceBatch sequences(const rollout::RolloutBatch& b) {
  return {b.prompt_ids, b.prompt_mask, b.response_ids, b.response_mask};
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
  std::string algorithm;  ///< learner.algorithm
  std::unique_ptr<models::Tokenizer> tok;
  std::string tokenizer_dir;  ///< copied into checkpoints
  std::optional<models::Transformer> policy;
  std::optional<models::Transformer> reference;
  /// PPO with critic.mode separate: its own model and optimizer (value_head: the policy's head).
  std::optional<models::Transformer> critic;
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::unique_ptr<torch::optim::AdamW> critic_optimizer;
  std::optional<data::PromptSource> data;
  std::unique_ptr<rewards::CompositeReward> reward;
  credit::AdvantageFn estimator;
  credit::AdvantageOptions adv_opts;
  learner::PolicyLossFn loss_fn;
  learner::DpoLossFn dpo_fn;
  learner::DpoOptions dpo_opts;
  learner::RlUpdateOptions update;
  std::optional<learner::KlController> kl_ctl;
  credit::EstimatorState est_state;
  int64_t step = 0;             ///< learner steps completed
  int64_t opt_step = 0;         ///< optimizer steps taken
  int64_t critic_opt_step = 0;  ///< separate critic's optimizer steps
  data::TaskRegistry tasks{"task"};
  // ---- data-parallel ranks (colocated) ----
  std::unique_ptr<dist::Communicator> comm;  ///< null in a single process
  learner::DataParallelHooks dp_hooks;
  int rank = 0;   ///< index among the ranks sharing this rank's work (colocated: world rank)
  int world = 1;  ///< how many share it (colocated: world size; disaggregated: ranks of the role)
  // ---- disaggregated placement (null / unset when colocated) ----
  std::optional<dist::Placement> placement;
  dist::Role role = dist::Role::kLearner;
  int global_rank = 0;
  std::unique_ptr<dist::Communicator> world_comm;  ///< every rank: batches travel point to point
  std::unique_ptr<dist::Communicator> sync_comm;   ///< {learner 0} + rollout ranks: weight broadcast
  dist::WeightSyncBuffers sync_buffers;
  int64_t dropped_stale_total = 0;  ///< rows dropped as too stale since this process started
  /// Learner 0: the last weight broadcast, reported with the next step (whose batch it sampled,
  /// when synchronous).
  std::optional<dist::WeightSyncStats> last_sync;
  /// Learner 0: the scorers' reward states (encoded, by scorer index) that arrived with this
  /// step's batch, for its checkpoint (stateful rewards, checkpoint steps).
  std::vector<std::string> scorer_states;
  // ---- where the models compute (run.device, model.dtype) ----
  at::Device device = at::kCPU;
  std::optional<at::ScalarType> autocast;  ///< CUDA autocast dtype; nullopt = fp32

  bool is(const char* a) const { return algorithm == a; }
  bool ppo() const { return is("ppo"); }
  bool rl() const { return is("grpo") || is("ppo"); }
  /// Learners that sample from the policy each step.
  bool samples() const { return rl() || (is("dpo") && cfg.dpo.online); }
  /// The critic model: the policy (value head) or the separate critic.
  models::Transformer* critic_model() {
    if (!ppo()) return nullptr;
    return critic ? &*critic : &*policy;
  }
};

/// run.device and model.dtype resolved: auto = CUDA (this rank's LOCAL_RANK-th GPU) when usable,
/// else CPU; on CUDA, dtype auto / bfloat16 = bf16 autocast over fp32 parameters (verl, OpenRLHF
/// and TRL train in bf16 mixed precision), float32 = plain fp32. CPU computes in fp32 only.
void resolve_device(Components& c, int local_rank) {
  const auto& cfg = c.cfg;
  c.device = select_device(cfg.run.device, "run.device", local_rank);
  if (c.device.is_cuda()) {
    if (cfg.model.dtype != "float32") c.autocast = at::kBFloat16;
  } else if (cfg.model.dtype == "bfloat16") {
    fail("model.dtype bfloat16 means bf16 autocast on CUDA; on the CPU keel computes in float32 (use auto or float32)");
  }
}

/// Moves every model to c.device and sets its autocast dtype (after a load or a rollback).
void place_models(Components& c) {
  for (auto* m : {&c.policy, &c.reference, &c.critic}) {
    if (!*m) continue;
    (*m)->to(c.device);
    (*m)->set_autocast(c.autocast);
  }
}

/// data.format resolved: auto = sft for the SFT learner, preferences for offline DPO, else prompts.
std::string data_format(const config::RunConfig& cfg) {
  if (cfg.data.format != "auto") return cfg.data.format;
  if (cfg.learner.algorithm == "sft") return "sft";
  if (cfg.learner.algorithm == "dpo" && !cfg.dpo.online) return "preferences";
  return "prompts";
}

/// The optimizers of the policy (and a separate critic), from a checkpoint directory when given.
void make_optimizers(Components& c, const std::optional<stdfs::path>& checkpoint) {
  const auto& o = c.cfg.optim;
  c.optimizer = make_adamw(c.policy->parameters(), o.lr, o,
                               checkpoint ? std::optional(*checkpoint / "optimizer.pt") : std::nullopt);
  if (c.critic)
    c.critic_optimizer = make_adamw(c.critic->parameters(), c.cfg.critic.lr, o,
                                        checkpoint ? std::optional(*checkpoint / "critic_optimizer.pt") : std::nullopt);
}

void save_archive(const torch::optim::Optimizer& opt, const stdfs::path& file) {
  torch::serialize::OutputArchive a;
  opt.save(a);
  a.save_to(file.string());
}

/// How many ranks score rows, each holding its own state of a stateful reward: every rank when
/// colocated (one process: 1); the reward ranks, or the rollout ranks when there are none, when
/// disaggregated. INTERPRETATION: a stateful scheme's statistics are per scorer (each sees its
/// share of the rows), like one reward worker per rank; each scorer's state is checkpointed.
int scorer_count(const Components& c) {
  if (!c.placement) return c.world;
  return c.placement->rewards > 0 ? c.placement->rewards : c.placement->rollouts;
}

/// This rank's index among the scorers, or -1 when it scores nothing (disaggregated learners;
/// rollout ranks when there are reward ranks).
int scorer_index(const Components& c) {
  if (!c.placement) return c.rank;
  if (c.role == dist::Role::kReward || (c.role == dist::Role::kRollout && c.placement->rewards == 0)) return c.rank;
  return -1;
}

bool stateful_reward(const Components& c) { return c.reward && c.reward->stateful(); }

std::string encoded_reward_state(const Components& c) {
  rewards::RewardState rs;
  c.reward->save_state(rs);
  return checkpoint::encode_reward_state(rs);
}

/// Whether learner step `s` ends with a checkpoint.
bool checkpoint_step(const config::RunConfig& cfg, int64_t s) {
  return (cfg.checkpoint.every > 0 && s % cfg.checkpoint.every == 0) || s == cfg.run.total_steps;
}

/// A disaggregated scorer: attaches its reward state to the message carrying its (last) scored
/// rows of step `s` when that step ends with a checkpoint.
void attach_reward_state(const Components& c, dist::BatchMessage& msg, int64_t s) {
  if (stateful_reward(c) && checkpoint_step(c.cfg, s)) msg.reward_state = encoded_reward_state(c);
}

/// Every scorer's reward state (encoded, by scorer index) for the checkpoint rank 0 is about to
/// write; empty for a stateless reward. Colocated ranks all-gather theirs (a collective: every rank
/// calls it); disaggregated learners take what arrived with the step's batch.
std::vector<std::string> checkpoint_reward_states(Components& c) {
  if (!stateful_reward(c)) return {};
  if (c.placement) return std::exchange(c.scorer_states, {});
  const auto mine = encoded_reward_state(c);
  if (!c.comm) return {mine};
  std::vector<std::string> out;
  for (const auto& t : c.comm->all_gather_varsize(dist::bytes_tensor(mine))) out.push_back(dist::tensor_bytes(t));
  return out;
}

/// Restores this rank's scorer state from checkpoint `dir` (trainer state `st`), when it scores
/// with a stateful reward. The scorer count must be the one the checkpoint was written with.
void load_reward_state(Components& c, const stdfs::path& dir, const nlohmann::json& st) {
  const int index = scorer_index(c);
  if (!stateful_reward(c) || index < 0) return;
  const int saved = st.value("reward_state_scorers", 0);
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

void save_checkpoint(Components& c, checkpoint::CheckpointManager& mgr, const learner::NumericsGuard& guard,
                     const std::vector<std::string>& reward_states) {
  const auto staging = mgr.begin(c.step);
  models::SaveOptions so;
  so.tokenizer_dir = c.tokenizer_dir;
  models::save_pretrained(*c.policy, (staging / "policy").string(), so);
  if (c.reference && c.cfg.model.path.empty()) models::save_pretrained(*c.reference, (staging / "reference").string(), so);
  if (c.critic) models::save_pretrained(*c.critic, (staging / "critic").string(), so);
  save_archive(*c.optimizer, staging / "optimizer.pt");
  if (c.critic_optimizer) save_archive(*c.critic_optimizer, staging / "critic_optimizer.pt");
  nlohmann::json st;
  st["step"] = c.step;
  st["opt_step"] = c.opt_step;
  st["critic_opt_step"] = c.critic_opt_step;
  const auto cur = c.data->cursor();
  st["data_cursor"] = {{"epoch", cur.epoch}, {"position", cur.position}};
  if (c.kl_ctl) st["kl_controller"] = c.kl_ctl->state();
  st["estimator_state"] = c.est_state;
  st["skipped_steps"] = guard.skipped_total();
  if (stateful_reward(c) && static_cast<int>(reward_states.size()) != scorer_count(c))
    fail("checkpoint of step {}: {} of {} scorer reward states arrived", c.step, reward_states.size(), scorer_count(c));
  st["reward_state_scorers"] = reward_states.size();
  for (size_t i = 0; i < reward_states.size(); ++i)
    fs::write_file_atomic(staging / checkpoint::reward_state_file(static_cast<int>(i)), reward_states[i]);
  fs::write_file_atomic(staging / "trainer_state.json", st.dump(2) + "\n");
  const auto final_dir = mgr.commit(staging, c.step);
  log::info("checkpoint: {}", final_dir.string());
}

void load_checkpoint(Components& c, const stdfs::path& dir, const models::ModelRegistry& reg) {
  models::LoadOptions lo;
  if (c.ppo() && c.cfg.critic.mode == "value_head") lo.heads = models::HeadOptions{true, true, false};
  c.policy.emplace(models::load_pretrained((dir / "policy").string(), reg, lo));
  if (stdfs::exists(dir / "reference")) c.reference.emplace(models::load_pretrained((dir / "reference").string(), reg));
  if (stdfs::exists(dir / "critic")) {
    models::LoadOptions co;
    co.heads = models::HeadOptions{true, true, false};
    co.init_missing_heads = false;
    c.critic.emplace(models::load_pretrained((dir / "critic").string(), reg, co));
  }
  const auto st = nlohmann::json::parse(fs::read_file(dir / "trainer_state.json", "trainer state"));
  c.step = st.at("step").get<int64_t>();
  c.opt_step = st.at("opt_step").get<int64_t>();
  c.critic_opt_step = st.value("critic_opt_step", int64_t{0});
  c.data->restore({st.at("data_cursor").at("epoch").get<int64_t>(), st.at("data_cursor").at("position").get<int64_t>()});
  if (c.kl_ctl && st.contains("kl_controller")) c.kl_ctl->load_state(st.at("kl_controller").get<std::map<std::string, double>>());
  c.est_state = st.at("estimator_state").get<credit::EstimatorState>();
  load_reward_state(c, dir, st);
}

/// pass@1 (greedy) and pass@k (k samples at the rollout temperature) on the held-out prompts.
/// Evaluation scores with the training reward but must leave no trace in it: a stateful scheme
/// (running statistics, ONI's online models and label caches) is put back, for the rest of the run
/// and its checkpoints, to the state it had before the evaluation.
class RewardStateRestorer {
 public:
  explicit RewardStateRestorer(rewards::CompositeReward* r) : reward_(r && r->stateful() ? r : nullptr) {
    if (!reward_) return;
    reward_->save_state(saved_);
    for (auto& [k, t] : saved_) t = t.clone();  // a scheme may hand out its live tensors
  }
  ~RewardStateRestorer() {
    if (reward_) reward_->load_state(saved_);
  }
  RewardStateRestorer(const RewardStateRestorer&) = delete;
  RewardStateRestorer& operator=(const RewardStateRestorer&) = delete;

 private:
  rewards::CompositeReward* reward_;
  rewards::RewardState saved_;
};

Metrics evaluate(Components& c) {
  if (!c.reward) return {};
  const RewardStateRestorer restore(c.reward.get());
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
  c.policy->train(false);
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
    // pass@1 estimated from the k samples at the rollout temperature (the sampled policy's accuracy).
    m["eval/mean@k"] = (rk > 0.5).to(torch::kFloat).mean().item<double>();
  }
  return m;
}

/// What one learner step reports.
struct StepOut {
  Metrics metrics;
  bool rollback = false;  ///< the numerics guard asked for a rollback
};

/// Prompt token ids of records (chat template applied), leaving room for `reserve` tokens.
std::vector<std::vector<int64_t>> encode_prompts(const Components& c, const std::vector<data::PromptRecord>& records,
                                                 const std::vector<int64_t>& reserve) {
  std::vector<std::vector<int64_t>> out;
  const int64_t ctx = c.policy->config().max_position_embeddings;
  for (size_t i = 0; i < records.size(); ++i)
    out.push_back(rollout::encode_prompt(records[i], *c.tok, c.cfg.model.chat_template, ctx, reserve[i]));
  return out;
}

/// Response token ids of a text + EOS.
std::vector<int64_t> encode_response(const Components& c, const std::string& text) {
  auto ids = c.tok->encode(text, /*add_special=*/false);
  if (c.tok->eos_id() != models::kNoToken) ids.push_back(c.tok->eos_id());
  return ids;
}

learner::SupervisedOptions supervised_options(const Components& c) {
  learner::SupervisedOptions so;
  so.micro_batch_size = c.cfg.batch.micro_batch_size;
  so.grad_clip = c.cfg.optim.grad_clip;
  so.lr = c.update.lr;
  if (c.comm) so.dp = &c.dp_hooks;
  return so;
}

/// The next mini-batch of records — with several ranks, this rank's contiguous share of it (every
/// rank advances the data cursor by the whole mini-batch).
std::vector<data::PromptRecord> next_mini_batch(Components& c) {
  auto records = c.data->next_batch(static_cast<size_t>(c.cfg.batch.mini_batch_size));
  if (c.world == 1) return records;
  const auto per = records.size() / static_cast<size_t>(c.world), first = static_cast<size_t>(c.rank) * per;
  return {records.begin() + static_cast<long>(first), records.begin() + static_cast<long>(first + per)};
}

/// SFT: a mini-batch of (prompt, response + EOS) pairs — the task's gold responses, or the SFT
/// file's responses.
StepOut sft_step(Components& c, learner::NumericsGuard& guard) {
  const auto records = next_mini_batch(c);
  std::vector<std::vector<int64_t>> responses;
  std::vector<int64_t> reserve;
  for (const auto& r : records) {
    responses.push_back(encode_response(c, c.data->task() ? c.data->task()->gold_response(r) : data::meta_string(r, "response")));
    reserve.push_back(static_cast<int64_t>(responses.back().size()));
  }
  const auto batch = learner::collate(encode_prompts(c, records, reserve), responses);
  auto r = learner::sft_update(*c.policy, *c.optimizer, batch, supervised_options(c), guard, c.opt_step);
  return {r.metrics, r.rollback};
}

/// Chosen and rejected sequences of preference records sharing their prompts — the file's pairs,
/// or a task's synthetic ones (gold response vs Task::wrong_response with salt(i) for record i).
std::pair<learner::SequenceBatch, learner::SequenceBatch> encode_pairs(
    const Components& c, const std::vector<data::PromptRecord>& records, const std::function<uint64_t(size_t)>& salt) {
  std::vector<std::vector<int64_t>> chosen, rejected;
  std::vector<int64_t> reserve;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    if (c.data->task()) {
      chosen.push_back(encode_response(c, c.data->task()->gold_response(r)));
      rejected.push_back(encode_response(c, c.data->task()->wrong_response(r, salt(i))));
    } else {
      chosen.push_back(encode_response(c, data::meta_string(r, "chosen")));
      rejected.push_back(encode_response(c, data::meta_string(r, "rejected")));
    }
    reserve.push_back(static_cast<int64_t>(std::max(chosen.back().size(), rejected.back().size())));
  }
  const auto prompts = encode_prompts(c, records, reserve);
  return {learner::collate(prompts, chosen), learner::collate(prompts, rejected)};
}

/// Offline DPO: a mini-batch of preference pairs (encode_pairs).
StepOut dpo_offline_step(Components& c, learner::NumericsGuard& guard) {
  const auto records = next_mini_batch(c);
  const auto step = static_cast<uint64_t>(c.step);
  const auto [chosen, rejected] = encode_pairs(c, records, [step](size_t) { return step; });
  auto r = learner::dpo_update(*c.policy, c.reference ? &*c.reference : nullptr, *c.optimizer, chosen, rejected,
                               c.dpo_fn, c.dpo_opts, supervised_options(c), guard, c.opt_step);
  return {r.metrics, r.rollback};
}

/// Offline DPO: held-out pairs' implicit-reward accuracy, β·(ℓ_c − ℓ_c,ref) > β·(ℓ_r − ℓ_r,ref).
Metrics evaluate_pairs(Components& c) {
  const auto& evalset = c.data->eval_set();
  const size_t n = std::min(evalset.size(), static_cast<size_t>(c.cfg.eval.num_prompts));
  if (n == 0) return {};
  const std::vector<data::PromptRecord> records(evalset.begin(), evalset.begin() + static_cast<long>(n));
  const auto [cb, rb] = encode_pairs(c, records, [](size_t i) { return static_cast<uint64_t>(i); });
  c.policy->train(false);
  const auto seq = [&](models::Transformer& m, const learner::SequenceBatch& b) {
    return learner::sequence_logp(learner::no_grad_logprobs(m, b, c.cfg.batch.micro_batch_size).logprobs,
                                  b.response_mask);
  };
  auto margin = seq(*c.policy, cb) - seq(*c.policy, rb);
  if (c.reference) margin = margin - (seq(*c.reference, cb) - seq(*c.reference, rb));
  Metrics m;
  m["eval/pair_accuracy"] = (margin > 0).to(torch::kFloat).mean().item<double>();
  m["eval/pair_margin"] = c.dpo_opts.beta * margin.mean().item<double>();
  return m;
}

/// Rollout options of training step `step`, generation attempt `attempt` (dynamic sampling).
rollout::RolloutOptions train_rollout_options(const Components& c, int64_t step, int attempt) {
  const auto& cfg = c.cfg;
  rollout::RolloutOptions ro;
  ro.samples_per_prompt = cfg.rollout.samples_per_prompt;
  ro.max_new_tokens = cfg.rollout.max_new_tokens;
  ro.temperature = cfg.rollout.temperature;
  ro.top_k = cfg.rollout.top_k;
  ro.top_p = cfg.rollout.top_p;
  ro.stop_token_ids = cfg.rollout.stop_token_ids;
  ro.batch_size = cfg.rollout.batch_size;
  ro.chat_template = cfg.model.chat_template;
  ro.seed = static_cast<uint64_t>(cfg.run.seed) * 1000003ull + static_cast<uint64_t>(step) +
            static_cast<uint64_t>(attempt) * 0x9E3779B97F4A7C15ull;
  return ro;
}

/// The reward scorer's metrics of several ranks' rows (equal rows per rank) merged: means averaged,
/// min / max over ranks, std pooled (sqrt of the mean of std² + mean² minus the global mean²), scorer
/// counts summed. Every map must have the keys of the first.
Metrics combine_reward_metrics(const std::vector<Metrics>& ranks) {
  TORCH_CHECK(!ranks.empty(), "combine_reward_metrics: no ranks");
  const auto ends = [](const std::string& k, const char* suffix) {
    const std::string s(suffix);
    return k.size() >= s.size() && k.compare(k.size() - s.size(), s.size(), s) == 0;
  };
  const auto at = [](const Metrics& r, const std::string& k) {
    const auto it = r.find(k);
    if (it == r.end()) fail("reward metrics: key {} is missing on some rank", k);
    return it->second;
  };
  Metrics out = ranks.front();
  const double w = static_cast<double>(ranks.size());
  for (auto& [k, v] : out) {
    double sum = 0, mn = INFINITY, mx = -INFINITY, mean_sum = 0, mean_sq = 0;
    const std::string base = k.substr(0, k.rfind('/'));
    const bool has_mean = ranks.front().count(base + "/mean") > 0;
    for (const auto& r : ranks) {
      const double x = at(r, k);
      sum += x;
      mn = std::min(mn, x);
      mx = std::max(mx, x);
      if (has_mean) {
        const double mu = at(r, base + "/mean");
        mean_sum += mu;
        mean_sq += x * x + mu * mu;
      }
    }
    if (ends(k, "/max")) v = mx;
    else if (ends(k, "/min")) v = mn;
    else if (ends(k, "/std") && has_mean) v = std::sqrt(std::max(0.0, mean_sq / w - (mean_sum / w) * (mean_sum / w)));
    else if (k.rfind("scorer/", 0) == 0) v = sum;
    else v = sum / w;
  }
  return out;
}

/// combine_reward_metrics over the ranks of `comm` (colocated placement). The key sets must match
/// across ranks (all_reduce_metrics checks that first).
void reduce_reward_metrics(dist::Communicator& comm, Metrics& m) {
  Metrics check = m;
  dist::all_reduce_metrics(comm, check, dist::ReduceOp::kSum);  // fails clearly on a key mismatch
  std::vector<double> vals;
  for (const auto& [k, v] : m) vals.push_back(v);
  std::vector<Metrics> ranks;
  for (const auto& t : comm.all_gather(torch::tensor(vals, torch::kDouble))) {
    Metrics r;
    int64_t i = 0;
    for (const auto& [k, v] : m) r[k] = t[i++].item<double>();
    ranks.push_back(std::move(r));
  }
  m = combine_reward_metrics(ranks);
}

/// Group ids renumbered 0.. in order of first appearance.
at::Tensor renumber_groups(const at::Tensor& group_ids) {
  auto g = group_ids.clone();
  std::map<int64_t, int64_t> ids;
  auto acc = g.accessor<int64_t, 1>();
  for (int64_t i = 0; i < g.size(0); ++i) {
    const auto it = ids.emplace(acc[i], static_cast<int64_t>(ids.size())).first;
    acc[i] = it->second;
  }
  return g;
}

/// Rollout + reward of prompts_per_step prompts. With DAPO dynamic sampling, groups whose metric
/// is identical across their samples are dropped and more prompts are generated (up to
/// filter.max_gen_batches batches) until prompts_per_step groups survive; if too few do, the
/// batch is topped up with dropped groups (counted in filter/topped_up_groups) so that the batch
/// arithmetic holds. `prompt_store` keeps the records the batch points to alive. score = false
/// (a disaggregated rollout rank with reward ranks): generation only, no rewards.
rollout::RolloutBatch sample_and_score(Components& c, int64_t step, std::deque<std::vector<data::PromptRecord>>& prompt_store,
                                       Metrics& m, bool score = true) {
  const auto& cfg = c.cfg;
  const int64_t want = cfg.batch.prompts_per_step;
  const bool filter = cfg.filter.dynamic_sampling && c.rl();
  std::vector<rollout::RolloutBatch> kept, dropped;
  int64_t kept_groups = 0, gen_batches = 0, filtered = 0;
  double t_rollout = 0, t_reward = 0;
  Metrics reward_metrics;
  for (int attempt = 0; attempt < (filter ? cfg.filter.max_gen_batches : 1) && kept_groups < want; ++attempt) {
    prompt_store.push_back(c.data->next_batch(static_cast<size_t>(want)));
    const auto& all = prompt_store.back();  // (deque: stays valid as more are stored)
    auto ro = train_rollout_options(c, step, attempt);
    if (c.world > 1) {
      // This rank's share of the step's prompts; its rows sample as the same global rows would.
      const int64_t per = want / c.world;
      prompt_store.emplace_back(all.begin() + c.rank * per, all.begin() + (c.rank + 1) * per);
      ro.first_row = c.rank * per * cfg.rollout.samples_per_prompt;
    }
    auto t = std::chrono::steady_clock::now();
    c.policy->train(false);
    auto b = rollout::generate_rollouts(*c.policy, *c.tok, prompt_store.back(), ro);
    b.policy_version = c.step;
    t_rollout += seconds_since(t);
    ++gen_batches;
    if (!score) {
      kept.push_back(std::move(b));
      kept_groups = want;
      break;
    }
    t = std::chrono::steady_clock::now();
    auto rout = c.reward->score(reward_input(b, step));
    b.rewards = rout.rewards.to(torch::kFloat);
    t_reward += seconds_since(t);
    if (attempt == 0) reward_metrics = rout.metrics;
    if (!filter) {
      kept.push_back(std::move(b));
      kept_groups = want;
      break;  // (with several ranks this rank holds want / world of the groups)
    }
    if (c.comm) {
      // Several ranks: every rank filters the attempt's global rows (rank-major = one process's
      // order), so they keep the same groups one process would; each takes its share at the end.
      auto g = dist::all_gather_batch(*c.comm, b, /*pad_id=*/0, /*with_texts=*/true);
      const auto gid = g.group_ids.accessor<int64_t, 1>();
      for (int64_t r = 0; r < g.size(); ++r) g.records.push_back(&all[static_cast<size_t>(gid[r])]);
      b = std::move(g);
    }
    const at::Tensor metric = cfg.filter.metric == "acc" ? (b.rewards > 0.5).to(torch::kFloat) : b.rewards;
    const auto keep_rows = credit::dynamic_sampling_row_mask(metric, b.group_ids);
    const auto keep_idx = keep_rows.nonzero().squeeze(1);
    const auto drop_idx = keep_rows.logical_not().nonzero().squeeze(1);
    const int64_t groups_here = keep_idx.numel() / cfg.rollout.samples_per_prompt;
    filtered += want - groups_here;
    // Take only as many kept groups as still needed.
    const int64_t take = std::min(groups_here, want - kept_groups);
    if (take > 0) kept.push_back(rollout::select_rows(b, keep_idx.slice(0, 0, take * cfg.rollout.samples_per_prompt)));
    kept_groups += take;
    if (drop_idx.numel() > 0) dropped.push_back(rollout::select_rows(b, drop_idx));
  }
  int64_t topped_up = 0;
  if (kept_groups < want) {
    const int64_t need_rows = (want - kept_groups) * cfg.rollout.samples_per_prompt;
    auto pool = rollout::concat(dropped);
    kept.push_back(rollout::select_rows(pool, torch::arange(need_rows)));
    topped_up = want - kept_groups;
    log::warn("dynamic sampling: only {} of {} groups had varied {} after {} generation batches; topped up with {} "
              "uniform group(s)", kept_groups, want, cfg.filter.metric, gen_batches, topped_up);
  }
  auto b = rollout::concat(kept);
  b.group_ids = renumber_groups(b.group_ids);  // 0..want-1 in order of first appearance
  if (filter && c.comm) {  // this rank's share of the kept global groups (rows of a group are contiguous)
    const int64_t rows = want / c.world * cfg.rollout.samples_per_prompt;
    b = rollout::select_rows(b, torch::arange(c.rank * rows, (c.rank + 1) * rows));
    b.group_ids = renumber_groups(b.group_ids);
  }
  if (c.comm) reduce_reward_metrics(*c.comm, reward_metrics);
  for (const auto& [k, v] : reward_metrics) m[k] = v;
  m["time/rollout_s"] = t_rollout;
  if (score) m["time/reward_s"] = t_reward;
  if (filter) {
    m["filter/gen_batches"] = static_cast<double>(gen_batches);
    m["filter/filtered_groups"] = static_cast<double>(filtered);
    m["filter/topped_up_groups"] = static_cast<double>(topped_up);
  }
  return b;
}

/// Online DPO: each prompt's best- and worst-rewarded samples become a pair (prompts whose samples
/// all scored the same give none). The pairs are taken from the rollout's own token ids.
StepOut dpo_online_step(Components& c, learner::NumericsGuard& guard, int64_t step, Metrics m) {
  std::deque<std::vector<data::PromptRecord>> store;
  auto b = sample_and_score(c, step, store, m);
  std::vector<int64_t> best, worst;
  const int64_t groups = b.group_ids.max().item<int64_t>() + 1;
  for (int64_t g = 0; g < groups; ++g) {
    const auto rows = (b.group_ids == g).nonzero().squeeze(1);
    const auto r = b.rewards.index_select(0, rows);
    if ((r.max() - r.min()).item<double>() <= 0) continue;
    best.push_back(rows[r.argmax()].item<int64_t>());
    worst.push_back(rows[r.argmin()].item<int64_t>());
  }
  m["dpo/pairs"] = static_cast<double>(best.size());
  m["reward/mean"] = b.rewards.mean().item<double>();
  m["reward/accuracy"] = (b.rewards > 0.5).to(torch::kFloat).mean().item<double>();
  if (best.empty()) {
    log::warn("online DPO step {}: every prompt's samples scored the same; no pairs, no update", step);
    return {m, false};
  }
  const auto to_seq = [&](const std::vector<int64_t>& rows) {
    const auto sel = rollout::select_rows(b, torch::tensor(rows, torch::kLong));
    learner::SequenceBatch s{sel.prompt_ids, sel.prompt_mask, sel.response_ids, sel.response_mask};
    return s;
  };
  const auto t = std::chrono::steady_clock::now();
  auto r = learner::dpo_update(*c.policy, c.reference ? &*c.reference : nullptr, *c.optimizer, to_seq(best),
                               to_seq(worst), c.dpo_fn, c.dpo_opts, supervised_options(c), guard, c.opt_step);
  m["time/update_s"] = seconds_since(t);
  for (const auto& [k, v] : r.metrics) m[k] = v;
  return {m, r.rollback};
}

/// ReMax's baseline for every row of `b`: the verifier reward of its prompt's greedy response
/// (one greedy generation per group; `b` must hold records).
at::Tensor remax_baseline(Components& c, const rollout::RolloutBatch& b, int64_t step) {
  std::vector<data::PromptRecord> firsts;
  const auto g = b.group_ids.accessor<int64_t, 1>();
  for (int64_t i = 0; i < b.size(); ++i)
    if (g[i] == static_cast<int64_t>(firsts.size())) firsts.push_back(*b.records[static_cast<size_t>(i)]);
  auto ro = train_rollout_options(c, step, 0);
  ro.samples_per_prompt = 1;
  ro.temperature = 0;
  const auto greedy = rollout::generate_rollouts(*c.policy, *c.tok, firsts, ro);
  const auto base = c.reward->score(reward_input(greedy, step)).rewards.to(torch::kFloat);
  return base.index_select(0, b.group_ids);
}

/// The learner's part of an RL step on a scored batch: reference -> values -> (+ overlong) ->
/// credit -> update. global = false: `b` is this rank's rows, all-gathered first when there are
/// several ranks (colocated); true: `b` is already the step's whole batch (disaggregated learners,
/// which receive every row).
StepOut rl_learn(Components& c, learner::NumericsGuard& guard, int64_t step, rollout::RolloutBatch b, Metrics m,
                 bool global) {
  const auto& cfg = c.cfg;
  const auto& u = c.update;

  auto t = std::chrono::steady_clock::now();
  if (c.reference) {
    models::LogprobOptions lo;
    lo.temperature = u.temperature;
    b.ref_logprobs = learner::no_grad_logprobs(*c.reference, sequences(b), cfg.batch.micro_batch_size, lo).logprobs;
  }
  m["time/reference_s"] = seconds_since(t);
  if (auto* critic = c.critic_model()) {
    t = std::chrono::steady_clock::now();
    critic->train(false);
    models::LogprobOptions lo;
    lo.values = true;
    lo.logprobs = false;
    b.values = learner::no_grad_logprobs(*critic, sequences(b), cfg.batch.micro_batch_size, lo).values;
    m["time/values_s"] = seconds_since(t);
  }
  double clip_ratio = 0;
  for (const auto& r : b.finish_reasons) clip_ratio += r == "length";
  clip_ratio /= static_cast<double>(std::max<int64_t>(1, b.size()));
  // ReMax's greedy baselines, of this rank's groups (before the gather: they need the records).
  at::Tensor baseline;
  if (cfg.advantage.estimator == "remax") {
    t = std::chrono::steady_clock::now();
    baseline = remax_baseline(c, b, step);
    m["time/baseline_s"] = seconds_since(t);
  }
  rollout::RolloutBatch local;  // this rank's rows (texts, records); b becomes the global batch
  if (c.comm && !global) {
    t = std::chrono::steady_clock::now();
    local = std::move(b);
    b = dist::all_gather_batch(*c.comm, local);
    Metrics cm{{"response/clip_ratio", clip_ratio}};
    dist::all_reduce_metrics(*c.comm, cm, dist::ReduceOp::kMean);
    clip_ratio = cm["response/clip_ratio"];
    if (baseline.defined()) baseline = torch::cat(c.comm->all_gather_varsize(baseline), 0);
    m["time/gather_s"] = seconds_since(t);
  }

  // Verifier accuracy before any shaping.
  const auto len = b.response_mask.sum(1).to(torch::kFloat);
  m["reward/accuracy"] = (b.rewards > 0.5).to(torch::kFloat).mean().item<double>();
  if (cfg.overlong.enable) {
    learner::OverlongOptions oo;
    oo.max_len = cfg.rollout.max_new_tokens;
    oo.buffer_len = cfg.overlong.buffer_len;
    oo.penalty_factor = cfg.overlong.penalty_factor;
    const auto pen = learner::overlong_penalty(len, oo).to(torch::kFloat);
    b.rewards = b.rewards + pen;
    m["reward/overlong_penalty_mean"] = pen.mean().item<double>();
  }

  // ---- credit ----
  b.token_rewards = place_on_last_token(b.rewards, b.response_mask);
  credit::AdvantageInputs ain;
  ain.token_rewards = b.token_rewards;
  ain.response_mask = b.response_mask;
  ain.group_ids = b.group_ids;
  ain.old_logprobs = b.old_logprobs;
  ain.state = c.est_state;
  if (b.values.defined()) ain.values = b.values;
  if (c.reference) ain.ref_logprobs = b.ref_logprobs;
  if (baseline.defined()) {
    ain.baseline_rewards = baseline;
    // Every group has samples_per_prompt rows, so the row mean is the mean over prompts.
    m["reward/greedy_baseline_mean"] = baseline.mean().item<double>();
  }
  if (cfg.kl.in_reward) {
    const auto kr = learner::apply_kl_in_reward(b.token_rewards, b.old_logprobs, b.ref_logprobs, b.response_mask,
                                                learner::parse_kl_estimator(cfg.kl.estimator), c.kl_ctl->value());
    ain.kl_rewards = kr.token_rewards - b.token_rewards;
    for (const auto& [k, v] : kr.metrics) m[k] = v;
    c.kl_ctl->update(kr.current_kl, b.size());
  }
  // Pairwise estimators compare rows by their sequence rewards. INTERPRETATION: with no learned
  // judge, the reward is the oracle — spo_winrate's P(a > b) is 1 / 0.5 / 0 by reward order, and
  // arena_rank's bidirectional match gives the higher-rewarded row 1 point per direction (ties
  // half each).
  const auto rw = b.rewards.contiguous();
  const float* rp = rw.data_ptr<float>();
  ain.preference = [rp](int64_t a, int64_t bb) { return rp[a] > rp[bb] ? 1.0 : rp[a] < rp[bb] ? 0.0 : 0.5; };
  ain.pair_judge = [rp](int64_t a, int64_t bb) {
    const double p = rp[a] > rp[bb] ? 1.0 : rp[a] < rp[bb] ? 0.0 : 0.5;
    return std::pair<double, double>{2 * p, 2 * (1 - p)};
  };
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
  b.returns = aout.returns.defined() ? aout.returns.to(torch::kFloat) : aout.returns;
  b.loss_mask = aout.loss_mask.defined() ? aout.loss_mask : b.response_mask;
  c.est_state = aout.state;
  for (const auto& [k, v] : aout.metrics) m[k] = v;

  // ---- update ----
  t = std::chrono::steady_clock::now();
  std::optional<learner::CriticUpdate> cu;
  if (c.ppo()) {
    cu.emplace();
    cu->model = c.critic_model();
    cu->optimizer = c.critic_optimizer.get();
    cu->loss.clip = cfg.critic.cliprange_value;
    cu->loss.agg = u.loss.agg;
    cu->vf_coef = cfg.critic.vf_coef;
    cu->lr = u.lr;
    cu->lr.lr = cfg.critic.lr;
    cu->opt_step = &c.critic_opt_step;
  }
  learner::RlUpdateResult upd;
  if (c.comm) {
    // This rank's slice of every global mini-batch; denominators, gradients and the guard's
    // scalars are reduced over the ranks.
    const auto rows = dist::rank_rows(b.size(), cfg.batch.mini_batch_size, c.rank, c.world);
    const auto mine = rollout::select_rows(b, torch::tensor(rows, torch::kLong));
    auto ur = u;
    ur.mini_batch_size = cfg.batch.mini_batch_size / c.world;
    ur.dp = &c.dp_hooks;
    upd = learner::rl_update(*c.policy, *c.optimizer, mine, c.loss_fn, ur, guard, c.opt_step, cu ? &*cu : nullptr);
  } else {
    upd = learner::rl_update(*c.policy, *c.optimizer, b, c.loss_fn, u, guard, c.opt_step, cu ? &*cu : nullptr);
  }
  m["time/update_s"] = seconds_since(t);
  for (const auto& [k, v] : upd.metrics) m[k] = v;
  if (upd.rollback) return {m, true};

  // ---- step metrics ----
  m["reward/mean"] = b.rewards.mean().item<double>();
  m["reward/std"] = b.rewards.std(/*unbiased=*/false).item<double>();
  m["response/length_mean"] = len.mean().item<double>();
  m["response/length_max"] = len.max().item<double>();
  m["response/clip_ratio"] = clip_ratio;
  m["perf/response_tokens"] = len.sum().item<double>();
  if (c.kl_ctl) m["actor/kl_coef"] = c.kl_ctl->value();
  return {m, false};
}

/// One RL step (grpo / ppo): rollout -> reward -> rl_learn.
StepOut rl_step(Components& c, learner::NumericsGuard& guard, int64_t step) {
  Metrics m;
  std::deque<std::vector<data::PromptRecord>> store;  // the records b points to
  auto b = sample_and_score(c, step, store, m);
  return rl_learn(c, guard, step, std::move(b), std::move(m), /*global=*/false);
}

// ---- disaggregated placement -------------------------------------------------------------------
// Step s (1-based) trains on batch s; version v = learner updates done (v0 = the initial or resumed
// weights). A rollout rank generates batch t with the newest version it holds and keeps up to
// max_staleness (+ KEEL_TEST_ROLLOUT_LAG) batches generated ahead; before sending batch s it joins
// the broadcast of version s-1. So with k = 0 every batch is sampled by the weights it is trained
// on (synchronous), with k >= 1 batch s+k is generated with version s-1 while the learner trains on
// batch s, and arrives k versions stale. Every rank runs the same sequence of sends, receives and
// broadcasts per step, so no rank can wait on another that waits on it.

/// KEEL_TEST_EXIT_AT=<world rank>:<step> makes that rank die (exit 3) as the step starts, mid-job
/// for the others (the rank-failure tests).
void maybe_test_exit(int global_rank, int64_t step) {
  if (const char* e = std::getenv("KEEL_TEST_EXIT_AT")) {
    int r = -1;
    long long s_at = -1;
    if (std::sscanf(e, "%d:%lld", &r, &s_at) == 2 && r == global_rank && s_at == step) {
      log::warn("KEEL_TEST_EXIT_AT: rank {} exits at step {}", r, step);
      std::_Exit(3);
    }
  }
}

/// Policy weights from learner 0 to the rollout ranks (member 0 of the sync group is learner 0).
dist::WeightSyncStats sync_weights(Components& c) {
  torch::NoGradGuard no_grad;
  dist::WeightSyncOptions o;
  o.bucket_mb = c.cfg.dist.bucket_mb;
  return dist::broadcast_parameters(*c.sync_comm, c.policy->parameters(), /*src=*/0, o, &c.sync_buffers);
}

/// Metrics of a weight broadcast (learner 0's view).
void weight_sync_metrics(const dist::WeightSyncStats& st, Metrics& m) {
  m["sync/weight_s"] = st.seconds;
  m["sync/weight_gb"] = static_cast<double>(st.bytes) / 1e9;
  m["sync/weight_gbps"] = st.seconds > 0 ? static_cast<double>(st.bytes) / 1e9 / st.seconds : 0.0;
  m["sync/weight_buckets"] = static_cast<double>(st.buckets);
}

/// Sends a scored share of a step to every learner rank.
void send_to_learners(Components& c, const dist::BatchMessage& msg) {
  for (const int l : c.placement->learner_group()) dist::send_batch(*c.world_comm, msg, l);
}

/// A rollout rank: generate (and score, without reward ranks) its share of each step's prompts,
/// send it on, take part in the weight broadcasts. Returns when the last step's share is sent.
void rollout_loop(Components& c) {
  const auto& cfg = c.cfg;
  const auto& pl = *c.placement;
  const int64_t total = cfg.run.total_steps;
  int64_t lag = 0;  // test hook: generate this many more batches ahead than max_staleness allows
  if (const char* e = std::getenv("KEEL_TEST_ROLLOUT_LAG")) lag = std::max(0LL, std::atoll(e));
  if (lag > 0) log::warn("KEEL_TEST_ROLLOUT_LAG: rollout runs {} batch(es) further ahead than max_staleness", lag);
  struct Pending {
    int64_t step;
    std::deque<std::vector<data::PromptRecord>> store;  // the records the batch points to
    dist::BatchMessage msg;
  };
  std::deque<Pending> queue;
  const int64_t first = c.step + 1;
  int64_t next = first, version = c.step;
  double idle = 0;
  const bool score = pl.rewards == 0;
  const auto generate = [&](int64_t t) {
    Pending p;
    p.step = t;
    Metrics m;
    p.msg.batch = sample_and_score(c, t, p.store, m, score);
    p.msg.step = t;
    p.msg.batch.policy_version = version;
    p.msg.batch.row_versions = torch::full({p.msg.batch.size()}, version, torch::kLong);
    if (score) attach_reward_state(c, p.msg, t);  // the state after scoring batch t
    for (const auto& [k, v] : m) (k.rfind("time/", 0) == 0 ? p.msg.role_metrics : p.msg.reward_metrics)[k] = v;
    queue.push_back(std::move(p));
  };
  for (int64_t s = first; s <= total; ++s) {
    maybe_test_exit(c.global_rank, s);
    auto t = std::chrono::steady_clock::now();
    if (s > first) {
      sync_weights(c);  // version s-1
      version = s - 1;
    }
    idle += seconds_since(t);
    while (next <= s) generate(next++);
    Pending p = std::move(queue.front());
    queue.pop_front();
    if (p.step != s) fail("rollout rank {}: queued batch {} where step {} was due", c.global_rank, p.step, s);
    p.msg.role_metrics["async/queue_depth"] = static_cast<double>(queue.size() + 1);
    p.msg.role_metrics["time/idle_rollout_s"] = idle;  // blocked since the previous send (broadcast included)
    t = std::chrono::steady_clock::now();
    if (score) send_to_learners(c, p.msg);
    else dist::send_batch(*c.world_comm, p.msg, pl.source_of_rollout(c.rank));
    idle = seconds_since(t);
    // Generate ahead while the learner trains on batch s (async), up to max_staleness batches.
    while (next <= std::min(total, s + cfg.rollout.max_staleness + lag)) generate(next++);
  }
}

/// A reward rank: score the shares of the rollout ranks it serves (i % reward_ranks == its index),
/// step by step, and send them to every learner rank. Every rank derives the step's prompt list
/// from the seed, so the rows' records are pointed at this rank's own copy.
void reward_loop(Components& c) {
  const auto& cfg = c.cfg;
  const auto& pl = *c.placement;
  const int64_t want = cfg.batch.prompts_per_step, per = want / pl.rollouts;
  double idle = 0;
  for (int64_t s = c.step + 1; s <= cfg.run.total_steps; ++s) {
    maybe_test_exit(c.global_rank, s);
    const auto prompts = c.data->next_batch(static_cast<size_t>(want));
    const auto served = pl.rollouts_of_reward(c.rank);
    for (const int i : served) {
      auto t = std::chrono::steady_clock::now();
      auto msg = dist::recv_batch(*c.world_comm, pl.rollout_rank(i));
      idle += seconds_since(t);
      if (msg.step != s) fail("reward rank {}: rows of step {} from rollout rank {} where step {} was due", c.global_rank,
                              msg.step, pl.rollout_rank(i), s);
      auto& b = msg.batch;
      const auto g = b.group_ids.accessor<int64_t, 1>();
      for (int64_t r = 0; r < b.size(); ++r) b.records.push_back(&prompts[static_cast<size_t>(i * per + g[r])]);
      t = std::chrono::steady_clock::now();
      auto rout = c.reward->score(reward_input(b, s));
      b.rewards = rout.rewards.to(torch::kFloat);
      msg.reward_metrics = rout.metrics;
      msg.role_metrics["time/reward_s"] = seconds_since(t);
      msg.role_metrics["time/idle_reward_s"] = idle;
      b.records.clear();
      if (i == served.back()) attach_reward_state(c, msg, s);  // after its last share of step s
      t = std::chrono::steady_clock::now();
      send_to_learners(c, msg);
      idle = seconds_since(t);
    }
  }
}

/// A learner rank's step: receive every rollout rank's scored share (in rollout order, so the batch
/// has one process's row order), drop rows staler than max_staleness, then rl_learn on the whole
/// batch (each learner rank trains on its slice of every mini-batch, as colocated).
StepOut disaggregated_learner_step(Components& c, learner::NumericsGuard& guard, int64_t step) {
  const auto& cfg = c.cfg;
  const auto& pl = *c.placement;
  Metrics m;
  c.data->next_batch(static_cast<size_t>(cfg.batch.prompts_per_step));  // the cursor checkpoints save
  std::vector<rollout::RolloutBatch> parts;
  std::vector<Metrics> reward_parts;
  Metrics role;
  double idle = 0;
  for (int i = 0; i < pl.rollouts; ++i) {
    const auto t = std::chrono::steady_clock::now();
    auto msg = dist::recv_batch(*c.world_comm, pl.source_of_rollout(i));
    idle += seconds_since(t);
    if (msg.step != step)
      fail("learner rank {}: rows of step {} from rank {} where step {} was due", c.global_rank, msg.step,
           pl.source_of_rollout(i), step);
    if (!msg.reward_state.empty()) {  // from a scorer: its index is the sender's among its role
      c.scorer_states.resize(static_cast<size_t>(scorer_count(c)));
      c.scorer_states[static_cast<size_t>(pl.index_of(pl.source_of_rollout(i)))] = std::move(msg.reward_state);
    }
    parts.push_back(std::move(msg.batch));
    reward_parts.push_back(std::move(msg.reward_metrics));
    for (const auto& [k, v] : msg.role_metrics) role[k] += v / pl.rollouts;  // mean over the rollout shares
  }
  for (const auto& [k, v] : combine_reward_metrics(reward_parts)) m[k] = v;
  for (const auto& [k, v] : role) m[k] = v;
  m["time/idle_learner_s"] = idle;
  if (c.last_sync) weight_sync_metrics(*c.last_sync, m);
  c.last_sync.reset();
  auto b = rollout::concat(parts);
  // Staleness: rows sampled by a policy more than max_staleness updates old are dropped, and the
  // rest cut to whole groups and mini-batches (staleness is uniform within a step's rows here, so
  // in practice a step is kept or dropped whole).
  const auto st = rollout::filter_stale_rows(b.row_versions, c.step, cfg.rollout.max_staleness);
  for (const auto& [k, v] : st.metrics) m[k] = v;
  const int64_t keep = rollout::whole_units(st.keep.numel(), cfg.rollout.samples_per_prompt, cfg.batch.mini_batch_size);
  m["rollout/dropped_uneven"] = static_cast<double>(st.keep.numel() - keep);
  c.dropped_stale_total += b.size() - keep;
  m["rollout/dropped_stale_total"] = static_cast<double>(c.dropped_stale_total);
  m["async/policy_version_min"] = b.row_versions.min().item<double>();
  if (keep == 0) {
    log::warn("step {}: all {} rows were sampled more than rollout.max_staleness {} versions ago; no update", step,
              b.size(), cfg.rollout.max_staleness);
    m["async/skipped_update"] = 1;
    return {m, false};
  }
  if (keep < b.size()) {
    b = rollout::select_rows(b, st.keep.slice(0, 0, keep));
    b.group_ids = renumber_groups(b.group_ids);
  }
  m["async/skipped_update"] = 0;
  // The policy loss's importance ratio is exp(logp_now - b.old_logprobs): old_logprobs are the
  // behaviour log-probs the sampler recorded under the (possibly stale) version that generated the
  // rows — never recomputed here — so the ratio corrects for the staleness.
  return rl_learn(c, guard, step, std::move(b), std::move(m), /*global=*/true);
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
  c.algorithm = cfg.learner.algorithm;
  c.world = lopt.world_size;
  const int world_size = c.world;
  const bool disagg = cfg.dist.placement == "disaggregated";
  if (c.world > 1) {
    if (!c.rl() && !c.is("sft") && !(c.is("dpo") && !cfg.dpo.online))
      fail("{}: world size {}: data-parallel training is implemented for the grpo, ppo, sft and offline dpo "
           "learners; learner {}{} runs as one process", a.config, c.world, c.algorithm,
           c.is("dpo") ? " (online)" : "");
    if (disagg && !c.rl())
      fail("{}: dist.placement disaggregated needs a learner that samples rollouts (grpo, ppo), not {}", a.config,
           c.algorithm);
    if (disagg && cfg.filter.dynamic_sampling)
      fail("{}: filter.dynamic_sampling with dist.placement disaggregated is not implemented (rollout ranks would "
           "need the rewards before the learners); use colocated placement", a.config);
    if (disagg && cfg.advantage.estimator == "remax")
      fail("{}: advantage.estimator remax with dist.placement disaggregated is not implemented (the learners would "
           "generate the greedy baselines); use colocated placement", a.config);
    if (disagg) {
      // (the rank counts against the world size and prompts_per_step % rollout_ranks are checked at load)
      if (cfg.batch.mini_batch_size % cfg.dist.learner_ranks != 0)
        fail("{}: batch.mini_batch_size {} must divide among {} learner ranks", a.config, cfg.batch.mini_batch_size,
             cfg.dist.learner_ranks);
    } else if (c.rl() && (cfg.batch.prompts_per_step % c.world != 0 || cfg.batch.mini_batch_size % c.world != 0)) {
      fail("{}: batch.prompts_per_step {} and batch.mini_batch_size {} must divide among {} ranks", a.config,
           cfg.batch.prompts_per_step, cfg.batch.mini_batch_size, c.world);
    }
  }
  if (c.is("rm")) fail("{}: learner.algorithm rm trains a reward model: run `keel train-rm {}`", a.config, a.config);
  if (!c.rl() && !c.is("dpo") && !c.is("sft"))
    fail("{}: learner.algorithm {} is not implemented by `keel train`", a.config, cfg.learner.algorithm);
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
      c.placement = dist::make_placement(cfg.dist.learner_ranks, cfg.dist.rollout_ranks, cfg.dist.reward_ranks, c.world);
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
  resolve_device(c, world_size > 1 ? dist::read_rendezvous_env(dist::process_env()).local_rank : 0);
  const bool lead = c.global_rank == 0;  // logs, evaluates, writes metrics and checkpoints
  const bool learner_role = c.role == dist::Role::kLearner;
  dist::Communicator* const all = disagg ? c.world_comm.get() : c.comm.get();
  const auto barrier = [&] {  // every rank
    if (all) all->barrier();
  };
  const auto learner_barrier = [&] {  // the ranks that train (all of them when colocated)
    if (c.comm) c.comm->barrier();
  };
  log::init(log::parse_level(a.log_level.empty() ? cfg.run.log_level : a.log_level), c.global_rank, world_size,
            cfg.run.log_all_ranks);
  init_threads(cfg.run.threads);
  torch::manual_seed(cfg.run.seed);
  if (cfg.rollout.max_staleness > 0 && !disagg)
    log::warn("{}: rollout.max_staleness {} has no effect with dist.placement colocated (rollouts are synchronous)",
              a.config, cfg.rollout.max_staleness);

  c.run_dir = stdfs::path(cfg.run.output_dir) / cfg.run.name;
  if (lead) checkpoint::prepare_run_dir(c.run_dir, c.resolved_yaml, argv);
  barrier();
  log::info("{} | device {}{} | learner {} | run dir {}", system_summary(), c.device.str(),
            c.autocast ? " (bf16 autocast)" : "", c.algorithm, c.run_dir.string());

  // ---- components from registries -------------------------------------------------------------
  models::ModelRegistry model_reg("model family");
  models::register_builtin_models(model_reg);
  data::register_builtin_tasks(c.tasks);
  const std::string format = data_format(cfg);
  if (c.samples() && format != "prompts")
    fail("data.format: learner {} samples responses to prompts; it needs prompt data, got format '{}'", c.algorithm, format);
  if (c.is("sft") && format != "sft") fail("data.format: learner sft needs SFT data, got format '{}'", format);
  if (c.is("dpo") && !cfg.dpo.online && format != "preferences")
    fail("data.format: offline DPO needs preference data, got format '{}'", format);
  c.data.emplace(data::PromptSource::from_config(cfg.data, static_cast<uint64_t>(cfg.run.seed), c.tasks, format));
  // Rank 0 trains the run's tokenizer (when one is trained); the others load it.
  if (lead) std::tie(c.tok, c.tokenizer_dir) = load_run_tokenizer(cfg.model, *c.data, c.run_dir);
  barrier();
  if (!lead) std::tie(c.tok, c.tokenizer_dir) = load_run_tokenizer(cfg.model, *c.data, c.run_dir);
  if (c.data->skipped_lines() > 0) log::warn("data: skipped {} malformed line(s)", c.data->skipped_lines());
  if (c.samples() || c.data->task() || !cfg.reward.components.empty()) {
    // Offline learners on files need no reward (their evaluation is on held-out pairs / loss).
    const std::string default_scheme = c.data->task() ? c.data->task()->verifier() : "";
    c.reward = rewards::build_composite_reward(cfg.reward, reward_registry(), default_scheme);
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
    learner::DpoLossRegistry dl("DPO loss");
    learner::register_builtin_dpo_losses(dl);
    c.dpo_fn = dl.get(cfg.dpo.loss).fn;
    c.dpo_opts = learner::dpo_options(cfg.dpo);
  }
  const bool use_ref = (c.rl() && (cfg.kl.in_reward || cfg.kl.in_loss)) || c.is("dpo");
  if (c.rl() && use_ref)
    c.kl_ctl.emplace(learner::KlController::from_config(cfg.kl.controller, cfg.kl.coef, cfg.kl.target, cfg.kl.horizon));

  checkpoint::CheckpointManager mgr(c.run_dir / "checkpoints", cfg.checkpoint.keep_last);
  if (lead)
    if (const int n = mgr.discard_incomplete()) log::warn("removed {} interrupted checkpoint(s)", n);
  barrier();
  const auto resume = mgr.resolve_resume(cfg.run.resume);
  const bool value_head = c.ppo() && cfg.critic.mode == "value_head";
  if (resume && !learner_role)  // scoring ranks restore their reward state (learners in load_checkpoint)
    load_reward_state(c, *resume, nlohmann::json::parse(fs::read_file(*resume / "trainer_state.json", "trainer state")));
  if (c.role == dist::Role::kReward) {
    // Reward ranks hold no policy (they score texts; learned reward models load their own weights).
  } else if (resume && learner_role) {
    load_checkpoint(c, *resume, model_reg);
    log::info("resumed from {} (step {})", resume->string(), c.step);
  } else if (!cfg.model.path.empty()) {
    models::LoadOptions lo;
    if (value_head) lo.heads = models::HeadOptions{true, true, false};  // a fresh value head unless the checkpoint has one
    c.policy.emplace(models::load_pretrained(cfg.model.path, model_reg, lo));
  } else {
    c.policy.emplace(init_config(cfg.model, *c.tok), models::HeadOptions{true, value_head, false});
  }
  if (use_ref && !c.reference && learner_role) {
    c.reference.emplace(cfg.model.path.empty() || !resume ? c.policy->clone()
                                                          : models::load_pretrained(cfg.model.path, model_reg));
  }
  if (c.reference) {
    c.reference->set_requires_grad(false);
    c.reference->train(false);
  }
  if (c.ppo() && !value_head && !c.critic && learner_role) {
    // The separate critic starts as a copy of the initial policy with a fresh value head (verl).
    c.critic.emplace(c.policy->clone());
    c.critic->add_value_head();
  }
  place_models(c);
  if (c.policy) c.policy->set_gradient_checkpointing(cfg.model.activation_checkpointing);
  if (c.critic) c.critic->set_gradient_checkpointing(cfg.model.activation_checkpointing);
  // Every rank starts from rank 0's weights (bit-exact; a seeded init or the same checkpoint
  // already agree — this makes it a guarantee).
  const auto replicate = [&] {
    if (!c.comm) return;
    dist::replicate_parameters(*c.comm, c.policy->parameters(), 0, cfg.dist.bucket_mb);
    if (c.critic) dist::replicate_parameters(*c.comm, c.critic->parameters(), 0, cfg.dist.bucket_mb);
  };
  if (learner_role) replicate();
  if (disagg) {
    // The other roles start at the learners' step and data cursor (a resumed run's included), and
    // the rollout ranks take learner 0's weights by the first broadcast.
    const auto cur = c.data->cursor();
    auto st = torch::tensor({c.step, cur.epoch, cur.position}, torch::kLong);
    c.world_comm->broadcast(st, 0);
    if (!learner_role) {
      c.step = st[0].item<int64_t>();
      c.data->restore({st[1].item<int64_t>(), st[2].item<int64_t>()});
    }
    if (c.sync_comm) {  // learner 0 and the rollout ranks
      const auto ws = sync_weights(c);
      if (lead) c.last_sync = ws;
      log::info("{} rank {} of {}: initial weight sync {:.1f} MB in {:.3f} s", dist::role_name(c.role), c.rank, c.world,
                static_cast<double>(ws.bytes) / 1e6, ws.seconds);
    }
    if (c.role != dist::Role::kLearner) {
      if (c.role == dist::Role::kRollout) rollout_loop(c);
      else reward_loop(c);
      barrier();  // stay until the learners are done (rank 0 hosts the rendezvous store)
      log::info("{} rank {}: done", dist::role_name(c.role), c.rank);
      return 0;
    }
  }
  const auto& o = cfg.optim;
  make_optimizers(c, resume);

  auto& u = c.update;
  u.epochs = cfg.batch.epochs;
  u.mini_batch_size = cfg.batch.mini_batch_size;
  u.micro_batch_size = cfg.batch.micro_batch_size;
  u.grad_clip = o.grad_clip;
  u.temperature = cfg.rollout.temperature > 0 ? cfg.rollout.temperature : 1.0;
  u.loss = learner::policy_loss_options(cfg.learner, cfg.kl);
  u.lr = learner::LrScheduleOptions{
      o.lr, o.min_lr_ratio, o.warmup_steps,
      c.rl() ? cfg.run.total_steps * cfg.batch.epochs * c.cfg.derived.mini_batches_per_epoch : cfg.run.total_steps,
      o.lr_schedule};
  learner::NumericsGuard guard(o.rollback_after);

  std::unique_ptr<metrics::JsonlWriter> jsonl;
  if (cfg.metrics.jsonl && lead) jsonl = std::make_unique<metrics::JsonlWriter>(c.run_dir / "metrics.jsonl", resume ? c.step : -1);
  std::unique_ptr<metrics::TensorBoardWriter> tb;
  if (cfg.metrics.tensorboard && lead) tb = std::make_unique<metrics::TensorBoardWriter>(c.run_dir / "tensorboard");

  // ---- the loop -------------------------------------------------------------------------------
  const auto loop_t0 = std::chrono::steady_clock::now();
  int64_t steps_here = 0;
  while (c.step < cfg.run.total_steps) {
    const int64_t step = c.step + 1;
    maybe_test_exit(c.global_rank, step);
    const auto t0 = std::chrono::steady_clock::now();
    StepOut out;
    if (disagg) out = disaggregated_learner_step(c, guard, step);
    else if (c.rl()) out = rl_step(c, guard, step);
    else if (c.is("sft")) out = sft_step(c, guard);
    else if (cfg.dpo.online) out = dpo_online_step(c, guard, step, {});
    else out = dpo_offline_step(c, guard);
    if (out.rollback) {
      const auto last = mgr.latest();
      if (!last) fail("{} consecutive non-finite steps and no checkpoint to roll back to", o.rollback_after);
      log::warn("{} consecutive non-finite steps: rolling back to {}", o.rollback_after, last->string());
      const auto cursor = c.data->cursor();
      load_checkpoint(c, *last, model_reg);
      place_models(c);
      c.policy->set_gradient_checkpointing(cfg.model.activation_checkpointing);
      if (c.critic) c.critic->set_gradient_checkpointing(cfg.model.activation_checkpointing);
      replicate();
      make_optimizers(c, last);
      guard.after_rollback();
      if (!disagg) continue;  // the steps after the checkpoint run again
      // INTERPRETATION: disaggregated, the rollout and reward ranks are not rewound. The learners
      // take the checkpoint's weights, optimizer and estimator state but keep the step count and
      // data cursor; this step's broadcast hands the restored weights to the rollout ranks, and
      // the batches of the failed steps are consumed, not replayed.
      c.data->restore(cursor);
      out.metrics["actor/rolled_back"] = 1;
    }
    Metrics& m = out.metrics;
    m["time/step_s"] = seconds_since(t0);
    const double tokens = m.count("perf/response_tokens") ? m["perf/response_tokens"] : m.count("sft/tokens") ? m["sft/tokens"] : 0;
    if (tokens > 0) m["perf/tokens_per_s"] = tokens / std::max(1e-9, m["time/step_s"]);
    m["actor/skipped_steps"] = static_cast<double>(guard.skipped_total());
    c.step = step;
    ++steps_here;
    if (lead && cfg.eval.every > 0 && (step % cfg.eval.every == 0 || step == cfg.run.total_steps)) {
      const auto t = std::chrono::steady_clock::now();
      for (const auto& [k, v] : evaluate(c)) m[k] = v;
      if (c.is("dpo") && !cfg.dpo.online)
        for (const auto& [k, v] : evaluate_pairs(c)) m[k] = v;
      m["time/eval_s"] = seconds_since(t);
    }
    if (jsonl) jsonl->write(step, m);
    if (tb) tb->write(step, m);
    if (step % cfg.metrics.console_every == 0 || step == cfg.run.total_steps)
      log::info("{}", metrics::progress_line(step, cfg.run.total_steps, m, seconds_since(loop_t0), steps_here));
    if (checkpoint_step(cfg, step)) {
      const auto reward_states = checkpoint_reward_states(c);  // colocated: a collective
      if (lead) save_checkpoint(c, mgr, guard, reward_states);
      learner_barrier();  // a rollback on any rank must find the checkpoint complete
    }
    // Version `step` to the rollout ranks — after the checkpoint, so that a rollout rank dying here
    // leaves this step saved. Not after the last step (the rollout ranks are done).
    if (disagg && lead && step < cfg.run.total_steps) c.last_sync = sync_weights(c);
  }
  log::info("done: checkpoint {} | metrics {} | plot: scripts/plot_metrics {}",
            mgr.latest() ? (*mgr.latest() / "policy").string() : std::string("(none)"),
            (c.run_dir / "metrics.jsonl").string(), (c.run_dir / "metrics.jsonl").string());
  if (disagg) barrier();  // the other roles wait for this before they exit
  return 0;
}

}  // namespace keel::cli
