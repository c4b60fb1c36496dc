// StateDict: how the stateful reward transforms (running mean/std, running min/max, per-task
// baselines, Lagrange multipliers, per-episode message counts) hand their state to the checkpoint.
// A flat name -> tensor map; values are cloned on save and on load so a round trip is bit-exact.
// This file is only the container and two lookup helpers; the checkpoint format lives elsewhere.
#pragma once

#include <map>
#include <string>

#include <ATen/core/Tensor.h>

namespace keel::rewards {

using StateDict = std::map<std::string, at::Tensor>;

/// The tensor stored under `prefix + key`; throws keel::Error naming the key when it is missing.
at::Tensor state_get(const StateDict& state, const std::string& key);
/// A double stored as a 0-dim float64 tensor under `key`.
double state_get_double(const StateDict& state, const std::string& key);
/// Stores `v` as a 0-dim float64 tensor (exact for every double).
void state_put_double(StateDict& state, const std::string& key, double v);

}  // namespace keel::rewards
