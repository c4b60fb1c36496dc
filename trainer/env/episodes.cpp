#include "trainer/env/episodes.h"

#include <chrono>
#include <memory>

#include <torch/torch.h>

#include "base/checksum.h"
#include "base/error.h"
#include "models/chat_template.h"
#include "models/decode_session.h"
#include "models/tokenizer.h"
#include "models/transformer.h"
#include "rewards/scorer.h"
#include "trainer/rollout/prompt_format.h"

namespace keel::env {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

/// One splitmix64 output of state x (the tasks' mixer, trainer/data/task.h).
uint64_t mix(uint64_t x) { return data::SplitMix64(x).next(); }

/// The environment's own seed of episode `row` (distinct from the sampler's stream of that row).
uint64_t episode_seed(uint64_t seed, int64_t row) { return mix(mix(seed ^ 0xE1EC7ull) ^ static_cast<uint64_t>(row)); }

/// The record with the environment's first observation added to what the prompt shows.
data::PromptRecord with_first_observation(const data::PromptRecord& r, const std::string& text) {
  if (text.empty()) return r;
  data::PromptRecord out = r;
  if (out.messages.empty()) out.prompt += "\n" + text;
  else out.messages.push_back({"user", text});
  return out;
}

/// What the worker threads share with the stepping loop: held by shared_ptr so that a retired
/// worker (an environment past the deadline) only ever touches its own row's slots, alive.
struct Shared {
  std::vector<std::shared_ptr<Environment>> envs;
  std::vector<const data::PromptRecord*> records;
  std::vector<uint64_t> seeds;
  std::vector<std::string> actions;
  std::vector<std::string> first_obs;
  std::vector<StepResult> results;
};

/// One episode's response side as it grows.
struct Row {
  bool done = false, failed = false;
  std::string ending;
  std::vector<int64_t> ids, mask, turn;
  std::vector<float> lp;
  std::vector<double> turn_rewards;             // [turns played]
  std::vector<int64_t> turn_messages;           // [turns played] message_id of the step's observation
  std::vector<std::vector<double>> turn_info;   // [turns played][K]
  std::vector<double> info;                     // [K] latest values
};

/// Marks failed rows after a pool run and counts why.
void settle_failures(const rewards::ScoreResult& res, const std::vector<size_t>& slots, std::vector<Row>& rows,
                     EpisodeStats& st) {
  for (size_t j = 0; j < slots.size(); ++j) {
    if (res.status[j] == rewards::ScoreStatus::kOk) continue;
    Row& row = rows[slots[j]];
    row.done = row.failed = true;
    row.ending = "env_failed";
    if (res.status[j] == rewards::ScoreStatus::kTimeout) ++st.env_timeouts;
    else ++st.env_errors;
  }
  if (st.first_error.empty() && !res.first_error.empty()) st.first_error = res.first_error;
}

/// The ids of an observation as the chat template shows it.
std::vector<int64_t> observation_ids(const models::Tokenizer& tok, const models::ChatTemplate& chat_template,
                                     const std::string& role, const std::string& text) {
  return tok.encode(chat_template.render_observation(role, text), /*add_special=*/false,
                    /*parse_special=*/true);
}

}  // namespace

int64_t message_id(const std::string& text) {
  const uint64_t h = checksum::xxh64(text.data(), text.size());
  // xor-fold the top 11 bits into the low 53: every id is an exact float64 (and a non-negative int64).
  return static_cast<int64_t>((h ^ (h >> 53)) & ((1ull << 53) - 1));
}

std::vector<std::string> episode_info_keys(const EnvFactory& f) {
  auto keys = f.info_keys();
  if (std::find(keys.begin(), keys.end(), "env_failed") == keys.end()) keys.push_back("env_failed");
  return keys;
}

