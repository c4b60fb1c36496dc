// Tests of ONI's char-CNN, its Adam and its sampler (rewards/schemes/oni_net.h): the released layout's
// lengths, byte encoding against a loop, deterministic initialisation, Adam against torch::optim::Adam,
// and bit-exact state round trips.
#include "rewards/schemes/oni_net.h"

#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "base/error.h"

namespace keel::rewards {
namespace {

OniNetOptions tiny_net(int64_t seed = 0) {
  OniNetOptions o;
  o.max_chars = kOniMinChars;
  o.embed_dim = 4;
  o.hidden_dim = 6;
  o.mlp_hidden = {5};
  o.seed = seed;
  return o;
}

TEST(OniNet, PositionsFollowTheReleasedLayout) {
  // 256: conv7 250, pool 83, conv7 77, pool 25, 4 x conv3 17, pool 5 (the released Linear(5·64, 128)).
  EXPECT_EQ(oni_cnn_positions(256), 5);
  // 123: 117, 39, 33, 11, 3, 1 — the shortest input with one position left.
  EXPECT_EQ(oni_cnn_positions(kOniMinChars), 1);
  EXPECT_EQ(oni_cnn_positions(kOniMinChars - 1), 0);
  EXPECT_EQ(oni_cnn_positions(10), 0);
  OniNetOptions o = tiny_net();
  o.max_chars = 100;
  EXPECT_THROW(OniNet(o, 2), c10::Error);
}

TEST(OniNet, EncodeMatchesLoop) {
  for (int seed = 0; seed < 50; ++seed) {
    torch::manual_seed(seed);
    const int64_t l = 1 + seed % 9, b = seed % 5;
    std::vector<std::string> msgs;
    for (int64_t i = 0; i < b; ++i) {
      const int64_t n = torch::randint(0, 2 * l + 1, {1}).item<int64_t>();  // shorter, equal and longer than L
      const at::Tensor bytes = torch::randint(1, 256, {n}, torch::kLong);
      std::string s;
      for (int64_t k = 0; k < n; ++k) s.push_back(static_cast<char>(static_cast<unsigned char>(bytes[k].item<int64_t>())));
      msgs.push_back(s);
    }
    const at::Tensor fast = oni_encode_messages(msgs, l);
    ASSERT_EQ(fast.sizes(), (std::vector<int64_t>{b, l}));
    for (int64_t i = 0; i < b; ++i)
      for (int64_t k = 0; k < l; ++k) {
        const std::string& s = msgs[static_cast<size_t>(i)];
        const int64_t want = k < static_cast<int64_t>(s.size()) ? static_cast<unsigned char>(s[static_cast<size_t>(k)]) : 0;
        EXPECT_EQ(fast[i][k].item<int64_t>(), want) << seed;
      }
  }
}

TEST(OniNet, InitialisationIsDeterministicPerSeedAndLeavesTheGlobalGeneratorAlone) {
  torch::manual_seed(7);
  const at::Tensor before = torch::rand({3});
  torch::manual_seed(7);
  OniNet a(tiny_net(1), 2), b(tiny_net(1), 2), c(tiny_net(2), 2);
  EXPECT_TRUE(torch::equal(torch::rand({3}), before));  // the global torch generator was not advanced
  const auto pa = a.parameters(), pb = b.parameters(), pc = c.parameters();
  ASSERT_EQ(pa.size(), 1u + 2 * 6 + 2 + 2 * 2);  // embedding, 6 convs, fc, one hidden layer and the output layer
  bool differs = false;
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(torch::equal(pa[i], pb[i])) << i;
    differs |= !torch::equal(pa[i], pc[i]);
  }
  EXPECT_TRUE(differs);
  EXPECT_TRUE(torch::equal(pa[0][0], torch::zeros({4})));  // padding row
  const at::Tensor out = a.forward(oni_encode_messages({"You see here a gold piece.", "", "x"}, kOniMinChars));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{3, 2}));
  EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
}

