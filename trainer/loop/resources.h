// What a run asks of this machine, checked when the config loads (`keel validate` and the start of
// `keel train` alike, through KnownNames::resources): the memory estimate of one rank
// (trainer/config/memory_estimate.h) against the machine's available RAM, or the CUDA device's
// memory when the run computes there. The model's size comes from model.path's config.json, or
// from model.init. Deliberately not here: the estimate's arithmetic (pure, in trainer/config/).
#pragma once

#include <optional>
#include <string>

#include "trainer/config/memory_estimate.h"

namespace keel::config {
struct RunConfig;
class Node;
class Diagnostics;
}  // namespace keel::config

namespace keel::models {
struct ModelConfig;
}

namespace keel::loop {

/// The sizes of a loaded model config that the memory estimate reads.
config::ModelShape shape_of(const models::ModelConfig& m);

/// model.path's config.json shape (a keel run directory resolves to its newest checkpoint), or
/// model.init's; nullopt when model.path has no readable config.json yet (its loader reports that).
std::optional<config::ModelShape> model_shape(const config::RunConfig& cfg);

/// The memory one machine offers the run: on CPU the available RAM (MemAvailable, capped by a
/// cgroup v2 limit) shared by the job's ranks on this machine (LOCAL_WORLD_SIZE, else the world
/// size); on CUDA the total memory of the rank's device. bytes = 0 when unknown.
config::MemoryBudget memory_budget(const config::RunConfig& cfg, bool cuda);

/// "an estimated 12.0 MiB per rank (at least) of the 21.9 GiB RAM available on this machine", for
/// `keel validate`'s summary.
std::string memory_summary(const config::RunConfig& cfg);

/// The KnownNames::resources hook: estimates, compares, reports into `diag` at the key driving
/// the largest term.
void report_resources(const config::RunConfig& cfg, const config::Node& root, config::Diagnostics& diag);

}  // namespace keel::loop
