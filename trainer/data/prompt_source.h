// Where RL prompts come from: a built-in task (an endless deterministic stream) or a prompt JSONL
// (finite; reshuffled each epoch by seed). Also the held-out split, and a cursor that checkpoints
// save so that resume continues with exactly the next prompt.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "trainer/data/record.h"
#include "trainer/data/task.h"

namespace keel::config {
struct DataSection;
}

namespace keel::data {

class PromptSource {
 public:
  /// The data cursor (checkpointed).
  struct Cursor {
    int64_t epoch = 0;     ///< file mode: passes completed; task mode: unused (0)
    int64_t position = 0;  ///< next index within the epoch (file) or the stream (task)
    bool operator==(const Cursor&) const = default;
  };

  /// From the `data` section: a task (looked up in `tasks`, knobs from data.task_params) when
  /// data.train_file is empty, else the JSONL file(s).
  /// `format` (prompts | preferences | sft, resolved from data.format) picks the file reader:
  /// preference and SFT records become PromptRecords whose meta carries "chosen" / "rejected" or
  /// "response" (JSON strings; see meta_string()).
  static PromptSource from_config(const config::DataSection& c, uint64_t seed, const TaskRegistry& tasks,
                                  const std::string& format = "prompts");
  /// Task mode, for tests and the SFT warm-up.
  static PromptSource from_task(std::shared_ptr<const Task> task, uint64_t seed, int64_t eval_size);
  /// File mode from records already loaded.
  static PromptSource from_records(std::vector<PromptRecord> train, std::vector<PromptRecord> eval, uint64_t seed,
                                   bool shuffle);

  /// The next n training prompts (file mode wraps into the next epoch, reshuffled).
  std::vector<PromptRecord> next_batch(size_t n);
  const std::vector<PromptRecord>& eval_set() const { return eval_; }

  Cursor cursor() const { return cursor_; }
  void restore(const Cursor& c) { cursor_ = c; order_epoch_ = -1; }

  /// The task in task mode, else nullptr.
  const Task* task() const { return task_.get(); }
  /// Why a record cannot be trained on ("" when it can), e.g. its tokens exceed the model's context.
  using RecordCheck = std::function<std::string(const PromptRecord&)>;
  /// Applies `why_not` to the records. File mode: every training and held-out record, now. Task
  /// mode: the held-out set and the first `task_probe` training problems now, and every problem
  /// next_batch draws later. A record that fails now is a keel::Error naming it (its reason, how
  /// many fail, then `hint`) unless `skip`, which drops and counts it (rejected()); an empty
  /// training set is an error either way. A problem drawn later is always skipped and counted (an
  /// endless stream has others, and a run must never die over one record). Checked records are
  /// dropped in a fixed order, so every rank and every resume sees the same data.
  void reject_records(RecordCheck why_not, bool skip, const std::string& hint, int64_t task_probe = 64);
  /// Records reject_records() dropped so far (task mode: grows as problems are drawn).
  int64_t rejected() const { return rejected_; }
  /// The first reason reject_records() gave ("" when none).
  const std::string& first_rejection() const { return first_rejection_; }

  /// Malformed lines skipped while loading (file mode with skip_bad_lines).
  int64_t skipped_lines() const { return skipped_; }
  /// Training prompts per epoch (file mode), 0 for an endless task stream.
  size_t train_size() const { return train_.size(); }
  /// File mode: the training records (unshuffled); empty in task mode.
  const std::vector<PromptRecord>& train_records() const { return train_; }

 private:
  PromptSource() = default;
  const std::vector<size_t>& order_for(int64_t epoch);

  std::shared_ptr<const Task> task_;
  uint64_t seed_ = 0;
  bool shuffle_ = true;
  std::vector<PromptRecord> train_;
  std::vector<PromptRecord> eval_;
  std::unordered_set<std::string> eval_prompts_;  ///< task mode: never train on a held-out problem (held_out_key)
  /// What makes a task problem held out: its prompt and answer.
  static std::string held_out_key(const PromptRecord& r);
  std::vector<size_t> order_;
  int64_t order_epoch_ = -1;
  Cursor cursor_;
  int64_t skipped_ = 0;
  RecordCheck check_;  ///< task mode: applied to each drawn problem (reject_records)
  int64_t rejected_ = 0;
  std::string first_rejection_;
};

/// A string-valued meta field of a record (JSON text decoded); throws keel::Error naming the
/// record id when it is missing or not a string.
std::string meta_string(const PromptRecord& r, const std::string& key);

/// Deterministic permutation of 0..n-1 from a seed (Fisher-Yates over SplitMix64).
std::vector<size_t> seeded_permutation(size_t n, uint64_t seed);

}  // namespace keel::data
