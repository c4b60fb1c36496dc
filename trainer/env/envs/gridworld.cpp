// Environment and task "gridworld": collect the keys (subtasks, any order), then reach the goal, on
// a small grid with hazard cells (RetroAgent-style subtask progress, EPO-Safe-style danger bits).
// Cells are "x,y" with 0,0 in a corner; the actions are one letter each:
//   n (y+1), s (y-1), e (x+1), w (x-1)
// and every observation is one line, "[event ]at X,Y keys <remaining keys | none>", the event being
//   key       a new key picked up: reward subtask_reward
//   wall      the move would leave the grid: the agent stays
//   hazard    the move left the agent on a hazard cell: info hazard = 1 (a cost the reward stage
//             reads, not a death; with hazard_ends the episode ends there, success 0)
//   need keys on the goal with keys left (not done)
// Reaching the goal with every key ends the episode: reward 1, success 1. Any other text is
// "invalid" (info invalid_action = 1). The layout is in the record's meta, so records written to a
// file replay without the task. The expert walks a shortest path (BFS) to the nearest remaining key,
// then to the goal, through hazard-free cells whenever such a path exists.
// Deliberately not here: interior walls, partial observability (the prompt shows the whole grid)
// and the cost channel's weighting (the reward stage's).
#include <algorithm>
#include <array>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/reader.h"
#include "trainer/data/task.h"
#include "trainer/env/environment.h"

