// Dr. GRPO (see dr_grpo.h).
#include "trainer/credit/dr_grpo.h"

#include <torch/torch.h>

#include "trainer/credit/advantage_utils.h"
#include "trainer/credit/grpo.h"

namespace keel::credit {

AdvantageOutput advantage_dr_grpo(const AdvantageInputs& in, const AdvantageOptions& opts) {
  // Dr. GRPO: the GRPO body without the std normalisation, whatever advantage.norm_by_std says.
  return grpo_outcome_advantage(in, opts, /*norm_by_std=*/false, "dr_grpo");
}

}  // namespace keel::credit
