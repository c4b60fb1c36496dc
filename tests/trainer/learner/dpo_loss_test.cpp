// Tests of trainer/learner/dpo_loss.{h,cpp}: spec §8.1 and §8.2 worked examples, loop reference over
// random pairs, finite-difference gradients, micro-batch / 2-rank invariance (incl. MAH-DPO heads),
// registry, options and the MAH-DPO head helpers.
#include "trainer/learner/dpo_loss.h"

#include <cmath>
#include <map>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/trainer/learner/loss_test_util.h"
#include "base/error.h"
#include "trainer/config/credit_config.h"

namespace keel::learner {
namespace {

constexpr DpoKind kKinds[] = {DpoKind::kSigmoid, DpoKind::kCdpo, DpoKind::kRobust, DpoKind::kIpo, DpoKind::kHinge};

DpoInputs one_pair(double lw, double ll, double rw, double rl) {
  DpoInputs in;
  in.chosen_logp = torch::tensor({lw}, torch::kDouble).requires_grad_(true);
  in.rejected_logp = torch::tensor({ll}, torch::kDouble).requires_grad_(true);
  in.chosen_ref_logp = torch::tensor({rw}, torch::kDouble);
  in.rejected_ref_logp = torch::tensor({rl}, torch::kDouble);
  in.agg = DpoAggContext::count(1);
  return in;
}

double loss_of(DpoKind kind, const DpoInputs& in, const DpoOptions& o) { return dpo_loss(kind, in, o).loss.item<double>(); }

TEST(DpoLoss, SpecWorkedExample) {
  // β = 0.1, ℓ(y_w) = −10, ℓ(y_l) = −12, ℓ_ref = −11 both → Δ = 1 − (−1) = 2, βΔ = 0.2
  const DpoInputs in = one_pair(-10, -12, -11, -11);
  DpoOptions o;
  o.ipo_length_norm = false;
  EXPECT_NEAR(loss_of(DpoKind::kSigmoid, in, o), 0.598139, 1e-4);  // −log σ(0.2)
  EXPECT_NEAR(loss_of(DpoKind::kIpo, in, o), 9.0, 1e-4);           // (2 − 1/0.2)² = (2 − 5)²
  EXPECT_NEAR(loss_of(DpoKind::kHinge, in, o), 0.8, 1e-4);         // relu(1 − 0.2)
  o.label_smoothing = 0.1;
  EXPECT_NEAR(loss_of(DpoKind::kCdpo, in, o), 0.618139, 1e-4);     // 0.9·0.598139 + 0.1·0.798139
  EXPECT_NEAR(loss_of(DpoKind::kSigmoid, in, o), 0.618139, 1e-4);  // sigmoid with smoothing = cDPO (TRL)
  EXPECT_NEAR(loss_of(DpoKind::kRobust, in, o), 0.573139, 1e-4);   // (0.9·0.598139 − 0.1·0.798139)/0.8
  const auto out = dpo_loss(DpoKind::kSigmoid, in, DpoOptions{});
  EXPECT_NEAR(out.metrics.at("rewards/chosen"), 0.1, 1e-4);  // β(ℓ(y_w) − ℓ_ref(y_w)) = 0.1·1
  EXPECT_NEAR(out.metrics.at("rewards/rejected"), -0.1, 1e-4);
  EXPECT_NEAR(out.metrics.at("rewards/margins"), 0.2, 1e-4);
  EXPECT_EQ(out.metrics.at("rewards/accuracies"), 1.0);
  EXPECT_NEAR(out.metrics.at("dpo/loss"), 0.598139, 1e-4);
}

TEST(DpoLoss, IpoLengthNormalisedAndReferenceFree) {
  // lengths 4 and 2: Δ' = (−10 + 11)/4 − (−12 + 11)/2 = 0.25 + 0.5 = 0.75 → (0.75 − 5)² = 18.0625
  DpoInputs in = one_pair(-10, -12, -11, -11);
  in.chosen_len = torch::tensor({4.0}, torch::kDouble);
  in.rejected_len = torch::tensor({2.0}, torch::kDouble);
  EXPECT_NEAR(loss_of(DpoKind::kIpo, in, DpoOptions{}), 18.0625, 1e-12);
  in.chosen_len = torch::Tensor();
  EXPECT_THROW(dpo_loss(DpoKind::kIpo, in, DpoOptions{}), c10::Error);
  // refs −11 / −13: Δ = 1 − 1 = 0 → ln 2; reference-free Δ = −10 − (−12) = 2 → 0.598139
  DpoInputs r = one_pair(-10, -12, -11, -13);
  EXPECT_NEAR(loss_of(DpoKind::kSigmoid, r, DpoOptions{}), std::log(2.0), 1e-12);
  DpoOptions free;
  free.reference_free = true;
  EXPECT_NEAR(loss_of(DpoKind::kSigmoid, r, free), 0.598139, 1e-4);
  r.chosen_ref_logp = r.rejected_ref_logp = torch::Tensor();
  EXPECT_NEAR(loss_of(DpoKind::kSigmoid, r, DpoOptions{}), 0.598139, 1e-4);
  r.chosen_ref_logp = torch::tensor({-11.0}, torch::kDouble);  // only one of the two
  EXPECT_THROW(dpo_loss(DpoKind::kSigmoid, r, DpoOptions{}), c10::Error);
}

TEST(DpoLoss, StableForLargeMargins) {
  // βΔ = ±1000: log σ via logsigmoid stays finite (log(sigmoid) would give −inf).
  const DpoInputs bad = one_pair(-10000, 0, 0, 0);
  const auto out = dpo_loss(DpoKind::kSigmoid, bad, DpoOptions{});
  EXPECT_NEAR(out.loss.item<double>(), 1000.0, 1e-9);
  const torch::Tensor g = torch::autograd::grad({out.loss}, {bad.chosen_logp})[0];
  EXPECT_NEAR(g.item<double>(), -0.1, 1e-12);
  EXPECT_NEAR(loss_of(DpoKind::kSigmoid, one_pair(10000, 0, 0, 0), DpoOptions{}), 0.0, 1e-12);
}

TEST(DpoLoss, MahDpoSpecWorkedExample) {
  // hinge, β = 0.1, reference-free, rejected 0: per-pair loss 1 − 0.1·Δ → Δ = 4, 6, 5 (accuracy head 0:
  // 0.6, 0.4, 0.5) and Δ = 1 (engagement head 1: 0.9). L = mean(mean(0.6,0.4,0.5), 0.9) = 0.7, not 0.6.
  DpoInputs in;
  in.chosen_logp = torch::tensor({4.0, 1.0, 6.0, 5.0}, torch::kDouble).requires_grad_(true);
  in.rejected_logp = torch::zeros({4}, torch::kDouble);
  in.head_ids = torch::tensor({0L, 1L, 0L, 0L});
  in.agg = DpoAggContext::count(4, in.head_ids, 2);
  const auto out = dpo_loss(DpoKind::kHinge, in, DpoOptions{});
  EXPECT_NEAR(out.loss.item<double>(), 0.7, 1e-4);
  EXPECT_NEAR(out.metrics.at("dpo/loss_head0"), 0.5, 1e-12);
  EXPECT_NEAR(out.metrics.at("dpo/loss_head1"), 0.9, 1e-12);
  // a head absent from the mini-batch is skipped: with K = 3 the same batch still gives 0.7
  in.agg = DpoAggContext::count(4, in.head_ids, 3);
  EXPECT_NEAR(dpo_loss(DpoKind::kHinge, in, DpoOptions{}).loss.item<double>(), 0.7, 1e-12);
  // without head ids: plain mean 0.6
  in.head_ids = torch::Tensor();
  in.agg = DpoAggContext::count(4);
  EXPECT_NEAR(dpo_loss(DpoKind::kHinge, in, DpoOptions{}).loss.item<double>(), 0.6, 1e-12);
}

struct RandPairs {
  int64_t p = 0, heads = 1;
  torch::Tensor lw, ll, rw, rl, nw, nl, heads_ids;
};

RandPairs rand_pairs(uint64_t seed) {
  torch::manual_seed(seed);
  RandPairs r;
  r.p = 1 + static_cast<int64_t>(seed % 9);
  r.heads = 1 + static_cast<int64_t>(seed % 3);
  auto d = torch::TensorOptions().dtype(torch::kDouble);
  r.lw = -torch::rand({r.p}, d) * 20;
  r.ll = -torch::rand({r.p}, d) * 20;
  r.rw = r.lw + torch::randn({r.p}, d) * 2;
  r.rl = r.ll + torch::randn({r.p}, d) * 2;
  r.nw = torch::randint(0, 12, {r.p}, d);  // includes empty completions (0 → divided by 1)
  r.nl = torch::randint(0, 12, {r.p}, d);
  r.heads_ids = torch::randint(0, r.heads, {r.p}, torch::kLong);
  return r;
}

double ref_dpo(DpoKind kind, const RandPairs& r, const DpoOptions& o, bool use_ref, bool use_heads) {
  std::map<int64_t, std::pair<double, double>> per_head;  // head → (sum, count)
  double sum = 0;
  for (int64_t i = 0; i < r.p; ++i) {
    double cw = r.lw[i].item<double>(), cl = r.ll[i].item<double>();
    if (use_ref) {
      cw -= r.rw[i].item<double>();
      cl -= r.rl[i].item<double>();
    }
    double delta = cw - cl;
    if (kind == DpoKind::kIpo && o.ipo_length_norm)
      delta = cw / std::max(1.0, r.nw[i].item<double>()) - cl / std::max(1.0, r.nl[i].item<double>());
    const double z = o.beta * delta, e = o.label_smoothing;
    auto logsig = [](double x) { return x >= 0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x)); };
    double l = 0;
    switch (kind) {
      case DpoKind::kSigmoid: case DpoKind::kCdpo: l = -(1 - e) * logsig(z) - e * logsig(-z); break;
      case DpoKind::kRobust: l = (-(1 - e) * logsig(z) + e * logsig(-z)) / (1 - 2 * e); break;
      case DpoKind::kIpo: l = (delta - 1 / (2 * o.beta)) * (delta - 1 / (2 * o.beta)); break;
      case DpoKind::kHinge: l = std::max(0.0, 1 - z); break;
    }
    sum += l;
    auto& h = per_head[r.heads_ids[i].item<int64_t>()];
    h.first += l;
    h.second += 1;
  }
  if (!use_heads) return sum / static_cast<double>(r.p);
  double total = 0;
  for (const auto& [k, h] : per_head) total += h.first / h.second;
  return total / static_cast<double>(per_head.size());
}