void EpisodeStats::add_metrics(std::map<std::string, double>& m) const {
  const double eps = std::max<int64_t>(1, episodes);
  m["env/turns_mean"] = static_cast<double>(turns) / eps;
  m["env/timeouts"] = static_cast<double>(env_timeouts);
  m["env/errors"] = static_cast<double>(env_errors);
  m["env/observation_token_share"] =
      static_cast<double>(observation_tokens) / std::max<double>(1.0, static_cast<double>(policy_tokens + observation_tokens));
  // Every ending kind, 0 when none ended so: ranks report the same keys.
  for (const char* k : {"done", "max_turns", "budget", "env_failed"}) {
    const auto it = endings.find(k);
    m[std::string("env/ended/") + k] = it == endings.end() ? 0.0 : static_cast<double>(it->second) / eps;
  }
  for (const auto& [k, v] : info_sums) m["env/per_episode/" + k] = v / eps;
  for (const auto& [k, v] : info_last) m["env/last/" + k] = v / eps;
  m["time/env_s"] = env_s;
  m["time/episode_decode_s"] = decode_s;
  if (decode_s > 0) m["perf/episode_tokens_per_s"] = static_cast<double>(policy_tokens) / decode_s;
  // The model's work per generated token: 1 + observations / policy tokens with the cache reused;
  // more when every turn recomputes the conversation.
  if (policy_tokens > 0) m["perf/episode_forwarded_per_token"] = static_cast<double>(forwarded_tokens) / static_cast<double>(policy_tokens);
}

