// Environment and task "gridworld": a hand-played episode on a hand-made layout with pinned
// observations, rewards and info; the expert's path; generated layouts are deterministic and
// solvable without crossing a hazard (checked by a separate flood fill), and the expert solves
// them; bad knobs and bad records give errors naming the key or record.
#include <gtest/gtest.h>

#include <cstdio>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/reader.h"
#include "trainer/data/task.h"
#include "tests/trainer/env/env_test_util.h"
#include "trainer/env/environment.h"

namespace keel::env {

void register_gridworld(EnvRegistry& envs, data::TaskRegistry& tasks);

namespace {

using testing::Built;

/// The environment from `env_yaml` (env.params) and the task from `task_yaml` (data.task_params).
Built build(const std::string& env_yaml = "{}", const std::string& task_yaml = "{}") {
  return testing::build(register_gridworld, "gridworld", env_yaml, task_yaml);
}

data::PromptRecord hand_record(const std::string& layout) {
  data::PromptRecord r;
  r.id = "hand/0";
  r.prompt = "unused";
  r.meta["layout"] = layout;
  return r;
}

// 3x3, y up:   y=2  k . G        start 0,0; keys 1,0 and 0,2; goal 2,2; hazard 1,1
//              y=1  . H .
//              y=0  S k .
const char* kLayout = R"({"size": 3, "start": [0, 0], "keys": [[1, 0], [0, 2]], "goal": [2, 2], "hazards": [[1, 1]]})";

void expect_info(const StepResult& s, double success, double completed, double hazard, double invalid) {
  EXPECT_EQ(s.info.size(), 5u);
  EXPECT_EQ(s.info.at("success"), success);
  EXPECT_EQ(s.info.at("subtasks_completed"), completed);
  EXPECT_EQ(s.info.at("subtasks_total"), 2.0);
  EXPECT_EQ(s.info.at("hazard"), hazard);
  EXPECT_EQ(s.info.at("invalid_action"), invalid);
}

TEST(GridworldEnv, HandPlayedEpisode) {
  auto b = build("{subtask_reward: 0.25}");
  ASSERT_TRUE(b.errors.empty()) << b.errors[0];
  auto env = b.env->make();
  EXPECT_EQ(env->reset(hand_record(kLayout), 3), "");
  struct Want {
    const char* action;
    const char* observation;
    double reward;
    bool done;
    double success, completed, hazard, invalid;
  };
  const Want steps[] = {
      {"s", "wall at 0,0 keys 1,0 0,2", 0, false, 0, 0, 0, 0},       // y-1 leaves the grid: stay
      {"e", "key at 1,0 keys 0,2", 0.25, false, 0, 1, 0, 0},         // first key: subtask_reward
      {"n", "hazard at 1,1 keys 0,2", 0, false, 0, 1, 1, 0},         // danger bit, no reward change
      {"jump", "invalid", 0, false, 0, 1, 0, 1},                     // not n/s/e/w
      {"move e", "invalid", 0, false, 0, 1, 0, 1},                   // one syntax only
      {" e\n", "at 2,1 keys 0,2", 0, false, 0, 1, 0, 0},             // surrounding space is fine
      {"n", "need keys at 2,2 keys 0,2", 0, false, 0, 1, 0, 0},      // goal with a key left
      {"n", "wall at 2,2 keys 0,2", 0, false, 0, 1, 0, 0},
      {"w", "at 1,2 keys 0,2", 0, false, 0, 1, 0, 0},
      {"w", "key at 0,2 keys none", 0.25, false, 0, 2, 0, 0},        // second key
      {"e", "at 1,2 keys none", 0, false, 0, 2, 0, 0},
      {"e", "goal", 1, true, 1, 2, 0, 0},                            // goal with every key: done
  };
  double total = 0;
  for (const auto& w : steps) {
    const auto s = env->step(w.action);
    EXPECT_EQ(s.observation, w.observation) << w.action;
    EXPECT_DOUBLE_EQ(s.reward, w.reward) << w.action;
    EXPECT_EQ(s.done, w.done) << w.action;
    expect_info(s, w.success, w.completed, w.hazard, w.invalid);
    total += s.reward;
  }
  EXPECT_DOUBLE_EQ(total, 1.5);
  EXPECT_EQ(env->expert_action(), std::nullopt);
}

TEST(GridworldEnv, HazardEndsOption) {
  auto b = build("{hazard_ends: true}");
  auto env = b.env->make();
  env->reset(hand_record(kLayout), 0);
  auto s = env->step("e");
  EXPECT_DOUBLE_EQ(s.reward, 0.2);  // the default subtask_reward
  s = env->step("n");
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.reward, 0.0);
  expect_info(s, 0, 1, 1, 0);
}

/// Rolls the expert through a fresh environment.
struct Rollout {
  double success = 0;
  int turns = 0;
  int hazards = 0;
  double reward = 0;
  std::string actions;
};
Rollout roll_expert(const EnvFactory& f, const data::PromptRecord& r, int max_turns) {
  const auto run = testing::roll_expert(f, r, max_turns);
  Rollout out;
  out.actions = run.actions;
  for (const auto& s : run.steps) {
    ++out.turns;
    out.hazards += static_cast<int>(s.info.at("hazard"));
    out.reward += s.reward;
    EXPECT_EQ(s.info.at("invalid_action"), 0.0);
    if (s.done) out.success = s.info.at("success");
  }
  return out;
}

TEST(GridworldEnv, ExpertTakesShortestHazardFreePaths) {
  auto b = build();
  // Nearest key 1,0 (one step), then 0,2 around the hazard (w n n: the search tries n s e w, and n
  // from 1,0 is the hazard), then the goal.
  auto out = roll_expert(*b.env, hand_record(kLayout), 20);
  EXPECT_EQ(out.actions, "e\nw\nn\nn\ne\ne");
  EXPECT_EQ(out.success, 1.0);
  EXPECT_EQ(out.hazards, 0);
  EXPECT_DOUBLE_EQ(out.reward, 1.4);
  // A wall of hazards between start and goal: the expert crosses it only because it must.
  out = roll_expert(*b.env, hand_record(R"({"size": 3, "start": [0, 1], "keys": [], "goal": [2, 1],
                                            "hazards": [[1, 0], [1, 1], [1, 2]]})"), 20);
  EXPECT_EQ(out.actions, "e\ne");
  EXPECT_EQ(out.hazards, 1);
  EXPECT_EQ(out.success, 1.0);
  // A hand-written layout starting on its key: off and back on (the key counts on entering).
  out = roll_expert(*b.env, hand_record(R"({"size": 2, "start": [0, 0], "keys": [[0, 0]], "goal": [1, 1],
                                            "hazards": []})"), 20);
  EXPECT_EQ(out.actions, "n\ns\nn\ne");
  EXPECT_EQ(out.success, 1.0);
}

/// Reference solvability check, independent of the environment's search: flood fill from the start
/// over non-hazard cells by repeated sweeps.
bool reference_solvable(const nlohmann::json& l) {
  const int n = l.at("size").get<int>();
  // [x][y]: 0 open, 1 hazard, 2 reached
  std::vector<std::vector<int>> state(static_cast<size_t>(n), std::vector<int>(static_cast<size_t>(n), 0));
  for (const auto& h : l.at("hazards")) state[h[0].get<size_t>()][h[1].get<size_t>()] = 1;
  state[l.at("start")[0].get<size_t>()][l.at("start")[1].get<size_t>()] = 2;
  for (bool changed = true; changed;) {
    changed = false;
    for (int x = 0; x < n; ++x)
      for (int y = 0; y < n; ++y) {
        if (state[x][y] != 0) continue;
        const bool next_to_reached = (x > 0 && state[x - 1][y] == 2) || (x + 1 < n && state[x + 1][y] == 2) ||
                                     (y > 0 && state[x][y - 1] == 2) || (y + 1 < n && state[x][y + 1] == 2);
        if (next_to_reached) state[x][y] = 2, changed = true;
      }
  }
  bool ok = state[l.at("goal")[0].get<size_t>()][l.at("goal")[1].get<size_t>()] == 2;
  for (const auto& k : l.at("keys")) ok &= state[k[0].get<size_t>()][k[1].get<size_t>()] == 2;
  return ok;
}

std::string cell(const nlohmann::json& c) {
  return std::to_string(c[0].get<int>()) + "," + std::to_string(c[1].get<int>());
}

TEST(GridworldTask, LayoutsAreDeterministicDistinctAndSolvable) {
  for (const std::string knobs : {"{}", "{size: 6, keys: 3, hazards: 10}", "{size: 2, keys: 0, hazards: 0}"}) {
    auto b = build("{}", knobs);
    ASSERT_TRUE(b.errors.empty()) << b.errors[0];
    std::set<std::string> train, eval;
    for (uint64_t i = 0; i < 200; ++i) {
      const auto r = b.task->make(11, data::Split::kTrain, i);
      const auto again = b.task->make(11, data::Split::kTrain, i);
      EXPECT_EQ(r.prompt, again.prompt);
      EXPECT_EQ(r.meta, again.meta);
      EXPECT_EQ(r.id, "gridworld/train/" + std::to_string(i));
      const auto l = nlohmann::json::parse(r.meta.at("layout"));
      // start, goal, keys and hazards are distinct cells on the grid.
      std::set<std::string> cells = {cell(l["start"]), cell(l["goal"])};
      for (const auto& k : l["keys"]) cells.insert(cell(k));
      for (const auto& h : l["hazards"]) cells.insert(cell(h));
      EXPECT_EQ(cells.size(), 2 + l["keys"].size() + l["hazards"].size()) << r.prompt;
      for (const auto& c : cells) EXPECT_TRUE(std::regex_match(c, std::regex("[0-9],[0-9]"))) << c;
      EXPECT_TRUE(reference_solvable(l)) << r.prompt;
      // The prompt renders the same layout.
      std::string keys, hazards;
      for (const auto& k : l["keys"]) keys += (keys.empty() ? "" : " ") + cell(k);
      for (const auto& h : l["hazards"]) hazards += (hazards.empty() ? "" : " ") + cell(h);
      const int n = l["size"].get<int>();
      EXPECT_EQ(r.prompt, "grid " + std::to_string(n) + "x" + std::to_string(n) + " at " + cell(l["start"]) + " keys " +
                              (keys.empty() ? "none" : keys) + " goal " + cell(l["goal"]) + " hazards " +
                              (hazards.empty() ? "none" : hazards) + " moves n s e w");
      train.insert(r.prompt);
      eval.insert(b.task->make(11, data::Split::kEval, i).prompt);
    }
    if (knobs == "{size: 2, keys: 0, hazards: 0}") {
      EXPECT_EQ(train.size(), 12u);  // every (start, goal) pair of four cells
    } else {
      EXPECT_GT(train.size(), 190u) << knobs;
      EXPECT_NE(train, eval);
    }
  }
  auto b = build();
  EXPECT_EQ(b.task->make(0, data::Split::kTrain, 0).meta.count("layout"), 1u);
  EXPECT_EQ(b.env->required_meta(), std::vector<std::string>{"layout"});
  EXPECT_EQ(b.env->task(), "gridworld");
  EXPECT_EQ(b.task->verifier(), "env");
  const auto symbols = b.task->tokenizer_symbols();
  EXPECT_EQ(symbols.size(), 13u);
  EXPECT_EQ(symbols[0], "\xE2\x96\x81" "n");  // "▁n": the moves are one piece each
}

TEST(GridworldEnv, ExpertSolvesEveryProblem) {
  for (const std::string knobs : {"{}", "{size: 6, keys: 3, hazards: 10}"}) {
    auto b = build("{}", knobs);
    int turns = 0;
    for (uint64_t i = 0; i < 200; ++i) {
      const auto r = b.task->make(5, data::Split::kTrain, i);
      const auto out = roll_expert(*b.env, r, 100);
      EXPECT_EQ(out.success, 1.0) << r.prompt;
      EXPECT_EQ(out.hazards, 0) << r.prompt;  // a hazard-free path always exists
      EXPECT_EQ(b.task->gold_response(r), out.actions) << r.prompt;
      // A shortest path visits a cell at most once per leg (one leg per key, one to the goal).
      const auto l = nlohmann::json::parse(r.meta.at("layout"));
      const int n = l["size"].get<int>();
      EXPECT_LE(out.turns, static_cast<int>(l["keys"].size() + 1) * (n * n - static_cast<int>(l["hazards"].size()) - 1))
          << r.prompt;
      turns += out.turns;
    }
    std::printf("gridworld %s: expert solved 200/200, %.2f turns on average\n", knobs.c_str(), turns / 200.0);
    if (knobs == "{}") {
      EXPECT_LT(turns, 200 * 10);  // a 4x4 grid with 2 keys: well under 10 moves
    }
  }
}

TEST(GridworldEnv, BadRecordsNameTheRecord) {
  auto b = build();
  auto env = b.env->make();
  auto r = hand_record(kLayout);
  r.meta.clear();
  try {
    env->reset(r, 0);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gridworld: record 'hand/0' has no meta.layout"), std::string::npos)
        << e.what();
  }
  r = hand_record(R"({"size": 3, "start": [0, 0], "keys": [[3, 0]], "goal": [2, 2], "hazards": []})");
  try {
    env->reset(r, 0);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cell 3,0 is off the 3x3 grid"), std::string::npos) << e.what();
  }
  EXPECT_THROW(env->reset(hand_record(R"({"size": 3})"), 0), Error);
  EXPECT_THROW(env->reset(hand_record("[1, 2"), 0), Error);
}

TEST(GridworldParams, BadValuesNameTheKey) {
  const auto has = testing::has_error;
  auto e = build("{subtask_reward: -0.5, hazard_end: true}").errors;
  ASSERT_EQ(e.size(), 2u);
  EXPECT_TRUE(has(e, "env.subtask_reward: must be >= 0")) << e[0];
  EXPECT_TRUE(has(e, "env.hazard_end: unknown key (did you mean 'hazard_ends'?)")) << e[1];
  e = build("{}", "{size: 10}").errors;
  ASSERT_EQ(e.size(), 1u);
  EXPECT_TRUE(has(e, "task.size: must be <= 9")) << e[0];
  e = build("{}", "{size: 3, keys: 2, hazards: 1}").errors;
  ASSERT_EQ(e.size(), 1u);
  EXPECT_TRUE(has(e, "task.hazards: start, goal, keys and hazards may fill at most half of the grid")) << e[0];
  e = build("{}", "{keys: -1}").errors;
  ASSERT_EQ(e.size(), 1u);
  EXPECT_TRUE(has(e, "task.keys: must be >= 0")) << e[0];
}

}  // namespace
}  // namespace keel::env
