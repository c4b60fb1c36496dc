// Config section `rm:` of `keel train-rm` (reward-model training, spec/rewards.md D1–D2):
//
//   rm:
//     loss: {margin: none|fixed|adaptive, margin_key: margin, label_smoothing: 0.0, reg_lambda: 0.0}
//     ensemble: {paths: [rm_a, rm_b, rm_c], flip_negative_strength: false}
//
// The model, data, batch, optim and checkpoint sections of the run config are shared with
// `keel train`; this section holds only what is specific to the Bradley–Terry loss.
// [interp] The spec suggests rm.ensemble.{size, strength_stats}: "train M RMs with different data
// orders". Here the M members are ordinary `keel train-rm` runs (e.g. with different run.seed, which
// sets the data order), listed in ensemble.paths; their strengths are always logged (rm/strength_*).
#pragma once

#include <string>
#include <vector>

namespace keel::config {

class Reader;

struct RmLossSection {
  std::string margin = "none";       // none | fixed (per pair, from the JSONL) | adaptive (ensemble μ̂)
  std::string margin_key = "margin"; // JSONL key holding a pair's margin (margin: fixed)
  double label_smoothing = 0.0;      // α in [0, 0.5): −[(1−α)·logσ(Δ) + α·logσ(−Δ)]
  double reg_lambda = 0.0;           // λ of + λ·(r_c² + r_r²) (PAR "Reg"; the PAR default is 0.005)
};

struct RmEnsembleSection {
  std::vector<std::string> paths;    // trained reward-model directories (HF, with a score head)
  bool flip_negative_strength = false;  // swap chosen/rejected where the ensemble's μ̂ < 0
};

struct RmSection {
  RmLossSection loss;
  RmEnsembleSection ensemble;
};

void read_rm(Reader& r, RmSection& c);

}  // namespace keel::config
