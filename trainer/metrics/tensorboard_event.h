// TensorBoard Event messages, serialized with the protobuf code protoc generates from
// tensorboard_event.proto. This is the only place that includes protobuf: it compiles in its own
// small library without LibTorch's include paths (a pip LibTorch ships an older copy of the protobuf
// headers), and this header names no protobuf type. The record framing is TensorBoardWriter's.
#pragma once

#include <cstdint>
#include <string>

#include "trainer/metrics/metrics.h"

namespace keel::metrics {

/// A serialized Event {wall_time, step 0, file_version}: the first record of an event file.
std::string tensorboard_file_version_event(double wall_time, const std::string& file_version);

/// A serialized Event {wall_time, step, summary} with one Summary.Value {tag = key,
/// simple_value = float(value)} per metric, in the map's order. Non-finite values are kept
/// (TensorBoard shows NaN and inf).
std::string tensorboard_scalars_event(double wall_time, int64_t step, const Metrics& m);

}  // namespace keel::metrics
