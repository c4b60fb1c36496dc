// Environment and task "guessing": twenty questions over a few items (IGPO-style turn credit).
// The prompt lists K candidate items; one of them is hidden. Each turn the policy either asks about
// a binary attribute or guesses:
//   "is <attr>?"   -> "yes" | "no"; reward info_weight * (log2 |before| - log2 |after|) / log2 K,
//                     where before / after count the candidates consistent with the answers so far
//   "guess <name>" -> done; reward 1 and success 1 when right, 0 otherwise
//   anything else  -> "invalid" (info invalid_action = 1), and an unknown attribute the same
// After max_questions questions a further question is not answered: "must guess" (no gain).
// Everything the environment needs is in the record's meta (item, items, attributes), so records
// written to a file replay without the task. The expert asks the question that best halves the
// remaining candidates (ties by attribute order) and guesses when one is left.
// Deliberately not here: the information-gain credit itself (the reward and credit stages read the
// per-turn rewards and info), free-text questions, and items with non-binary attributes.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/reader.h"
#include "trainer/data/task.h"
#include "trainer/env/environment.h"

namespace keel::env {

namespace {

/// One candidate: its name and, per attribute of the game (in order), whether it has it.
struct Item {
  std::string name;
  std::vector<bool> has;
};

/// What one record describes: the askable attributes (in order), the candidates and the hidden one.
struct Game {
  std::vector<std::string> attributes;
  std::vector<Item> items;
  size_t hidden = 0;
};

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

/// A name or attribute: one non-empty word of letters, digits, '_' or '-'.
bool is_word(const std::string& s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (!std::isalnum(c) && c != '_' && c != '-') return false;
  return true;
}

/// The game of a record (meta item, items, attributes as the task writes them); throws keel::Error
/// naming the record and the field when the meta is malformed.
Game parse_game(const data::PromptRecord& r) {
  auto meta = [&](const std::string& key) -> nlohmann::json {
    auto it = r.meta.find(key);
    if (it == r.meta.end()) fail("guessing: record '{}' has no meta.{}", r.id, key);
    try {
      return nlohmann::json::parse(it->second);
    } catch (const nlohmann::json::exception& e) {
      fail("guessing: record '{}': meta.{} is not JSON: {}", r.id, key, e.what());
    }
  };
  Game g;
  const auto attrs = meta("attributes");
  const auto items = meta("items");
  const auto item = meta("item");
  try {
    for (const auto& a : attrs) g.attributes.push_back(a.get<std::string>());
    for (const auto& it : items) {
      Item x{it.at("name").get<std::string>(), std::vector<bool>(g.attributes.size(), false)};
      for (const auto& h : it.at("has")) {
        const auto name = h.get<std::string>();
        const auto pos = std::find(g.attributes.begin(), g.attributes.end(), name);
        if (pos == g.attributes.end())
          fail("guessing: record '{}': item '{}' has attribute '{}', which is not in meta.attributes", r.id, x.name,
               name);
        x.has[static_cast<size_t>(pos - g.attributes.begin())] = true;
      }
      g.items.push_back(std::move(x));
    }
    const auto hidden = item.get<std::string>();
    const auto pos = std::find_if(g.items.begin(), g.items.end(), [&](const Item& x) { return x.name == hidden; });
    if (pos == g.items.end()) fail("guessing: record '{}': meta.item '{}' is not among meta.items", r.id, hidden);
    g.hidden = static_cast<size_t>(pos - g.items.begin());
  } catch (const nlohmann::json::exception& e) {
    fail("guessing: record '{}': meta.items / meta.attributes / meta.item malformed ({}); expected items "
         "[{{\"name\": ..., \"has\": [...]}}], attributes [...], item \"<name>\"",
         r.id, e.what());
  }
  if (g.items.size() < 2) fail("guessing: record '{}' has {} candidate(s); need at least 2", r.id, g.items.size());
  return g;
}

/// The expert's move: the question splitting `remaining` most evenly (max of min(yes, no), ties by
/// attribute order), or a guess of the first remaining candidate when one is left, no question
/// splits them or `may_ask` is false.
std::string expert_move(const Game& g, const std::vector<size_t>& remaining, bool may_ask) {
  size_t best = 0, best_split = 0;
  for (size_t a = 0; may_ask && remaining.size() > 1 && a < g.attributes.size(); ++a) {
    size_t yes = 0;
    for (size_t i : remaining) yes += g.items[i].has[a] ? 1 : 0;
    const size_t split = std::min(yes, remaining.size() - yes);
    if (split > best_split) best = a, best_split = split;
  }
  if (best_split == 0) return "guess " + g.items[remaining.front()].name;
  return "is " + g.attributes[best] + "?";
}

struct GuessingParams {
  double info_weight = 0.1;
  int max_questions = 4;
};

class GuessingEnv : public Environment {
 public:
  explicit GuessingEnv(GuessingParams p) : p_(p) {}