namespace keel::env {

namespace {

struct Cell {
  int x = 0;
  int y = 0;
  bool operator==(const Cell&) const = default;
};

/// One problem: a size x size grid, where the agent starts, the keys, the goal and the hazards.
struct Layout {
  int size = 0;
  Cell start;
  std::vector<Cell> keys;
  Cell goal;
  std::vector<Cell> hazards;
};

struct Move {
  char name;
  int dx, dy;
};
// The actions, in the order the expert's search tries them (its tie-break).
constexpr std::array<Move, 4> kMoves = {{{'n', 0, 1}, {'s', 0, -1}, {'e', 1, 0}, {'w', -1, 0}}};

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string cell_text(Cell c) { return std::to_string(c.x) + "," + std::to_string(c.y); }

/// "1,2 3,1", or "none" when `cells` is empty.
std::string cells_text(const std::vector<Cell>& cells) {
  std::string s;
  for (const Cell& c : cells) s += (s.empty() ? "" : " ") + cell_text(c);
  return s.empty() ? "none" : s;
}

bool inside(const Layout& l, Cell c) { return c.x >= 0 && c.y >= 0 && c.x < l.size && c.y < l.size; }
bool is_hazard(const Layout& l, Cell c) { return std::find(l.hazards.begin(), l.hazards.end(), c) != l.hazards.end(); }

nlohmann::json layout_json(const Layout& l) {
  auto cell = [](Cell c) { return nlohmann::json::array({c.x, c.y}); };
  nlohmann::json keys = nlohmann::json::array(), hazards = nlohmann::json::array();
  for (Cell c : l.keys) keys.push_back(cell(c));
  for (Cell c : l.hazards) hazards.push_back(cell(c));
  return {{"size", l.size}, {"start", cell(l.start)}, {"keys", keys}, {"goal", cell(l.goal)}, {"hazards", hazards}};
}

/// The layout of a record (meta.layout as the task writes it); throws keel::Error naming the
/// record when it is missing, malformed or has a cell off the grid.
Layout parse_layout(const data::PromptRecord& r) {
  auto it = r.meta.find("layout");
  if (it == r.meta.end()) fail("gridworld: record '{}' has no meta.layout", r.id);
  Layout l;
  try {
    const auto j = nlohmann::json::parse(it->second);
    auto cell = [](const nlohmann::json& c) { return Cell{c.at(0).get<int>(), c.at(1).get<int>()}; };
    l.size = j.at("size").get<int>();
    l.start = cell(j.at("start"));
    l.goal = cell(j.at("goal"));
    for (const auto& c : j.at("keys")) l.keys.push_back(cell(c));
    for (const auto& c : j.at("hazards")) l.hazards.push_back(cell(c));
  } catch (const nlohmann::json::exception& e) {
    fail("gridworld: record '{}': meta.layout malformed ({}); expected {{\"size\": 4, \"start\": [0, 0], \"keys\": "
         "[[1, 2]], \"goal\": [3, 3], \"hazards\": [[2, 2]]}}",
         r.id, e.what());
  }
  if (l.size < 1 || l.size > 100)
    fail("gridworld: record '{}': meta.layout size must be in [1, 100], got {}", r.id, l.size);
  std::vector<Cell> all = {l.start, l.goal};
  all.insert(all.end(), l.keys.begin(), l.keys.end());
  all.insert(all.end(), l.hazards.begin(), l.hazards.end());
  for (Cell c : all)
    if (!inside(l, c))
      fail("gridworld: record '{}': meta.layout cell {} is off the {}x{} grid", r.id, cell_text(c), l.size, l.size);
  return l;
}

/// Breadth-first search from `from` over the grid (through hazard cells only when
/// `through_hazards`; `from` itself may be one). For each cell: its distance (-1 unreachable)
/// and the move that first reached it.
struct Search {
  std::vector<int> dist;
  std::vector<int> move;  // index into kMoves
};

Search search(const Layout& l, Cell from, bool through_hazards) {
  const auto idx = [&](Cell c) { return static_cast<size_t>(c.y * l.size + c.x); };
  const auto cells = static_cast<size_t>(l.size * l.size);
  Search s{std::vector<int>(cells, -1), std::vector<int>(cells, -1)};
  std::deque<Cell> queue = {from};
  s.dist[idx(from)] = 0;
  while (!queue.empty()) {
    const Cell c = queue.front();
    queue.pop_front();
    for (size_t m = 0; m < kMoves.size(); ++m) {
      const Cell n{c.x + kMoves[m].dx, c.y + kMoves[m].dy};
      if (!inside(l, n) || s.dist[idx(n)] >= 0 || (!through_hazards && is_hazard(l, n))) continue;
      s.dist[idx(n)] = s.dist[idx(c)] + 1;
      s.move[idx(n)] = static_cast<int>(m);
      queue.push_back(n);
    }
  }
  return s;
}

/// The expert's move from `at`: the first step of a shortest path to the nearest key not yet in
/// `got` (ties by key order), or to the goal once every key is held; hazard-free paths first.
/// nullopt only on a 1x1 grid (a grid without walls reaches every cell).
std::optional<std::string> expert_move(const Layout& l, Cell at, const std::vector<bool>& got) {
  const auto idx = [&](Cell c) { return static_cast<size_t>(c.y * l.size + c.x); };
  for (bool through_hazards : {false, true}) {
    const Search s = search(l, at, through_hazards);
    std::optional<Cell> target;
    for (size_t k = 0; k < l.keys.size(); ++k) {
      const int d = s.dist[idx(l.keys[k])];
      if (!got[k] && d >= 0 && (!target || d < s.dist[idx(*target)])) target = l.keys[k];
    }
    const bool keys_left = std::find(got.begin(), got.end(), false) != got.end();
    if (!keys_left && s.dist[idx(l.goal)] >= 0) target = l.goal;
    if (!target) continue;
    if (*target == at) {  // a hand-written layout that starts on a key or the goal: step off, come back
      for (const Move& m : kMoves)
        if (inside(l, Cell{at.x + m.dx, at.y + m.dy})) return std::string(1, m.name);
      return std::nullopt;  // a 1x1 grid
    }
    Cell c = *target;  // walk back to the cell one step from `at`
    while (true) {
      const Move& m = kMoves[static_cast<size_t>(s.move[idx(c)])];
      const Cell prev{c.x - m.dx, c.y - m.dy};
      if (prev == at) return std::string(1, m.name);
      c = prev;
    }
  }
  return std::nullopt;
}

struct GridworldParams {
  double subtask_reward = 0.2;
  bool hazard_ends = false;
};

class GridworldEnv : public Environment {
 public:
  explicit GridworldEnv(GridworldParams p) : p_(p) {}

  std::string reset(const data::PromptRecord& record, uint64_t /*seed*/) override {
    l_ = parse_layout(record);
    at_ = l_.start;
    got_.assign(l_.keys.size(), false);
    done_ = success_ = false;
    return "";
  }

