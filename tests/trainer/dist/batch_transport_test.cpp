// Batch transport between two Gloo processes: every defined tensor field, the group ids, texts
// (invalid UTF-8 and empty strings included), finish reasons, policy version, step and both metric
// maps arrive exactly; undefined fields stay undefined; records are not carried.
#include "trainer/dist/batch_transport.h"

#include <torch/torch.h>

#include "tests/trainer/dist/dist_test_util.h"

namespace keel::dist {
namespace {

using testing::spawn_ranks;
using testing::SpawnSpec;

BatchMessage sample_message(int variant) {
  torch::manual_seed(11 + variant);
  BatchMessage m;
  m.step = 7 + variant;
  auto& b = m.batch;
  b.prompt_ids = torch::randint(0, 50, {3, 5}, torch::kLong);
  b.prompt_mask = torch::ones({3, 5}, torch::kLong);
  b.response_ids = torch::randint(0, 50, {3, 4}, torch::kLong);
  b.response_mask = torch::ones({3, 4}, torch::kLong);
  b.old_logprobs = torch::randn({3, 4});
  b.group_ids = torch::tensor({0, 0, 1}, torch::kLong);
  b.row_versions = torch::tensor({4, 4, 4}, torch::kLong);
  if (variant == 1) b.rewards = torch::tensor({1.0f, 0.0f, 0.5f});
  b.prompt_texts = {"1+2=", "1+2=", std::string("\xff\xfe bad utf-8", 12)};
  b.response_texts = {"3", "", "x\ny"};
  b.finish_reasons = {"eos", "length", "stop_token"};
  b.policy_version = 4;
  m.reward_metrics = {{"reward/mean", 0.5}, {"scorer/calls", 3}};
  if (variant == 1) m.role_metrics = {{"time/idle_rollout_s", 0.25}};
  return m;
}

TEST(BatchTransportDist, Worker) {
  KEEL_DIST_WORKER_OR_SKIP();
  CommOptions co;
  co.backend = "gloo";
  co.timeout_s = 30;
  auto comm = init_communicator(read_rendezvous_env(process_env()), co);
  for (int variant : {0, 1}) {
    const auto sent = sample_message(variant);
    if (comm->rank() == 0) {
      send_batch(*comm, sent, 1);
      continue;
    }
    const auto got = recv_batch(*comm, 0);
    EXPECT_EQ(got.step, sent.step);
    EXPECT_EQ(got.batch.policy_version, 4);
    for (const auto& f : rollout::tensor_fields()) {
      const auto& a = sent.batch.*f.member;
      const auto& b = got.batch.*f.member;
      ASSERT_EQ(a.defined(), b.defined()) << variant;
      if (a.defined()) {
        EXPECT_TRUE(torch::equal(a, b)) << variant;
      }
    }
    EXPECT_TRUE(torch::equal(got.batch.group_ids, sent.batch.group_ids));
    EXPECT_EQ(got.batch.prompt_texts, sent.batch.prompt_texts);
    EXPECT_EQ(got.batch.response_texts, sent.batch.response_texts);
    EXPECT_EQ(got.batch.finish_reasons, sent.batch.finish_reasons);
    EXPECT_TRUE(got.batch.records.empty());
    EXPECT_EQ(got.reward_metrics, sent.reward_metrics);
    EXPECT_EQ(got.role_metrics, sent.role_metrics);
  }
  comm->barrier();
}

TEST(BatchTransportDist, TwoRanks) {
  const auto runs = spawn_ranks(SpawnSpec{.filter = "BatchTransportDist.Worker", .world_size = 2});
  EXPECT_EQ(testing::failures(runs), "");
  for (const auto& run : runs) EXPECT_TRUE(testing::ran_worker(run)) << run.output;
}

}  // namespace
}  // namespace keel::dist
