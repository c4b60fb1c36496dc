// Rendezvous: the environment as torchrun and Slurm set it, the Slurm host-list parser, and the
// TCPStore arrival check that names missing ranks within dist.timeout_s instead of hanging.
#include "trainer/dist/rendezvous.h"

#include <torch/torch.h>

#include "tests/trainer/dist/dist_test_util.h"
#include "base/error.h"
#include "trainer/dist/communicator.h"

namespace keel::dist {
namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& k) -> std::optional<std::string> {
    const auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const keel::Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Rendezvous, TorchrunEnvironment) {
  const auto info = read_rendezvous_env(env_of({{"RANK", "5"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"},
                                                 {"LOCAL_WORLD_SIZE", "4"}, {"GROUP_RANK", "1"},
                                                 {"MASTER_ADDR", "node07"}, {"MASTER_PORT", "29501"},
                                                 {"SLURM_PROCID", "0"}}));  // torchrun wins over Slurm
  EXPECT_EQ(info.source, "torchrun");
  EXPECT_EQ(info.rank, 5);
  EXPECT_EQ(info.world_size, 8);
  EXPECT_EQ(info.local_rank, 1);
  EXPECT_EQ(info.local_world_size, 4);
  EXPECT_EQ(info.node_rank, 1);
  EXPECT_EQ(info.master_addr, "node07");
  EXPECT_EQ(info.master_port, 29501);
}

TEST(Rendezvous, TorchrunDefaultsAndErrors) {
  // LOCAL_* default to one node.
  auto info = read_rendezvous_env(env_of({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1234"}}));
  EXPECT_EQ(info.local_rank, 1);
  EXPECT_EQ(info.local_world_size, 2);
  // A single rank needs no master.
  info = read_rendezvous_env(env_of({{"RANK", "0"}, {"WORLD_SIZE", "1"}}));
  EXPECT_EQ(info.world_size, 1);

  const std::vector<std::pair<std::map<std::string, std::string>, std::string>> bad{
      {{{"RANK", "0"}}, "WORLD_SIZE is not set"},
      {{{"RANK", "x"}, {"WORLD_SIZE", "2"}}, "RANK='x' is not an integer"},
      {{{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}, "RANK=2 must be less than WORLD_SIZE=2"},
      {{{"RANK", "-1"}, {"WORLD_SIZE", "2"}}, "RANK=-1 is out of range"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "0"}}, "WORLD_SIZE=0 is out of range"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "1"}}, "MASTER_ADDR is not set"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}}, "MASTER_PORT is not set"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}}, "MASTER_PORT=70000 is out of range"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "3"}, {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}},
       "local rank 3 must be less than the local world size 2"},
  };
  for (const auto& [vars, expect] : bad) {
    const auto msg = error_of([&] { read_rendezvous_env(env_of(vars)); });
    EXPECT_NE(msg.find(expect), std::string::npos) << "expected '" << expect << "' in: " << msg;
  }
}

TEST(Rendezvous, SlurmEnvironment) {
  auto info = read_rendezvous_env(env_of({{"SLURM_PROCID", "6"}, {"SLURM_NTASKS", "10"}, {"SLURM_LOCALID", "2"},
                                          {"SLURM_NODEID", "1"}, {"SLURM_TASKS_PER_NODE", "4(x2),2"},
                                          {"SLURM_JOB_NODELIST", "gpu[003-005]"}, {"SLURM_JOB_ID", "123456"}}));
  EXPECT_EQ(info.source, "slurm");
  EXPECT_EQ(info.rank, 6);
  EXPECT_EQ(info.world_size, 10);
  EXPECT_EQ(info.local_rank, 2);
  EXPECT_EQ(info.node_rank, 1);
  EXPECT_EQ(info.local_world_size, 4);
  EXPECT_EQ(info.master_addr, "gpu003");  // first host of the node list
  EXPECT_EQ(info.master_port, 20000 + 123456 % 10000);
  // MASTER_ADDR / MASTER_PORT win; SLURM_NODELIST is the fallback list.
  info = read_rendezvous_env(env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_NODELIST", "a1,b2"},
                                     {"MASTER_PORT", "4000"}}));
  EXPECT_EQ(info.master_addr, "a1");
  EXPECT_EQ(info.master_port, 4000);
  info = read_rendezvous_env(env_of({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "2"}, {"SLURM_JOB_NODELIST", "x[1-2]"},
                                     {"MASTER_ADDR", "head"}, {"MASTER_PORT", "4001"}}));
  EXPECT_EQ(info.master_addr, "head");
  EXPECT_EQ(info.local_world_size, 2);  // no tasks-per-node: one node
  EXPECT_NE(error_of([] { read_rendezvous_env(env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}})); })
                .find("neither MASTER_ADDR nor SLURM_JOB_NODELIST"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              read_rendezvous_env(env_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_NODEID", "2"},
                                          {"SLURM_TASKS_PER_NODE", "1(x2)"}, {"SLURM_NODELIST", "a"}}));
            }).find("lists 2 nodes"),
            std::string::npos);
}

TEST(Rendezvous, NoEnvironmentIsOneProcess) {
  const auto info = read_rendezvous_env(env_of({}));
  EXPECT_EQ(info.source, "none");
  EXPECT_EQ(info.rank, 0);
  EXPECT_EQ(info.world_size, 1);
}