  StepResult step(const std::string& action) override {
    StepResult out;
    const std::string a = trim(action);
    const auto move =
        std::find_if(kMoves.begin(), kMoves.end(), [&](const Move& m) { return a == std::string(1, m.name); });
    bool invalid = false, hazard = false;
    if (done_) {
      out.done = true;
    } else if (move == kMoves.end()) {
      invalid = true;
      out.observation = "invalid";
    } else {
      const Cell next{at_.x + move->dx, at_.y + move->dy};
      const bool wall = !inside(l_, next);
      if (!wall) at_ = next;
      hazard = is_hazard(l_, at_);  // entered one, or bumped a wall while standing on one
      bool key = false;
      for (size_t k = 0; k < l_.keys.size(); ++k)
        if (!got_[k] && l_.keys[k] == at_) got_[k] = key = true;
      if (key) out.reward += p_.subtask_reward;
      const bool all_keys = std::find(got_.begin(), got_.end(), false) == got_.end();
      if (at_ == l_.goal && all_keys) {
        done_ = success_ = out.done = true;
        out.reward += 1.0;
        out.observation = "goal";
      } else if (hazard && p_.hazard_ends) {
        done_ = out.done = true;
        out.observation = "hazard";
      } else {
        const char* event = wall ? "wall " : hazard ? "hazard " : key ? "key " : at_ == l_.goal ? "need keys " : "";
        out.observation = fmt::format("{}at {} keys {}", event, cell_text(at_), cells_text(remaining_keys()));
      }
    }
    out.info = {{"success", success_ ? 1.0 : 0.0},
                {"subtasks_completed", static_cast<double>(std::count(got_.begin(), got_.end(), true))},
                {"subtasks_total", static_cast<double>(l_.keys.size())},
                {"hazard", hazard ? 1.0 : 0.0},
                {"invalid_action", invalid ? 1.0 : 0.0}};
    return out;
  }

  std::optional<std::string> expert_action() const override {
    if (done_) return std::nullopt;
    return expert_move(l_, at_, got_);
  }

 private:
  // The keys not picked up yet, in layout order.
  std::vector<Cell> remaining_keys() const {
    std::vector<Cell> left;
    for (size_t k = 0; k < l_.keys.size(); ++k)
      if (!got_[k]) left.push_back(l_.keys[k]);
    return left;
  }

  GridworldParams p_;
  Layout l_;
  Cell at_;
  std::vector<bool> got_;  // [keys]: picked up
  bool done_ = false;
  bool success_ = false;
};

class GridworldFactory : public EnvFactory {
 public:
  explicit GridworldFactory(GridworldParams p) : p_(p) {}
  std::unique_ptr<Environment> make() const override { return std::make_unique<GridworldEnv>(p_); }
  std::vector<std::string> info_keys() const override {
    return {"success", "subtasks_completed", "subtasks_total", "hazard", "invalid_action"};
  }
  std::vector<std::string> required_meta() const override { return {"layout"}; }
  std::string task() const override { return "gridworld"; }

 private:
  GridworldParams p_;
};

std::unique_ptr<EnvFactory> make_gridworld_env(config::Reader& r) {
  GridworldParams p;
  r.field("subtask_reward", p.subtask_reward, "reward for each new key picked up").ge(0);
  r.field("hazard_ends", p.hazard_ends, "entering a hazard ends the episode (success 0) instead of only costing");
  return std::make_unique<GridworldFactory>(p);
}

// ---- the task --------------------------------------------------------------------------------

struct GridworldOptions {
  int size = 4;
  int keys = 2;
  int hazards = 2;
};

class GridworldTask : public data::Task {
 public:
  explicit GridworldTask(GridworldOptions o) : o_(o) {}

