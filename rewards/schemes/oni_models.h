// ONI's intrinsic reward models (spec rewards.md D4; facebookresearch/oni rlaif/reward_model.py and
// the online_* branches of learner.py), trained online from an annotator's feedback:
//   hashing        (`online_cls`)              r_int = cached annotator label of the exact message, 0 if unseen
//   classification (`online_cls_reward_model`) r_int = 1[p(class 1 | m) > classification_threshold], a char-CNN
//                                              classifier trained with cross-entropy on the labels
//   ranking        (`online_motif`)            r_φ(m) trained with a Bradley–Terry softmax on annotated pairs
//                                              (soft labels q: 1 second better, 0 first better, 0.5 tie / invalid);
//                                              r_int = z if z > eps_threshold_quantile else 0, z = r_φ standardised
//                                              by running mean / variance
// The annotator ("an LLM labels each new message") is any registered verifier or learned reward
// (generative_yes, reward_model, format_regex ...) scoring the message as a response: label =
// 1[score > threshold]; a pair is compared by the two scores (tie within tie_margin, invalid when a
// score is not finite).
// INTERPRETATION (the released annotator and trainer run asynchronously beside the learner): here
// each batch is scored with the models as they are, then up to annotate_per_step new messages
// (pairs) are annotated and the model takes one update of grad_steps Adam steps on minibatches drawn
// from everything annotated so far (all of it when smaller than batch_size).
// INTERPRETATION, further: minibatches are drawn without replacement (the whole set when smaller);
// ranking pairs are two distinct messages drawn uniformly from every message seen so far; a pair's
// label comes from comparing the annotator's two pointwise scores (a pairwise LLM prompt is not
// wired); the running statistics are keel's exact Chan–Welford population mean / variance
// (running_norm.h), initialised by the first batch, where the released RunningMeanStd starts from
// count 1e-4, mean 0, var 1 and folds in the unbiased batch variance.
// Pure functions first (tested against loops), then the online state machine OniIntrinsic.
// Not here: the reward combination and the per-episode counts (oni.h), the registry glue.
//
// Legend: B messages / steps, P pairs.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "rewards/reward.h"
#include "rewards/schemes/oni.h"
#include "rewards/schemes/oni_net.h"
#include "rewards/schemes/running_norm.h"
#include "rewards/schemes/state_dict.h"

namespace keel::config {
class Reader;
}

namespace keel::rewards {

// ---- pure functions -------------------------------------------------------------------------------

/// r_int [B] float64 = 1[p1 > threshold] (strict). p1 [B] = p(class 1).
at::Tensor oni_classifier_reward(const at::Tensor& p1, double threshold);

/// Bradley–Terry softmax loss per pair [P]: −[(1−q)·log softmax(r1,r2)_1 + q·log softmax(r1,r2)_2],
/// (= −[(1−q)·logσ(r1−r2) + q·logσ(r2−r1)]). r1, r2, q [P] (same floating dtype).
at::Tensor oni_pair_loss(const at::Tensor& r1, const at::Tensor& r2, const at::Tensor& q);

/// Soft pair label q [P] float64 from annotator scores s1, s2 [P]: 0.5 when either is not finite
/// (invalid) or |s1 − s2| <= tie_margin (tie), 1 when s2 is higher (second better), else 0.
at::Tensor oni_pair_target(const at::Tensor& s1, const at::Tensor& s2, double tie_margin);

struct OniRankingRewardOptions {
  double eps_threshold_quantile = -0.5;  ///< keep the standardised reward only above this
  double var_floor = 1e-8;               ///< z = (r − μ)/sqrt(max(var, var_floor))
  /// Spec open question 2: the released learner stores the thresholded value under another name and
  /// feeds the raw r_φ to the agent. false (default): the intended thresholded z; true: raw r_φ.
  bool use_raw_reward = false;
};

/// r_int [B] float64 from raw r_φ [B] and the running statistics (already updated with this batch):
/// z if z > eps_threshold_quantile else 0, or the raw values with use_raw_reward.
at::Tensor oni_ranking_reward(const at::Tensor& raw, const RunningMeanStd& stats, const OniRankingRewardOptions& o);

// ---- the annotator ----------------------------------------------------------------------------------

struct OniAnnotatorOptions {
  std::string scheme;  ///< registered verifier / learned reward that scores a message
  /// The prompt the annotator sees beside each message (a generative judge's {prompt}). [interp] wording.
  std::string prompt =
      "You are watching an agent act in an environment. Is the following message a sign of progress "
      "or useful for the task?";
  double threshold = 0.5;   ///< label = 1[score > threshold]
  double tie_margin = 0.0;  ///< pair comparison: |s1 − s2| <= tie_margin is a tie
};

/// A registered scheme used as the annotator: each message is a response to `prompt`.
class OniAnnotator {
 public:
  OniAnnotator(std::unique_ptr<RewardScheme> judge, OniAnnotatorOptions o);
  void bind(const RewardContext& ctx);
  /// Raw scores [B] float64 of the messages.
  at::Tensor scores(const std::vector<std::string>& messages);
  /// Labels 0/1 [B] float64 (a non-finite score labels 0).
  at::Tensor labels(const std::vector<std::string>& messages);
  /// Soft pair labels q [P] float64 (oni_pair_target of the two messages' scores).
  at::Tensor compare(const std::vector<std::pair<std::string, std::string>>& pairs);
  const OniAnnotatorOptions& options() const { return o_; }

