#include "trainer/loop/contracts.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <set>

#include "base/error.h"
#include "base/node.h"
#include "base/reader.h"
#include "rewards/composite.h"
#include "rewards/judges/judge.h"
#include "trainer/config/config.h"
#include "trainer/credit/advantage_options.h"
#include "trainer/data/prompt_source.h"
#include "trainer/env/episodes.h"
#include "trainer/loop/registries.h"

namespace keel::loop {

namespace {

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

/// The reward verifiers that report correctness, for messages.
std::string correctness_verifiers() {
  std::vector<std::string> v;
  const auto& reg = registries().rewards;
  for (const auto& n : reg.names())
    if (reg.get(n).traits.judges_correctness) v.push_back(n);
  return join(v);
}

/// The estimator options the run's `advantage:` section gives (bad ones are the loader's to report).
credit::AdvantageOptions estimator_options(const config::RunConfig& cfg) {
  credit::AdvantageOptions o = credit::advantage_options_from(cfg.advantage);
  config::Diagnostics ignored;
  config::Reader r(&cfg.advantage.raw, "advantage", ignored);
  credit::read_advantage_subsections(r, o);
  return o;
}

/// The run's built-in task (bad knobs are the loader's to report), or null for a prompts file.
std::unique_ptr<data::Task> built_in_task(const config::RunConfig& cfg) {
  const auto& tasks = registries().tasks;
  if (!cfg.data.train_file.empty() || !tasks.contains(cfg.data.task)) return nullptr;
  config::Diagnostics ignored;
  config::Reader r(cfg.data.task_params.is_null() ? nullptr : &cfg.data.task_params, "data.task_params", ignored);
  return tasks.get(cfg.data.task).fn(r);
}

/// The run's environment factory (bad params are the loader's to report), or null.
std::unique_ptr<env::EnvFactory> env_factory(const config::RunConfig& cfg) {
  const auto& envs = registries().environments;
  if (cfg.env.name.empty() || !envs.contains(cfg.env.name)) return nullptr;
  config::Diagnostics ignored;
  config::Reader r(cfg.env.params.is_null() ? nullptr : &cfg.env.params, "env.params", ignored);
  return envs.get(cfg.env.name).fn(r);
}

/// The metadata fields every record of `task` carries ("answer" included when it sets one).
std::set<std::string> meta_keys_of(const data::Task& task, int64_t seed) {
  const auto rec = task.make(static_cast<uint64_t>(seed), data::Split::kTrain, 0);
  std::set<std::string> keys;
  for (const auto& [k, v] : rec.meta) keys.insert(k);
  if (!rec.answer.empty()) keys.insert("answer");
  return keys;
}

}  // namespace

bool uses_reference(const config::RunConfig& cfg) {
  const auto& learners = registries().learners;
  const bool estimator = learners.contains(cfg.learner.algorithm) && learners.get(cfg.learner.algorithm).traits.estimator;
  return (estimator && (cfg.kl.in_reward || cfg.kl.in_loss)) || cfg.learner.algorithm == "dpo";
}

std::string producer_of(const std::string& input) {
  if (input == "values") return "a critic: learner.algorithm ppo trains one";
  if (input == "ref_logprobs") return "the frozen reference model, which kl.in_loss or kl.in_reward switches on";
  if (input == "greedy_baselines")
    return "greedy generations of each prompt, which the sampling ranks make with dist.placement colocated";
  if (input == "pair_judge")
    return "a pairwise judge: set judge: reward_order (advantage.arena for arena_rank, advantage.spo for "
           "spo_winrate) to compare rows by their sequence rewards, ties counting as ties, or list a pairwise judge "
           "under reward.judges with output: pair_judge (a judge model)";
  if (input == "hidden_states")
    return "the policy's hidden states, which the credit stage computes for an RL learner's estimator (grpo, ppo)";
  if (input == "stage_rewards")
    return "per-stage scores: a prm judge under reward.judges (its steps are the stages; keel list judges), or an "
           "environment's turns (env.name)";
  if (input == "turn_ids")
    return "the turn boundaries of multi-turn episodes: an environment (env.name; keel list environments)";
  if (input == "correct") return "a verifier that judges correctness, listed earlier in reward.components (" +
                                 correctness_verifiers() + ")";
  if (input == "prior") return "an earlier reward component (prior is the weighted sum of those listed before)";
  if (starts_with(input, "prior."))
    return "a reward component named '" + input.substr(6) + "' listed earlier in reward.components";
  if (input == "rm_scores")
    return "a judge under reward.judges: type reward_model (a score head), or yes_no with output: rm_scores (or "
           "list a reward_model component earlier and read it as prior.<its name>)";
  if (input == "criterion_scores")
    return "per-criterion verdicts of a judge under reward.judges: type yes_no with its criteria (keel list judges)";
  if (input == "step_scores" || input == "step_ends")
    return "per-step scores of a process reward model under reward.judges: type prm (keel list judges)" +
           std::string(input == "step_ends" ? ", or an environment's turn ends (env.name)" : "");
  if (starts_with(input, "meta."))
    return "the prompt records' field '" + input.substr(5) + "': a prompts file (data.train_file) whose records "
           "carry it";
  if (input == "extra.message_ids")
    return "the message ids of an environment's turns (env.name; keel list environments): each turn's observation, "
           "hashed, which ONI counts within the episode";
  if (input == "extra.env_rewards") return "an environment's per-turn rewards (env.name; keel list environments)";
  if (starts_with(input, "extra."))
    return "RewardInput::extra['" + input.substr(6) + "']: a judge under reward.judges with output: " + input +
           " (yes_no, reward_model), or an environment (env.name) that reports it: env_return, env_turn_rewards, "
           "env_failed and each of its info keys (and <key>_turns)";
  return "nothing in keel train yet";
}

std::vector<ContractError> check_contracts(const config::RunConfig& cfg) {
  std::vector<ContractError> out;
  const auto err = [&](std::string key, std::string msg) { out.push_back({std::move(key), std::move(msg)}); };
  const Registries& reg = registries();
  if (!reg.learners.contains(cfg.learner.algorithm)) return out;
  const auto& lt = reg.learners.get(cfg.learner.algorithm).traits;
  const bool samples = lt.samples || (cfg.learner.algorithm == "dpo" && cfg.dpo.online);
  const bool colocated = cfg.dist.placement != "disaggregated" || cfg.derived.world_size == 1;

  // ---- where the learner runs ----
  const int world = cfg.derived.world_size;
  if (world > 1) {
    const bool online_dpo = cfg.learner.algorithm == "dpo" && cfg.dpo.online;
    if (!lt.data_parallel || online_dpo)
      err("learner.algorithm", fmt::format("world size {}: learner {}{} runs as one process (data-parallel training "
                                           "is implemented for grpo, ppo, sft and offline dpo)",
                                           world, cfg.learner.algorithm, online_dpo ? " (online)" : ""));
    if (!colocated && !lt.disaggregated)
      err("dist.placement", fmt::format("dist.placement disaggregated needs a learner that samples rollouts (grpo, "
                                        "ppo), not {}", cfg.learner.algorithm));
    if (!colocated && lt.disaggregated && cfg.filter.dynamic_sampling)
      err("filter.dynamic_sampling", "filter.dynamic_sampling with dist.placement disaggregated is not implemented "
                                     "(rollout ranks would need the rewards before the learners); use colocated "
                                     "placement");
  }

  // ---- what the stages produce under this config ----
  std::set<std::string> produced = {"response_lengths"};
  if (lt.critic) produced.insert("values");
  if (uses_reference(cfg)) produced.insert("ref_logprobs");
  if (samples && (colocated || world == 1)) produced.insert("greedy_baselines");
  // The credit stage computes the policy's effective-rank metrics (from its hidden states) for an
  // estimator that reads them.
  if (lt.estimator) produced.insert("rank_metrics");
  // ... and THR's hidden states with its prediction errors (the policy's no-grad pass).
  if (lt.estimator) produced.insert("hidden_states");

  // A judge that cuts and scores steps (prm) gives SS-GRPO its stages (the credit stage builds them).
  const auto judges = rewards::judge_contracts(cfg.reward);  // built once: their factories read params
  for (const auto& j : judges) {
    const auto& p = j.produces;
    if (std::find(p.begin(), p.end(), "step_scores") != p.end() && std::find(p.begin(), p.end(), "step_ends") != p.end())
      produced.insert("stage_rewards");
    // A pairwise judge with output pair_judge is the estimators' pairwise judge.
    if (std::find(p.begin(), p.end(), "pair_judge") != p.end()) produced.insert("pair_judge");
  }

  // ---- a multi-turn environment: what it needs, what it produces ----
  const auto envf = env_factory(cfg);
  if (envf) {
    if (!samples && cfg.learner.algorithm != "sft")
      err("env.name", fmt::format("an environment plays episodes for a learner that samples (grpo, ppo) or gives "
                                  "sft its expert episodes; learner {} does neither", cfg.learner.algorithm));
    if (cfg.learner.algorithm == "dpo")
      err("env.name", "online DPO on multi-turn episodes is not implemented (its pairs are single-turn)");
    if (!envf->task().empty() && cfg.data.train_file.empty() && cfg.data.task != envf->task())
      err("data.task", fmt::format("environment {} plays the records of task {}; set data.task: {} (got {})",
                                   cfg.env.name, envf->task(), envf->task(), cfg.data.task));
    if (const auto task = built_in_task(cfg)) {
      const auto keys = meta_keys_of(*task, cfg.run.seed);
      for (const auto& k : envf->required_meta())
        if (!keys.count(k))
          err("env.name", fmt::format("environment {} reads the records' field '{}', which task {} does not give",
                                      cfg.env.name, k, cfg.data.task));
    }
    produced.insert("turn_ids");
    produced.insert("step_ends");
    produced.insert("stage_rewards");
    produced.erase("greedy_baselines");  // ReMax's greedy pass is single-turn
    for (const char* k : {"env_return", "env_turn_rewards", "env_failed", "env_rewards", "message_ids"})
      produced.insert(std::string("extra.") + k);
    for (const auto& k : env::episode_info_keys(*envf)) {
      produced.insert("extra." + k);
      produced.insert("extra." + k + "_turns");
    }
  }

  // ---- the estimator against the learner and the producers ----
  if (lt.estimator && reg.estimators.contains(cfg.advantage.estimator)) {
    const std::string& est = cfg.advantage.estimator;
    const auto& et = reg.estimators.get(est).traits;
    if (lt.critic && !et.takes_critic)
      err("advantage", fmt::format("learner.algorithm {} trains a critic; use advantage.estimator gae, got '{}'",
                                   cfg.learner.algorithm, est));
    if (et.needs_critic && !lt.critic)
      err("advantage", fmt::format("advantage.estimator {} needs a critic: set learner.algorithm to ppo (got '{}')", est,
                                   cfg.learner.algorithm));
    if (cfg.kl.in_reward && et.outcome_only) {
      std::vector<std::string> token;
      for (const auto& n : reg.estimators.names())
        if (!reg.estimators.get(n).traits.outcome_only) token.push_back(n);
      err("kl", fmt::format("kl.in_reward: advantage.estimator {} uses the sequence outcome only and would sum the "
                            "per-token KL away; use kl.in_loss, or an estimator with token returns ({})",
                            est, join(token)));
    }
    if (et.grouped && cfg.rollout.samples_per_prompt < 2)
      err("rollout", fmt::format("advantage.estimator {} compares samples of one prompt: rollout.samples_per_prompt "
                                 "must be >= 2, got {}", est, cfg.rollout.samples_per_prompt));
    for (const auto& in : et.inputs_for(estimator_options(cfg)))
      if (!produced.count(in))
        err("advantage.estimator", fmt::format("advantage estimator '{}' needs {}, which nothing in this run "
                                               "produces; it comes from {}", est, in, producer_of(in)));
  }

  // ---- the reward components, in order ----
  if (!samples && cfg.reward.components.empty()) return out;
  // A built-in task's fields are known here; a prompts file's wait for check_data_contracts.
  const auto task = built_in_task(cfg);
  const std::string default_scheme = envf ? "env" : task ? task->verifier() : "";
  std::optional<std::set<std::string>> meta;
  if (task) meta = meta_keys_of(*task, cfg.run.seed);
  else if (cfg.data.train_file.empty()) meta.emplace();  // an unknown task: the loader reports it
  std::vector<std::string> earlier;
  bool correct = false;
  // One requirement of `who` (a judge, or a reward component) against what is produced before it.
  const auto check_input = [&](const Requirement& rq, const std::string& who) {
    const std::string& in = rq.input;
    bool ok;
    std::string why;
    if (in == "prior") {
      ok = !earlier.empty();
    } else if (in == "correct") {
      ok = correct;
    } else if (starts_with(in, "prior.")) {
      ok = std::find(earlier.begin(), earlier.end(), in.substr(6)) != earlier.end();
      if (!ok) why = fmt::format(" (earlier components: {})", earlier.empty() ? "none" : join(earlier));
    } else if (starts_with(in, "meta.")) {
      ok = !meta || meta->count(in.substr(5));
      if (!ok) {
        std::vector<std::string> keys(meta->begin(), meta->end());
        why = fmt::format("; the built-in task '{}' gives {}", cfg.data.task, keys.empty() ? "none" : join(keys));
      }
    } else {
      ok = produced.count(in) > 0;
    }
    if (!ok)
      err(rq.key, fmt::format("{} needs {}, which nothing in this run produces; it comes from {}{}", who, in,
                              producer_of(in), why));
  };
  // The judges run first: their own needs (the records' fields), then what they write.
  for (const auto& j : judges) {
    for (const auto& rq : j.contract) check_input(rq, fmt::format("judge '{}' (type {})", j.name, j.type));
    for (const auto& p : j.produces) produced.insert(p);
  }
  for (const auto& comp : rewards::reward_contracts(cfg.reward, reg.rewards, default_scheme)) {
    for (const auto& rq : comp.contract)
      check_input(rq, fmt::format("reward scheme '{}' (component '{}')", comp.scheme, comp.name));
    earlier.push_back(comp.name);
    correct = correct || comp.judges_correctness;
  }
  if (samples && cfg.filter.dynamic_sampling && cfg.filter.metric == "acc" && !correct)
    err("filter.metric", "filter.metric acc keeps groups whose correctness varies, but no reward component reports "
                         "correctness; it comes from " + producer_of("correct") + " (or use filter.metric reward)");
  return out;
}

void report_contracts(const config::RunConfig& cfg, const config::Node& root, config::Diagnostics& diag) {
  for (const auto& e : check_contracts(cfg)) diag.error(config::source_of(root, e.key), e.key, e.message);
}

void check_data_contracts(const config::RunConfig& cfg, const data::PromptSource& data) {
  if (data.task()) return;  // a task's fields are checked at load
  const Registries& reg = registries();
  // (who, requirement) of every judge and component.
  std::vector<std::pair<std::string, Requirement>> needs;
  for (const auto& j : rewards::judge_contracts(cfg.reward))
    for (const auto& rq : j.contract) needs.push_back({fmt::format("judge '{}' (type {})", j.name, j.type), rq});
  for (const auto& comp : rewards::reward_contracts(cfg.reward, reg.rewards))
    for (const auto& rq : comp.contract)
      needs.push_back({fmt::format("reward scheme '{}' (component '{}')", comp.scheme, comp.name), rq});
  const auto check = [&](const std::vector<data::PromptRecord>& records) {
    for (const auto& [who, rq] : needs) {
      if (!starts_with(rq.input, "meta.")) continue;
      const std::string key = rq.input.substr(5);
      for (const auto& rec : records)
        if (!rec.meta.count(key) && !(key == "answer" && !rec.answer.empty()))
          fail("{}: the record has no field '{}', which {} ({}) needs in every record", rec.id, key, who, rq.key);
    }
  };
  check(data.train_records());
  check(data.eval_set());
  if (const auto envf = env_factory(cfg))
    for (const auto* records : {&data.train_records(), &data.eval_set()})
      for (const auto& k : envf->required_meta())
        for (const auto& rec : *records)
          if (!rec.meta.count(k) && !(k == "answer" && !rec.answer.empty()))
            fail("{}: the record has no field '{}', which environment {} (env.name) reads in every record", rec.id, k,
                 cfg.env.name);
}

}  // namespace keel::loop
