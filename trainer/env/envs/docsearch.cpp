// Environment and task "docsearch": multi-hop questions over a small built-in corpus, answered with
// search / open tools and citations, scored by CaRR's citation rubric (spec rewards.md B3d).
// Corpus (fixed, in code below): 24 documents, ids 1-24 — 16 animals ("owl eats mice. owl lives in
// forest.", ids 1-16) and 8 places ("forest weather is wet.", ids 17-24). Each food and each weather
// belongs to one document; two animals share each place.
// Questions (the fact chain they need; E0 is the answer entity):
//   home:    "where does the animal that eats mice live?"                 -> "forest [1]"
//            owl eats mice {E1}; owl lives in forest {E1, E0}
//   weather: "what is the weather where the animal that eats mice lives?" -> "wet [1] [17]"
//            owl eats mice {E2}; owl lives in forest {E2, E1}; forest weather is wet {E1, E0}
// Tools, in the chat template's tool-call format (tool_call.h; param tool_format qwen | llama3):
//   search {"query": string} -> up to k lines "[id] snippet": the documents sharing a word with the
//          query (words = lower-case runs of letters and digits), most shared distinct words first,
//          ties by lower id; the snippet is the document's sentence sharing the most words (ties:
//          the first), cut to 40 characters; "no results" when no document shares a word.
//   open   {"id": int}       -> "[id] <the document's text>"
// A turn without a tool call is the final answer (done): its text, citing documents as [<id>].
// A malformed call, an unknown tool or bad arguments is an observation saying what is wrong (info
// tool_error = 1); an empty answer is invalid (invalid_action = 1); both let the episode go on.
//
// Rewards. Per-turn reward 0, the final answer's is success: 1 when the answer (citations removed)
// names the gold word as a word and no other candidate of its kind (another place / weather) — the
// second condition keeps "forest desert cave ..." from earning the reward [interp].
// info "citation_rubric" is CaRR's rubric score (rewards::carr_rubric_score), CaRR's LLM-judge steps
// replaced by exact matching over the synthetic corpus — an INTERPRETATION of B3d:
//   rubrics     one per fact of the chain above, with the placeholders it mentions;
//   citations   the distinct [n] in the answer (the first 20, as CaRR reads up to 20); a cited
//               document's content is what the agent saw of it this episode — its search snippets
//               and, once opened, its text (CaRR step 2 reads the search / open history); a cited
//               id never seen has none; has_citations = some cited document has content;
//   mapping_ok  true: the judge's placeholder mapping (step 1) is replaced by the gold entities;
//   identified  E0 when the answer text names the gold answer; any other placeholder when the
//               answer text or a cited content names it (step 1: the response names the entity);
//   supported   some cited content contains the rubric's fact sentence exactly (step 3);
//   then BFS connectivity from E0 (step 4, param bfs) and the fraction of all rubrics (step 5).
// So "forest [1]" after opening doc 1 scores 1, "wet [17]" 1/3 (the place's fact alone, linked to
// E0), a correct answer citing nothing 0. Use it as the 'carr' reward scheme's rubric:
//   {scheme: carr, params: {outcome: extra.success, rubric_key: citation_rubric, alpha: 0.3, ...}}.
// info keys (each step reports all): success (0/1, the final answer's), citation_rubric (final
// step; else 0), cited (final step: the cited documents that have content), searches (well-formed
// search calls so far, a running total), tool_error (0/1, this turn), invalid_action (0/1, this turn).
// The expert walks the chain: for each fact in order, while no seen content holds it, search the
// hop's words ("mice", then "forest weather") or, when the document was seen, open it; then answers
// "<gold> [ids]" — 3 turns for home, 4 for weather.
// Deliberately not here: the turn loop (trainer/env/episodes.h), the C-GRPO combination with the
// outcome (the 'carr' reward scheme), LLM judges, and corpora from files.
#include <algorithm>
#include <cctype>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/reader.h"
#include "rewards/schemes/carr.h"
#include "trainer/data/task.h"
#include "trainer/env/environment.h"
#include "trainer/env/tool_call.h"