DpoInputs inputs_of(const RandPairs& r, const torch::Tensor& lw, const torch::Tensor& ll, bool use_ref, bool use_heads,
                    int64_t s = 0, int64_t e = -1) {
  if (e < 0) e = r.p;
  DpoInputs in;
  in.chosen_logp = lw;
  in.rejected_logp = ll;
  if (use_ref) {
    in.chosen_ref_logp = r.rw.slice(0, s, e);
    in.rejected_ref_logp = r.rl.slice(0, s, e);
  }
  in.chosen_len = r.nw.slice(0, s, e);
  in.rejected_len = r.nl.slice(0, s, e);
  if (use_heads) in.head_ids = r.heads_ids.slice(0, s, e);
  in.agg = use_heads ? DpoAggContext::count(r.p, r.heads_ids, r.heads) : DpoAggContext::count(r.p);
  return in;
}

DpoOptions options_for(uint64_t seed) {
  DpoOptions o;
  o.beta = 0.05 + 0.05 * static_cast<double>(seed % 4);
  o.label_smoothing = 0.1 * static_cast<double>(seed % 4);
  o.ipo_length_norm = seed % 2 == 0;
  return o;
}

TEST(DpoLoss, EveryKindMatchesLoopReference) {
  for (uint64_t seed = 0; seed < 60; ++seed) {
    const RandPairs r = rand_pairs(seed);
    const DpoOptions o = options_for(seed);
    for (DpoKind kind : kKinds)
      for (bool use_ref : {true, false})
        for (bool use_heads : {false, true}) {
          const double got = loss_of(kind, inputs_of(r, r.lw, r.ll, use_ref, use_heads), o);
          EXPECT_NEAR(got, ref_dpo(kind, r, o, use_ref, use_heads), 1e-10 * (1 + std::abs(got)))
              << "seed " << seed << " kind " << static_cast<int>(kind);
        }
  }
}

