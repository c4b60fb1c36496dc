// `keel launch`: a torchrun-style launcher for one node of a job. Spawns --nproc-per-node ranks
// (fork/exec) with the torchrun environment, prefixes each rank's output lines with "[rank N] ",
// writes per-rank log files, forwards SIGINT/SIGTERM, and takes every rank down when one fails.
// Not elastic: no restarts, no membership changes, no rendezvous of its own (the ranks meet in
// init_communicator through MASTER_ADDR/MASTER_PORT; start one launcher per node).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace CLI {
class App;
}

namespace keel::dist {

struct LaunchOptions {
  int nproc_per_node = 1;
  int nnodes = 1;
  int node_rank = 0;                    ///< this node's index, 0 <= node_rank < nnodes
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string log_dir = "launch_logs";  ///< per-rank logs <log_dir>/rank_<N>.log (stdout+stderr)
  double grace_s = 5;                   ///< SIGTERM -> SIGKILL delay when taking ranks down
  std::vector<std::string> command;     ///< program and arguments (PATH is searched; a bare "keel" is this keel)
  std::vector<std::pair<std::string, std::string>> env;  ///< extra variables for every rank
  int out_fd = 1;                       ///< where prefixed stdout lines go
  int err_fd = 2;                       ///< where prefixed stderr lines and launcher messages go
};

/// Runs the ranks of this node to completion. Each rank gets RANK, WORLD_SIZE, LOCAL_RANK,
/// LOCAL_WORLD_SIZE, GROUP_RANK, GROUP_WORLD_SIZE, MASTER_ADDR, MASTER_PORT and, unless already
/// set, OMP_NUM_THREADS=1; each runs in its own process group (signals reach its children too).
/// Returns 0 when every rank exits 0. When a rank exits non-zero or dies by a signal, the others
/// get SIGTERM, then SIGKILL after grace_s, and the result is 1 with a message on err_fd naming
/// the rank and its exit status / signal. SIGINT/SIGTERM sent to the launcher are forwarded to
/// every rank and the launcher waits for them to exit (keel train checkpoints first); a second
/// signal is forwarded too and SIGKILL follows after grace_s. The result is 128 + the first signal.
/// Throws keel::Error for invalid options or an unusable log directory.
int run_launch(const LaunchOptions& opt);

/// Registers `launch` on `app` (options --nproc-per-node, --nnodes, --node-rank, --master-addr,
/// --master-port, --log-dir, --grace-s; the command after "--") filling `opt`; returns the
/// subcommand so the caller can test `if (*sub) rc = run_launch(opt);`. In launch_cli.cpp.
CLI::App* add_launch_command(CLI::App& app, LaunchOptions& opt);

}  // namespace keel::dist
