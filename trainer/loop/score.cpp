#include "trainer/loop/score.h"

#include <cmath>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "base/error.h"
#include "base/log.h"
#include "trainer/dist/communicator.h"
#include "trainer/dist/data_parallel.h"

namespace keel::loop {

using metrics::Metrics;

void add_episode_inputs(const rollout::RolloutBatch& b, rewards::RewardInput& in) {
  TORCH_CHECK(b.env_info.size(1) == static_cast<int64_t>(b.env_keys.size()), "reward input: env_info has ",
              b.env_info.size(1), " columns for ", b.env_keys.size(), " info keys");
  for (size_t k = 0; k < b.env_keys.size(); ++k) {
    const auto kk = static_cast<int64_t>(k);
    in.extra[b.env_keys[k]] = b.env_info.select(1, kk).contiguous();
    in.extra[b.env_keys[k] + "_turns"] = b.env_turn_info.select(2, kk).contiguous();
  }
  in.extra["env_turn_rewards"] = b.env_turn_rewards;
  in.extra["response_attention"] = b.response_attention;  // the observations too (judges with turns: true)
  in.extra["env_return"] = b.env_turn_rewards.sum(1);
  // ONI's inputs under the names the `oni` scheme reads by default: r_env,t per turn, and the id of
  // each turn's message, which it counts within the episode (one row = one episode).
  in.extra["env_rewards"] = b.env_turn_rewards;
  if (b.env_turn_message_ids.defined()) in.extra["message_ids"] = b.env_turn_message_ids;
  // The turns as steps: each turn's last policy token (−1 for turns not played), so step-wise
  // schemes (and the "env" scheme's dense placement) see the turn boundaries.
  const int64_t n = b.size(), t = b.env_turn_rewards.size(1), r = b.turn_ids.size(1);
  auto ends = torch::full({n, t}, -1, torch::kLong);
  auto ea = ends.accessor<int64_t, 2>();
  const auto ta = b.turn_ids.accessor<int64_t, 2>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < r; ++j)
      if (ta[i][j] >= 0 && ta[i][j] < t) ea[i][ta[i][j]] = j;
  in.step_ends = ends;
  in.step_mask = ends.ge(0);
}

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
  if (b.env_info.defined()) add_episode_inputs(b, in);
  return in;
}

rewards::RewardOutput score(rewards::CompositeReward& reward, const rollout::RolloutBatch& b, int64_t step) {
  return reward.score(reward_input(b, step));
}

void write_scores(rollout::RolloutBatch& b, const rewards::RewardOutput& out) {
  b.rewards = out.rewards.to(torch::kFloat);
  b.correct = out.correct.defined() ? out.correct.to(torch::kFloat) : at::Tensor();
  b.token_rewards = out.token_rewards.defined() ? out.token_rewards.to(torch::kFloat) : at::Tensor();
  b.pair_prefs = out.pair_prefs.defined() ? out.pair_prefs.to(torch::kFloat).cpu() : at::Tensor();
  b.step_scores = b.step_end_mask = at::Tensor();
  if (out.step_scores.defined() && out.step_ends.defined()) {
    // Each step's score on its last token: [N, S] -> [N, R].
    const int64_t n = b.size(), r = b.response_ids.size(1);
    const auto ends = out.step_ends.to(torch::kLong).cpu();
    const auto valid = ends.ge(0).logical_and(ends.lt(r));
    const auto at_ends = torch::where(valid, ends, torch::full_like(ends, r));  // padding -> a spare column
    auto scores = torch::zeros({n, r + 1}, torch::kFloat);
    auto mask = torch::zeros({n, r + 1}, torch::kFloat);
    scores.scatter_(1, at_ends, out.step_scores.to(torch::kFloat).cpu() * valid.to(torch::kFloat));
    mask.scatter_(1, at_ends, valid.to(torch::kFloat));
    b.step_scores = scores.narrow(1, 0, r).contiguous();
    b.step_end_mask = mask.narrow(1, 0, r).contiguous();
  }
}

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

ScoreWatch::ScoreWatch(double warn_error_share, int max_all_error_steps)
    : warn_error_share_(warn_error_share), max_all_error_steps_(max_all_error_steps) {}

void ScoreWatch::log_failures(const rewards::RewardOutput& out) {
  for (const auto& [key, msg] : out.failures) {
    if (!logged_.insert(key).second) continue;
    const auto slash = key.rfind('/');
    const std::string component = key.substr(0, slash), kind = key.substr(slash + 1);
    if (kind == "malformed") {
      log::info("reward component '{}': first malformed text (scored reward.fallback, no verifier call): {}",
                component, msg);
      continue;
    }
    first_error_.try_emplace(component, msg);
    log::warn("reward component '{}': first verifier {} (the sample scored reward.fallback): {}", component, kind, msg);
  }
}

void ScoreWatch::check_step(int64_t step, const metrics::Metrics& reward_metrics) {
  const std::string prefix = "reward/", suffix = "/error_share";
  for (const auto& [key, share] : reward_metrics) {
    if (key.size() <= prefix.size() + suffix.size() || key.rfind(prefix, 0) != 0 ||
        key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string component = key.substr(prefix.size(), key.size() - prefix.size() - suffix.size());
    const auto first = first_error_.find(component);
    const std::string first_error =
        first != first_error_.end() ? first->second : "(not scored in this process: see the scoring ranks' log)";
    int& run = all_error_run_[component];
    run = share >= 1.0 - 1e-9 ? run + 1 : 0;
    if (share > warn_error_share_) {
      // At the first step of a stretch above the threshold, then every 50 steps of it.
      auto& w = warned_[component];
      if (w.last_above != step - 1 || step - w.last_warned >= 50) {
        log::warn("step {}: reward component '{}': the verifier failed on {:.0f}% of its calls (over "
                  "reward.warn_error_share {}); those samples scored reward.fallback; first error: {}",
                  step, component, 100.0 * share, warn_error_share_, first_error);
        w.last_warned = step;
      }
      w.last_above = step;
    }
    if (max_all_error_steps_ > 0 && run >= max_all_error_steps_)
      fail("reward component '{}': the verifier failed on every sample for {} steps in a row (steps {}-{}; "
           "reward.max_all_error_steps {}), so the run learns nothing from it; first error: {}\n"
           "HINT: fix the verifier or the record fields it reads (data.answer_key, the metadata its params name), "
           "or set reward.max_all_error_steps: 0 to train on regardless",
           component, run, step - run + 1, step, max_all_error_steps_, first_error);
  }
}

RewardStateRestorer::RewardStateRestorer(rewards::CompositeReward* r) : reward_(r && r->stateful() ? r : nullptr) {
  if (!reward_) return;
  reward_->save_state(saved_);
  for (auto& [k, t] : saved_) t = t.clone();  // a scheme may hand out its live tensors
}

RewardStateRestorer::~RewardStateRestorer() {
  if (reward_) reward_->load_state(saved_);
}

}  // namespace keel::loop