TEST(Rendezvous, SlurmNodelistTable) {
  using V = std::vector<std::string>;
  const std::vector<std::pair<std::string, V>> table{
      {"node01", {"node01"}},
      {"node[01-04,07],gpu3", {"node01", "node02", "node03", "node04", "node07", "gpu3"}},
      {"n[8-11]", {"n8", "n9", "n10", "n11"}},              // no padding: widths grow
      {"n[098-101]", {"n098", "n099", "n100", "n101"}},      // padding from the first bound
      {"a,b,c", {"a", "b", "c"}},
      {"rack[1-2]-n[1,3]", {"rack1-n1", "rack1-n3", "rack2-n1", "rack2-n3"}},
      {"x[5]", {"x5"}},
      {"gpu-[1-2].cluster", {"gpu-1.cluster", "gpu-2.cluster"}},
      {"[1-2]", {"1", "2"}},
  };
  for (const auto& [list, expect] : table) EXPECT_EQ(parse_slurm_nodelist(list), expect) << list;
  for (const std::string bad : {"", "a,,b", "n[1-", "n]1[", "n[4-2]", "n[a-b]", "n[]", "n[1-2-3]", "a b"})
    EXPECT_THROW(parse_slurm_nodelist(bad), keel::Error) << bad;
}

TEST(Rendezvous, SlurmTasksPerNode) {
  EXPECT_EQ(parse_slurm_tasks_per_node("4"), std::vector<int>{4});
  EXPECT_EQ(parse_slurm_tasks_per_node("4(x2),3"), (std::vector<int>{4, 4, 3}));
  EXPECT_EQ(parse_slurm_tasks_per_node("1,2(x1),1(x3)"), (std::vector<int>{1, 2, 1, 1, 1}));
  for (const std::string bad : {"", "x", "4(x0)", "4(2)", "0", "4(x2", "2,,1"})
    EXPECT_THROW(parse_slurm_tasks_per_node(bad), keel::Error) << bad;
}

// ---- the TCPStore arrival check, with processes ---------------------------------------------------

// Runs init_communicator with the timeout from KEEL_TEST_TIMEOUT_S and expects it to fail within
// that time plus a margin, naming the ranks listed in KEEL_TEST_EXPECT (e.g. "rank 2").
TEST(RendezvousDist, WorkerExpectsTimeout) {
  KEEL_DIST_WORKER_OR_SKIP();
  const double timeout = std::atof(std::getenv("KEEL_TEST_TIMEOUT_S"));
  const std::string expect = std::getenv("KEEL_TEST_EXPECT");
  const auto t0 = std::chrono::steady_clock::now();
  // Whoever decides the timeout waits for all of it: rank 0, or everyone when rank 0 is absent.
  // Other ranks may fail sooner, with rank 0's report, if they started later than rank 0.
  bool own_deadline = std::atoi(std::getenv("RANK")) == 0;
  try {
    init_communicator(read_rendezvous_env(process_env()), CommOptions{.backend = "gloo", .timeout_s = timeout});
    ADD_FAILURE() << "init_communicator must time out";
  } catch (const keel::Error& e) {
    std::cout << "error: " << e.what() << "\n";
    EXPECT_NE(std::string(e.what()).find(expect), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("timed out after"), std::string::npos) << e.what();
    own_deadline = own_deadline || std::string(e.what()).find("which hosts the store") != std::string::npos;
  }
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (own_deadline) {
    EXPECT_GE(took, timeout * 0.9);
  }
  EXPECT_LE(took, timeout + 2.0);
}

TEST(RendezvousDist, MissingRankIsNamed) {
  // World of 3, rank 2 never starts: ranks 0 and 1 both report "rank 2" after the 2 s timeout.
  const auto runs = testing::spawn_ranks({.filter = "RendezvousDist.WorkerExpectsTimeout", .world_size = 3,
                                          .ranks = {0, 1},
                                          .env = {{"KEEL_TEST_TIMEOUT_S", "2"}, {"KEEL_TEST_EXPECT", "did not arrive: rank 2;"}},
                                          .timeout_s = 30});
  EXPECT_EQ(testing::failures(runs), "");
  for (const auto& run : runs) EXPECT_TRUE(testing::ran_worker(run)) << run.output;
}

TEST(RendezvousDist, MissingRankZeroIsNamed) {
  // Rank 0 hosts the store; without it ranks 1 and 2 cannot connect and say so.
  const auto runs = testing::spawn_ranks({.filter = "RendezvousDist.WorkerExpectsTimeout", .world_size = 3,
                                          .ranks = {1, 2},
                                          .env = {{"KEEL_TEST_TIMEOUT_S", "2"}, {"KEEL_TEST_EXPECT", "rank 0 (which hosts the store) did not arrive"}},
                                          .timeout_s = 30});
  EXPECT_EQ(testing::failures(runs), "");
  for (const auto& run : runs) EXPECT_TRUE(testing::ran_worker(run)) << run.output;
}

TEST(RendezvousDist, TwoMissingRanksAreListed) {
  const auto runs = testing::spawn_ranks({.filter = "RendezvousDist.WorkerExpectsTimeout", .world_size = 4,
                                          .ranks = {0, 2},
                                          .env = {{"KEEL_TEST_TIMEOUT_S", "2"}, {"KEEL_TEST_EXPECT", "2 of 4 ranks did not arrive: ranks 1, 3;"}},
                                          .timeout_s = 30});
  EXPECT_EQ(testing::failures(runs), "");
  for (const auto& run : runs) EXPECT_TRUE(testing::ran_worker(run)) << run.output;
}

}  // namespace
}  // namespace keel::dist