rollout::RolloutBatch run_episodes(models::Transformer& policy, const models::Tokenizer& tok, const EnvFactory& envs,
                                   rewards::Scorer& pool, const std::vector<data::PromptRecord>& prompts,
                                   const rollout::RolloutOptions& ro, const EpisodeOptions& eo, EpisodeStats* stats) {
  torch::NoGradGuard ng;
  EpisodeStats local;
  EpisodeStats& st = stats ? *stats : local;
  const auto keys = episode_info_keys(envs);
  const auto k_failed = static_cast<size_t>(std::find(keys.begin(), keys.end(), "env_failed") - keys.begin());
  const size_t nk = keys.size();
  const int64_t ctx = policy.config().max_position_embeddings;
  const int64_t pad = tok.pad_id() != models::kNoToken ? tok.pad_id() : 0;
  const int64_t eos = tok.eos_id();

  // ---- rows, environments, resets ----
  auto sh = std::make_shared<Shared>();
  std::vector<int64_t> groups;
  for (size_t p = 0; p < prompts.size(); ++p)
    for (int s = 0; s < ro.samples_per_prompt; ++s) {
      const auto row = static_cast<int64_t>(sh->records.size());
      sh->records.push_back(&prompts[p]);
      sh->seeds.push_back(episode_seed(ro.seed, ro.first_row + row));
      sh->envs.push_back(std::shared_ptr<Environment>(envs.make()));
      groups.push_back(static_cast<int64_t>(p));
    }
  const size_t n = sh->records.size();
  sh->actions.resize(n);
  sh->first_obs.resize(n);
  sh->results.resize(n);
  std::vector<Row> rows(n);
  for (auto& r : rows) r.info.assign(nk, 0.0);
  st.episodes += static_cast<int64_t>(n);
  auto t0 = Clock::now();
  {
    std::vector<size_t> all(n);
    for (size_t i = 0; i < n; ++i) all[i] = i;
    const auto res = pool.run(n, [sh](size_t i) {
      sh->first_obs[i] = sh->envs[i]->reset(*sh->records[i], sh->seeds[i]);
      return 0.0;
    });
    settle_failures(res, all, rows, st);
    // Not one episode could start: a broken environment, not an unlucky one — stop rather than
    // train on nothing but failures.
    if (n > 0 && res.timeouts + res.errors == static_cast<int64_t>(n))
      fail("environment: every one of {} episodes failed at reset ({} timeouts); first error: {}", n, res.timeouts,
           res.first_error.empty() ? "(none: deadline)" : res.first_error);
  }
  st.env_s += since(t0);

  rollout::RolloutBatch b;
  std::vector<std::vector<int64_t>> prompt_ids(n);
  for (size_t i = 0; i < n; ++i) {
    const auto rec = with_first_observation(*sh->records[i], rows[i].failed ? "" : sh->first_obs[i]);
    prompt_ids[i] = rollout::encode_prompt(rec, tok, ro.chat_template, ctx, eo.max_tokens);
    b.prompt_texts.push_back(rollout::render_prompt(rec, ro.chat_template));
    b.records.push_back(sh->records[i]);
  }

  models::SamplingOptions so;
  so.temperature = ro.temperature;
  so.greedy = ro.temperature <= 0;
  so.top_k = ro.top_k;
  so.top_p = ro.top_p;
  so.stop_token_ids = ro.stop_token_ids;
  if (eos != models::kNoToken) so.eos_token_ids = {eos};
  so.pad_token_id = pad;
  so.seed = ro.seed * 1000003ull;

  // ---- the turns, chunk by chunk of batch_size rows ----
  for (size_t c0 = 0; c0 < n; c0 += static_cast<size_t>(ro.batch_size)) {
    const size_t c1 = std::min(n, c0 + static_cast<size_t>(ro.batch_size));
    so.first_row = ro.first_row + static_cast<int64_t>(c0);
    auto td = Clock::now();
    models::DecodeSession session(policy, {prompt_ids.begin() + static_cast<long>(c0), prompt_ids.begin() + static_cast<long>(c1)},
                                  so, eo.reuse_kv);
    st.decode_s += since(td);
    for (int t = 0; t < eo.max_turns; ++t) {
      std::vector<bool> active(c1 - c0);
      bool any = false;
      for (size_t i = c0; i < c1; ++i) {
        active[i - c0] = !rows[i].done;
        any = any || active[i - c0];
      }
      if (!any) break;
      td = Clock::now();
      const auto turn = session.generate_turn(active, ro.max_new_tokens);
      st.decode_s += since(td);
      std::vector<size_t> stepping;
      for (size_t i = c0; i < c1; ++i) {
        if (!active[i - c0]) continue;
        Row& row = rows[i];
        auto toks = turn.tokens[i - c0];
        const auto budget = static_cast<size_t>(std::max<int64_t>(0, eo.max_tokens - static_cast<int64_t>(row.ids.size())));
        const bool cut = toks.size() > budget;
        if (cut) toks.resize(budget);
        for (size_t j = 0; j < toks.size(); ++j) {
          row.ids.push_back(toks[j]);
          row.mask.push_back(1);
          row.turn.push_back(t);
          row.lp.push_back(turn.logprobs[i - c0][j]);
        }
        st.policy_tokens += static_cast<int64_t>(toks.size());
        ++st.turns;
        row.turn_rewards.push_back(0.0);
        row.turn_info.emplace_back(nk, 0.0);
        // INTERPRETATION: a turn the environment never answered (cut by the budget, or the
        // environment failed) showed the empty message.
        row.turn_messages.push_back(message_id(""));
        if (cut) {
          row.done = true;
          row.ending = "budget";
          continue;
        }
        sh->actions[i] = tok.decode(toks, /*skip_special=*/true);
        stepping.push_back(i);
      }
      t0 = Clock::now();
      const auto res = pool.run(stepping.size(), [sh, stepping](size_t j) {
        const size_t i = stepping[j];
        sh->results[i] = sh->envs[i]->step(sh->actions[i]);
        return 0.0;
      });
      st.env_s += since(t0);
      settle_failures(res, stepping, rows, st);
      std::vector<std::vector<int64_t>> obs(c1 - c0);
      for (size_t j = 0; j < stepping.size(); ++j) {
        const size_t i = stepping[j];
        Row& row = rows[i];
        if (row.failed) {
          row.info[k_failed] = 1.0;
          row.turn_info.back()[k_failed] = 1.0;
          continue;
        }
        const StepResult& r = sh->results[i];
        row.turn_rewards.back() = r.reward;
        // INTERPRETATION: ONI's message m_t (NetHack's message line after the action) is the
        // observation text this step returned — the final one too, which the policy never sees.
        row.turn_messages.back() = message_id(r.observation);
        for (size_t k = 0; k < nk; ++k) {
          const auto it = r.info.find(keys[k]);
          if (it != r.info.end()) row.info[k] = it->second;
          row.turn_info.back()[k] = it != r.info.end() ? it->second : 0.0;
        }
        if (r.done) {
          row.done = true;
          row.ending = "done";
        } else if (t + 1 == eo.max_turns) {
          row.done = true;
          row.ending = "max_turns";
        } else {
          auto ids = observation_ids(tok, ro.chat_template, eo.observation_role, r.observation);
          if (static_cast<int64_t>(row.ids.size() + ids.size()) + 1 > eo.max_tokens) {
            row.done = true;
            row.ending = "budget";
            continue;
          }
          for (auto id : ids) {
            row.ids.push_back(id);
            row.mask.push_back(0);
            row.turn.push_back(-1);
            row.lp.push_back(0.0f);
          }
          st.observation_tokens += static_cast<int64_t>(ids.size());
          obs[i - c0] = std::move(ids);
        }
      }
      td = Clock::now();
      session.append(obs);
      st.decode_s += since(td);
    }
    st.forwarded_tokens += session.forwarded_tokens();
  }

  // ---- the batch ----
  size_t width = 1;
  for (const auto& r : rows) width = std::max(width, r.ids.size());
  const int64_t w = static_cast<int64_t>(width), nn = static_cast<int64_t>(n), tt = eo.max_turns;
  const auto nk64 = static_cast<int64_t>(nk);
  b.response_ids = torch::full({nn, w}, pad, torch::kLong);
  b.response_mask = torch::zeros({nn, w}, torch::kLong);
  b.response_attention = torch::zeros({nn, w}, torch::kLong);
  b.turn_ids = torch::full({nn, w}, -1, torch::kLong);
  b.old_logprobs = torch::zeros({nn, w}, torch::kFloat);
  b.env_info = torch::zeros({nn, nk64}, torch::kFloat);
  b.env_turn_info = torch::zeros({nn, tt, nk64}, torch::kFloat);
  b.env_turn_rewards = torch::zeros({nn, tt}, torch::kFloat);
  b.env_turn_message_ids = torch::full({nn, tt}, -1, torch::kLong);
  auto ia = b.response_ids.accessor<int64_t, 2>();
  auto ma = b.response_mask.accessor<int64_t, 2>();
  auto aa = b.response_attention.accessor<int64_t, 2>();
  auto ta = b.turn_ids.accessor<int64_t, 2>();
  auto la = b.old_logprobs.accessor<float, 2>();
  auto ea = b.env_info.accessor<float, 2>();
  auto eta = b.env_turn_info.accessor<float, 3>();
  auto era = b.env_turn_rewards.accessor<float, 2>();
  auto mia = b.env_turn_message_ids.accessor<int64_t, 2>();
  for (int64_t i = 0; i < nn; ++i) {
    Row& r = rows[static_cast<size_t>(i)];
    if (r.failed) r.info[k_failed] = 1.0;
    if (r.ending.empty()) r.ending = "max_turns";
    for (size_t j = 0; j < r.ids.size(); ++j) {
      const auto jj = static_cast<int64_t>(j);
      ia[i][jj] = r.ids[j];
      ma[i][jj] = r.mask[j];
      aa[i][jj] = 1;
      ta[i][jj] = r.turn[j];
      la[i][jj] = r.lp[j];
    }
    for (int64_t k = 0; k < nk64; ++k) ea[i][k] = static_cast<float>(r.info[static_cast<size_t>(k)]);
    for (size_t t = 0; t < r.turn_rewards.size(); ++t) {
      era[i][static_cast<int64_t>(t)] = static_cast<float>(r.turn_rewards[t]);
      mia[i][static_cast<int64_t>(t)] = r.turn_messages[t];
      for (int64_t k = 0; k < nk64; ++k) eta[i][static_cast<int64_t>(t)][k] = static_cast<float>(r.turn_info[t][static_cast<size_t>(k)]);
    }
    ++st.endings[r.ending];
    for (size_t t = 0; t < r.turn_info.size(); ++t)
      for (size_t k = 0; k < nk; ++k) st.info_sums[keys[k]] += r.turn_info[t][k];
    for (size_t k = 0; k < nk; ++k) st.info_last[keys[k]] += r.info[k];
    b.finish_reasons.push_back(r.ending);
    b.response_texts.push_back(tok.decode(r.ids, /*skip_special=*/true));
  }
  auto [pid, pm] = models::left_pad(prompt_ids, pad);
  b.prompt_ids = pid;
  b.prompt_mask = pm;
  b.group_ids = torch::tensor(groups, torch::kLong);
  b.env_keys = keys;
  return b;
}