TEST(DpoLoss, EveryKindGradientMatchesFiniteDifferences) {
  for (uint64_t seed = 0; seed < 8; ++seed) {
    const RandPairs r = rand_pairs(seed);
    const DpoOptions o = options_for(seed);
    for (DpoKind kind : kKinds) {
      const bool heads = seed % 2 == 1;
      // x = [chosen; rejected] so both inputs are checked at once
      testing::expect_grad_matches_fd(
          [&](const torch::Tensor& x) {
            return dpo_loss(kind, inputs_of(r, x.slice(0, 0, r.p), x.slice(0, r.p, 2 * r.p), true, heads), o).loss;
          },
          torch::cat({r.lw, r.ll}), 1e-6);
    }
  }
}

TEST(DpoLoss, MicroBatchAndTwoRankInvariance) {
  for (uint64_t seed = 0; seed < 30; ++seed) {
    const RandPairs r = rand_pairs(seed + 100);
    const DpoOptions o = options_for(seed);
    for (DpoKind kind : kKinds)
      for (bool use_heads : {false, true}) {
        torch::Tensor lw = r.lw.clone().requires_grad_(true), ll = r.ll.clone().requires_grad_(true);
        dpo_loss(kind, inputs_of(r, lw, ll, true, use_heads), o).loss.backward();
        const torch::Tensor gw = lw.grad().clone(), gl = ll.grad().clone();
        lw.mutable_grad().zero_();
        ll.mutable_grad().zero_();
        // 2 ranks (first half / second half) × uneven micro-batches; the per-rank counts are summed.
        const int64_t k = r.p / 2;
        const std::pair<int64_t, int64_t> ranks[2] = {{0, k}, {k, r.p}};
        DpoAggContext global;
        for (auto [s, e] : ranks)
          global += use_heads ? DpoAggContext::count(e - s, r.heads_ids.slice(0, s, e), r.heads)
                              : DpoAggContext::count(e - s);
        for (auto [s, e] : ranks)
          for (auto [ms, me] : testing::uneven_split(e - s, 2)) {
            if (me <= ms) continue;
            DpoInputs in = inputs_of(r, lw.slice(0, s + ms, s + me), ll.slice(0, s + ms, s + me), true, use_heads,
                                     s + ms, s + me);
            in.agg = global;
            dpo_loss(kind, in, o).loss.backward();
          }
        EXPECT_TRUE(torch::allclose(lw.grad(), gw, 1e-12, 1e-12)) << "seed " << seed;
        EXPECT_TRUE(torch::allclose(ll.grad(), gl, 1e-12, 1e-12)) << "seed " << seed;
      }
  }
}

