// CLI11 wiring of `keel launch` (see launch.h); app.cpp calls add_launch_command().
#include <CLI/CLI.hpp>

#include "trainer/dist/launch.h"

namespace keel::dist {

CLI::App* add_launch_command(CLI::App& app, LaunchOptions& opt) {
  auto* sub = app.add_subcommand(
      "launch", "spawn the ranks of one node with the torchrun environment: keel launch --nproc-per-node N -- <command...>");
  sub->add_option("--nproc-per-node", opt.nproc_per_node, "ranks on this node")->capture_default_str();
  sub->add_option("--nnodes", opt.nnodes, "nodes in the job (one launcher per node)")->capture_default_str();
  sub->add_option("--node-rank", opt.node_rank, "this node's index in [0, nnodes)")->capture_default_str();
  sub->add_option("--master-addr", opt.master_addr, "host of rank 0 (the rendezvous store)")->capture_default_str();
  sub->add_option("--master-port", opt.master_port, "port of the rendezvous store")->capture_default_str();
  sub->add_option("--log-dir", opt.log_dir, "per-rank logs <dir>/rank_<N>.log")->capture_default_str();
  sub->add_option("--grace-s", opt.grace_s, "seconds between SIGTERM and SIGKILL when stopping ranks")
      ->capture_default_str();
  sub->add_option("command", opt.command, "the program each rank runs, with its arguments (after --); a bare keel is this keel")->required();
  return sub;
}

}  // namespace keel::dist
