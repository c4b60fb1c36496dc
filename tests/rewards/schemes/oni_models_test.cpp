// Tests of ONI's intrinsic reward models (rewards/schemes/oni_models.h, spec rewards.md D4) and their
// wiring into the `oni` scheme: the spec's worked numbers, the vectorised functions against loops,
// a rule-based verifier as the annotator, bit-exact save -> load -> score / continue-training through
// the scheme's state, config errors with their YAML paths, and (suites *Slow) that the classifier
// and the ranker learn a keyword rule that generalises to unseen messages.
#include "rewards/schemes/oni_models.h"

#include <cmath>
#include <functional>
#include <limits>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "rewards/composite.h"
#include "rewards/schemes/register_util.h"
#include "tests/rewards/schemes/test_util.h"
#include "base/error.h"
#include "base/node.h"
#include "base/reader.h"
#include "trainer/config/config.h"
#include "trainer/config/reward_config.h"
#include "tests/rewards/reward_test_util.h"

namespace keel::rewards {
namespace {

using testing::dt;

const RewardRegistry& registry() {
  static const RewardRegistry reg = [] {
    RewardRegistry r("reward scheme");
    register_builtin_reward_schemes(r);
    return r;
  }();
  return reg;
}

std::unique_ptr<RewardScheme> build_oni(const std::string& yaml) { return testing::build_scheme_from(registry(), "oni", yaml); }

/// A keyword annotator: format_regex scores 1 when the message contains `word`, else 0.
std::unique_ptr<RewardScheme> regex_annotator(const std::string& word) {
  config::Node node = config::parse_yaml_string("pattern: " + word + "\n", "annotator.yaml");
  config::Diagnostics diag;
  config::Reader r(&node, "annotator", diag);
  RewardRegistry reg("verifier");
  register_builtin_rewards(reg);
  auto s = reg.get("format_regex").fn(r);
  r.finish();
  diag.throw_if_any();
  return s;
}

/// Small, fast network and training options for the non-Slow tests.
OniIntrinsicOptions small_options(const std::string& model) {
  OniIntrinsicOptions o;
  o.model = model;
  o.annotator.scheme = "format_regex";
  o.net.max_chars = kOniMinChars;
  o.net.embed_dim = 4;
  o.net.hidden_dim = 6;
  o.net.mlp_hidden = {5};
  o.classification = {4, 1e-2, 2, 0.0};
  o.ranking = {4, 1e-2, 2, 10.0};
  return o;
}

RewardInput batch_of(const std::vector<std::string>& responses) {
  RewardInput in;
  in.responses = responses;
  in.prompts.assign(responses.size(), "p");
  in.group_ids = torch::arange(static_cast<int64_t>(responses.size()), torch::kLong);
  return in;
}

// ---- worked examples and loop references -----------------------------------------------------------

TEST(OniModels, ClassifierRewardWorkedExamples) {
  // p(class 1) 0.62 > 0.5 -> 1; 0.41 -> 0; exactly 0.5 is not above the threshold -> 0.
  const at::Tensor r = oni_classifier_reward(torch::tensor({0.62f, 0.41f, 0.5f}), 0.5);
  EXPECT_TRUE(torch::equal(r, dt({1, 0, 0})));
  EXPECT_TRUE(torch::equal(oni_classifier_reward(torch::tensor({0.62, 0.41}), 0.7), dt({0, 0})));
}

TEST(OniModels, PairLossWorkedExamples) {
  // r = (1, 0). First better (q = 0): −log softmax(1, 0)_1 = −log σ(1) = log(1 + e^−1) = 0.3132617.
  // Tie (q = 0.5): 0.5·0.3132617 + 0.5·(−log σ(−1) = 1.3132617) = 0.8132617; invalid is q = 0.5 too.
  // Second better (q = 1): 1.3132617.
  const at::Tensor l = oni_pair_loss(dt({1, 1, 1}), dt({0, 0, 0}), dt({0, 0.5, 1}));
  EXPECT_NEAR(l[0].item<double>(), 0.3132617, 1e-7);
  EXPECT_NEAR(l[1].item<double>(), 0.8132617, 1e-7);
  EXPECT_NEAR(l[2].item<double>(), 1.3132617, 1e-7);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(torch::equal(oni_pair_target(dt({1, 0, 1, nan, 2}), dt({0, 1, 1, 0, 2.05}), 0.1), dt({0, 1, 0.5, 0.5, 0.5})));
}

TEST(OniModels, PairLossMatchesLoop) {
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    const int64_t p = seed % 7;
    const at::Tensor r1 = torch::randn({p}, torch::kFloat64) * (1 + seed % 5) * 5;  // up to large gaps
    const at::Tensor r2 = torch::randn({p}, torch::kFloat64) * (1 + seed % 5) * 5;
    at::Tensor q = torch::randint(0, 3, {p}, torch::kFloat64) / 2.0;  // 0, 0.5, 1
    if (seed % 3 == 0) q = torch::rand({p}, torch::kFloat64);          // any soft label
    const at::Tensor fast = oni_pair_loss(r1, r2, q);
    ASSERT_EQ(fast.sizes(), r1.sizes());
    for (int64_t i = 0; i < p; ++i) {
      const double a = r1[i].item<double>(), b = r2[i].item<double>(), qi = q[i].item<double>();
      const double m = std::max(a, b), lse = m + std::log(std::exp(a - m) + std::exp(b - m));
      const double want = -((1 - qi) * (a - lse) + qi * (b - lse));
      EXPECT_NEAR(fast[i].item<double>(), want, 1e-9 * std::max(1.0, std::abs(want))) << seed << " " << i;
    }
  }
}

TEST(OniModels, PairTargetMatchesLoop) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    const int64_t p = seed % 9;
    at::Tensor s1 = torch::randint(0, 4, {p}, torch::kFloat64) / 2.0, s2 = torch::randint(0, 4, {p}, torch::kFloat64) / 2.0;
    if (p > 2) {
      s1[0] = nan;
      s2[1] = (seed % 2) ? inf : -inf;
    }
    const double margin = (seed % 3) * 0.5;
    const at::Tensor fast = oni_pair_target(s1, s2, margin);
    for (int64_t i = 0; i < p; ++i) {
      const double a = s1[i].item<double>(), b = s2[i].item<double>();
      double want;
      if (!std::isfinite(a) || !std::isfinite(b)) want = 0.5;          // invalid
      else if (std::abs(a - b) <= margin) want = 0.5;                  // tie
      else want = b > a ? 1.0 : 0.0;                                   // second / first better
      EXPECT_EQ(fast[i].item<double>(), want) << seed << " " << i;
    }
  }
}