  std::string reset(const data::PromptRecord& record, uint64_t /*seed*/) override {
    g_ = parse_game(record);
    remaining_.clear();
    for (size_t i = 0; i < g_.items.size(); ++i) remaining_.push_back(i);
    questions_ = 0;
    done_ = false;
    success_ = false;
    return "";
  }

  StepResult step(const std::string& action) override {
    StepResult out;
    double gain = 0.0;
    bool invalid = false;
    const std::string a = trim(action);
    const std::string guess = a.rfind("guess ", 0) == 0 ? trim(a.substr(6)) : "";
    const std::optional<size_t> attr =
        a.size() > 4 && a.rfind("is ", 0) == 0 && a.back() == '?' ? attribute(trim(a.substr(3, a.size() - 4)))
                                                                  : std::nullopt;
    if (done_) {
      out.done = true;
    } else if (is_word(guess)) {
      success_ = guess == g_.items[g_.hidden].name;
      done_ = out.done = true;
      out.reward = success_ ? 1.0 : 0.0;
      out.observation = success_ ? "right" : "wrong";
    } else if (attr && questions_ >= p_.max_questions) {
      out.observation = "must guess";
    } else if (attr) {
      ++questions_;
      const bool answer = g_.items[g_.hidden].has[*attr];
      const size_t before = remaining_.size();
      std::erase_if(remaining_, [&](size_t i) { return g_.items[i].has[*attr] != answer; });
      // The hidden item always stays, so after >= 1; K >= 2 (parse_game), so log2 K > 0.
      gain = (std::log2(static_cast<double>(before)) - std::log2(static_cast<double>(remaining_.size()))) /
             std::log2(static_cast<double>(g_.items.size()));
      out.reward = p_.info_weight * gain;
      out.observation = answer ? "yes" : "no";
    } else {
      invalid = true;  // not "is <attr>?" with a known attribute nor "guess <one word>"
      out.observation = "invalid";
    }
    out.info = {{"success", success_ ? 1.0 : 0.0},
                {"info_gain", gain},
                {"candidates", static_cast<double>(remaining_.size())},
                {"invalid_action", invalid ? 1.0 : 0.0}};
    return out;
  }

  std::optional<std::string> expert_action() const override {
    if (done_) return std::nullopt;
    return expert_move(g_, remaining_, questions_ < p_.max_questions);
  }

 private:
  // The index of attribute `name` in this game, nullopt when it has none of that name.
  std::optional<size_t> attribute(const std::string& name) const {
    for (size_t i = 0; i < g_.attributes.size(); ++i)
      if (g_.attributes[i] == name) return i;
    return std::nullopt;
  }

  GuessingParams p_;
  Game g_;
  std::vector<size_t> remaining_;  // indices into g_.items consistent with every answer so far
  int questions_ = 0;
  bool done_ = false;
  bool success_ = false;
};

class GuessingFactory : public EnvFactory {
 public:
  explicit GuessingFactory(GuessingParams p) : p_(p) {}
  std::unique_ptr<Environment> make() const override { return std::make_unique<GuessingEnv>(p_); }
  std::vector<std::string> info_keys() const override {
    return {"success", "info_gain", "candidates", "invalid_action"};
  }
  std::vector<std::string> required_meta() const override { return {"item", "items", "attributes"}; }
  std::string task() const override { return "guessing"; }

