// Config sections of the learner's credit assignment and losses (spec/credit-assignment.md §13):
// learner (algorithm + policy loss), advantage, kl, filter, overlong, dpo.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/node.h"

namespace keel::config {

class Reader;
struct KnownNames;

struct LearnerSection {
  std::string algorithm = "grpo";          // grpo | ppo | dpo | sft | rm
  std::string policy_loss = "ppo_clip";    // registered policy loss name
  double clip_low = 0.2;
  double clip_high = 0.2;                  // DAPO 0.28; GSPO 3e-4 / 4e-4
  double dual_clip_c = 3.0;                // dual-clip constant c > 1 (0 = off)
  std::string loss_agg = "token-mean";     // token-mean | seq-mean-token-sum | seq-mean-token-mean | seq-mean-token-sum-norm
  double agg_norm_len = 512;               // Dr.GRPO constant for seq-mean-token-sum-norm
  double entropy_coef = 0.0;
};

struct AdvantageSection {
  std::string estimator = "grpo";
  double eps = 1e-6;                       // std epsilon
  bool norm_by_std = true;
  double gamma = 1.0;
  double lam = 0.95;
  bool whiten = true;                      // GAE / REINFORCE++
  std::string singleton = "error";         // groups of one in grouped estimators: error | zero | raw
  Node raw;                                // the whole section, for the estimator-specific subsections
                                           // (credit::read_advantage_subsections reads them at build time)
};

struct KlSection {
  bool in_reward = false;
  bool in_loss = false;
  std::string estimator = "k3";            // k1 | k2 | k3 | k1+ | k2+ | k3+ (straight-through) | abs
  double coef = 0.001;
  std::string controller = "fixed";        // fixed | adaptive
  double target = 0.1;
  double horizon = 10000;
};

struct FilterSection {
  bool dynamic_sampling = false;
  std::string metric = "acc";
  int max_gen_batches = 10;
};

struct OverlongSection {
  bool enable = false;
  int buffer_len = 4096;
  double penalty_factor = 1.0;
};

struct DpoSection {
  std::string loss = "sigmoid";            // sigmoid | cdpo | robust | ipo | hinge
  double beta = 0.1;
  double label_smoothing = 0.0;            // cdpo / robust only; > 0 with any other loss is an error
  bool ipo_length_norm = true;
  bool online = false;                     // pairs from rollouts (best vs worst of each group by reward)
};

void read_learner(Reader& r, LearnerSection& c, const KnownNames& known);
void read_advantage(Reader& r, AdvantageSection& c, const KnownNames& known);
void read_kl(Reader& r, KlSection& c, const KnownNames& known);
void read_filter(Reader& r, FilterSection& c);
void read_overlong(Reader& r, OverlongSection& c);
void read_dpo(Reader& r, DpoSection& c, const KnownNames& known);

}  // namespace keel::config