TEST(DpoLoss, RejectsBadInputs) {
  DpoInputs in = one_pair(-1, -2, -1, -2);
  in.agg = DpoAggContext{};  // counts not set
  EXPECT_THROW(dpo_loss(DpoKind::kSigmoid, in, DpoOptions{}), c10::Error);
  in = one_pair(-1, -2, -1, -2);
  DpoOptions o;
  o.label_smoothing = 0.5;
  EXPECT_THROW(dpo_loss(DpoKind::kRobust, in, o), c10::Error);
  in.head_ids = torch::tensor({0L});  // heads without head counts
  EXPECT_THROW(dpo_loss(DpoKind::kSigmoid, in, DpoOptions{}), c10::Error);
  EXPECT_THROW(DpoAggContext::count(1, torch::tensor({3L}), 2), c10::Error);
}

TEST(DpoLossRegistry, BuiltinsAndOptions) {
  DpoLossRegistry reg("DPO loss");
  register_builtin_dpo_losses(reg);
  EXPECT_EQ(reg.names(), (std::vector<std::string>{"cdpo", "hinge", "ipo", "robust", "sigmoid"}));
  const DpoInputs in = one_pair(-10, -12, -11, -11);
  EXPECT_NEAR(reg.get("hinge").fn(in, DpoOptions{}).loss.item<double>(), 0.8, 1e-12);
  EXPECT_THROW(reg.get("kto"), keel::Error);
  config::DpoSection c;
  c.beta = 0.2;
  c.label_smoothing = 0.1;
  c.ipo_length_norm = false;
  const DpoOptions o = dpo_options(c);
  EXPECT_EQ(o.beta, 0.2);
  EXPECT_EQ(o.label_smoothing, 0.1);
  EXPECT_FALSE(o.ipo_length_norm);
}

TEST(DpoHelpers, SequenceLogpAndHeads) {
  const torch::Tensor logp = torch::tensor({{-1.0, -2.0, -4.0}, {-0.5, -0.25, 9.0}}, torch::kDouble);
  const torch::Tensor m = torch::tensor({{0.0, 1.0, 1.0}, {1.0, 1.0, 0.0}}, torch::kDouble);  // prompt masked
  EXPECT_TRUE(torch::allclose(sequence_logp(logp, m), torch::tensor({-6.0, -0.75}, torch::kDouble)));
  // heads [K=2, N=2, T=3]: row 0 uses head 1, row 1 head 0
  const torch::Tensor heads = torch::stack({logp, logp * 10}).requires_grad_(true);
  const torch::Tensor sel = mah_dpo_select_head(heads, torch::tensor({1L, 0L}));
  EXPECT_TRUE(torch::allclose(sel[0], logp[0] * 10));
  EXPECT_TRUE(torch::allclose(sel[1], logp[1]));
  const torch::Tensor g = torch::autograd::grad({sel.sum()}, {heads})[0];
  EXPECT_EQ(g[1][0].sum().item<double>(), 3.0);
  EXPECT_EQ(g[0][0].sum().item<double>(), 0.0);
  EXPECT_THROW(mah_dpo_select_head(heads, torch::tensor({2L, 0L})), c10::Error);
  // ensemble: weights [1, 3] → [0.25, 0.75]
  const torch::Tensor z = torch::tensor({{1.0, 2.0}, {5.0, 6.0}}, torch::kDouble);
  EXPECT_TRUE(torch::allclose(mah_dpo_ensemble_logits(z, torch::tensor({1.0, 3.0}, torch::kDouble)),
                              torch::tensor({4.0, 5.0}, torch::kDouble)));
  EXPECT_TRUE(torch::allclose(mah_dpo_ensemble_logits(z), torch::tensor({3.0, 4.0}, torch::kDouble)));
}

}  // namespace
}  // namespace keel::learner
