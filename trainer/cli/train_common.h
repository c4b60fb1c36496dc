// Pieces `keel train` and `keel train-rm` share: a random-init model config from model.init, AdamW
// from the optim section (with a checkpoint's state), and the run tokenizer trained on the training
// text when a randomly initialised model has none.
// Deliberately not here: the learners' loops.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "models/model_config.h"
#include "trainer/config/config.h"

namespace torch::optim {
class AdamW;
}
namespace keel::models {
class Tokenizer;
class Transformer;
}

namespace keel::cli {

/// Seconds since t0 (phase timings).
inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// A random-init config from model.init sized to the tokenizer (EOS / BOS / PAD ids from it;
/// [interp] without a PAD token the EOS stands in, as HF's sequence classifiers need one).
/// `device` (auto | cpu | cuda, named `what` in errors: "run.device", "--device") resolved: auto =
/// CUDA when usable, else CPU; CUDA is GPU local_rank % device count. Unknown names and cuda
/// without a usable device are keel::Error.
at::Device select_device(const std::string& device, const std::string& what, int local_rank = 0);

models::ModelConfig init_config(const config::ModelSection& m, const models::Tokenizer& tok);

/// Adds model.lora's adapters to `model` (A drawn from `seed`), or, with `adapter_dir`, the options
/// and weights (with trained heads) of that PEFT directory; model.lora.rank must then be 0 or its r.
void attach_lora(models::Transformer& model, const config::LoraSection& lora, const std::string& adapter_dir,
                 uint64_t seed);

/// AdamW over `params` at learning rate `lr` with the optim section's betas / eps / weight decay,
/// loading the optimizer state saved in `state_file` when given.
std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<at::Tensor>& params, double lr,
                                                const config::OptimSection& o,
                                                const std::optional<std::filesystem::path>& state_file);

/// <run_dir>/tokenizer/tokenizer.model: trained on `corpus` (64 pieces, SentencePiece) unless it
/// exists already (a resumed run keeps its tokenizer). Staged and renamed: a kill never leaves a
/// half-written tokenizer. Returns the model file.
/// `symbols`: texts that must be one piece each (a judge task's " yes" / " no" labels, as "▁yes");
/// `extra_pieces`: merged pieces beyond the characters (Task::tokenizer_extra_pieces).
std::filesystem::path train_run_tokenizer(const std::vector<std::string>& corpus, const std::filesystem::path& run_dir,
                                          const std::vector<std::string>& symbols = {}, int extra_pieces = 16);

}  // namespace keel::cli
