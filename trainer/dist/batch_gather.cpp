#include "trainer/dist/batch_gather.h"

#include <torch/torch.h>

#include "base/error.h"
#include "trainer/dist/string_blob.h"

namespace keel::dist {

rollout::RolloutBatch all_gather_batch(Communicator& comm, const rollout::RolloutBatch& local, int64_t pad_id,
                                       bool with_texts) {
  using Layout = rollout::TensorField::Layout;
  const auto& fields = rollout::tensor_fields();
  // Widest prompt / response, group count and which fields are defined, of every rank.
  std::vector<int64_t> head{local.prompt_ids.size(1), local.response_ids.size(1),
                            local.size() > 0 ? local.group_ids.max().item<int64_t>() + 1 : 0};
  for (const auto& f : fields) head.push_back(static_cast<int64_t>((local.*f.member).defined()));
  const auto heads = comm.all_gather(torch::tensor(head, torch::kLong));
  int64_t pw = 0, rw = 0, offset = 0;
  std::vector<int64_t> group_offset;
  for (const auto& h : heads) {
    pw = std::max(pw, h[0].item<int64_t>());
    rw = std::max(rw, h[1].item<int64_t>());
    group_offset.push_back(offset);
    offset += h[2].item<int64_t>();
    if (!torch::equal(h.slice(0, 3), heads.front().slice(0, 3)))
      fail("all_gather_batch: a batch field is defined on some ranks only");
  }
  rollout::RolloutBatch g;
  for (const auto& f : fields) {
    const at::Tensor& t = local.*f.member;
    if (!t.defined()) continue;
    const auto padded = rollout::pad_columns(t.contiguous(), f.layout == Layout::kPrompt ? pw : rw, f.layout,
                                             f.token_ids ? static_cast<double>(pad_id) : f.fill);
    g.*f.member = torch::cat(comm.all_gather_varsize(padded), 0);
  }
  auto gid = comm.all_gather_varsize(local.group_ids.contiguous());
  for (size_t r = 0; r < gid.size(); ++r) gid[r] = gid[r] + group_offset[r];
  g.group_ids = torch::cat(gid, 0);
  g.policy_version = local.policy_version;
  g.env_keys = local.env_keys;  // the run's environment's: the same on every rank
  if (with_texts) {
    std::string blob;
    for (const auto* v : {&local.prompt_texts, &local.response_texts, &local.finish_reasons}) put_strings(blob, *v);
    const auto blobs = comm.all_gather_varsize(bytes_tensor(blob));
    for (size_t r = 0; r < blobs.size(); ++r) {
      const auto bytes = tensor_bytes(blobs[r]);
      StringBlobReader rd(bytes, "all_gather_batch: rank " + std::to_string(r) + "'s texts");
      for (auto* v : {&g.prompt_texts, &g.response_texts, &g.finish_reasons}) {
        const auto part = rd.strings();
        v->insert(v->end(), part.begin(), part.end());
      }
    }
  }
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
