// Sharded optimizer checkpoints. See optimizer_shards.h.
#include "trainer/dist/optimizer_shards.h"

#include <algorithm>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <torch/torch.h>

#include "base/error.h"
#include "base/fs.h"
#include "trainer/learner/fused_adamw.h"

namespace keel::dist {

namespace stdfs = std::filesystem;

namespace {
/// The world size the shard files of `prefix` in `dir` were written by (0: none), checking that
/// every rank's file is there and no other world size's.
int shard_world(const stdfs::path& dir, const std::string& prefix) {
  const std::string head = prefix + ".shard-";
  int world = 0;
  int files = 0;
  std::error_code ec;
  for (const auto& e : stdfs::directory_iterator(dir, ec)) {
    const auto name = e.path().filename().string();
    int r = 0, w = 0;
    if (name.rfind(head, 0) != 0 || std::sscanf(name.c_str() + head.size(), "%d-of-%d.pt", &r, &w) != 2) continue;
    if (name != moment_shard_name(prefix, r, w)) continue;
    if (world != 0 && w != world)
      fail("{}: optimizer shard files of {} and of {} ranks", dir.string(), world, w);
    world = w;
    ++files;
  }
  if (world == 0) return 0;
  for (int r = 0; r < world; ++r)
    if (!stdfs::exists(dir / moment_shard_name(prefix, r, world)))
      fail("{}: {} is missing (the checkpoint's optimizer state was written by {} ranks)", dir.string(),
           moment_shard_name(prefix, r, world), world);
  if (files != world) fail("{}: {} optimizer shard files of {} for {} ranks", dir.string(), files, prefix, world);
  return world;
}
}  // namespace

std::string moment_shard_name(const std::string& prefix, int rank, int world) {
  return fmt::format("{}.shard-{:05d}-of-{:05d}.pt", prefix, rank, world);
}

void write_moment_shard(const stdfs::path& dir, const std::string& prefix, int rank, int world,
                        const std::vector<MomentSegment>& segments, const std::vector<int64_t>& numels) {
  torch::NoGradGuard ng;
  std::vector<int64_t> index;
  std::vector<at::Tensor> m, v;
  for (const auto& s : segments) {
    index.insert(index.end(), {static_cast<int64_t>(s.param), s.offset, s.length, s.step});
    if (s.step > 0) {
      m.push_back(s.exp_avg.detach().to(at::kCPU, at::kFloat).reshape({-1}));
      v.push_back(s.exp_avg_sq.detach().to(at::kCPU, at::kFloat).reshape({-1}));
    }
  }
  torch::serialize::OutputArchive ar;
  ar.write("numels", torch::tensor(numels, torch::kLong));
  ar.write("index", torch::tensor(index, torch::kLong).view({-1, 4}));
  ar.write("exp_avg", m.empty() ? torch::zeros({0}) : torch::cat(m));
  ar.write("exp_avg_sq", v.empty() ? torch::zeros({0}) : torch::cat(v));
  std::ostringstream out;
  ar.save_to(out);
  fs::write_file_atomic(dir / moment_shard_name(prefix, rank, world), out.str());
}

bool has_moment_shards(const stdfs::path& dir, const std::string& prefix) { return shard_world(dir, prefix) > 0; }

void read_moment_segments(const stdfs::path& dir, const std::string& prefix, const std::vector<int64_t>& numels,
                          std::vector<MomentSegment>& want, at::Device device) {
  torch::NoGradGuard ng;
  const int world = shard_world(dir, prefix);
  if (world == 0) fail("{}: no optimizer shard files of {}", dir.string(), prefix);
  std::vector<int64_t> covered(want.size(), 0);
  for (auto& s : want) {
    s.exp_avg = torch::zeros({s.length});
    s.exp_avg_sq = torch::zeros({s.length});
    s.step = 0;
  }
  for (int r = 0; r < world; ++r) {  // one file in memory at a time
    const auto file = dir / moment_shard_name(prefix, r, world);
    torch::serialize::InputArchive ar;
    at::Tensor file_numels, index, m, v;
    try {
      ar.load_from(file.string());
      ar.read("numels", file_numels);
      ar.read("index", index);
      ar.read("exp_avg", m);
      ar.read("exp_avg_sq", v);
    } catch (const c10::Error& e) {
      fail("{}: not a readable optimizer shard ({})", file.string(), e.what_without_backtrace());
    }
    if (!file_numels.equal(torch::tensor(numels, torch::kLong)))
      fail("{}: the optimizer state is of other parameters ({} tensors, this model trains {})", file.string(),
           file_numels.numel(), numels.size());
    const auto idx = index.accessor<int64_t, 2>();
    int64_t pos = 0;  // into m / v: stepped pieces only
    for (int64_t k = 0; k < index.size(0); ++k) {
      const auto param = static_cast<size_t>(idx[k][0]);
      const int64_t off = idx[k][1], len = idx[k][2], step = idx[k][3];
      if (param >= numels.size() || off < 0 || len < 0 || off + len > numels[param] || (step > 0 && pos + len > m.numel()))
        fail("{}: a corrupt index entry (parameter {}, elements [{}, {}))", file.string(), param, off, off + len);
      for (size_t i = 0; i < want.size(); ++i) {
        auto& w = want[i];
        if (w.param != param) continue;
        const int64_t a = std::max(off, w.offset), b = std::min(off + len, w.offset + w.length);
        if (a >= b) continue;
        covered[i] += b - a;
        if (step > 0) {
          w.exp_avg.narrow(0, a - w.offset, b - a).copy_(m.narrow(0, pos + a - off, b - a));
          w.exp_avg_sq.narrow(0, a - w.offset, b - a).copy_(v.narrow(0, pos + a - off, b - a));
          w.step = step;
        }
      }
      if (step > 0) pos += len;
    }
  }
  for (size_t i = 0; i < want.size(); ++i) {
    auto& w = want[i];
    if (covered[i] != w.length)
      fail("{}: the optimizer shards of {} cover {} of the {} elements [{}, {}) of trainable parameter {}", dir.string(),
           prefix, covered[i], w.length, w.offset, w.offset + w.length, w.param);
    w.exp_avg = w.exp_avg.to(device);
    w.exp_avg_sq = w.exp_avg_sq.to(device);
  }
}

void load_whole_moments(const stdfs::path& dir, const std::string& prefix, const std::vector<at::Tensor>& params,
                        torch::optim::AdamW& opt) {
  std::vector<int64_t> numels;
  std::vector<MomentSegment> want;
  for (size_t i = 0; i < params.size(); ++i) {
    numels.push_back(params[i].numel());
    want.push_back({i, 0, params[i].numel(), {}, {}, 0});
  }
  read_moment_segments(dir, prefix, numels, want, params.empty() ? at::Device(at::kCPU) : params.front().device());
  for (const auto& w : want) {
    if (w.step == 0) continue;
    const auto& p = params[w.param];
    learner::set_adamw_state(opt, p, w.step, w.exp_avg.view(p.sizes()).to(p.scalar_type()),
                             w.exp_avg_sq.view(p.sizes()).to(p.scalar_type()));
  }
}

}  // namespace keel::dist
