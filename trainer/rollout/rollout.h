// Rollout: prompts -> G sampled responses each -> a RolloutBatch (ids, masks, behaviour log-probs,
// decoded texts, group ids). Uses the models library's KV-cache generation engine.
// Deliberately not here: rewards (rewards/), credit (trainer/credit/), the update (trainer/learner/).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/chat_template.h"
#include "models/rollout_engine.h"
#include "trainer/rollout/rollout_batch.h"

namespace keel::models {
class Transformer;
class Tokenizer;
}

namespace keel::rollout {

struct RolloutOptions {
  int samples_per_prompt = 8;
  int64_t max_new_tokens = 32;
  double temperature = 1.0;   ///< 0 = greedy
  int64_t top_k = 0;
  double top_p = 1.0;
  std::vector<int64_t> stop_token_ids;
  int batch_size = 64;        ///< rows decoded together
  bool paged = true;          ///< the paged, continuously batched engine (rollout_engine.h); false = generate()
  models::EngineOptions engine;  ///< its options (max_batch is batch_size)
  models::ChatTemplate chat_template{"plain"};  ///< the run's (rollout::load_chat_template)
  uint64_t seed = 0;          ///< per call; rows draw from (seed, first_row + row)
  int64_t first_row = 0;      ///< global index of this call's first row (data-parallel ranks)
};

/// Samples `samples_per_prompt` responses for each prompt. Group id g = index of the prompt.
/// With the paged engine, `stats` (if given) receives its figures (models::EngineStats).
RolloutBatch generate_rollouts(models::Transformer& policy, const models::Tokenizer& tok,
                               const std::vector<data::PromptRecord>& prompts, const RolloutOptions& opt,
                               models::EngineStats* stats = nullptr);

}  // namespace keel::rollout
