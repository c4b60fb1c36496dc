// Scorer — runs rule-based verifiers over a batch on a thread pool, with a per-sample deadline and a
// fallback reward, so that no verifier can stall or crash a training step.
//
// A sample gets the fallback reward (and a counted metric) when its text is malformed (empty, longer
// than max_bytes, invalid UTF-8: scorer/malformed), when the verifier throws or returns a
// non-finite value (scorer/errors), or when it runs past the deadline (scorer/timeouts).
//
// Design choice for timeouts: a std::thread cannot be killed, so a worker that overruns the deadline
// is *retired*: the scorer stops waiting for it, records the fallback, detaches the thread and starts
// a fresh worker in its place, so the pool keeps its size. The retired thread finishes its verifier
// call whenever it does, finds its sample already settled, and exits; everything it touches (the
// job's copy of the text and metadata, the verifier function, the queue) is held by shared_ptr, so it
// never touches freed memory even if the Scorer itself is gone by then. A verifier that never returns
// therefore leaks one thread (counted in scorer/stuck_workers, and capped by max_stuck_workers, after
// which the scorer refuses to run verifiers); verifiers must capture what they need by value, never
// a pointer to an object that may die.
//
// What this is not: a sandbox (a verifier that corrupts memory or calls exit() still takes the
// process down) and not a process pool; run untrusted code (e.g. unit-test execution) elsewhere.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace keel::rewards {

struct ScorerBatch;  // one score() / run() call's slots (scorer.cpp)

/// A rule-based verifier: (response text, the prompt record's metadata) -> score. Throws on
/// unusable metadata. Must be thread-safe and self-contained (capture by value).
using VerifyFn = std::function<double(std::string_view response, const nlohmann::json& meta)>;

struct ScorerOptions {
  double timeout_ms = 2000;                ///< per-sample deadline (reward.timeout_ms)
  double fallback = 0.0;                   ///< reward on timeout / error / malformed text (reward.fallback)
  int threads = 0;                         ///< worker threads; 0 = std::thread::hardware_concurrency()
  int64_t max_bytes = int64_t{1} << 20;    ///< longer responses are malformed (1 MiB)
  /// Once this many workers have been retired (stuck verifiers), the scorer stops starting
  /// verifiers: every later sample gets the fallback as an error, so a verifier that hangs on
  /// every input cannot leak a thread per sample forever.
  int64_t max_stuck_workers = 64;
};

/// How one sample was settled.
enum class ScoreStatus { kOk, kTimeout, kError, kMalformed };

struct ScoreResult {
  std::vector<double> values;          ///< [N] verifier scores, fallback where status != kOk
  std::vector<ScoreStatus> status;     ///< [N]
  int64_t timeouts = 0;
  int64_t errors = 0;
  int64_t malformed = 0;
  std::string first_error;             ///< the first exception message of this batch ("" if none)
  std::string first_malformed;         ///< why the first malformed text was ("" if none)
};

/// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool valid_utf8(std::string_view s);

class Scorer {
 public:
  explicit Scorer(ScorerOptions opt = {});
  /// Joins the idle workers; retired (stuck) workers stay detached.
  ~Scorer();
  Scorer(const Scorer&) = delete;
  Scorer& operator=(const Scorer&) = delete;

  /// Scores responses[i] against metadata[i] (metadata may be empty: every sample sees an empty
  /// object). Returns when every sample is settled; safe to call from several threads at once.
  ScoreResult score(const VerifyFn& fn, const std::vector<std::string>& responses,
                    const std::vector<nlohmann::json>& metadata);

  /// Runs task(i) for i in [0, n) on the same pool under the same deadline (no text checks): any
  /// work that must not stall a step, e.g. environment steps (trainer/env/episodes.h). value[i] is
  /// what task(i) returns; status says how slot i was settled. The task must capture by value
  /// (shared_ptr) what it touches: a retired worker may run it after run() has returned.
  ScoreResult run(size_t n, const std::function<double(size_t)>& task);

  const ScorerOptions& options() const { return opt_; }
  /// Threads retired because they overran the deadline, over the scorer's lifetime.
  int64_t stuck_workers() const;

  struct Shared;  // queue + workers' shared state (scorer.cpp)

 private:
  void ensure_workers();
  /// Queues slots `todo` of a prepared batch and waits until every one is settled.
  void dispatch(const std::shared_ptr<ScorerBatch>& b, const std::vector<size_t>& todo);
  void retire_and_replace(int worker_id);

  ScorerOptions opt_;
  std::shared_ptr<Shared> shared_;
};

/// Adds "scorer/timeouts", "scorer/errors", "scorer/malformed" (counts in this batch) to `metrics`.
void add_scorer_metrics(const ScoreResult& r, std::map<std::string, double>& metrics);

}  // namespace keel::rewards