TEST(OniNet, StateRoundTripIsBitExact) {
  OniNet a(tiny_net(1), 1), b(tiny_net(2), 1);
  const at::Tensor codes = oni_encode_messages({"hello", "It's a wall."}, kOniMinChars);
  StateDict st;
  a.save_state(st, "net/");
  EXPECT_TRUE(st.count("net/conv1_weight"));
  for (const auto& [k, t] : st) EXPECT_EQ(k.find('.'), std::string::npos) << k;
  b.load_state(st, "net/");
  EXPECT_TRUE(torch::equal(a.forward(codes), b.forward(codes)));
  OniNetOptions wide = tiny_net();
  wide.hidden_dim = 7;
  OniNet w(wide, 1);
  EXPECT_THROW(w.load_state(st, "net/"), Error);
  EXPECT_THROW(b.load_state(StateDict{}, "net/"), Error);
}

TEST(OniAdam, MatchesTorchOptimAdam) {
  torch::manual_seed(3);
  const at::Tensor init = torch::randn({4, 3});
  at::Tensor p1 = init.clone().requires_grad_(true), p2 = init.clone().requires_grad_(true);
  OniAdam mine({p1}, OniAdamOptions{0.01});
  torch::optim::Adam ref({p2}, torch::optim::AdamOptions(0.01));
  for (int s = 0; s < 6; ++s) {
    const at::Tensor x = torch::randn({4, 3});
    mine.zero_grad();
    (p1 * x).pow(2).sum().backward();
    mine.step();
    ref.zero_grad();
    (p2 * x).pow(2).sum().backward();
    ref.step();
    EXPECT_TRUE(torch::allclose(p1, p2, /*rtol=*/0, /*atol=*/1e-7)) << s;
  }
  EXPECT_EQ(mine.steps(), 6);
}

TEST(OniAdam, StateRoundTripContinuesIdentically) {
  torch::manual_seed(4);
  const at::Tensor init = torch::randn({5});
  at::Tensor p1 = init.clone().requires_grad_(true), p2 = init.clone().requires_grad_(true);
  OniAdam a({p1}, OniAdamOptions{0.1}), b({p2}, OniAdamOptions{0.1});
  const auto step = [](OniAdam& o, at::Tensor& p, const at::Tensor& x) {
    o.zero_grad();
    (p * x).sin().sum().backward();
    o.step();
  };
  const at::Tensor x1 = torch::randn({5}), x2 = torch::randn({5});
  step(a, p1, x1);
  StateDict st;
  a.save_state(st, "adam/");
  {
    torch::NoGradGuard ng;
    p2.copy_(p1);
  }
  b.load_state(st, "adam/");
  step(a, p1, x2);
  step(b, p2, x2);
  EXPECT_TRUE(torch::equal(p1, p2));
}

TEST(OniRng, SamplesDistinctIndicesAndRoundTrips) {
  OniRng r(11);
  for (int t = 0; t < 50; ++t) {
    const int64_t n = 1 + t % 13, k = t % 17;
    const auto idx = r.sample(n, k);
    ASSERT_EQ(static_cast<int64_t>(idx.size()), std::min(n, k));
    std::set<int64_t> seen(idx.begin(), idx.end());
    EXPECT_EQ(seen.size(), idx.size());
    for (int64_t i : idx) EXPECT_TRUE(i >= 0 && i < n);
    if (k >= n) {
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(idx[static_cast<size_t>(i)], i);
    }
  }
  std::set<int64_t> hit;
  for (int i = 0; i < 200; ++i) hit.insert(r.below(5));
  EXPECT_EQ(hit.size(), 5u);
  StateDict st;
  r.save_state(st, "rng");
  const uint64_t next = r.next();
  OniRng q(0);
  q.load_state(st, "rng");
  EXPECT_EQ(q.next(), next);
}

}  // namespace
}  // namespace keel::rewards