bool ExpertPlay::success() const {
  if (steps.empty() || !steps.back().done) return false;
  const auto it = steps.back().info.find("success");
  return it != steps.back().info.end() && it->second > 0.5;
}

ExpertPlay play_expert(const EnvFactory& envs, const data::PromptRecord& record, uint64_t seed, int max_turns) {
  auto env = envs.make();
  ExpertPlay p;
  p.first = env->reset(record, seed);
  while (static_cast<int>(p.steps.size()) < max_turns) {
    const auto action = env->expert_action();
    if (!action) {
      p.expert = false;
      break;
    }
    p.actions.push_back(*action);
    p.steps.push_back(env->step(*action));
    if (p.steps.back().done) break;
  }
  return p;
}

std::string expert_transcript(const EnvFactory& envs, const data::PromptRecord& record, uint64_t seed,
                              const models::ChatTemplate& chat_template, const EpisodeOptions& eo) {
  const auto p = play_expert(envs, record, seed, eo.max_turns);
  std::string text = rollout::render_prompt(with_first_observation(record, p.first), chat_template);
  for (size_t t = 0; t < p.actions.size(); ++t) {
    text += " " + p.actions[t];
    if (t + 1 < p.actions.size()) text += chat_template.render_observation(eo.observation_role, p.steps[t].observation);
  }
  return text;
}

