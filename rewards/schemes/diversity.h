// MultiRole-R1 diversity reward shaping (spec rewards.md B5; Wang et al., arXiv 2507.20187, read in
// a full-text copy): R = δ·R_acc + (1 − δ)·R_div with R_div = Σ_i ω_i D_i over eight text statistics
// of the response (equal weights 1/8 by default). The diversity term keeps within-group variance
// non-zero when every rollout of a group has the same accuracy.
// INTERPRETATIONS (not fixed by the paper), each a named option:
//   * tokens: maximal runs of letters/digits/apostrophes, lower-cased; apostrophes are dropped;
//   * sentences: split after '.', '!' or '?'; type = declarative (.) / interrogative (?) /
//     exclamatory (!) / other (no terminator), |C| = 4;
//   * Yule's K enters the score as 1/(1 + K/100) (yule_norm: inverse_100) or 1/(1 + K) (inverse);
//   * D_func: entropy over a fixed English function-word list, divided by log(list size);
//   * D_dist: mean over `dist_n` (default bigrams, as the paper's tables report);
//   * "γ = 0.1" is read as the weight of R_div (δ = 0.9), as the spec does.
// R_acc (multi-role accuracy) comes from a verifier; this file only measures text.
//
// Legend: N responses.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace keel::config {
class Reader;
}

namespace keel::rewards {

/// The eight sub-metrics of one text (all 0 for an empty text).
struct DiversityMetrics {
  double lex = 0;    ///< type–token ratio |V|/N
  double ent = 0;    ///< unigram entropy / log|V| (0 when |V| ≤ 1)
  double len = 0;    ///< coefficient of variation of sentence lengths (population σ)
  double pat = 0;    ///< entropy of sentence types / log 4
  double adj = 0;    ///< mean Jaccard distance of consecutive sentences' token sets (0 when S < 2)
  double yule_k = 0; ///< raw Yule's K = 1e4·(Σ r²V_r − N)/N² (lower = more diverse)
  double yule = 0;   ///< normalised, higher = more diverse
  double dist = 0;   ///< distinct-n ratio, averaged over dist_n
  double func = 0;   ///< function-word entropy / log(list size)
};

struct DiversityOptions {
  double weight = 0.1;                        ///< 1 − δ, weight of R_div
  std::vector<std::string> metrics{"lex", "ent", "len", "pat", "adj", "yule", "dist", "func"};
  std::vector<double> metric_weights;         ///< empty = equal weights over `metrics`
  std::string yule_norm = "inverse_100";      ///< inverse_100 | inverse
  std::vector<int64_t> dist_n{2};
};

/// Lower-cased word tokens of a text (see the tokenisation note above).
std::vector<std::string> diversity_tokens(const std::string& text);
/// Sentences with their terminator type (0 declarative, 1 interrogative, 2 exclamatory, 3 other).
struct DiversitySentence {
  std::vector<std::string> tokens;
  int type = 3;
};
std::vector<DiversitySentence> diversity_sentences(const std::string& text);

DiversityMetrics diversity_metrics(const std::string& text, const DiversityOptions& o);
/// Weighted composite R_div of one text's metrics.
double diversity_score(const DiversityMetrics& m, const DiversityOptions& o);
/// R = (1 − weight)·acc + weight·div, acc [N], div [N].
at::Tensor diversity_reward(const at::Tensor& acc, const at::Tensor& div, const DiversityOptions& o);

void read_diversity_options(config::Reader& r, DiversityOptions& o);

}  // namespace keel::rewards