namespace keel::env {

namespace {

// ---- the corpus --------------------------------------------------------------------------------

struct PlaceRow {
  const char* name;
  const char* weather;
};
struct AnimalRow {
  const char* name;
  const char* food;
  int place;  ///< index into kPlaces
};

// Every word below is distinct from every other (no food is an animal, place or weather), so each
// question has one answer and each fact one document.
constexpr PlaceRow kPlaces[] = {{"forest", "wet"},  {"desert", "hot"}, {"cave", "dark"}, {"river", "cold"},
                                {"hill", "windy"},  {"lake", "calm"},  {"field", "dry"}, {"marsh", "foggy"}};
constexpr AnimalRow kAnimals[] = {
    {"owl", "mice", 0},    {"fox", "hens", 6},    {"bear", "honey", 0},  {"frog", "flies", 7},
    {"hawk", "snakes", 4}, {"seal", "fish", 3},   {"wolf", "sheep", 4},  {"bat", "moths", 2},
    {"mole", "worms", 6},  {"duck", "weeds", 5},  {"crab", "clams", 5},  {"lizard", "ants", 1},
    {"camel", "dates", 1}, {"heron", "shrimp", 7}, {"otter", "eels", 3}, {"spider", "gnats", 2}};
constexpr int kNumAnimals = static_cast<int>(std::size(kAnimals));
constexpr int kNumPlaces = static_cast<int>(std::size(kPlaces));
constexpr int kNumDocs = kNumAnimals + kNumPlaces;
constexpr size_t kSnippetChars = 40;
constexpr size_t kMaxCitations = 20;  // CaRR reads up to 20 citations

int animal_doc(int a) { return a + 1; }
int place_doc(int p) { return kNumAnimals + p + 1; }

/// Lower-case runs of letters and digits, in order.
std::vector<std::string> words_of(std::string_view s) {
  std::vector<std::string> out;
  std::string w;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c)) {
      w += static_cast<char>(std::tolower(c));
    } else if (!w.empty()) {
      out.push_back(std::move(w));
      w.clear();
    }
  }
  if (!w.empty()) out.push_back(std::move(w));
  return out;
}

std::set<std::string> word_set(std::string_view s) {
  const auto w = words_of(s);
  return {w.begin(), w.end()};
}

struct Doc {
  int id = 0;
  std::vector<std::string> sentences;  ///< each ends with '.'
  std::string text;                    ///< the sentences joined by spaces
  std::vector<std::set<std::string>> sentence_words;
  std::set<std::string> words;
};

/// The 24 documents, index id - 1.
const std::vector<Doc>& corpus() {
  static const std::vector<Doc> docs = [] {
    std::vector<std::vector<std::string>> sentences;
    for (const auto& a : kAnimals)
      sentences.push_back({fmt::format("{} eats {}.", a.name, a.food),
                           fmt::format("{} lives in {}.", a.name, kPlaces[a.place].name)});
    for (const auto& p : kPlaces) sentences.push_back({fmt::format("{} weather is {}.", p.name, p.weather)});
    std::vector<Doc> out;
    for (auto& s : sentences) {
      Doc d;
      d.id = static_cast<int>(out.size()) + 1;
      for (const auto& x : s) {
        d.text += (d.text.empty() ? "" : " ") + x;
        d.sentence_words.push_back(word_set(x));
      }
      d.words = word_set(d.text);
      d.sentences = std::move(s);
      out.push_back(std::move(d));
    }
    return out;
  }();
  return docs;
}

/// One search hit: the document and its snippet.
struct Hit {
  int id;
  std::string snippet;
};

/// The ranked hits of `query` (see the file comment), at most k.
std::vector<Hit> search_corpus(std::string_view query, int k) {
  const auto q = word_set(query);
  auto overlap = [&](const std::set<std::string>& w) {
    int n = 0;
    for (const auto& x : q) n += static_cast<int>(w.count(x));
    return n;
  };
  std::vector<std::pair<int, int>> scored;  // (-overlap, id): sorts best first, ties by id
  for (const auto& d : corpus())
    if (const int n = overlap(d.words); n > 0) scored.push_back({-n, d.id});
  std::sort(scored.begin(), scored.end());
  std::vector<Hit> out;
  for (const auto& [neg, id] : scored) {
    if (static_cast<int>(out.size()) == k) break;
    const Doc& d = corpus()[static_cast<size_t>(id - 1)];
    size_t best = 0;
    int best_n = -1;
    for (size_t s = 0; s < d.sentences.size(); ++s)
      if (const int n = overlap(d.sentence_words[s]); n > best_n) best = s, best_n = n;
    out.push_back({id, d.sentences[best].substr(0, kSnippetChars)});
  }
  return out;
}

