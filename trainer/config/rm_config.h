// Config section `rm:` of `keel train-rm` (reward-model training, spec/rewards.md D1–D3, D6):
//
//   rm:
//     variant: bt | odin | discriminator
//     loss: {margin: none|fixed|adaptive, margin_key: margin, label_smoothing: 0.0, reg_lambda: 0.0,
//            grad_penalty: {enabled: false, lambda: 10, target: 1, one_sided: true, type: wgan, output: probability}}
//     odin: {length_weight: 1.0, ortho_weight: 1.0}
//     ensemble: {size: 0, paths: [rm_a, rm_b, rm_c], flip_negative_strength: false}
//
// WARM (D3, a weight-averaged reward model) is not a training variant: `keel average-rm` averages
// trained checkpoints (trainer/cli/cmd_average_rm.cpp).
// The model, data, batch, optim and checkpoint sections of the run config are shared with
// `keel train`; this section holds only what is specific to the Bradley–Terry loss.
// Ensembles (D2): ensemble.size = M >= 2 trains M members in one run (member m with run.seed + m,
// which sets its data order and init) into <run dir>/member_<m>/, then logs their preference
// strengths; ensemble.paths instead names members trained earlier. Either feeds margin: adaptive
// and flip_negative_strength, which then train the run's own reward model in <run dir>.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace keel::config {

class Reader;

/// Gradient penalty of a discriminator-style RM (spec D6): λ·E[max(0, ‖∇_ẑ f(ẑ)‖₂ − k)²] over
/// interpolates ẑ of the chosen / rejected input embeddings.
struct RmGradPenaltySection {
  bool enabled = false;
  double lambda = 10.0;         // λ (grad_pen_scale)
  double target = 1.0;          // k (grad_pen_targ)
  bool one_sided = true;        // max(0, ‖∇‖ − k)² (true) or (‖∇‖ − k)²
  std::string type = "wgan";    // wgan: ẑ = ε·z_chosen + (1−ε)·z_rejected (the only one implemented)
  // f differentiated: probability (D = σ(score), the spec's ∇D) | logit (the score). [interp] the
  // spec writes ‖∇D‖ with D ∈ (0, 1); on the tiny test model the logit form with λ = 10, k = 1 is
  // unstable (input-embedding gradients of the score start near 7: penalties of ~300 and spikes).
  std::string output = "probability";
};

struct RmLossSection {
  std::string margin = "none";       // none | fixed (per pair, from the JSONL) | adaptive (ensemble μ̂)
  std::string margin_key = "margin"; // JSONL key holding a pair's margin (margin: fixed)
  double label_smoothing = 0.0;      // α in [0, 0.5): −[(1−α)·logσ(Δ) + α·logσ(−Δ)]
  double reg_lambda = 0.0;           // λ of + λ·(r_c² + r_r²) (PAR "Reg"; the PAR default is 0.005)
  RmGradPenaltySection grad_penalty;
};

/// ODIN (spec D3): weights of the length-disentangling terms (PAR's reward_odin_L / reward_odin_O).
struct RmOdinSection {
  double length_weight = 1.0;  // · (|ρ(r_Q, len)| − ρ(r_L, len))
  double ortho_weight = 1.0;   // · |cos(w_Q, w_L)|
};

struct RmEnsembleSection {
  int64_t size = 0;                  // M >= 2: train M members in this run (0 = none)
  std::vector<std::string> paths;    // trained reward-model directories (HF, with a score head)
  bool flip_negative_strength = false;  // swap chosen/rejected where the ensemble's μ̂ < 0
};

struct RmSection {
  std::string variant = "bt";  // bt (Bradley–Terry) | odin (two heads, D3) | discriminator (BCE, D6)
  RmLossSection loss;
  RmOdinSection odin;
  RmEnsembleSection ensemble;
};

void read_rm(Reader& r, RmSection& c);

}  // namespace keel::config