TEST(OniModels, RankingRewardWorkedExample) {
  // raw (1, 2, 3), fresh statistics: μ = 2, population var 2/3, σ = 0.8164966;
  // z = (−1.2247449, 0, 1.2247449); z > −0.5 keeps (0, 1.2247449), the first becomes 0.
  RunningMeanStd s;
  s.update(dt({1, 2, 3}));
  OniRankingRewardOptions o;
  const at::Tensor r = oni_ranking_reward(dt({1, 2, 3}), s, o);
  EXPECT_NEAR(r[0].item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(r[1].item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(r[2].item<double>(), 1.2247449, 1e-7);
  // A standardised value in (−0.5, 0) is kept (negative): raw 1.7 -> z = −0.3674235.
  EXPECT_NEAR(oni_ranking_reward(dt({1.7}), s, o).item<double>(), -0.3674235, 1e-7);
  o.use_raw_reward = true;  // the released learner's behaviour (spec open question 2)
  EXPECT_TRUE(torch::equal(oni_ranking_reward(dt({1, 2, 3}), s, o), dt({1, 2, 3})));
}

TEST(OniModels, RankingRewardMatchesLoop) {
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    const int64_t b = 1 + seed % 8;
    const at::Tensor raw = torch::randn({b}, torch::kFloat64) * 3 + 1;
    RunningMeanStd s;
    s.update(seed % 4 == 0 ? torch::full({b}, 2.0, torch::kFloat64) : raw);  // var 0 hits the floor
    OniRankingRewardOptions o;
    o.eps_threshold_quantile = -1.0 + 0.1 * (seed % 15);
    const at::Tensor fast = oni_ranking_reward(raw, s, o);
    for (int64_t i = 0; i < b; ++i) {
      const double z = (raw[i].item<double>() - s.mean()) / std::sqrt(std::max(s.var(), o.var_floor));
      EXPECT_EQ(fast[i].item<double>(), z > o.eps_threshold_quantile ? z : 0.0) << seed;
    }
  }
}

TEST(OniModels, DefaultsFollowTheSpec) {
  const OniIntrinsicOptions o;
  EXPECT_EQ(o.model, "signal");
  EXPECT_EQ(o.net.embed_dim, 32);
  EXPECT_EQ(o.net.hidden_dim, 64);
  EXPECT_EQ(o.net.max_chars, 256);
  EXPECT_EQ(o.classification.batch_size, 256);
  EXPECT_EQ(o.classification.lr, 1e-4);
  EXPECT_EQ(o.classification.grad_steps, 32);
  EXPECT_EQ(o.classification_threshold, 0.5);
  EXPECT_EQ(o.ranking.grad_clip, 10.0);
  EXPECT_EQ(o.ranking_reward.eps_threshold_quantile, -0.5);
  EXPECT_FALSE(o.ranking_reward.use_raw_reward);
}

// ---- the annotator and the online models --------------------------------------------------------------

TEST(OniAnnotator, RuleBasedVerifierLabelsAndComparesMessages) {
  OniAnnotatorOptions o;
  o.scheme = "format_regex";
  OniAnnotator a(regex_annotator("gold"), o);
  EXPECT_TRUE(torch::equal(a.labels({"You see a gold piece.", "A rock.", "gold"}), dt({1, 0, 1})));
  // (gold, rock): first better q = 0; (rock, gold): q = 1; (rock, stone): equal scores, a tie q = 0.5.
  EXPECT_TRUE(torch::equal(a.compare({{"gold", "rock"}, {"rock", "gold"}, {"rock", "stone"}}), dt({0, 1, 0.5})));
  EXPECT_EQ(a.scores({}).numel(), 0);
}

TEST(OniIntrinsic, HashingRewardsAMessageOnceItsLabelIsCached) {
  OniIntrinsicOptions o = small_options("hashing");
  OniIntrinsic m(o, regex_annotator("gold"));
  std::map<std::string, double> metrics;
  // First sight: unseen messages get 0 and are annotated after scoring.
  EXPECT_TRUE(torch::equal(m.step({"gold", "rock", "gold"}, metrics), dt({0, 0, 0})));
  EXPECT_EQ(metrics.at("oni/annotated"), 2.0);
  EXPECT_EQ(metrics.at("oni/labels"), 2.0);
  EXPECT_TRUE(torch::equal(m.step({"rock", "gold", "new gold"}, metrics), dt({0, 1, 0})));
  EXPECT_TRUE(torch::equal(m.step({"new gold"}, metrics), dt({1})));
  o.annotate_per_step = 1;  // a slower annotator: one message per batch, oldest first
  OniIntrinsic slow(o, regex_annotator("gold"));
  slow.step({"rock", "gold"}, metrics);
  EXPECT_EQ(metrics.at("oni/pending"), 1.0);
  EXPECT_TRUE(torch::equal(slow.step({"gold"}, metrics), dt({0})));
  EXPECT_TRUE(torch::equal(slow.step({"gold"}, metrics), dt({1})));
}

TEST(OniIntrinsic, BatchedRewardsOfRepeatedMessagesMatchAPerMessageLoop) {
  // The learned models score each distinct message once and scatter; the loop scores message by
  // message. Ranking: the running statistics count every step (repeats included).
  const std::vector<std::string> vocab = {"gold", "rock", "You see here a gold piece.", "", "It's a wall.", "door"};
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    std::vector<std::string> msgs;
    for (int64_t i = 0, n = seed % 9; i < n; ++i) msgs.push_back(vocab[static_cast<size_t>(torch::randint(0, 6, {1}).item<int64_t>())]);
    OniIntrinsicOptions o = small_options(seed % 2 ? "ranking" : "classification");
    o.net.seed = seed;
    o.classification_threshold = 0.3 + 0.1 * (seed % 5);
    OniIntrinsic m(o, regex_annotator("gold"));
    std::vector<double> loop;
    if (m.ranker()) {
      std::vector<double> raw;
      for (const auto& x : msgs) raw.push_back(m.ranker()->raw({x}).item<float>());
      RunningMeanStd stats;
      if (!raw.empty()) stats.update(torch::tensor(raw, torch::kFloat64));
      for (double r : raw) {
        const double z = (r - stats.mean()) / std::sqrt(std::max(stats.var(), 1e-8));
        loop.push_back(z > -0.5 ? z : 0.0);
      }
    } else {
      for (const auto& x : msgs) loop.push_back(m.classifier()->probability({x}).item<float>() > o.classification_threshold ? 1.0 : 0.0);
    }
    std::map<std::string, double> metrics;
    const at::Tensor fast = m.step(msgs, metrics);
    ASSERT_EQ(fast.numel(), static_cast<int64_t>(msgs.size()));
    for (size_t i = 0; i < msgs.size(); ++i) EXPECT_NEAR(fast[static_cast<int64_t>(i)].item<double>(), loop[i], 1e-3) << seed << " " << i;
  }
}