 private:
  GuessingParams p_;
};

std::unique_ptr<EnvFactory> make_guessing_env(config::Reader& r) {
  GuessingParams p;
  r.field("info_weight", p.info_weight, "scale of a question's reward, its normalised information gain").ge(0);
  r.field("max_questions", p.max_questions, "questions answered per episode; later ones get 'must guess'").ge(1);
  return std::make_unique<GuessingFactory>(p);
}

// ---- the task --------------------------------------------------------------------------------

struct GuessingOptions {
  std::vector<std::string> attributes = {"big", "wild", "winged", "aquatic"};
  // "name:attr,attr": every pair differs in some attribute, and big / wild / winged each split the
  // eight 4-4, so the expert needs exactly three questions.
  std::vector<std::string> items = {"cat",  "cow:big", "fox:wild", "bear:big,wild", "duck:winged,aquatic",
                                    "goose:big,winged,aquatic", "bee:wild,winged", "eagle:big,wild,winged"};
  int candidates = 0;
  std::string noun = "animal";
};

class GuessingTask : public data::Task {
 public:
  GuessingTask(GuessingOptions o, std::vector<Item> items) : o_(std::move(o)), items_(std::move(items)) {}

  data::PromptRecord make(uint64_t seed, data::Split split, uint64_t index) const override {
    data::SplitMix64 rng(data::problem_seed(seed, split, index));
    const size_t n = items_.size();
    const size_t k = o_.candidates == 0 ? n : static_cast<size_t>(o_.candidates);
    // A k-subset in listed order (selection sampling: each item kept with probability need/left).
    std::vector<size_t> chosen;
    for (size_t i = 0; i < n && chosen.size() < k; ++i)
      if (static_cast<size_t>(rng.uniform(0, static_cast<int64_t>(n - i) - 1)) < k - chosen.size()) chosen.push_back(i);
    const size_t hidden = chosen[static_cast<size_t>(rng.uniform(0, static_cast<int64_t>(k) - 1))];

    std::string names, questions;
    nlohmann::json items = nlohmann::json::array();
    for (size_t i : chosen) {
      names += (names.empty() ? "" : " ") + items_[i].name;
      nlohmann::json has = nlohmann::json::array();
      for (size_t a = 0; a < o_.attributes.size(); ++a)
        if (items_[i].has[a]) has.push_back(o_.attributes[a]);
      items.push_back({{"name", items_[i].name}, {"has", has}});
    }
    for (const auto& a : o_.attributes) questions += "is " + a + "? ";
    data::PromptRecord r;
    r.id = fmt::format("guessing/{}/{}", split == data::Split::kTrain ? "train" : "eval", index);
    // Every question written out as the action is, so its words tokenize alike in both.
    r.prompt = fmt::format("Guess the {}: {}. Ask {}or guess <name>.", o_.noun, names, questions);
    r.answer = items_[hidden].name;
    // meta values are JSON text (record.h): everything the environment reads.
    r.meta["item"] = nlohmann::json(items_[hidden].name).dump();
    r.meta["items"] = items.dump();
    r.meta["attributes"] = nlohmann::json(o_.attributes).dump();
    return r;
  }

