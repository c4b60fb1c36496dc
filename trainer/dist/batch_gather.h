// The rollout batch across data-parallel ranks (colocated placement): every rank generates and
// scores its share of the step's prompts, then all_gather_batch() gives every rank the whole
// batch — so that credit assignment (group statistics, batch whitening, KL controllers) is computed
// on the global batch exactly as one process would, and each rank then trains on its slice of
// every global mini-batch (rank_rows()).
// Texts and finish reasons travel only when asked (with_texts: DAPO's dynamic sampling selects rows
// across ranks); records never do (pointers into each rank's own copy of the step's prompts).
#pragma once

#include <cstdint>
#include <vector>

#include "trainer/dist/communicator.h"
#include "trainer/rollout/rollout_batch.h"

namespace keel::dist {

/// Tensors of every rank's rows, rank-major: prompts re-left-padded and responses re-right-padded to
/// the widest rank; group ids of rank r offset by the groups of ranks < r. Every tensor field
/// (rollout::tensor_fields()) defined on the ranks is gathered; a field must be defined on all ranks
/// or on none. with_texts: prompt / response texts and finish reasons too.
rollout::RolloutBatch all_gather_batch(Communicator& comm, const rollout::RolloutBatch& local, int64_t pad_id = 0,
                                       bool with_texts = false);

/// The global rows rank `rank` of `world` trains on, in its mini-batch order: for each global
/// mini-batch k of `mini` rows, rows [k*mini + rank*mini/world, k*mini + (rank+1)*mini/world).
/// rows % mini == 0 and mini % world == 0 are required.
std::vector<int64_t> rank_rows(int64_t rows, int64_t mini, int rank, int world);

}  // namespace keel::dist
