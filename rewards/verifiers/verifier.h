// VerifierReward — adapts a rule-based VerifyFn (response text + metadata -> score) into a
// RewardScheme that runs on the shared Scorer (thread pool, per-sample deadline, fallback).
// Every verifier in rewards/verifiers/ is registered through this adapter.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "rewards/reward.h"
#include "rewards/scorer.h"

namespace keel::rewards {

class VerifierReward : public RewardScheme {
 public:
  /// `name` is the registered scheme name (for messages); `fn` must be self-contained (scorer.h).
  /// `correct_value`: for a verifier that judges correctness, the score fn returns for a correct
  /// response — then RewardOutput::correct is (scored in time) && value == correct_value.
  VerifierReward(std::string name, VerifyFn fn, std::optional<double> correct_value = std::nullopt);

  /// rewards [N] float32 = fn(response_i, meta_i), fallback where the scorer settles otherwise;
  /// metrics scorer/{timeouts,errors,malformed} (this batch), scorer/stuck_workers (the scorer's
  /// lifetime count) and error_share (errors + timeouts over the calls made, malformed texts not
  /// being calls); failures: the first message of each kind; detail "status" [N] int64 (ScoreStatus
  /// values).
  RewardOutput score(const RewardInput& in) override;
  /// Uses ctx.scorer when given; otherwise a private Scorer with default options is made on first use.
  void bind(const RewardContext& ctx) override;

  const VerifyFn& fn() const { return fn_; }

 private:
  std::string name_;
  VerifyFn fn_;
  std::optional<double> correct_value_;
  Scorer* scorer_ = nullptr;
  std::unique_ptr<Scorer> own_scorer_;
};

}  // namespace keel::rewards