  /// The expert's questions and guess, one a line (with no question limit).
  std::string gold_response(const data::PromptRecord& r) const override {
    GuessingEnv env(GuessingParams{0.1, static_cast<int>(o_.attributes.size())});
    env.reset(r, 0);
    std::string out;
    for (size_t t = 0; t <= o_.attributes.size(); ++t) {
      const std::string a = *env.expert_action();
      out += (out.empty() ? "" : "\n") + a;
      if (env.step(a).done) break;
    }
    return out;
  }
  std::string verifier() const override { return "env"; }
  /// The action and answer words, the names and the attributes, one piece each: a tiny tokenizer
  /// (a few merges beyond the characters) would otherwise spell them out letter by letter.
  std::vector<std::string> tokenizer_symbols() const override {
    std::vector<std::string> words = {"is", "guess", "yes", "no", "must"};
    words.insert(words.end(), o_.attributes.begin(), o_.attributes.end());
    for (const auto& x : items_) words.push_back(x.name);
    // "▁word" (SentencePiece's word-start mark), each once: an item may share a name with a keyword.
    std::vector<std::string> out;
    for (const auto& w : words)
      if (std::find(out.begin(), out.end(), "\xE2\x96\x81" + w) == out.end()) out.push_back("\xE2\x96\x81" + w);
    return out;
  }

 private:
  GuessingOptions o_;
  std::vector<Item> items_;  // every item of the task, attributes in o_.attributes order
};

std::unique_ptr<data::Task> make_guessing_task(config::Reader& r) {
  GuessingOptions o;
  r.field("attributes", o.attributes, "the yes/no attributes the policy may ask about, in the expert's order")
      .nonempty();
  r.field("items", o.items, "the items, each 'name' or 'name:attr,attr' listing the attributes it has").nonempty();
  r.field("candidates", o.candidates, "candidates per problem, a random subset of items in listed order (0 = all)")
      .ge(0);
  r.field("noun", o.noun, "what the items are, shown in the prompt ('Guess the <noun>: ...')").nonempty();
  for (const auto& a : o.attributes)
    if (!is_word(a)) r.error("attributes", fmt::format("'{}' is not one word of letters, digits, '_' or '-'", a));
  if (std::set<std::string>(o.attributes.begin(), o.attributes.end()).size() != o.attributes.size())
    r.error("attributes", "must not repeat an attribute");
  std::vector<Item> items;
  for (const auto& spec : o.items) {
    const auto colon = spec.find(':');
    Item x{spec.substr(0, colon), std::vector<bool>(o.attributes.size(), false)};
    if (!is_word(x.name))
      r.error("items", fmt::format("'{}': the name is not one word of letters, digits, '_' or '-'", spec));
    std::string rest = colon == std::string::npos ? "" : spec.substr(colon + 1);
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string a = trim(rest.substr(0, comma));
      rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
      const auto pos = std::find(o.attributes.begin(), o.attributes.end(), a);
      if (pos == o.attributes.end())
        r.error("items", fmt::format("'{}': attribute '{}' is not in attributes", spec, a));
      else
        x.has[static_cast<size_t>(pos - o.attributes.begin())] = true;
    }
    for (const auto& y : items) {
      if (y.name == x.name) r.error("items", fmt::format("'{}' is listed twice", x.name));
      else if (y.has == x.has)
        r.error("items", fmt::format("'{}' and '{}' have the same attributes: no question tells them apart", y.name,
                                     x.name));
    }
    items.push_back(std::move(x));
  }
  if (items.size() < 2) r.error("items", "needs at least 2 items");
  if (o.candidates == 1 || (o.candidates > 1 && static_cast<size_t>(o.candidates) > items.size()))
    r.error("candidates", fmt::format("must be 0 (all) or in [2, {}] (the number of items), got {}", items.size(),
                                      o.candidates));
  return std::make_unique<GuessingTask>(o, std::move(items));
}

}  // namespace

// Adds the environment "guessing" and its task of the same name (declared where the built-ins are
// registered; there is no header: nothing else calls into this file).
void register_guessing(EnvRegistry& envs, data::TaskRegistry& tasks) {
  envs.add("guessing",
           "twenty questions: 'is <attr>?' -> yes/no, 'guess <name>' ends it; per-question information-gain reward "
           "(params: info_weight, max_questions)",
           make_guessing_env);
  tasks.add("guessing",
            "hidden item among candidates with yes/no attributes, for env guessing (knobs: attributes, items, "
            "candidates, noun)",
            make_guessing_task);
}

}  // namespace keel::env
