// CaRR + C-GRPO — citation-aware rubric reward combined with the outcome reward (spec rewards.md
// B3d; Zhang et al., arXiv 2601.06021, repo THUDM/CaRR launch_server.py and sglang_rollout.py).
//   rubric score  = (# rubrics supported AND connected to the answer entity E0) / (# rubrics)
//                   connectivity: BFS from E0 over entities, edges = supported, identified rubrics
//   combination   = linear:        (1−α)·o + α·rubric
//                   only_positive: o if o = 0, else (1−α)·o + α·rubric
//                   only_negative: o if o > 0, else α·rubric
//   rubric_norm   = none | group_max (rubric / max over the prompt's rollouts, unchanged if max = 0)
// Open question 1 of the spec, named explicitly: the released scripts pass both
// --normalize-rubric-reward and --rubric-only-positive, but that branch uses the un-normalised
// rubric — i.e. the released behaviour is {mode: only_positive, rubric_norm: none}; the README's
// intent is {only_positive, group_max}. Both are selectable; the default is the released one.
// The judge calls (entity mapping, support) belong to the scorer; this file takes their results.
//
// Legend: N rollouts (G per prompt).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace keel::config {
class Reader;
}

namespace keel::rewards {

/// One rubric after judging: the placeholders it mentions (0 = E0, the answer entity), whether the
/// judge identified every placeholder in the response, and whether the cited content supports it.
struct CarrRubric {
  std::vector<int64_t> entities;
  bool identified = true;
  bool supported = false;
};

struct CarrScoreOptions {
  bool bfs = true;  ///< false = the "no-BFS" ablation: fraction of supported rubrics
};

/// Rubric reward in [0, 1] of one response. Returns 0 when there are no rubrics, when the entity
/// mapping failed (`mapping_ok` false) or when no cited content was found (`has_citations` false).
double carr_rubric_score(const std::vector<CarrRubric>& rubrics, bool mapping_ok, bool has_citations,
                         const CarrScoreOptions& o);

struct CgrpoOptions {
  double alpha = 0.0;               ///< --rubric-reward-ratio (released scripts: 0.3)
  std::string mode = "linear";      ///< linear | only_positive | only_negative
  std::string rubric_norm = "none"; ///< none | group_max
};

/// Combined reward R [N] from outcomes o [N] (0/1), rubric scores [N], group_ids [N] int64.
at::Tensor cgrpo_combine(const at::Tensor& outcome, const at::Tensor& rubric, const at::Tensor& group_ids,
                         const CgrpoOptions& o);

void read_carr_score_options(config::Reader& r, CarrScoreOptions& o);
void read_cgrpo_options(config::Reader& r, CgrpoOptions& o);

}  // namespace keel::rewards
