// Environment and task "docsearch": search ranking and open on hand queries, a full expert episode
// with pinned observations, CaRR citation-rubric scores of right, wrong, partial and missing
// citations (worked out in comments), malformed calls counted, the expert solving 200 generated
// problems within 5 turns and 200 tokens of a tokenizer trained as a run trains it, deterministic
// records, and bad knobs / records giving errors that name the key or record.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/fs.h"
#include "base/reader.h"
#include "models/tokenizer.h"
#include "trainer/cli/train_common.h"
#include "trainer/data/task.h"
#include "tests/trainer/env/env_test_util.h"
#include "trainer/env/environment.h"
#include "trainer/env/episodes.h"
#include "trainer/env/tool_call.h"

namespace keel::env {

void register_docsearch(EnvRegistry& envs, data::TaskRegistry& tasks);

namespace {

using testing::Built;

/// The environment from `env_yaml` (env.params) and the task from `task_yaml` (data.task_params).
Built build(const std::string& env_yaml = "{}", const std::string& task_yaml = "{}") {
  return testing::build(register_docsearch, "docsearch", env_yaml, task_yaml);
}

/// The first train record (seed 1) asking question `qid`.
data::PromptRecord record_for(const data::Task& t, const std::string& qid) {
  for (uint64_t i = 0; i < 10000; ++i) {
    auto r = t.make(1, data::Split::kTrain, i);
    if (r.meta.at("qid") == "\"" + qid + "\"") return r;
  }
  ADD_FAILURE() << "no record asks " << qid;
  return {};
}

std::string search_call(const std::string& q) { return format_tool_call({"search", nlohmann::json{{"query", q}}.dump()}, ToolFormat::kQwen); }
std::string open_call(int id) { return format_tool_call({"open", nlohmann::json{{"id", id}}.dump()}, ToolFormat::kQwen); }

/// Plays `actions` on a fresh environment of `r`; returns every step's result.
std::vector<StepResult> play(const EnvFactory& f, const data::PromptRecord& r, const std::vector<std::string>& actions) {
  auto env = f.make();
  EXPECT_EQ(env->reset(r, 0), "");
  std::vector<StepResult> out;
  for (const auto& a : actions) out.push_back(env->step(a));
  return out;
}

void expect_info(const StepResult& s, double success, double rubric, double cited, double searches, double tool_error,
                 double invalid) {
  EXPECT_EQ(s.info.size(), 6u);
  EXPECT_EQ(s.info.at("success"), success);
  EXPECT_NEAR(s.info.at("citation_rubric"), rubric, 1e-12);
  EXPECT_EQ(s.info.at("cited"), cited);
  EXPECT_EQ(s.info.at("searches"), searches);
  EXPECT_EQ(s.info.at("tool_error"), tool_error);
  EXPECT_EQ(s.info.at("invalid_action"), invalid);
}

TEST(DocsearchTask, PromptMetaAndFactory) {
  auto b = build();
  ASSERT_TRUE(b.errors.empty()) << b.errors[0];
  const auto r = record_for(*b.task, "weather:owl");
  EXPECT_EQ(r.prompt,
            "what is the weather where the animal that eats mice lives?\n"
            "tools: search {\"query\": words}, open {\"id\": n}; answer with [id] citations.");
  EXPECT_EQ(r.answer, "wet");
  EXPECT_EQ(r.meta.at("gold_docs"), "[1,17]");
  const auto h = record_for(*b.task, "home:seal");
  EXPECT_EQ(h.prompt.substr(0, h.prompt.find('\n')), "where does the animal that eats fish live?");
  EXPECT_EQ(h.answer, "river");
  EXPECT_EQ(h.meta.at("gold_docs"), "[6]");
  for (const auto& key : b.env->required_meta()) EXPECT_TRUE(r.meta.count(key)) << key;
  EXPECT_EQ(b.env->task(), "docsearch");
  EXPECT_EQ(b.env->info_keys(),
            (std::vector<std::string>{"success", "citation_rubric", "cited", "searches", "tool_error", "invalid_action"}));
  EXPECT_EQ(b.task->verifier(), "env");
  EXPECT_EQ(b.task->tokenizer_extra_pieces(), 96);
  const auto symbols = b.task->tokenizer_symbols();
  ASSERT_EQ(symbols.size(), 53u);  // 2 tags, 3 relation words, 16 animals + 16 foods, 8 places + 8 weathers
  EXPECT_EQ(symbols[0], "<tool_call>");
  EXPECT_EQ(symbols[2], "\xE2\x96\x81" "eats");  // "▁eats"
  EXPECT_EQ(symbols[5], "owl");
  EXPECT_EQ(symbols[6], "mice");
  EXPECT_EQ(symbols[52], "foggy");
}

TEST(DocsearchEnv, SearchRankingAndOpen) {
  auto b = build();
  const auto r = record_for(*b.task, "home:owl");
  const auto s = play(*b.env, r,
                      {search_call("Forest weather?"), search_call("eats fish"), search_call("zebra"), open_call(6), open_call(17),
                       search_call("lives in cave") + "\n" + open_call(24)});
  // "forest weather": doc 17 shares 2 words; docs 1 (owl) and 3 (bear) live in the forest: 1 word
  // each, ties by id. The snippet is the sentence sharing the most words.
  EXPECT_EQ(s[0].observation, "[17] forest weather is wet.\n[1] owl lives in forest.\n[3] bear lives in forest.");
  // "eats fish": doc 6 shares 2; every other animal shares "eats": the lowest ids follow.
  EXPECT_EQ(s[1].observation, "[6] seal eats fish.\n[1] owl eats mice.\n[2] fox eats hens.");
  EXPECT_EQ(s[2].observation, "no results");
  EXPECT_EQ(s[3].observation, "[6] seal eats fish. seal lives in river.");
  EXPECT_EQ(s[4].observation, "[17] forest weather is wet.");
  // Two calls in one turn: both results, one a line. "lives in cave": bat (8) and spider (16) share
  // 3 words, then owl (1) shares 2.
  EXPECT_EQ(s[5].observation,
            "[8] bat lives in cave.\n[16] spider lives in cave.\n[1] owl lives in forest.\n[24] marsh weather is foggy.");
  for (int t = 0; t < 6; ++t) {
    EXPECT_FALSE(s[static_cast<size_t>(t)].done);
    EXPECT_EQ(s[static_cast<size_t>(t)].reward, 0.0);
    expect_info(s[static_cast<size_t>(t)], 0, 0, 0, t < 2 ? t + 1 : (t < 5 ? 3 : 4), 0, 0);
  }

  auto k1 = build("{k: 1}");
  ASSERT_TRUE(k1.errors.empty()) << k1.errors[0];
  EXPECT_EQ(play(*k1.env, r, {search_call("eats fish")})[0].observation, "[6] seal eats fish.");
}

TEST(DocsearchEnv, ExpertEpisode) {
  auto b = build();
  const auto r = record_for(*b.task, "weather:owl");
  auto env = b.env->make();
  env->reset(r, 7);
  std::vector<std::string> actions, observations;
  StepResult last;
  for (int t = 0; t < 5 && !last.done; ++t) {
    actions.push_back(*env->expert_action());
    last = env->step(actions.back());
    observations.push_back(last.observation);
    if (!last.done) expect_info(last, 0, 0, 0, t < 2 ? 1 : 2, 0, 0);
  }
  ASSERT_EQ(actions.size(), 4u);
  EXPECT_EQ(actions[0], search_call("mice"));
  EXPECT_EQ(actions[0], "<tool_call>\n{\"name\":\"search\",\"arguments\":{\"query\":\"mice\"}}\n</tool_call>");
  EXPECT_EQ(observations[0], "[1] owl eats mice.");
  EXPECT_EQ(actions[1], open_call(1));
  EXPECT_EQ(observations[1], "[1] owl eats mice. owl lives in forest.");
  EXPECT_EQ(actions[2], search_call("forest weather"));
  EXPECT_EQ(observations[2], "[17] forest weather is wet.\n[1] owl lives in forest.\n[3] bear lives in forest.");
  EXPECT_EQ(actions[3], "wet [1] [17]");
  EXPECT_TRUE(last.done);
  EXPECT_EQ(last.reward, 1.0);
  // 3 rubrics (eats, lives, weather), all supported by docs 1 (opened) and 17 (its snippet is the
  // whole document) and identified: rubric 3/3.
  expect_info(last, 1, 1.0, 2, 2, 0, 0);
  EXPECT_EQ(env->expert_action(), std::nullopt);
  // A step after done repeats the verdict.
  const auto again = env->step("anything");
  EXPECT_TRUE(again.done);
  EXPECT_EQ(again.info.at("citation_rubric"), 1.0);
  EXPECT_EQ(b.task->gold_response(r), actions[0] + "\n" + actions[1] + "\n" + actions[2] + "\n" + actions[3]);

  // llama3: the calls are bare JSON objects with "parameters".
  auto l = build("{tool_format: llama3}", "{tool_format: llama3}");
  ASSERT_TRUE(l.errors.empty()) << l.errors[0];
  const std::string l_search = format_tool_call({"search", R"({"query":"mice"})"}, ToolFormat::kLlama3);
  const std::string l_open = format_tool_call({"open", R"({"id":1})"}, ToolFormat::kLlama3);
  EXPECT_EQ(l_open.rfind("{\"name\":\"open\",\"parameters\":", 0), 0u) << l_open;
  EXPECT_EQ(l.task->gold_response(record_for(*l.task, "home:owl")), l_search + "\n" + l_open + "\nforest [1]");
  const auto s = play(*l.env, record_for(*l.task, "home:owl"), {l_search, l_open, "forest [1]"});
  expect_info(s[2], 1, 1.0, 1, 1, 0, 0);
}

TEST(DocsearchEnv, WrongAndPartialCitations) {
  auto b = build();
  const auto w = record_for(*b.task, "weather:owl");
  // Cites bear's document (3) instead of owl's, and the forest's (17). Rubrics: R0 owl eats mice
  // {E2} unsupported, R1 owl lives in forest {E2, E1} unsupported, R2 forest weather is wet {E1, E0}
  // supported (17's snippet) and identified (wet in the answer, forest in 17) -> BFS from E0
  // reaches E1 through R2; R0, R1 unusable -> 1/3. The answer is right: success 1.
  auto s = play(*b.env, w, {open_call(3), search_call("forest weather"), "wet [3] [17]"});
  EXPECT_EQ(s[2].reward, 1.0);
  expect_info(s[2], 1, 1.0 / 3.0, 2, 1, 0, 0);
  // The right document, only seen in a snippet ("owl eats mice."): R0 owl eats mice {E1} usable,
  // R1 owl lives in forest {E1, E0} unsupported. BFS from E0 reaches nothing -> 0/2.
  const auto h = record_for(*b.task, "home:owl");
  s = play(*b.env, h, {search_call("mice"), "forest [1]"});
  expect_info(s[1], 1, 0.0, 1, 1, 0, 0);
  // The same without BFS (bfs: false): the fraction supported and identified, 1/2.
  auto nb = build("{bfs: false}");
  ASSERT_TRUE(nb.errors.empty()) << nb.errors[0];
  s = play(*nb.env, h, {search_call("mice"), "forest [1]"});
  expect_info(s[1], 1, 0.5, 1, 1, 0, 0);
  // Home: owl's document cited after opening it, with a wrong answer: E0 (desert) is not the gold
  // answer -> R1 {E1, E0} unidentified, R0 {E1} unlinked -> 0; success 0.
  s = play(*b.env, h, {search_call("eats mice"), open_call(1), "desert [1]"});
  EXPECT_EQ(s[2].reward, 0.0);
  expect_info(s[2], 0, 0.0, 1, 1, 0, 0);
  // Home, right answer, a seen but irrelevant document cited beside the right one: still 1.
  s = play(*b.env, h, {search_call("eats mice"), open_call(1), "forest [2] [1]"});
  expect_info(s[2], 1, 1.0, 2, 1, 0, 0);
  // Naming every place is not an answer: success 0 (the rubric's E0 is still named: 1).
  s = play(*b.env, h, {open_call(1), "forest desert cave river hill lake field marsh [1]"});
  expect_info(s[1], 0, 1.0, 1, 0, 0, 0);
}

TEST(DocsearchEnv, NoCitationsScoreZero) {
  auto b = build();
  const auto h = record_for(*b.task, "home:owl");
  // Right answer, no [n]: has_citations false -> rubric 0; success still 1.
  auto s = play(*b.env, h, {search_call("eats mice"), open_call(1), "forest"});
  EXPECT_TRUE(s[2].done);
  expect_info(s[2], 1, 0.0, 0, 1, 0, 0);
  // Citing a document never retrieved, or one that does not exist, is no citation content (CaRR
  // reads cited content from the search / open history).
  s = play(*b.env, h, {"forest [1] [99] [0]"});
  expect_info(s[0], 1, 0.0, 0, 0, 0, 0);
}

TEST(DocsearchEnv, MalformedCallsAreCounted) {
  auto b = build();
  const auto h = record_for(*b.task, "home:owl");
  const auto s = play(*b.env, h,
                      {"<tool_call>\n{\"name\": \"search\", \"arguments\": {\"query\": \"eats mice\"}\n</tool_call>",
                       "<tool_call>{\"name\": \"browse\", \"arguments\": {}}</tool_call>",
                       "<tool_call>{\"name\": \"search\", \"arguments\": {\"query\": 3}}</tool_call>",
                       "<tool_call>{\"name\": \"search\", \"arguments\": {\"query\": \"?!\"}}</tool_call>",
                       "<tool_call>{\"name\": \"open\", \"arguments\": {\"id\": \"1\"}}</tool_call>",
                       "<tool_call>{\"name\": \"open\", \"arguments\": {\"id\": 25}}</tool_call>",
                       "<tool_call>\n{\"name\": \"open\"", "   ", search_call("eats mice") + "\n" + open_call(99), open_call(1),
                       "forest [1]"});
  ASSERT_EQ(s.size(), 11u);
  EXPECT_EQ(s[0].observation, "error: the tool call is not valid JSON");
  EXPECT_EQ(s[1].observation, "error: unknown tool 'browse' (tools: search, open)");
  EXPECT_EQ(s[2].observation, "error: search needs {\"query\": string}");
  EXPECT_EQ(s[3].observation, "error: the query has no words");
  EXPECT_EQ(s[4].observation, "error: open needs {\"id\": integer}");
  EXPECT_EQ(s[5].observation, "error: no document 25 (ids 1-24)");
  EXPECT_EQ(s[6].observation, "error: <tool_call> is not closed by </tool_call>");
  for (size_t t = 0; t < 7; ++t) {
    EXPECT_FALSE(s[t].done) << t;
    expect_info(s[t], 0, 0, 0, 0, 1, 0);
  }
  EXPECT_EQ(s[7].observation, "error: call search or open, or answer with text and [id] citations");
  expect_info(s[7], 0, 0, 0, 0, 0, 1);
  // One good and one bad call: the good one runs, the turn counts as a tool error.
  EXPECT_EQ(s[8].observation,
            "[1] owl eats mice.\n[2] fox eats hens.\n[3] bear eats honey.\nerror: no document 99 (ids 1-24)");
  expect_info(s[8], 0, 0, 0, 1, 1, 0);
  expect_info(s[9], 0, 0, 0, 1, 0, 0);
  EXPECT_TRUE(s[10].done);
  expect_info(s[10], 1, 1.0, 1, 1, 0, 0);
}

TEST(DocsearchEnv, ExpertSolves200Problems) {
  auto b = build();
  std::set<std::string> qids;
  int turns = 0, max_turns = 0;
  size_t max_obs = 0, max_episode_chars = 0;
  for (uint64_t i = 0; i < 200; ++i) {
    const auto r = b.task->make(3, data::Split::kTrain, i);
    qids.insert(r.meta.at("qid"));
    auto env = b.env->make();
    env->reset(r, i);
    std::string actions;
    size_t chars = 0;
    StepResult last;
    int t = 0;
    while (t < 5 && !last.done) {
      const auto a = env->expert_action();
      ASSERT_TRUE(a) << r.id;
      last = env->step(*a);
      actions += (actions.empty() ? "" : "\n") + *a;
      chars += a->size() + last.observation.size();
      max_obs = std::max(max_obs, last.observation.size());
      if (a->find("\"search\"") != std::string::npos) {  // every snippet: "[id] " + at most 40 chars
        std::stringstream lines(last.observation);
        for (std::string line; std::getline(lines, line);) EXPECT_LE(line.size() - line.find(' ') - 1, 40u) << line;
      }
      ++t;
    }
    EXPECT_TRUE(last.done) << r.id;
    EXPECT_EQ(last.info.at("success"), 1.0) << r.id;
    EXPECT_EQ(last.info.at("citation_rubric"), 1.0) << r.id;
    EXPECT_EQ(last.info.at("tool_error") + last.info.at("invalid_action"), 0.0) << r.id;
    EXPECT_EQ(t, nlohmann::json::parse(r.meta.at("qid")).get<std::string>().rfind("home", 0) == 0 ? 3 : 4) << r.id;
    EXPECT_EQ(b.task->gold_response(r), actions) << r.id;
    turns += t;
    max_turns = std::max(max_turns, t);
    max_episode_chars = std::max(max_episode_chars, chars);
  }
  EXPECT_EQ(qids.size(), 32u);  // 16 animals x 2 types
  std::printf("docsearch expert: 200/200 solved, rubric 1, %.2f turns on average (max %d), longest observation %zu "
              "chars, longest episode %zu chars\n",
              turns / 200.0, max_turns, max_obs, max_episode_chars);
}

TEST(DocsearchEnv, ExpertEpisodeFitsTokenBudget) {
  // The run tokenizer as a run trains it (trainer/loop/run_state.cpp): expert transcripts rendered
  // with the plain template, the task's symbols and extra pieces.
  auto b = build();
  EpisodeOptions eo;
  eo.max_turns = 5;
  eo.max_tokens = 200;
  std::vector<std::string> corpus;
  for (uint64_t i = 0; i < 1000; ++i)
    corpus.push_back(expert_transcript(*b.env, b.task->make(0x70C, data::Split::kTrain, i), i, "plain", eo));
  const auto dir = std::filesystem::temp_directory_path() / ("keel_docsearch_tok_" + std::to_string(::getpid()));
  keel::fs::remove_tree(dir);
  const auto model = cli::train_run_tokenizer(corpus, dir, b.task->tokenizer_symbols(), b.task->tokenizer_extra_pieces());
  const auto tok = models::load_tokenizer(model.string());
  // Every question (the 32 are all among the first 400 eval records).
  std::set<std::string> qids;
  size_t longest = 0, total = 0, prompt_longest = 0, n = 0;
  for (uint64_t i = 0; i < 400; ++i) {
    const auto r = b.task->make(9, data::Split::kEval, i);
    qids.insert(r.meta.at("qid"));
    const auto ep = expert_episode(*tok, *b.env, r, i, "plain", eo);  // throws past max_tokens
    EXPECT_TRUE(ep.success) << r.id;
    longest = std::max(longest, ep.response.size());
    prompt_longest = std::max(prompt_longest, ep.prompt.size());
    total += ep.response.size();
    ++n;
  }
  EXPECT_EQ(qids.size(), 32u);
  std::printf("docsearch expert episodes: %.1f response tokens on average, %zu at most (budget 200), prompt %zu at "
              "most, vocabulary %lld\n",
              static_cast<double>(total) / static_cast<double>(n), longest, prompt_longest,
              static_cast<long long>(tok->vocab_size()));
  EXPECT_LE(longest, 160u);
  // A name is one piece wherever it stands: after a quote (queries) and after a space.
  auto pieces = [&](const std::string& text) {
    std::vector<std::string> out;
    for (const auto id : tok->encode(text, /*add_special=*/false)) out.push_back(tok->id_to_piece(id));
    return out;
  };
  EXPECT_EQ(pieces("\"shrimp\""), (std::vector<std::string>{"\xE2\x96\x81", "\"", "shrimp", "\""}));
  EXPECT_EQ(pieces("eats shrimp"), (std::vector<std::string>{"\xE2\x96\x81" "eats", "\xE2\x96\x81", "shrimp"}));
  // No name occurs inside another word of the task's text (a bare piece would split that word).
  std::set<std::string> words;
  for (const auto& text : corpus) {
    std::string w;
    for (char c : text + " ") {
      if (std::isalnum(static_cast<unsigned char>(c))) w += c;
      else if (!w.empty()) words.insert(w), w.clear();
    }
  }
  for (const auto& sym : b.task->tokenizer_symbols()) {
    if (sym[0] == '<' || sym.rfind("\xE2\x96\x81", 0) == 0) continue;  // the tags and the word pieces
    for (const auto& w : words)
      if (w != sym) {
        EXPECT_EQ(w.find(sym), std::string::npos) << "'" << sym << "' inside '" << w << "'";
      }
  }
  keel::fs::remove_tree(dir);
}

TEST(DocsearchTask, RecordsAreDeterministic) {
  auto b = build();
  std::set<std::string> train, eval;
  for (uint64_t i = 0; i < 100; ++i) {
    const auto r = b.task->make(5, data::Split::kTrain, i);
    const auto again = b.task->make(5, data::Split::kTrain, i);
    EXPECT_EQ(r.id, "docsearch/train/" + std::to_string(i));
    EXPECT_EQ(r.prompt, again.prompt);
    EXPECT_EQ(r.answer, again.answer);
    EXPECT_EQ(r.meta, again.meta);
    train.insert(r.meta.at("qid"));
    eval.insert(b.task->make(5, data::Split::kEval, i).meta.at("qid"));
  }
  std::vector<std::string> first_train, first_eval, other_seed;
  for (uint64_t i = 0; i < 20; ++i) {
    first_train.push_back(b.task->make(5, data::Split::kTrain, i).meta.at("qid"));
    first_eval.push_back(b.task->make(5, data::Split::kEval, i).meta.at("qid"));
    other_seed.push_back(b.task->make(6, data::Split::kTrain, i).meta.at("qid"));
  }
  EXPECT_NE(first_train, first_eval);
  EXPECT_NE(first_train, other_seed);
  EXPECT_GT(train.size(), 24u);  // of 32 questions
  EXPECT_GT(eval.size(), 24u);

  auto home = build("{}", "{types: [home]}");
  ASSERT_TRUE(home.errors.empty()) << home.errors[0];
  for (uint64_t i = 0; i < 50; ++i)
    EXPECT_EQ(home.task->make(5, data::Split::kTrain, i).meta.at("qid").rfind("\"home:", 0), 0u);
}

TEST(DocsearchParams, BadValuesNameTheKey) {
  const auto has = testing::has_error;
  auto e = build("{k: 0, tool_format: xml, bfs: maybe, top_k: 2}").errors;
  ASSERT_EQ(e.size(), 4u);
  EXPECT_TRUE(has(e, "env.k: must be >= 1")) << e[0];
  EXPECT_TRUE(has(e, "env.tool_format:")) << e[1];
  EXPECT_TRUE(has(e, "env.bfs:")) << e[2];
  EXPECT_TRUE(has(e, "env.top_k: unknown key")) << e[3];
  e = build("{k: 9}").errors;
  ASSERT_EQ(e.size(), 1u);
  EXPECT_TRUE(has(e, "env.k: must be <= 8")) << e[0];
  e = build("{}", "{types: [home, moon]}").errors;
  ASSERT_EQ(e.size(), 1u);
  EXPECT_TRUE(has(e, "task.types: unknown question type 'moon' (known: home, weather)")) << e[0];
  e = build("{}", "{types: [home, home]}").errors;
  ASSERT_EQ(e.size(), 1u);
  EXPECT_TRUE(has(e, "task.types: must not repeat a type")) << e[0];
  e = build("{}", "{types: []}").errors;
  ASSERT_EQ(e.size(), 1u);
  EXPECT_TRUE(has(e, "task.types:")) << e[0];

  // Records: a missing or unknown qid is an error naming the record and the field.
  auto b = build();
  auto env = b.env->make();
  auto r = record_for(*b.task, "home:owl");
  auto expect_error = [&](const data::PromptRecord& bad, const std::string& text) {
    try {
      env->reset(bad, 0);
      ADD_FAILURE() << "no error for " << text;
    } catch (const Error& ex) {
      EXPECT_NE(std::string(ex.what()).find(text), std::string::npos) << ex.what();
      EXPECT_NE(std::string(ex.what()).find("record '" + r.id + "'"), std::string::npos) << ex.what();
    }
  };
  auto bad = r;
  bad.meta.erase("qid");
  expect_error(bad, "has no meta.qid");
  bad.meta["qid"] = "home:owl";  // not JSON text
  expect_error(bad, "meta.qid must be a JSON string");
  bad.meta["qid"] = "\"size:owl\"";
  expect_error(bad, "has type 'size'");
  bad.meta["qid"] = "\"home:zebra\"";
  expect_error(bad, "names animal 'zebra'");
}

}  // namespace
}  // namespace keel::env