/// Scores a few batches, saves, then checks that a restored copy (built with a different seed, so
/// nothing matches by accident) scores and keeps training bit-identically.
void expect_round_trip(const std::string& model) {
  SCOPED_TRACE(model);
  const std::vector<std::vector<std::string>> batches = {
      {"You see here a gold piece.", "It's a wall.", "gold!"},
      {"You hear a door open.", "You see here a gold piece.", "The kitten bites."},
      {"3 gold pieces.", "You feel hungry.", "It's a wall."},
      {"You see a dagger.", "gold gold", "You hear a door open."}};
  OniIntrinsicOptions o = small_options(model);
  o.net.seed = 3;
  OniIntrinsic a(o, regex_annotator("gold"));
  std::map<std::string, double> metrics;
  a.step(batches[0], metrics);
  {
    torch::NoGradGuard ng;  // the trainer may score under no-grad; the model still trains
    a.step(batches[1], metrics);
  }
  StateDict st;
  a.save_state(st);
  o.net.seed = 99;
  OniIntrinsic b(o, regex_annotator("gold"));
  b.load_state(st);
  StateDict st_b;
  b.save_state(st_b);
  ASSERT_EQ(st_b.size(), st.size());
  for (const auto& [k, t] : st) EXPECT_TRUE(torch::equal(st_b.at(k), t)) << k;
  for (size_t i = 2; i < batches.size(); ++i) {
    std::map<std::string, double> ma, mb;
    const at::Tensor ra = a.step(batches[i], ma), rb = b.step(batches[i], mb);
    EXPECT_TRUE(torch::equal(ra, rb)) << ra << " vs " << rb;
    EXPECT_EQ(ma, mb);
  }
  if (a.classifier()) {
    EXPECT_TRUE(torch::equal(a.classifier()->probability(batches[0]), b.classifier()->probability(batches[0])));
  }
  if (a.ranker()) {
    EXPECT_TRUE(torch::equal(a.ranker()->raw(batches[1]), b.ranker()->raw(batches[1])));
    EXPECT_GT(a.ranker()->num_pairs(), 0);
  }
  // The state changes the outputs: a cold model differs after the same two batches.
  OniIntrinsic cold(o, regex_annotator("gold"));
  if (model != "hashing") {
    const at::Tensor probe = model == "ranking" ? cold.ranker()->raw(batches[2]) : cold.classifier()->probability(batches[2]);
    const at::Tensor warm = model == "ranking" ? a.ranker()->raw(batches[2]) : a.classifier()->probability(batches[2]);
    EXPECT_FALSE(torch::equal(probe, warm));
  }
  // A state of another model kind is refused with a clear message.
  OniIntrinsic other(small_options(model == "ranking" ? "classification" : "ranking"), regex_annotator("gold"));
  EXPECT_NE(testing::error_of([&] { other.load_state(st); }).find("the checkpoint holds ONI intrinsic model"), std::string::npos);
}

