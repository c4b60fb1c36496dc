// A checkpoint's trainer state, shared by `keel train` and `keel train-rm`: trainer_state.json
// (the counters, the data cursor, the numerics guard's skipped steps, plus whatever else a learner
// keeps, as top-level keys of the same object) and the optimizer archive (optimizer.pt and the
// like). Deliberately not here: the models, reward states and where each learner's extras come
// from (trainer/loop/checkpoint_io.cpp, trainer/cli/cmd_train_rm.cpp).
//   trainer_state.json: {"step": 12, "opt_step": 24, "data_cursor": {"epoch": 0, "position": 96},
//                        "skipped_steps": 0, <extras: "critic_opt_step", "kl_controller", ...>}
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace torch::optim {
class Optimizer;
}

namespace keel::checkpoint {

/// File name of the trainer state inside a checkpoint directory.
inline constexpr const char* kTrainerStateFile = "trainer_state.json";

/// What every learner resumes from, plus its own extras.
struct TrainerState {
  /// The data cursor (data::PromptSource::Cursor's fields).
  struct DataCursor {
    int64_t epoch = 0;     ///< passes over the data completed
    int64_t position = 0;  ///< next index within the epoch
  };
  int64_t step = 0;           ///< learner steps completed
  int64_t opt_step = 0;       ///< optimizer steps taken (the lr schedule's clock)
  DataCursor data_cursor;     ///< where the next step's data starts
  int64_t skipped_steps = 0;  ///< steps the numerics guard skipped so far
  /// Learner-specific top-level keys (e.g. critic_opt_step, kl_controller, estimator_state,
  /// reward_state_scorers); always a JSON object, never holding one of the keys above.
  nlohmann::json extras = nlohmann::json::object();
};

/// Writes `state` to staging_dir/trainer_state.json atomically: one JSON object whose top-level
/// keys are step, opt_step, data_cursor {epoch, position}, skipped_steps and each extra.
/// Throws keel::Error if an extra reuses one of the common keys or extras is not an object.
void write_trainer_state(const std::filesystem::path& staging_dir, const TrainerState& state);

/// Reads dir/trainer_state.json. Every key other than the common ones lands in extras. Throws
/// keel::Error naming the file and the key when the file is not JSON, a common key or one of
/// `required_extras` is missing, or a common key has the wrong type or is negative (every counter
/// counts up from 0).
TrainerState read_trainer_state(const std::filesystem::path& dir, const std::vector<std::string>& required_extras = {});

/// Saves `opt`'s state (a torch OutputArchive) to `file`; make_adamw(..., file) loads it back.
void save_optimizer(const torch::optim::Optimizer& opt, const std::filesystem::path& file);

}  // namespace keel::checkpoint