// ---- questions ---------------------------------------------------------------------------------

/// One fact of a question's chain: a CaRR rubric with what the expert searches to find it.
struct Hop {
  std::string fact;               ///< the sentence without its '.', e.g. "owl eats mice"
  int doc = 0;                    ///< the document stating it
  std::string query;              ///< the expert's search words for it
  std::vector<int64_t> entities;  ///< placeholders it mentions (0 = the answer entity)
};

struct Question {
  std::string qid;   ///< "<type>:<animal>"
  std::string type;  ///< home | weather
  std::string text;
  std::string gold;
  std::vector<std::string> entity_names;  ///< placeholder i -> its entity's name (E0 = gold)
  std::vector<std::string> rivals;        ///< the other candidates of the answer's kind
  std::vector<Hop> hops;
  std::vector<int> gold_docs;  ///< the hops' documents, distinct, in order
};

const std::vector<std::string> kTypes = {"home", "weather"};

/// The question `type` about animal index `a`.
Question make_question(const std::string& type, int a) {
  const AnimalRow& an = kAnimals[a];
  const PlaceRow& pl = kPlaces[an.place];
  Question q;
  q.qid = type + ":" + an.name;
  q.type = type;
  const std::string eats = fmt::format("{} eats {}", an.name, an.food), lives = fmt::format("{} lives in {}", an.name, pl.name);
  const std::string hop1 = an.food;  // the one word that finds the animal: one hit, a short observation
  if (type == "home") {
    q.text = fmt::format("where does the animal that eats {} live?", an.food);
    q.gold = pl.name;
    q.entity_names = {pl.name, an.name};
    for (const auto& p : kPlaces)
      if (p.name != std::string(pl.name)) q.rivals.push_back(p.name);
    q.hops = {{eats, animal_doc(a), hop1, {1}}, {lives, animal_doc(a), hop1, {1, 0}}};
  } else {
    q.text = fmt::format("what is the weather where the animal that eats {} lives?", an.food);
    q.gold = pl.weather;
    q.entity_names = {pl.weather, pl.name, an.name};
    for (const auto& p : kPlaces)
      if (p.weather != std::string(pl.weather)) q.rivals.push_back(p.weather);
    q.hops = {{eats, animal_doc(a), hop1, {2}},
              {lives, animal_doc(a), hop1, {2, 1}},
              {fmt::format("{} weather is {}", pl.name, pl.weather), place_doc(an.place),
               fmt::format("{} weather", pl.name), {1, 0}}};
  }
  for (const auto& h : q.hops)
    if (std::find(q.gold_docs.begin(), q.gold_docs.end(), h.doc) == q.gold_docs.end()) q.gold_docs.push_back(h.doc);
  return q;
}

/// The question of a record's meta.qid; throws keel::Error naming the record when it is missing or
/// names no question.
Question question_of(const data::PromptRecord& r) {
  const auto it = r.meta.find("qid");
  if (it == r.meta.end()) fail("docsearch: record '{}' has no meta.qid", r.id);
  std::string qid;
  try {
    qid = nlohmann::json::parse(it->second).get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    fail("docsearch: record '{}': meta.qid must be a JSON string \"<type>:<animal>\", got {} ({})", r.id, it->second,
         e.what());
  }
  const auto colon = qid.find(':');
  const std::string type = qid.substr(0, colon), animal = colon == std::string::npos ? "" : qid.substr(colon + 1);
  if (std::find(kTypes.begin(), kTypes.end(), type) == kTypes.end())
    fail("docsearch: record '{}': meta.qid '{}' has type '{}' (known: home, weather)", r.id, qid, type);
  for (int a = 0; a < kNumAnimals; ++a)
    if (animal == kAnimals[a].name) return make_question(type, a);
  fail("docsearch: record '{}': meta.qid '{}' names animal '{}', which is not in the corpus", r.id, qid, animal);
}

/// The question's prompt: the question and one line naming the tools.
std::string prompt_of(const Question& q) {
  return q.text + "\ntools: search {\"query\": words}, open {\"id\": n}; answer with [id] citations.";
}

