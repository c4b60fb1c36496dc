// Checks of sharded optimizers' moments (trainer/dist/optimizer_shards.h) shared by the ZeRO tests:
// this rank's slices against an unsharded reference optimizer's whole state, and a round trip
// through shard files (what a checkpoint and its resume do).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "base/fs.h"
#include "trainer/dist/communicator.h"
#include "trainer/dist/optimizer_shards.h"
#include "trainer/learner/fused_adamw.h"

namespace keel::dist::testing {

/// Each of `opt`'s segments (moments and step) equals the reference's state of the same elements,
/// within rtol and atol_m (first moment) / atol_v (second).
inline void expect_moments_match(const MomentShards& opt, const torch::optim::AdamW& ref,
                                 const std::vector<at::Tensor>& ref_params, double rtol, double atol_m, double atol_v) {
  for (const auto& s : opt.moment_segments(true)) {
    const auto* st = learner::adamw_state(ref, ref_params[s.param]);
    ASSERT_NE(st, nullptr) << "parameter " << s.param;
    EXPECT_EQ(s.step, st->step()) << "parameter " << s.param;
    const auto m = st->exp_avg().reshape(-1).narrow(0, s.offset, s.length);
    const auto v = st->exp_avg_sq().reshape(-1).narrow(0, s.offset, s.length);
    EXPECT_TRUE(at::allclose(s.exp_avg, m, rtol, atol_m)) << "parameter " << s.param;
    EXPECT_TRUE(at::allclose(s.exp_avg_sq, v, rtol, atol_v)) << "parameter " << s.param;
  }
}

/// A directory every rank of a spawned test shares (named by the job's MASTER_PORT).
inline std::filesystem::path shared_shard_dir() {
  const char* port = std::getenv("MASTER_PORT");
  return std::filesystem::temp_directory_path() / ("keel_moment_shards_" + std::string(port ? port : "0"));
}

/// `from`'s moments written as this rank's shard file into shared_shard_dir(). A collective.
inline void write_shards(Communicator& comm, const MomentShards& from, const std::vector<int64_t>& numels) {
  const auto dir = shared_shard_dir();
  std::filesystem::create_directories(dir);
  write_moment_shard(dir, "optimizer", comm.rank(), comm.size(), from.moment_segments(true), numels);
  comm.barrier();
}

/// The shards of write_shards read into `into` (any layout), then the directory removed. A collective.
inline void read_shards(Communicator& comm, MomentShards& into, const std::vector<int64_t>& numels) {
  const auto dir = shared_shard_dir();
  auto segments = into.moment_segments(false);
  read_moment_segments(dir, "optimizer", numels, segments, at::kCPU);
  into.load_moments(segments);
  comm.barrier();
  std::error_code ec;
  if (comm.rank() == 0) keel::fs::remove_tree(dir, ec);
}

}  // namespace keel::dist::testing
