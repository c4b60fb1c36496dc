// Step / turn boundaries of a response and the placement of per-step values on tokens (spec
// rewards.md C1 "step score", C4 "turn-level placement"). A step *ends* on one token; that token
// carries the step's score (PRM) or reward (dense credit). Three ways to find the ends:
//   delimiter  a step ends on the last token of each run of delimiter tokens (e.g. the newline
//              tokens of the tokenizer) that follows some content; trailing content after the last
//              run ends on the last valid token (INTERPRETATION: leading delimiters start no step)
//   tag        every occurrence of the tag token (Math-Shepherd "ки") is a step end
//   turns      a per-token turn id (−1 = not a policy token); a step ends on the last token of a turn
// In every mode a response where nothing is found is one step ending on its last valid token
// (spec C1: "zero steps -> treat the whole response as one step"); an empty response has no step.
// Not here: decoding text — delimiter ids come from the tokenizer at integration.
//
// Legend: N responses, T tokens, S steps (max over the batch, left-aligned).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace keel::config {
class Reader;
}

namespace keel::rewards {

struct StepBoundaryOptions {
  std::string mode = "delimiter";       ///< delimiter | tag | turns
  std::vector<int64_t> delimiter_ids;   ///< token ids that count as a delimiter (mode delimiter)
  int64_t tag_id = -1;                  ///< step tag token id (mode tag)
};

/// Step ends [N, T] bool. token_ids [N, T] int64, response_mask [N, T] bool (a contiguous span
/// per row). For mode turns pass the turn ids [N, T] in `token_ids`.
at::Tensor find_step_ends(const at::Tensor& token_ids, const at::Tensor& response_mask, const StepBoundaryOptions& o);

at::Tensor step_ends_from_delimiters(const at::Tensor& token_ids, const at::Tensor& response_mask,
                                     const std::vector<int64_t>& delimiter_ids);
at::Tensor step_ends_from_tag(const at::Tensor& token_ids, const at::Tensor& response_mask, int64_t tag_id);
at::Tensor step_ends_from_turn_ids(const at::Tensor& turn_ids, const at::Tensor& response_mask);
/// Adds the last valid token as the single step end of rows that have no step end [N, T].
at::Tensor step_ends_with_fallback(const at::Tensor& step_ends, const at::Tensor& response_mask);

/// Values at the step ends, left-aligned: ({values [N, S], step_mask [N, S] bool}). values [N, T].
std::pair<at::Tensor, at::Tensor> gather_at_step_ends(const at::Tensor& values, const at::Tensor& step_ends);
/// Per-step values [N, S] (over step_mask [N, S]) placed on the step-end tokens -> [N, T], 0 elsewhere.
at::Tensor scatter_to_step_ends(const at::Tensor& step_values, const at::Tensor& step_mask, const at::Tensor& step_ends);
/// Adds `value` [N] to the last valid step of per_step [N, S] (outcome / intrinsic terms, spec C4).
at::Tensor add_on_last_step(const at::Tensor& per_step, const at::Tensor& step_mask, const at::Tensor& value);

void read_step_boundary_options(config::Reader& r, StepBoundaryOptions& o);

}  // namespace keel::rewards