/// The answer the expert gives: "<gold> [id] [id]".
std::string expert_answer(const Question& q) {
  std::string s = q.gold;
  for (int d : q.gold_docs) s += fmt::format(" [{}]", d);
  return s;
}

/// The distinct ids cited as [<digits>] in `s` (the first kMaxCitations), and `s` without them.
std::pair<std::vector<int>, std::string> split_citations(std::string_view s) {
  std::vector<int> ids;
  std::string text;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '[') {
      size_t e = i + 1;
      while (e < s.size() && e - i <= 6 && std::isdigit(static_cast<unsigned char>(s[e]))) ++e;
      if (e > i + 1 && e < s.size() && s[e] == ']' && e - i <= 6) {
        const int id = std::stoi(std::string(s.substr(i + 1, e - i - 1)));
        if (std::find(ids.begin(), ids.end(), id) == ids.end() && ids.size() < kMaxCitations) ids.push_back(id);
        text += ' ';
        i = e;
        continue;
      }
    }
    text += s[i];
  }
  return {ids, text};
}

// ---- the environment ---------------------------------------------------------------------------

struct EnvOptions {
  int k = 3;
  std::string tool_format = "qwen";
  rewards::CarrScoreOptions score;
};

ToolFormat format_of(const std::string& s) { return s == "llama3" ? ToolFormat::kLlama3 : ToolFormat::kQwen; }

void read_tool_format(config::Reader& r, std::string& f) {
  r.field("tool_format", f, "tool-call format (the chat template's: qwen for plain / chatml, llama3)")
      .one_of({"qwen", "llama3"}, "tool format");
}

class DocsearchEnv : public Environment {
 public:
  explicit DocsearchEnv(const EnvOptions& o) : o_(o), fmt_(format_of(o.tool_format)) {}

  std::string reset(const data::PromptRecord& record, uint64_t /*seed*/) override {
    q_ = question_of(record);
    content_.assign(static_cast<size_t>(kNumDocs) + 1, "");
    searches_ = 0;
    done_ = false;
    final_ = {};
    return "";
  }

  StepResult step(const std::string& action) override {
    if (done_) {
      StepResult out = final_;
      out.observation.clear();
      return out;
    }
    StepResult out;
    out.info = {{"success", 0.0},  {"citation_rubric", 0.0}, {"cited", 0.0},
                {"searches", 0.0}, {"tool_error", 0.0},      {"invalid_action", 0.0}};
    const ParsedTurn p = parse_tool_calls(action, fmt_);
    if (!p.error.empty()) {
      out.info["tool_error"] = 1;
      out.observation = "error: " + p.error;
    } else if (!p.calls.empty()) {
      std::string obs;
      for (const auto& c : p.calls) {
        bool bad = false;
        const std::string res = run_tool(c, bad);
        if (bad) out.info["tool_error"] = 1;
        obs += (obs.empty() ? "" : "\n") + res;
      }
      out.observation = obs;
    } else if (p.text.empty()) {
      out.info["invalid_action"] = 1;
      out.observation = "error: call search or open, or answer with text and [id] citations";
    } else {
      answer(p.text, out);
    }
    out.info["searches"] = searches_;
    if (out.done) final_ = out, done_ = true;
    return out;
  }

  std::optional<std::string> expert_action() const override {
    if (done_) return std::nullopt;
    for (const Hop& h : q_.hops) {
      if (has_fact(h.doc, h.fact)) continue;
      if (content_[static_cast<size_t>(h.doc)].empty())
        return format_tool_call({"search", nlohmann::json{{"query", h.query}}.dump()}, fmt_);
      return format_tool_call({"open", nlohmann::json{{"id", h.doc}}.dump()}, fmt_);
    }
    return expert_answer(q_);
  }

