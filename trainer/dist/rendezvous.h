// Where this process sits in the job, read from the environment the way torchrun and Slurm set it,
// plus Slurm's compact host-list syntax ("node[01-04,07],gpu3").
// Pure parsing: no sockets, no c10d. The TCPStore rendezvous that uses this lives in
// communicator.cpp (init_communicator); `keel launch` (launch.h) is what sets these variables.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace keel::dist {

/// The job coordinates of one process.
struct RendezvousInfo {
  int rank = 0;                         ///< global rank, 0 <= rank < world_size
  int world_size = 1;
  int local_rank = 0;                   ///< rank on this node
  int local_world_size = 1;             ///< ranks on this node
  int node_rank = 0;                    ///< which node (GROUP_RANK / SLURM_NODEID)
  std::string master_addr = "127.0.0.1";  ///< host of rank 0's TCPStore
  int master_port = 29500;
  std::string source = "none";          ///< "torchrun" | "slurm" | "none" (single process)
};

/// Looks an environment variable up; nullopt when unset. Tests pass a map instead of getenv.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

/// The process environment (std::getenv).
EnvLookup process_env();

/// Reads the job coordinates. Order: torchrun variables when RANK is set (RANK, WORLD_SIZE,
/// LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR, MASTER_PORT); else Slurm's when
/// SLURM_PROCID is set (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NODEID,
/// SLURM_TASKS_PER_NODE, MASTER_ADDR / MASTER_PORT or the first host of SLURM_JOB_NODELIST /
/// SLURM_NODELIST); else a single process. Throws keel::Error naming the variable and its value
/// when something is missing, not an integer, or out of range.
RendezvousInfo read_rendezvous_env(const EnvLookup& env);

/// Expands a Slurm host list: "node[01-04,07],gpu3" -> node01 node02 node03 node04 node07 gpu3.
/// Zero padding follows the range's first bound; several bracket groups in one name expand as a
/// product ("r[1-2]n[1-2]" -> r1n1 r1n2 r2n1 r2n2). Throws keel::Error on malformed input.
std::vector<std::string> parse_slurm_nodelist(const std::string& list);

/// Expands SLURM_TASKS_PER_NODE: "4(x2),3" -> 4 4 3. Throws keel::Error on malformed input.
std::vector<int> parse_slurm_tasks_per_node(const std::string& s);

}  // namespace keel::dist
