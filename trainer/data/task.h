// Built-in synthetic tasks: prompt generators that need no files (the embedded default).
// A task makes problem `index` of a split deterministically from (seed, split, index), so a data
// cursor is just an index and resume is exact. Each task names the reward verifier that scores it
// (registered in rewards/) and can write a gold response for SFT warm-up.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/registry.h"
#include "trainer/data/record.h"

namespace keel::config {
class Reader;
}

namespace keel::data {

enum class Split { kTrain = 0, kEval = 1 };

class Task {
 public:
  virtual ~Task() = default;
  /// Problem `index` of `split` (deterministic). Its answer and meta carry what the verifier needs.
  virtual PromptRecord make(uint64_t seed, Split split, uint64_t index) const = 0;
  /// A correct response for SFT warm-up.
  virtual std::string gold_response(const PromptRecord& r) const = 0;
  /// A wrong response for synthetic preference pairs (offline DPO, reward-model training on a
  /// task): by default the gold response with its last number changed by a salt-chosen non-zero
  /// amount in [-9, 9]. Deterministic in (r, salt).
  virtual std::string wrong_response(const PromptRecord& r, uint64_t salt) const;
  /// The reward verifier that scores this task's responses (a name in the reward registry).
  virtual std::string verifier() const = 0;
  /// Texts a tokenizer trained on this task's text must keep as one piece each, in SentencePiece
  /// form (e.g. "▁yes", "▁no": a judge's verdict is read from one token's probability). Default none.
  virtual std::vector<std::string> tokenizer_symbols() const { return {}; }
  /// Merged pieces a run tokenizer trained on this task's text gets beyond its characters (word-
  /// like tasks want more than the arithmetic tasks' default).
  virtual int tokenizer_extra_pieces() const { return 16; }
};

/// Reads the task's knobs from `data.task_params`; unknown keys are errors with file:line.
using TaskFactory = std::function<std::unique_ptr<Task>(config::Reader&)>;
using TaskRegistry = Registry<TaskFactory>;

void register_builtin_tasks(TaskRegistry& r);

/// Deterministic 64-bit mixing (splitmix64): the tasks' only source of randomness.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform integer in [lo, hi] (unbiased by rejection).
  int64_t uniform(int64_t lo, int64_t hi) {
    const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % span;
    uint64_t x;
    do x = next(); while (x >= limit);
    return lo + static_cast<int64_t>(x % span);
  }

 private:
  uint64_t s_;
};

/// The stream seed of one problem.
inline uint64_t problem_seed(uint64_t seed, Split split, uint64_t index) {
  SplitMix64 m(seed * 0x100000001B3ull + static_cast<uint64_t>(split));
  return m.next() ^ (index * 0xD6E8FEB86659FD93ull);
}

}  // namespace keel::data