 private:
  /// Runs one well-formed call; sets `bad` when the tool or its arguments are wrong.
  std::string run_tool(const ToolCall& c, bool& bad) {
    const auto error = [&](const std::string& why) {
      bad = true;
      return "error: " + why;
    };
    const auto args = nlohmann::json::parse(c.arguments);  // an object: parse_tool_calls checked it
    if (c.name == "search") {
      const auto it = args.find("query");
      if (it == args.end() || !it->is_string()) return error("search needs {\"query\": string}");
      const std::string query = it->get<std::string>();
      if (words_of(query).empty()) return error("the query has no words");
      ++searches_;
      const auto hits = search_corpus(query, o_.k);
      if (hits.empty()) return "no results";
      std::string out;
      for (const auto& h : hits) {
        out += fmt::format("{}[{}] {}", out.empty() ? "" : "\n", h.id, h.snippet);
        see(h.id, h.snippet);
      }
      return out;
    }
    if (c.name == "open") {
      const auto it = args.find("id");
      if (it == args.end() || !it->is_number_integer()) return error("open needs {\"id\": integer}");
      const int64_t id = it->get<int64_t>();
      if (id < 1 || id > kNumDocs) return error(fmt::format("no document {} (ids 1-{})", id, kNumDocs));
      const Doc& d = corpus()[static_cast<size_t>(id - 1)];
      see(d.id, d.text);
      return fmt::format("[{}] {}", d.id, d.text);
    }
    return error(fmt::format("unknown tool '{}' (tools: search, open)", c.name));
  }

  /// Adds `text` to what the agent saw of document `id`.
  void see(int id, const std::string& text) { content_[static_cast<size_t>(id)] += " " + text; }

  /// Whether the seen content of `doc` states `fact` (a whole sentence).
  bool has_fact(int doc, const std::string& fact) const {
    return content_[static_cast<size_t>(doc)].find(" " + fact + ".") != std::string::npos;
  }

  /// Scores the final answer `text` into `out` (done).
  void answer(const std::string& text, StepResult& out) {
    const auto [ids, plain] = split_citations(text);
    const auto answer_words = word_set(plain);
    std::vector<int> cited;  // cited ids with content
    std::set<std::string> cited_words;
    for (int id : ids) {
      if (id < 1 || id > kNumDocs || content_[static_cast<size_t>(id)].empty()) continue;
      cited.push_back(id);
      for (const auto& w : word_set(content_[static_cast<size_t>(id)])) cited_words.insert(w);
    }
    bool success = answer_words.count(q_.gold) > 0;
    for (const auto& r : q_.rivals) success = success && answer_words.count(r) == 0;

    std::vector<rewards::CarrRubric> rubrics;
    for (const Hop& h : q_.hops) {
      rewards::CarrRubric rb;
      rb.entities = h.entities;
      for (int64_t e : h.entities) {
        const std::string& name = q_.entity_names[static_cast<size_t>(e)];
        const bool named = answer_words.count(name) > 0 || (e != 0 && cited_words.count(name) > 0);
        rb.identified = rb.identified && named;
      }
      rb.supported = std::any_of(cited.begin(), cited.end(), [&](int id) { return has_fact(id, h.fact); });
      rubrics.push_back(std::move(rb));
    }
    out.done = true;
    out.reward = success ? 1.0 : 0.0;
    out.info["success"] = out.reward;
    out.info["citation_rubric"] = rewards::carr_rubric_score(rubrics, /*mapping_ok=*/true, !cited.empty(), o_.score);
    out.info["cited"] = static_cast<double>(cited.size());
  }

  EnvOptions o_;
  ToolFormat fmt_;
  Question q_;
  std::vector<std::string> content_;  ///< per id (index 0 unused): " " + each text seen of it
  int searches_ = 0;
  bool done_ = false;
  StepResult final_;  ///< the answer's result, repeated for steps after done
};

class DocsearchFactory : public EnvFactory {
 public:
  explicit DocsearchFactory(EnvOptions o) : o_(std::move(o)) {}
  std::unique_ptr<Environment> make() const override { return std::make_unique<DocsearchEnv>(o_); }
  std::vector<std::string> info_keys() const override {
    return {"success", "citation_rubric", "cited", "searches", "tool_error", "invalid_action"};
  }
  std::vector<std::string> required_meta() const override { return {"qid"}; }
  std::string task() const override { return "docsearch"; }

 private:
  EnvOptions o_;
};

std::unique_ptr<EnvFactory> make_docsearch_env(config::Reader& r) {
  EnvOptions o;
  r.field("k", o.k, "search results shown per query").ge(1).le(8);
  read_tool_format(r, o.tool_format);
  rewards::read_carr_score_options(r, o.score);
  return std::make_unique<DocsearchFactory>(o);
}

// ---- the task ----------------------------------------------------------------------------------