TEST(OniIntrinsic, StateRoundTripScoresAndTrainsBitIdentically) {
  expect_round_trip("hashing");
  expect_round_trip("classification");
  expect_round_trip("ranking");
}

// ---- through the registered `oni` scheme ----------------------------------------------------------------

TEST(OniScheme, LearnedModelThroughTheRegistryRoundTripsItsState) {
  const std::string yaml =
      "c_ext: 1.0\nc_llm: 0.5\nbeta: 3\nenv: rm_scores\nmodel: ranking\nannotate_per_step: 3\n"
      "annotator: {scheme: format_regex, params: {pattern: gold}}\n"
      "net: {max_chars: 123, embed_dim: 4, hidden_dim: 6, mlp_hidden: [5], seed: 1}\n"
      "ranking: {batch_size: 4, lr: 0.01, grad_steps: 2}\n";
  RewardInput a = batch_of({"gold", "rock", "You see gold.", "rock"});
  a.rm_scores = torch::tensor({1.0f, 0.0f, 0.0f, 2.0f});
  RewardInput b = batch_of({"stone", "gold coin", "rock", "It's dark."});
  b.rm_scores = torch::tensor({0.0f, 1.0f, 0.5f, 0.0f});
  auto s = build_oni(yaml);
  ASSERT_TRUE(s->stateful());
  s->score(a);
  RewardState st;
  s->save_state(st);
  const RewardOutput first = s->score(b);
  const RewardOutput next = s->score(a);
  auto fresh = build_oni(yaml);
  fresh->load_state(st);
  EXPECT_TRUE(torch::equal(fresh->score(b).rewards, first.rewards));
  EXPECT_TRUE(torch::equal(fresh->score(a).rewards, next.rewards));  // continued training is identical
  EXPECT_TRUE(first.detail.count("intrinsic"));
  for (const auto& [k, v] : first.metrics) EXPECT_EQ(k.rfind("oni/", 0), 0u) << k;
  // The default (model: signal) stays stateless, as before.
  EXPECT_FALSE(build_oni("c_ext: 0.1\n")->stateful());
}

