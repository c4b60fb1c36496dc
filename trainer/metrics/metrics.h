// Step metrics: one flat map of namespaced keys (reward/mean, actor/pg_clipfrac, time/rollout_s,
// ...) per step, written to metrics.jsonl, TensorBoard event files and a console progress line.
// Math code returns these maps; only the trainer writes them.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

namespace keel::metrics {

using Metrics = std::map<std::string, double>;

/// Appends one JSON object per step ({"step": N, "wall_time": t, <key>: value, ...}) and flushes,
/// so a killed run loses at most the line being written. Non-finite values are written as null.
class JsonlWriter {
 public:
  /// With `resume_step` >= 0, lines of steps > resume_step (written after the checkpoint the run
  /// resumes from) are dropped first (atomically), so the file never repeats a step.
  JsonlWriter(std::filesystem::path path, int64_t resume_step = -1);
  ~JsonlWriter();
  void write(int64_t step, const Metrics& m);
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::FILE* f_ = nullptr;
};

/// A TensorBoard event file, <dir>/events.out.tfevents.<secs>.keel.<pid>: a first Event with
/// file_version "brain.Event:2", then one Event per step whose Summary holds one scalar
/// (simple_value, as float) per metric, tagged with the metric's key as in metrics.jsonl. Each
/// Event is a TFRecord: uint64 length, masked CRC-32C of the length, the serialized Event (protobuf,
/// see tensorboard_event.proto), masked CRC-32C of the data; all little-endian. Every record is
/// flushed. The trainer keeps one writer, on rank 0.
class TensorBoardWriter {
 public:
  explicit TensorBoardWriter(const std::filesystem::path& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;
  void write(int64_t step, const Metrics& m);
  const std::filesystem::path& path() const { return path_; }

 private:
  void write_record(const std::string& data);
  std::filesystem::path path_;
  std::FILE* f_ = nullptr;
};

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord framing uses.
uint32_t crc32c(const void* data, size_t n);
/// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xA282EAD8.
uint32_t masked_crc32c(const void* data, size_t n);

/// One readable console line for a step, e.g.
/// "step 12/60 | reward 0.412 | acc 38.0% | kl 0.0012 | entropy 1.23 | len 5.2 | 1234 tok/s | 2.1 s/step | ETA 1m40s"
/// Keys that are missing are left out. `elapsed_s` is time since the loop started, `steps_done`
/// steps completed in this process (for the ETA).
std::string progress_line(int64_t step, int64_t total, const Metrics& m, double elapsed_s, int64_t steps_done);

/// "1h02m", "3m12s", "42s".
std::string format_duration(double seconds);

}  // namespace keel::metrics
