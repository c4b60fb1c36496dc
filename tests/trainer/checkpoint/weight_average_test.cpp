// Tests of trainer/checkpoint/weight_average.{h,cpp} (WARM, spec D3): averaging state dicts
// elementwise (uniform and given weights, against a loop over random shapes), errors naming the
// member and tensor, and average_reward_models on two saved tiny reward models whose average loads
// and scores.
#include "trainer/checkpoint/weight_average.h"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/pretrained.h"
#include "models/safetensors.h"
#include "rewards/models/sequence_scoring.h"
#include "tests/models/test_util.h"
#include "base/error.h"
#include "base/fs.h"

namespace keel::checkpoint {
namespace {

namespace stdfs = std::filesystem;
using Dict = std::map<std::string, at::Tensor>;

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(WeightAverage, TwoDictsGiveTheElementwiseMean) {
  // a = [1, 2], b = [3, 6] → [2, 4]; weights 3:1 → 0.75·a + 0.25·b = [1.5, 3]
  Dict a{{"w", torch::tensor({1.0f, 2.0f})}}, b{{"w", torch::tensor({3.0f, 6.0f})}};
  auto m = average_state_dicts({a, b}, {}, {"a", "b"});
  EXPECT_TRUE(torch::allclose(m.at("w"), torch::tensor({2.0f, 4.0f})));
  EXPECT_EQ(m.at("w").scalar_type(), torch::kFloat);
  m = average_state_dicts({a, b}, {3, 1}, {"a", "b"});
  EXPECT_TRUE(torch::allclose(m.at("w"), torch::tensor({1.5f, 3.0f})));
}

TEST(WeightAverage, MatchesLoopOverRandomShapesAndWeights) {
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    const int n = 1 + seed % 4;
    const std::vector<int64_t> shape = {1 + seed % 3, 1 + seed % 5};
    std::vector<Dict> dicts(static_cast<size_t>(n));
    std::vector<std::string> names;
    for (int i = 0; i < n; ++i) {
      dicts[static_cast<size_t>(i)] = {{"x", torch::randn(shape)}, {"y", torch::randn({3})}};
      names.push_back("m" + std::to_string(i));
    }
    std::vector<double> w;
    if (seed % 2) {
      for (int i = 0; i < n; ++i) w.push_back(torch::rand({1}).item<double>() + (i == 0 ? 0.1 : 0.0));
      if (seed % 5 == 1 && n > 1) w[1] = 0;  // a zero weight is allowed
    }
    const auto avg = average_state_dicts(dicts, w, names);
    double total = 0;
    for (int i = 0; i < n; ++i) total += w.empty() ? 1.0 : w[static_cast<size_t>(i)];
    for (const char* key : {"x", "y"}) {
      const auto flat = avg.at(key).reshape({-1});
      for (int64_t j = 0; j < flat.numel(); ++j) {
        double ref = 0;
        for (int i = 0; i < n; ++i)
          ref += (w.empty() ? 1.0 : w[static_cast<size_t>(i)]) / total *
                 dicts[static_cast<size_t>(i)].at(key).reshape({-1})[j].item<double>();
        EXPECT_NEAR(flat[j].item<double>(), ref, 1e-6) << "seed " << seed << " " << key << "[" << j << "]";
      }
    }
  }
}

TEST(WeightAverage, MismatchesNameTheMemberAndTensor) {
  Dict a{{"w", torch::zeros({2, 3})}}, b{{"w", torch::zeros({3, 2})}}, c{{"v", torch::zeros({2, 3})}};
  EXPECT_NE(error_of([&] { average_state_dicts({a, b}, {}, {"rm_a", "rm_b"}); })
                .find("rm_b: tensor 'w' has shape [3, 2] but [2, 3] in rm_a"),
            std::string::npos);
  EXPECT_NE(error_of([&] { average_state_dicts({a, c}, {}, {"rm_a", "rm_c"}); }).find("rm_c: tensor 'v' is not in rm_a"),
            std::string::npos);
  EXPECT_NE(error_of([&] { average_state_dicts({a, a}, {1}, {"x", "y"}); }).find("1 weights for 2 checkpoints"),
            std::string::npos);
  EXPECT_NE(error_of([&] { average_state_dicts({a, a}, {0, 0}, {"x", "y"}); }).find("at least one must be positive"),
            std::string::npos);
  EXPECT_NE(error_of([&] { average_state_dicts({a, a}, {1, -1}, {"x", "y"}); }).find("must be >= 0"), std::string::npos);
}

TEST(WeightAverage, AveragesSavedRewardModelsThatThenScore) {
  const auto dir = stdfs::temp_directory_path() / ("keel_warm_" + std::to_string(::getpid()));
  keel::fs::remove_tree(dir);
  const auto cfg = models::testing::tiny_config();
  const models::HeadOptions rm_heads{/*lm_head=*/false, /*value_head=*/false, /*reward_head=*/true};
  models::Transformer a(cfg, rm_heads), b(cfg, rm_heads);
  models::testing::randomize(a, 1);
  models::testing::randomize(b, 2);
  models::save_pretrained(a, (dir / "a").string());
  models::save_pretrained(b, (dir / "b").string());
  models::ModelRegistry reg("model family");
  models::register_builtin_models(reg);
  const auto used = average_reward_models({(dir / "a").string(), (dir / "b").string()}, {}, (dir / "avg").string(), reg);
  EXPECT_EQ(used, (std::vector<double>{0.5, 0.5}));
  const auto avg = models::load_pretrained((dir / "avg").string(), reg);
  EXPECT_TRUE(avg.heads().reward_head);
  const auto pa = a.named_parameters(), pb = b.named_parameters(), pm = avg.named_parameters();
  ASSERT_EQ(pm.size(), pa.size());
  for (const auto& [name, t] : pm) EXPECT_TRUE(torch::allclose(t, (pa.at(name) + pb.at(name)) / 2, 1e-6, 1e-7)) << name;
  // Scoring with the averaged model works: finite rewards, and they match its own forward.
  auto m = avg;
  const auto s = rewards::score_sequences(m, {{1, 5, 6}, {1, 7}}, /*batch_size=*/2);
  ASSERT_EQ(s.numel(), 2);
  EXPECT_TRUE(torch::isfinite(s).all().item<bool>());
  // A model with another shape is refused, naming the path and the field.
  auto cfg3 = cfg;
  cfg3.num_hidden_layers = 3;
  models::Transformer c(cfg3, rm_heads);
  models::save_pretrained(c, (dir / "c").string());
  const auto err = error_of([&] {
    average_reward_models({(dir / "a").string(), (dir / "c").string()}, {}, (dir / "bad").string(), reg);
  });
  EXPECT_NE(err.find((dir / "c").string() + ": num_hidden_layers is 3 but 2 in"), std::string::npos) << err;
  EXPECT_NE(error_of([&] { average_reward_models({(dir / "a").string()}, {}, (dir / "one").string(), reg); })
                .find("at least two"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              average_reward_models({(dir / "a").string(), (dir / "b").string()}, {}, (dir / "a").string(), reg);
            }).find("is one of the inputs"),
            std::string::npos);
  keel::fs::remove_tree(dir);
}

}  // namespace
}  // namespace keel::checkpoint
