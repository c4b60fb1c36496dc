// Where rewards land on the response tokens before credit assignment (the shape stage's rule):
// a sequence reward on each row's last response token, and a scheme's dense per-token rewards on
// response tokens only — with interior holes in the response mask (tool / observation tokens the
// policy did not write), the last response token is the last one the mask keeps, not length − 1,
// and a dense reward that falls in a hole belongs to the segment that ends before it.
//
// Shapes: N rows, T response tokens (padded).
#pragma once

#include <ATen/core/Tensor.h>

namespace keel::credit {

/// [N, T] float32: rewards [N] on each row's last token with mask 1; 0 elsewhere and on rows with
/// no response token.
at::Tensor place_sequence_rewards(const at::Tensor& rewards, const at::Tensor& mask);

/// [N, T] float32: dense rewards [N, T'] (T' <= T: padded with 0; T' > T: the extra columns must
/// be 0) with every value that sits where mask is 0 moved to the last masked-in token before it —
/// the end of the segment it follows — or, in a row's leading hole, to the first masked-in token
/// after it. Rows with no response token keep nothing (and must carry no dense reward).
at::Tensor snap_to_segment_ends(const at::Tensor& token_rewards, const at::Tensor& mask);

}  // namespace keel::credit