TEST(OniScheme, HashingOverMetadataMessagesWithEpisodeCounts) {
  // c_ext 0, c_llm 1, β 1. Sample 0 steps: gold, gold, rock; sample 1: rock, (padding).
  // First batch: every message unseen -> r_int 0 -> rewards 0. Then "gold" is labelled 1, "rock" 0.
  // Second batch: sample 0 = 1/1 + 1/2 + 0 = 1.5; sample 1 = 0.
  auto s = build_oni(
      "c_ext: 0\nc_llm: 1\nbeta: 1\nenv: extra.env\nmodel: hashing\nmessages: meta.msgs\n"
      "annotator: {scheme: format_regex, params: {pattern: gold}}\n");
  RewardInput in = batch_of({"a", "b"});
  in.extra["env"] = torch::zeros({2, 3});
  in.metadata = {nlohmann::json{{"msgs", {"gold", "gold", "rock"}}}, nlohmann::json{{"msgs", "rock"}}};
  EXPECT_TRUE(torch::equal(s->score(in).rewards, torch::zeros({2})));
  const RewardOutput out = s->score(in);
  EXPECT_NEAR(out.rewards[0].item<float>(), 1.5f, 1e-6);
  EXPECT_EQ(out.rewards[1].item<float>(), 0.0f);
  EXPECT_EQ(out.detail.at("intrinsic")[0].item<float>(), 2.0f);
  in.metadata[1] = nlohmann::json{{"msgs", {"a", "b", "c", "d"}}};
  EXPECT_NE(testing::error_of([&] { s->score(in); }).find("has 4 messages in metadata 'msgs' but the env rewards have S = 3"),
            std::string::npos);
}

TEST(OniScheme, HashingMatchesAStreamingLoop) {
  // Two batches per seed of random per-step messages (lists of varying length in metadata) and env
  // rewards; the loop keeps its own label table (messages of earlier batches, labelled by the keyword
  // rule) and OniMessageCounter per sample.
  const std::vector<std::string> vocab = {"gold", "rock", "a gold coin", "door", "", "gold?"};
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    const double c_ext = 0.5 * (seed % 3), c_llm = 0.25 + 0.25 * (seed % 4), beta = seed % 4;
    auto s = build_oni(fmt::format("c_ext: {}\nc_llm: {}\nbeta: {}\nenv: extra.env\nmodel: hashing\nmessages: meta.msgs\n"
                                   "annotator: {{scheme: format_regex, params: {{pattern: gold}}}}\n",
                                   c_ext, c_llm, beta));
    std::map<std::string, double> labels;
    for (int round = 0; round < 2; ++round) {
      const int64_t n = 1 + seed % 4, t = 1 + (seed + round) % 5;
      RewardInput in = batch_of(std::vector<std::string>(static_cast<size_t>(n), "r"));
      in.extra["env"] = torch::randn({n, t});
      std::vector<std::vector<std::string>> msgs(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        const int64_t len = torch::randint(0, t + 1, {1}).item<int64_t>();
        for (int64_t j = 0; j < len; ++j)
          msgs[static_cast<size_t>(i)].push_back(vocab[static_cast<size_t>(torch::randint(0, 6, {1}).item<int64_t>())]);
        in.metadata.push_back(nlohmann::json{{"msgs", msgs[static_cast<size_t>(i)]}});
      }
      const at::Tensor got = s->score(in).rewards;
      for (int64_t i = 0; i < n; ++i) {
        OniMessageCounter counter;
        double want = 0.0;
        for (size_t j = 0; j < msgs[static_cast<size_t>(i)].size(); ++j) {
          const std::string& m = msgs[static_cast<size_t>(i)][j];
          const double r_int = labels.count(m) ? labels.at(m) : 0.0;
          want += c_ext * in.extra.at("env")[i][static_cast<int64_t>(j)].item<float>() +
                  c_llm * r_int / std::pow(static_cast<double>(counter.observe(0, m)), beta);
        }
        EXPECT_NEAR(got[i].item<float>(), want, 1e-5) << seed << " round " << round << " sample " << i;
      }
      for (const auto& row : msgs)
        for (const auto& m : row) labels[m] = m.find("gold") != std::string::npos ? 1.0 : 0.0;
    }
  }
}