  /// Draws distinct cells for start, keys, goal and hazards until every key and the goal can be
  /// reached from the start without crossing a hazard (at most 1000 draws; then the last draw
  /// without its hazards, which a grid without walls always solves).
  data::PromptRecord make(uint64_t seed, data::Split split, uint64_t index) const override {
    data::SplitMix64 rng(data::problem_seed(seed, split, index));
    const int n = o_.size * o_.size;
    Layout l;
    for (int attempt = 0;; ++attempt) {
      std::vector<int> cells(static_cast<size_t>(n));
      for (int i = 0; i < n; ++i) cells[static_cast<size_t>(i)] = i;
      const int used = 2 + o_.keys + o_.hazards;
      for (int i = 0; i < used; ++i)  // partial Fisher-Yates: cells[0, used) is a uniform draw
        std::swap(cells[static_cast<size_t>(i)], cells[static_cast<size_t>(rng.uniform(i, n - 1))]);
      auto cell = [&](int i) {
        const int c = cells[static_cast<size_t>(i)];
        return Cell{c % o_.size, c / o_.size};
      };
      l = Layout{o_.size, cell(0), {}, cell(1), {}};
      for (int k = 0; k < o_.keys; ++k) l.keys.push_back(cell(2 + k));
      for (int h = 0; h < o_.hazards; ++h) l.hazards.push_back(cell(2 + o_.keys + h));
      if (solvable(l)) break;
      if (attempt == 999) {
        l.hazards.clear();
        break;
      }
    }
    data::PromptRecord r;
    r.id = fmt::format("gridworld/{}/{}", split == data::Split::kTrain ? "train" : "eval", index);
    r.prompt = fmt::format("grid {}x{} at {} keys {} goal {} hazards {} moves n s e w", l.size, l.size,
                           cell_text(l.start), cells_text(l.keys), cell_text(l.goal), cells_text(l.hazards));
    // meta values are JSON text (record.h): the environment reads the whole layout.
    r.meta["layout"] = layout_json(l).dump();
    return r;
  }

  /// The expert's moves, one a line, rolled through the environment until the goal.
  std::string gold_response(const data::PromptRecord& r) const override {
    GridworldEnv env{GridworldParams{}};
    env.reset(r, 0);
    std::string out;
    for (int t = 0; t < 4 * o_.size * o_.size * (o_.keys + 1); ++t) {
      const auto a = env.expert_action();
      if (!a) break;
      out += (out.empty() ? "" : "\n") + *a;
      if (env.step(*a).done) break;
    }
    return out;
  }
  std::string verifier() const override { return "env"; }
  /// The moves and the observations' words, one piece each (a tiny tokenizer has few merges
  /// beyond the characters); coordinates stay digit by digit.
  std::vector<std::string> tokenizer_symbols() const override {
    std::vector<std::string> out;
    for (const char* w : {"n", "s", "e", "w", "at", "key", "keys", "none", "goal", "wall", "hazard", "hazards", "need"})
      out.push_back(std::string("\xE2\x96\x81") + w);  // SentencePiece's word-start mark
    return out;
  }

 private:
  static bool solvable(const Layout& l) {
    const Search s = search(l, l.start, /*through_hazards=*/false);
    const auto reached = [&](Cell c) { return s.dist[static_cast<size_t>(c.y * l.size + c.x)] >= 0; };
    return reached(l.goal) && std::all_of(l.keys.begin(), l.keys.end(), reached);
  }

  GridworldOptions o_;
};

std::unique_ptr<data::Task> make_gridworld_task(config::Reader& r) {
  GridworldOptions o;
  r.field("size", o.size, "the grid is size x size cells (coordinates stay one digit)").ge(2).le(9);
  r.field("keys", o.keys, "keys to collect before the goal (the subtasks)").ge(0);
  r.field("hazards", o.hazards, "hazard cells (danger bits), placed so a hazard-free solution exists").ge(0);
  const int used = 2 + o.keys + o.hazards;
  if (o.keys >= 0 && o.hazards >= 0 && 2 * used > o.size * o.size)
    r.error("hazards", fmt::format("start, goal, keys and hazards may fill at most half of the grid: 2 + keys + "
                                   "hazards = {} > {} (size {} gives {} cells); lower keys or hazards or raise size",
                                   used, o.size * o.size / 2, o.size, o.size * o.size));
  return std::make_unique<GridworldTask>(o);
}

}  // namespace

// Adds the environment "gridworld" and its task of the same name (declared where the built-ins are
// registered; there is no header: nothing else calls into this file).
void register_gridworld(EnvRegistry& envs, data::TaskRegistry& tasks) {
  envs.add("gridworld",
           "collect the keys, then reach the goal on a small grid with hazards: actions n/s/e/w; subtask rewards, "
           "info hazard as a danger bit (params: subtask_reward, hazard_ends)",
           make_gridworld_env);
  tasks.add("gridworld", "random solvable grid layouts for env gridworld (knobs: size, keys, hazards)",
            make_gridworld_task);
}

}  // namespace keel::env
