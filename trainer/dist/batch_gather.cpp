#include "trainer/dist/batch_gather.h"

#include <torch/torch.h>

#include "trainer/common/error.h"

namespace keel::dist {

namespace {

at::Tensor pad_cols(const at::Tensor& t, int64_t w, bool left, double value) {
  const int64_t extra = w - t.size(1);
  if (extra <= 0) return t;
  auto pad = torch::full({t.size(0), extra}, value, t.options());
  return left ? torch::cat({pad, t}, 1) : torch::cat({t, pad}, 1);
}

}  // namespace

rollout::RolloutBatch all_gather_batch(Communicator& comm, const rollout::RolloutBatch& local, int64_t pad_id) {
  // Widest prompt / response and the group count of every rank.
  const int64_t groups = local.size() > 0 ? local.group_ids.max().item<int64_t>() + 1 : 0;
  const auto shape = comm.all_gather(torch::tensor({local.prompt_ids.size(1), local.response_ids.size(1), groups,
                                                    static_cast<int64_t>(local.ref_logprobs.defined()),
                                                    static_cast<int64_t>(local.values.defined()),
                                                    static_cast<int64_t>(local.rewards.defined())},
                                                   torch::kLong));
  int64_t pw = 0, rw = 0;
  std::vector<int64_t> group_offset;
  int64_t offset = 0;
  for (const auto& s : shape) {
    pw = std::max(pw, s[0].item<int64_t>());
    rw = std::max(rw, s[1].item<int64_t>());
    group_offset.push_back(offset);
    offset += s[2].item<int64_t>();
    for (int k = 3; k < 6; ++k)
      if (s[k].item<int64_t>() != shape.front()[k].item<int64_t>())
        fail("all_gather_batch: a batch field is defined on some ranks only");
  }
  const auto gather = [&](const at::Tensor& t, int64_t w, bool left, double value) {
    if (!t.defined()) return at::Tensor();
    auto parts = comm.all_gather_varsize(w > 0 ? pad_cols(t.contiguous(), w, left, value) : t.contiguous());
    return torch::cat(parts, 0);
  };
  rollout::RolloutBatch g;
  g.prompt_ids = gather(local.prompt_ids, pw, true, static_cast<double>(pad_id));
  g.prompt_mask = gather(local.prompt_mask, pw, true, 0);
  g.response_ids = gather(local.response_ids, rw, false, static_cast<double>(pad_id));
  g.response_mask = gather(local.response_mask, rw, false, 0);
  g.old_logprobs = gather(local.old_logprobs, rw, false, 0);
  g.ref_logprobs = gather(local.ref_logprobs, rw, false, 0);
  g.values = gather(local.values, rw, false, 0);
  g.rewards = gather(local.rewards, 0, false, 0);
  auto gid = comm.all_gather_varsize(local.group_ids.contiguous());
  for (size_t r = 0; r < gid.size(); ++r) gid[r] = gid[r] + group_offset[r];
  g.group_ids = torch::cat(gid, 0);
  g.policy_version = local.policy_version;
  return g;
}

std::vector<int64_t> rank_rows(int64_t rows, int64_t mini, int rank, int world) {
  TORCH_CHECK(mini > 0 && rows % mini == 0 && mini % world == 0, "rank_rows: ", rows, " rows, mini-batch ", mini,
              ", world ", world, ": rows must split into mini-batches that split among the ranks");
  std::vector<int64_t> out;
  const int64_t share = mini / world;
  for (int64_t k = 0; k < rows; k += mini)
    for (int64_t i = 0; i < share; ++i) out.push_back(k + rank * share + i);
  return out;
}

}  // namespace keel::dist