struct TaskOptions {
  std::vector<std::string> types = kTypes;
  std::string tool_format = "qwen";
};

class DocsearchTask : public data::Task {
 public:
  explicit DocsearchTask(TaskOptions o) : o_(std::move(o)) {}

  /// A uniformly drawn question type (of `types`) and animal; train and eval draw from the same 16
  /// animals (the corpus is fixed), so eval measures the skill, not unseen facts.
  data::PromptRecord make(uint64_t seed, data::Split split, uint64_t index) const override {
    data::SplitMix64 rng(data::problem_seed(seed ^ 0xD0C5ull, split, index));
    const auto& type = o_.types[static_cast<size_t>(rng.uniform(0, static_cast<int64_t>(o_.types.size()) - 1))];
    const Question q = make_question(type, static_cast<int>(rng.uniform(0, kNumAnimals - 1)));
    data::PromptRecord r;
    r.id = fmt::format("docsearch/{}/{}", split == data::Split::kTrain ? "train" : "eval", index);
    r.prompt = prompt_of(q);
    r.answer = q.gold;
    // meta values are JSON text (record.h); qid is all the environment reads, gold_docs documents it.
    r.meta["qid"] = nlohmann::json(q.qid).dump();
    r.meta["gold_docs"] = nlohmann::json(q.gold_docs).dump();
    return r;
  }

  /// The expert's actions (tool calls, then the answer), one a line.
  std::string gold_response(const data::PromptRecord& r) const override {
    EnvOptions eo;
    eo.tool_format = o_.tool_format;
    DocsearchEnv env(eo);
    env.reset(r, 0);
    std::string out;
    for (int t = 0; t < 8; ++t) {
      const auto a = env.expert_action();
      if (!a) break;
      out += (out.empty() ? "" : "\n") + *a;
      if (env.step(*a).done) break;
    }
    return out;
  }
  std::string verifier() const override { return "env"; }
  /// The tool-call tags, the relation words as word pieces ("▁eats", "▁lives", "▁weather") and every
  /// entity name as a bare piece ("mice", not "▁mice"): a name is then one token wherever it stands —
  /// after a space in questions, observations and answers (as "▁" + "mice") and after a quote in a
  /// query ("mice") — so copying it is copying one token (with 96 merges alone names are spelled
  /// letter by letter: the longest expert episode took 180 tokens, with these 147). No name occurs
  /// inside another word of the task's text.
  std::vector<std::string> tokenizer_symbols() const override {
    std::vector<std::string> out = {"<tool_call>", "</tool_call>", "\xE2\x96\x81" "eats", "\xE2\x96\x81" "lives",
                                    "\xE2\x96\x81" "weather"};
    for (const auto& a : kAnimals) out.insert(out.end(), {a.name, a.food});
    for (const auto& p : kPlaces) out.insert(out.end(), {p.name, p.weather});
    return out;
  }
  int tokenizer_extra_pieces() const override { return 96; }

 private:
  TaskOptions o_;
};

std::unique_ptr<data::Task> make_docsearch_task(config::Reader& r) {
  TaskOptions o;
  r.field("types", o.types, "question types drawn uniformly: home (2 facts), weather (3 facts)").nonempty();
  read_tool_format(r, o.tool_format);
  for (const auto& t : o.types)
    if (std::find(kTypes.begin(), kTypes.end(), t) == kTypes.end())
      r.error("types", fmt::format("unknown question type '{}' (known: home, weather)", t));
  if (std::set<std::string>(o.types.begin(), o.types.end()).size() != o.types.size())
    r.error("types", "must not repeat a type");
  return std::make_unique<DocsearchTask>(o);
}

}  // namespace

// Adds the environment "docsearch" and its task of the same name (declared where the built-ins are
// registered; there is no header: nothing else calls into this file).
void register_docsearch(EnvRegistry& envs, data::TaskRegistry& tasks) {
  envs.add("docsearch",
           "multi-hop questions over a built-in 24-document corpus with search / open tools and [id] citations; "
           "reward 1 for the right answer, info citation_rubric = CaRR's rubric score (params: k, tool_format, bfs)",
           make_docsearch_env);
  tasks.add("docsearch", "two-hop questions for the docsearch environment (knobs: types, tool_format)",
            make_docsearch_task);
}

}  // namespace keel::env