ExpertEpisode expert_episode(const models::Tokenizer& tok, const EnvFactory& envs, const data::PromptRecord& record,
                             uint64_t seed, const models::ChatTemplate& chat_template, const EpisodeOptions& eo) {
  const auto p = play_expert(envs, record, seed, eo.max_turns);
  if (!p.expert || p.actions.empty())
    fail("{}: the environment has no expert action (SFT on expert episodes needs one)", record.id);
  ExpertEpisode ep;
  ep.prompt = tok.encode(rollout::render_prompt(with_first_observation(record, p.first), chat_template), /*add_special=*/true);
  ep.success = p.success();
  const int64_t eos = tok.eos_id();
  for (size_t t = 0; t < p.actions.size(); ++t) {
    auto ids = tok.encode(p.actions[t], /*add_special=*/false, /*parse_special=*/false);
    if (eos != models::kNoToken) ids.push_back(eos);
    ep.response.insert(ep.response.end(), ids.begin(), ids.end());
    ep.mask.insert(ep.mask.end(), ids.size(), 1);
    if (t + 1 == p.actions.size()) break;
    const auto obs = observation_ids(tok, chat_template, eo.observation_role, p.steps[t].observation);
    ep.response.insert(ep.response.end(), obs.begin(), obs.end());
    ep.mask.insert(ep.mask.end(), obs.size(), 0);
  }
  if (static_cast<int64_t>(ep.response.size()) > eo.max_tokens)
    fail("{}: the expert episode takes {} response tokens, over env.max_tokens {}", record.id, ep.response.size(),
         eo.max_tokens);
  return ep;
}

}  // namespace keel::env