TEST(OniScheme, ConfigErrorsNameTheYamlPath) {
  EXPECT_NE(testing::error_of([] { build_oni("model: foo\n"); }).find("params.yaml:1: params.model:"), std::string::npos);
  const std::string missing = testing::error_of([] { build_oni("model: classification\n"); });
  EXPECT_NE(missing.find("params.annotator.scheme: model 'classification' needs an annotator (known:"), std::string::npos)
      << missing;
  const std::string unknown = testing::error_of([] { build_oni("model: hashing\nannotator: {scheme: oni}\n"); });
  EXPECT_NE(unknown.find("params.annotator.scheme: unknown annotator scheme 'oni' (known:"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("format_regex"), std::string::npos);
  const std::string params = testing::error_of([] { build_oni("model: hashing\nannotator: {scheme: format_regex}\n"); });
  EXPECT_NE(params.find("params.annotator.params.pattern: missing required key"), std::string::npos) << params;
  const std::string net = testing::error_of([] {
    build_oni("model: ranking\nannotator: {scheme: format_regex, params: {pattern: x}}\nnet: {max_chars: 100}\nranking: {bogus: 1}\n");
  });
  EXPECT_NE(net.find("params.yaml:3: params.net.max_chars: must be >= 123"), std::string::npos) << net;
  EXPECT_NE(net.find("params.yaml:4: params.ranking.bogus: unknown key"), std::string::npos) << net;
  EXPECT_NE(testing::error_of([] { build_oni("messages: meta.\n"); }).find("params.messages: 'meta.' is not a message source"),
            std::string::npos);
  EXPECT_NE(testing::error_of([] {
              build_oni("model: hashing\nannotator: {scheme: format_regex, params: {pattern: x}}\nenv: rm_scores\n")
                  ->score([] {
                    RewardInput in = batch_of({"a"});
                    in.rm_scores = torch::zeros({1, 2});
                    return in;
                  }());
            }).find("(messages: response): one message per sample"),
            std::string::npos);
}

/// configs/rewards/oni_classifier.yaml's reward section, built as the trainer builds it: the
/// composite scores arithmetic-like responses, and its state round-trips through a fresh instance.
TEST(OniConfigSlow, ExampleConfigBuildsScoresAndRoundTrips) {
  const config::Node root = config::parse_yaml_file(std::string(KEEL_SOURCE_DIR) + "/configs/rewards/oni_classifier.yaml");
  config::Diagnostics diag;
  config::Reader r(&root, "", diag);
  config::RewardSection section;
  const config::KnownNames known;
  r.section("reward", "", [&](config::Reader& s) { config::read_reward(s, section, known); });
  diag.throw_if_any();
  RewardRegistry reg("reward scheme");
  register_builtin_rewards(reg);
  register_builtin_reward_schemes(reg);
  register_builtin_reward_models(reg);
  const auto build = [&] { return build_composite_reward(section, reg); };
  auto reward = build();
  ASSERT_TRUE(reward->stateful());
  RewardInput a = batch_of({" 7", "8", "seven", " 12 "});
  a.metadata = {nlohmann::json{{"answer", "7"}}, nlohmann::json{{"answer", "7"}}, nlohmann::json{{"answer", "7"}},
                nlohmann::json{{"answer", "12"}}};
  RewardInput b = a;
  b.responses = {"7", "eight", " 9", "12"};
  const RewardOutput first = reward->score(a);
  EXPECT_TRUE(torch::isfinite(first.rewards).all().item<bool>());
  EXPECT_EQ(first.metrics.at("reward/oni/oni/labels"), 4.0);
  RewardState st;
  reward->save_state(st);
  const at::Tensor want = reward->score(b).rewards;
  auto fresh = build();
  fresh->load_state(st);
  EXPECT_TRUE(torch::equal(fresh->score(b).rewards, want));
}

// ---- learning (slow) -----------------------------------------------------------------------------------

/// NetHack-like messages "<start> <adjective> <noun>."; the keyword "gold" marks the helpful ones.
std::vector<std::string> messages(const std::vector<std::string>& starts, const std::vector<std::string>& adjs,
                                   const std::vector<std::string>& nouns) {
  std::vector<std::string> out;
  for (const auto& s : starts)
    for (const auto& a : adjs)
      for (const auto& n : nouns) out.push_back(s + " " + a + " " + n + ".");
  return out;
}

const std::vector<std::string> kNouns = {"gold piece", "dagger", "apple", "gold ring", "fountain", "gold coins",
                                         "boulder", "scroll", "gold amulet", "door"};

OniIntrinsicOptions slow_options(const std::string& model) {
  OniIntrinsicOptions o = small_options(model);
  o.net.embed_dim = 16;
  o.net.hidden_dim = 32;
  o.net.mlp_hidden = {32};
  o.annotate_per_step = 1000;
  o.classification = {32, 3e-3, 60, 0.0};
  o.ranking = {32, 3e-3, 60, 10.0};
  return o;
}

TEST(OniClassifierSlow, LearnsAKeywordRuleAndGeneralisesToUnseenMessages) {
  OniIntrinsic m(slow_options("classification"), regex_annotator("gold"));
  const auto train = messages({"You see here a", "There is a"}, {"shiny", "old", "small"}, kNouns);
  std::map<std::string, double> metrics;
  for (int round = 0; round < 4; ++round) m.step(train, metrics);
  EXPECT_EQ(metrics.at("oni/labels"), static_cast<double>(train.size()));
  // Unseen starts and adjectives: the reward must follow the keyword.
  const auto test = messages({"You find a", "Something like a"}, {"rusty", "heavy"}, kNouns);
  const at::Tensor r = m.classifier()->reward(test);
  int64_t correct = 0;
  for (size_t i = 0; i < test.size(); ++i)
    correct += (r[static_cast<int64_t>(i)].item<double>() == 1.0) == (test[i].find("gold") != std::string::npos);
  EXPECT_GE(correct, static_cast<int64_t>(test.size()) * 9 / 10) << "accuracy " << correct << "/" << test.size()
                                                                   << ", last loss " << metrics.at("oni/rm_loss");
}

TEST(OniRankingSlow, LearnsToRankTheKeywordAboveTheRest) {
  OniIntrinsicOptions o = slow_options("ranking");
  o.annotate_per_step = 200;
  OniIntrinsic m(o, regex_annotator("gold"));
  const auto train = messages({"You see here a", "There is a"}, {"shiny", "old", "small"}, kNouns);
  std::map<std::string, double> metrics;
  for (int round = 0; round < 4; ++round) m.step(train, metrics);
  const auto test = messages({"You find a", "Something like a"}, {"rusty", "heavy"}, kNouns);
  const at::Tensor raw = m.ranker()->raw(test);
  int64_t ordered = 0, total = 0;
  for (size_t i = 0; i < test.size(); ++i)
    for (size_t j = 0; j < test.size(); ++j) {
      const bool gi = test[i].find("gold") != std::string::npos, gj = test[j].find("gold") != std::string::npos;
      if (!gi || gj) continue;
      ++total;
      ordered += raw[static_cast<int64_t>(i)].item<float>() > raw[static_cast<int64_t>(j)].item<float>();
    }
  EXPECT_GE(ordered, total * 9 / 10) << ordered << "/" << total << ", last loss " << metrics.at("oni/rm_loss");
  // The intended reward keeps only standardised values above −0.5: the keyword messages score > 0.
  const at::Tensor r = m.step(test, metrics);
  double gold = 0, other = 0;
  for (size_t i = 0; i < test.size(); ++i) (test[i].find("gold") != std::string::npos ? gold : other) += r[static_cast<int64_t>(i)].item<double>();
  EXPECT_GT(gold, other);
}

}  // namespace
}  // namespace keel::rewards
