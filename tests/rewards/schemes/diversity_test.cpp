// Tests of the MultiRole-R1 diversity metrics and reward (spec rewards.md B5).
#include "rewards/schemes/diversity.h"

#include <gtest/gtest.h>

#include "tests/rewards/schemes/test_util.h"

namespace keel::rewards {
namespace {

TEST(Diversity, WorkedExampleSubMetrics) {
  // "the cat the dog": N = 4, V = 3 -> D_lex = 0.75; p = (1/2, 1/4, 1/4), H = 1.0397208,
  // /log 3 -> 0.9463946; V_1 = 2, V_2 = 1 -> K = 1e4·(2 + 4 − 4)/16 = 1250; bigrams all distinct -> 1.0.
  DiversityOptions o;
  auto m = diversity_metrics("the cat the dog", o);
  EXPECT_NEAR(m.lex, 0.75, 1e-12);
  EXPECT_NEAR(m.ent, 0.9463946, 1e-6);
  EXPECT_NEAR(m.yule_k, 1250.0, 1e-9);
  EXPECT_NEAR(m.yule, 1.0 / (1.0 + 12.5), 1e-12);
  EXPECT_NEAR(m.dist, 1.0, 1e-12);
}

TEST(Diversity, WorkedExampleSentences) {
  DiversityOptions o;
  // Sentence lengths [4, 2]: CV = 1/3.
  auto m = diversity_metrics("One two three four. Five six.", o);
  EXPECT_NEAR(m.len, 1.0 / 3.0, 1e-12);
  // "the cat sat" / "the dog": 1 − |{the}|/|{the,cat,sat,dog}| = 0.75.
  auto a = diversity_metrics("The cat sat. The dog?", o);
  EXPECT_NEAR(a.adj, 0.75, 1e-12);
  // Types: declarative + interrogative -> entropy log 2 / log 4 = 0.5.
  EXPECT_NEAR(a.pat, 0.5, 1e-12);
  auto s = diversity_sentences("Really?! Yes... ok");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].type, 1);
  EXPECT_EQ(s[1].type, 0);
  EXPECT_EQ(s[2].type, 3);
}

TEST(Diversity, WorkedExampleTotal) {
  // R_acc = 1, R_div = 0.6, δ = 0.9 -> 0.96.
  DiversityOptions o;
  auto r = diversity_reward(testing::dt({1.0}), testing::dt({0.6}), o);
  EXPECT_NEAR(r.item<double>(), 0.96, 1e-12);
}

TEST(Diversity, EdgeCasesAndComposite) {
  DiversityOptions o;
  auto e = diversity_metrics("", o);
  EXPECT_EQ(diversity_score(e, o), 0.0);
  auto one = diversity_metrics("word", o);
  EXPECT_EQ(one.ent, 0.0);    // |V| = 1
  EXPECT_EQ(one.dist, 0.0);   // no bigram
  EXPECT_EQ(one.adj, 0.0);    // one sentence
  EXPECT_EQ(one.yule_k, 0.0); // 1e4·(1 − 1)/1
  // Equal weights: the composite is the mean of the eight sub-scores.
  auto m = diversity_metrics("I think the answer is yes. But why? Because the data says so!", o);
  const double mean = (m.lex + m.ent + m.len + m.pat + m.adj + m.yule + m.dist + m.func) / 8.0;
  EXPECT_NEAR(diversity_score(m, o), mean, 1e-12);
  EXPECT_GT(m.func, 0.0);
  DiversityOptions only;
  only.metrics = {"lex", "dist"};
  only.metric_weights = {3, 1};
  EXPECT_NEAR(diversity_score(m, only), (3 * m.lex + m.dist) / 4, 1e-12);
}

TEST(Diversity, YuleMatchesSpectrumLoop) {
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    const int n = 1 + seed % 20;
    auto ids = torch::randint(0, 1 + seed % 6, {n}, torch::kLong);
    std::string text;
    std::map<int64_t, int> freq;
    for (int i = 0; i < n; ++i) {
      text += "w" + std::to_string(ids[i].item<int64_t>()) + " ";
      freq[ids[i].item<int64_t>()]++;
    }
    std::map<int, int> spectrum;  // r -> V_r
    for (auto& [w, c] : freq) spectrum[c]++;
    double s = 0;
    for (auto& [r, vr] : spectrum) s += static_cast<double>(r) * r * vr;
    auto m = diversity_metrics(text, {});
    EXPECT_NEAR(m.yule_k, 1e4 * (s - n) / (static_cast<double>(n) * n), 1e-9);
    EXPECT_NEAR(m.lex, static_cast<double>(freq.size()) / n, 1e-12);
  }
}

TEST(Diversity, Reader) {
  DiversityOptions o;
  EXPECT_TRUE(testing::read_yaml("  weight: 0.2\n  dist_n: [1, 2, 3]\n", o, read_diversity_options).empty());
  EXPECT_EQ(o.dist_n.size(), 3u);
  auto e = testing::read_yaml("  metrics: [lex, zipf]\n  metric_weights: [1]\n", o, read_diversity_options);
  ASSERT_EQ(e.size(), 2u);
}

}  // namespace
}  // namespace keel::rewards
