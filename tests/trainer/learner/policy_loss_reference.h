// Slow loop references of the policy losses (test tree only): one element at a time, plain doubles,
// written from the spec's formulas (§1.2, §1.7, §2.4, §5.4, §7) independently of the vectorized code.
#pragma once

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "tests/trainer/learner/loss_test_util.h"
#include "trainer/learner/policy_loss.h"

namespace keel::learner::testing {

struct RefInputs {
  Mat logp, logp_old, logp_ref, adv, mask, entropy;
  std::vector<int64_t> group_ids;
};

inline RefInputs ref_inputs(const PolicyLossInputs& in) {
  RefInputs r;
  r.logp = to_mat(in.logp);
  if (in.logp_old.defined()) r.logp_old = to_mat(in.logp_old);
  if (in.logp_ref.defined()) r.logp_ref = to_mat(in.logp_ref);
  r.adv = to_mat(in.advantages);
  r.mask = to_mat(in.response_mask.to(torch::kDouble));
  if (in.entropy.defined()) r.entropy = to_mat(in.entropy);
  if (in.group_ids.defined())
    for (int64_t i = 0; i < in.group_ids.size(0); ++i) r.group_ids.push_back(in.group_ids[i].item<int64_t>());
  return r;
}

inline double clip(double x, double lo, double hi) { return std::min(std::max(x, lo), hi); }

/// + β·agg(KL) − c·agg(H) of spec §1.7, with the configured mode.
inline double ref_regularizers(const RefInputs& r, const PolicyLossOptions& o) {
  double out = 0;
  if (o.kl_in_loss) {
    const Mat kl = map2(r.logp, [&](size_t i, size_t j) { return ref_kl(r.logp[i][j], r.logp_ref[i][j], o.kl_estimator); });
    out += o.kl_coef * ref_agg(kl, r.mask, o.agg.mode, o.agg.norm_len);
  }
  if (o.entropy_coef != 0) out -= o.entropy_coef * ref_agg(r.entropy, r.mask, o.agg.mode, o.agg.norm_len);
  return out;
}

inline double ref_ppo_clip(const RefInputs& r, const PolicyLossOptions& o) {
  const Mat l = map2(r.logp, [&](size_t i, size_t j) {
    const double a = r.adv[i][j];
    const double ratio = std::exp(clip(r.logp[i][j] - r.logp_old[i][j], -20, 20));
    const double l1 = -a * ratio;
    const double l2 = -a * clip(ratio, 1 - o.clip_low, 1 + o.clip_high);
    const double lc = std::max(l1, l2);
    if (o.dual_clip_c > 0 && a < 0) return std::min(lc, -a * o.dual_clip_c);
    return lc;
  });
  return ref_agg(l, r.mask, o.agg.mode, o.agg.norm_len) + ref_regularizers(r, o);
}

inline double ref_gspo(const RefInputs& r, const PolicyLossOptions& o) {
  Mat l = r.logp;
  for (size_t i = 0; i < r.logp.size(); ++i) {
    double sum = 0, len = 0;
    for (size_t j = 0; j < r.logp[i].size(); ++j)
      if (r.mask[i][j] > 0) {
        sum += r.logp[i][j] - r.logp_old[i][j];
        len += 1;
      }
    const double s = std::exp(std::min(sum / std::max(len, 1.0), 10.0));
    for (size_t j = 0; j < r.logp[i].size(); ++j) {
      const double a = r.adv[i][j];
      l[i][j] = std::max(-a * s, -a * clip(s, 1 - o.clip_low, 1 + o.clip_high));
    }
  }
  return ref_agg(l, r.mask, AggMode::kSeqMeanTokenMean, o.agg.norm_len) + ref_regularizers(r, o);
}

inline double ref_opmd(const RefInputs& r, const PolicyLossOptions& o) {
  const Mat l = map2(r.logp, [&](size_t i, size_t j) { return -r.adv[i][j] * r.logp[i][j]; });
  return ref_agg(l, r.mask, o.agg.mode, o.agg.norm_len) / (1 + o.opmd_tau) + ref_regularizers(r, o);
}

struct RefSeq {
  double adv = 0, log_ratio = 0;
  bool nonempty = false;
};

inline std::vector<RefSeq> ref_seq_terms(const RefInputs& r) {
  std::vector<RefSeq> out(r.logp.size());
  for (size_t i = 0; i < r.logp.size(); ++i) {
    double a = 0, lr = 0, len = 0;
    for (size_t j = 0; j < r.logp[i].size(); ++j)
      if (r.mask[i][j] > 0) {
        a += r.adv[i][j];
        lr += r.logp[i][j] - r.logp_old[i][j];
        len += 1;
      }
    out[i] = {len > 0 ? a / len : 0.0, clip(lr, -20, 20), len > 0};
  }
  return out;
}

/// V1: Σ over non-empty responses of −min(ρA, clip(ρ)A), divided by the number of pairs N'/2.
inline double ref_p3o_v1(const RefInputs& r, const PolicyLossOptions& o, double global_seqs) {
  double sum = 0;
  for (const RefSeq& s : ref_seq_terms(r)) {
    if (!s.nonempty) continue;
    const double rho = std::exp(s.log_ratio);
    sum += -std::min(rho * s.adv, clip(rho, 1 - o.clip_low, 1 + o.clip_high) * s.adv);
  }
  return (global_seqs > 0 ? sum / (global_seqs / 2) : 0.0) + ref_regularizers(r, o);
}

/// V2: per group, mean over its pairs of −min(ρ_ij d, clip(ρ_ij) d), weighted by G/2, over N'/2 pairs.
inline double ref_p3o_v2(const RefInputs& r, const PolicyLossOptions& o, double global_seqs) {
  const auto seq = ref_seq_terms(r);
  std::map<int64_t, std::vector<size_t>> groups;
  for (size_t i = 0; i < seq.size(); ++i)
    if (seq[i].nonempty) groups[r.group_ids[i]].push_back(i);
  double total = 0;
  for (const auto& [g, rows] : groups) {
    const double G = static_cast<double>(rows.size());
    if (rows.size() < 2) continue;
    double pair_sum = 0, pairs = 0;
    for (size_t a = 0; a < rows.size(); ++a)
      for (size_t b = a + 1; b < rows.size(); ++b) {
        const RefSeq &si = seq[rows[a]], &sj = seq[rows[b]];
        const double d = (si.adv - sj.adv) * (G - 1) / G;
        const double rho = std::exp(clip(si.log_ratio - sj.log_ratio, -20, 20));
        pair_sum += -std::min(rho * d, clip(rho, 1 - o.clip_low, 1 + o.clip_high) * d);
        pairs += 1;
      }
    total += (pair_sum / pairs) * (G / 2);
  }
  return (global_seqs > 0 ? total / (global_seqs / 2) : 0.0) + ref_regularizers(r, o);
}

}  // namespace keel::learner::testing