 private:
  std::unique_ptr<RewardScheme> judge_;
  OniAnnotatorOptions o_;
};

// ---- the online models ---------------------------------------------------------------------------------

struct OniTrainOptions {
  int64_t batch_size = 256;  ///< messages (pairs) per gradient step
  double lr = 1e-4;          ///< Adam learning rate
  int64_t grad_steps = 32;   ///< gradient steps per update
  double grad_clip = 0.0;    ///< max global gradient norm (0 = off)
};

/// What both ONI models train: the char-CNN, its Adam and the minibatch sampler, checkpointed
/// together under prefix + "net/", "adam/", "rng".
struct OniTrainable {
  OniTrainable(const OniNetOptions& net_opts, int64_t n_out, double lr);
  void save_state(StateDict& out, const std::string& prefix) const;
  void load_state(const StateDict& in, const std::string& prefix);

  OniNet net;
  OniAdam adam;
  OniRng rng;
};

/// Char-CNN classifier (2 classes) trained with cross-entropy on 0/1 labels.
class OniClassifier {
 public:
  OniClassifier(const OniNetOptions& net, const OniTrainOptions& train, double threshold);
  /// p(class 1) [B] float32, no grad.
  at::Tensor probability(const std::vector<std::string>& messages) const;
  /// r_int [B] float64 = 1[p > threshold].
  at::Tensor reward(const std::vector<std::string>& messages) const;
  /// grad_steps Adam steps on minibatches of the labelled messages; returns the mean loss (0 when empty).
  double update(const std::map<std::string, double>& labels);
  void save_state(StateDict& out, const std::string& prefix) const;
  void load_state(const StateDict& in, const std::string& prefix);
  const OniNet& net() const { return model_.net; }

 private:
  OniNetOptions net_opts_;
  OniTrainOptions train_;
  double threshold_;
  OniTrainable model_;
};

/// Scalar reward network r_φ trained on annotated pairs of messages.
class OniRanker {
 public:
  OniRanker(const OniNetOptions& net, const OniTrainOptions& train, const OniRankingRewardOptions& reward);
  /// Raw r_φ [B] float32, no grad.
  at::Tensor raw(const std::vector<std::string>& messages) const;
  /// Folds the batch's raw values into the running statistics, then r_int [B] float64.
  at::Tensor reward(const std::vector<std::string>& messages);
  /// Adds the messages not seen before to the pool pairs are drawn from (first-seen order).
  void observe(const std::vector<std::string>& messages);
  /// k pairs of distinct pool messages (indices into pool()), uniformly at random; none when |pool| < 2.
  std::vector<std::pair<int64_t, int64_t>> sample_pairs(int64_t k);
  /// Appends annotated pairs (pool indices) with their soft labels q [P].
  void add_pairs(const std::vector<std::pair<int64_t, int64_t>>& pairs, const at::Tensor& q);
  /// grad_steps Adam steps (gradient clipped) on minibatches of the pairs; returns the mean loss (0 when none).
  double update();
  void save_state(StateDict& out, const std::string& prefix) const;
  void load_state(const StateDict& in, const std::string& prefix);
  const std::vector<std::string>& pool() const { return pool_; }
  int64_t num_pairs() const { return static_cast<int64_t>(q_.size()); }
  const RunningMeanStd& stats() const { return stats_; }

 private:
  OniNetOptions net_opts_;
  OniTrainOptions train_;
  OniRankingRewardOptions reward_;
  OniTrainable model_;
  RunningMeanStd stats_;
  std::vector<std::string> pool_;
  std::map<std::string, int64_t> pool_index_;
  std::vector<int64_t> first_, second_;  ///< [P] pool indices
  std::vector<double> q_;                ///< [P] soft labels
};

// ---- the per-scheme state machine -------------------------------------------------------------------

enum class OniModel { kSignal, kHashing, kClassification, kRanking };

struct OniIntrinsicOptions {
  std::string model = "signal";    ///< signal | hashing | classification | ranking
  int64_t annotate_per_step = 256;  ///< messages (hashing/classification) or pairs (ranking) annotated per batch
  OniAnnotatorOptions annotator;
  OniNetOptions net;
  OniTrainOptions classification;      ///< batch 256, lr 1e-4, 32 steps, no clip
  double classification_threshold = 0.5;
  OniTrainOptions ranking{256, 1e-4, 32, 10.0};  ///< gradient clip 10
  OniRankingRewardOptions ranking_reward;
};

OniModel oni_model_of(const std::string& name);

/// One of the three learned intrinsic models with its annotator (model != signal).
class OniIntrinsic {
 public:
  OniIntrinsic(const OniIntrinsicOptions& o, std::unique_ptr<RewardScheme> annotator);
  void bind(const RewardContext& ctx);
  /// r_int [B] float64 of the messages of every valid step (repeats included: the ranking statistics
  /// count each step) under the current model; then annotates and updates (see the file comment).
  /// Metrics under "oni/".
  at::Tensor step(const std::vector<std::string>& messages, std::map<std::string, double>& metrics);
  void save_state(StateDict& out) const;
  void load_state(const StateDict& in);
  OniModel model() const { return model_; }
  const OniLabelCache& cache() const { return cache_; }
  const OniClassifier* classifier() const { return classifier_.get(); }
  const OniRanker* ranker() const { return ranker_.get(); }

 private:
  OniIntrinsicOptions o_;
  OniModel model_;
  OniAnnotator annotator_;
  OniLabelCache cache_;
  std::unique_ptr<OniClassifier> classifier_;
  std::unique_ptr<OniRanker> ranker_;
};

/// Reads model, annotate_per_step and the net / classification / ranking / annotator sections;
/// builds the annotator from the rule-based verifiers and learned rewards (null when model is signal
/// or the annotator is missing / unknown, which is reported at annotator.scheme).
std::unique_ptr<RewardScheme> read_oni_intrinsic_options(config::Reader& r, OniIntrinsicOptions& o);

}  // namespace keel::rewards
