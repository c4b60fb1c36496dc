// Checkpoint directories: <run>/checkpoints/step-00000012/, made atomically — the content is
// written into a hidden staging directory, every file is fsynced, a COMPLETE marker is written,
// and the directory is renamed into place. A kill at any moment leaves either a complete
// checkpoint or a staging directory that the next start removes. keep_last prunes old ones.
// Before the marker, MANIFEST.json records every file's size and XXH64; a checkpoint damaged after
// it was written (truncated, zeroed, bit-flipped, edited) fails verify(), and resume falls back to
// the newest checkpoint that verifies, saying which it skipped and why.
// What goes inside (HF-format weights, trainer state) is the writer's business.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace keel::checkpoint {

class CheckpointManager {
 public:
  CheckpointManager(std::filesystem::path root, int keep_last);

  /// A fresh staging directory for `step` (replacing a stale one).
  std::filesystem::path begin(int64_t step);
  /// Where begin(step) stages (other ranks write their shards there before the commit).
  std::filesystem::path staging_dir(int64_t step) const;
  /// fsyncs the staged files, writes COMPLETE, renames into place (replacing an older checkpoint of
  /// the same step), prunes to keep_last. Returns the final path.
  std::filesystem::path commit(const std::filesystem::path& staging, int64_t step);

  /// Complete checkpoints, oldest first.
  std::vector<std::filesystem::path> complete() const;
  /// The newest complete checkpoint.
  std::optional<std::filesystem::path> latest() const;
  /// The newest complete checkpoint that verifies; each newer one that does not is logged (a
  /// warning naming it and the problem) and skipped.
  std::optional<std::filesystem::path> latest_verified() const;
  /// Removes staging directories left by a killed run; returns how many.
  int discard_incomplete();

  /// run.resume -> a checkpoint directory to load, or nullopt to start fresh.
  /// "none" -> nullopt; "auto" -> latest_verified() (nullopt if none: a warning when there were
  /// checkpoints and none verifies, and the run starts over); else a path that must be a complete
  /// checkpoint that verifies (keel::Error otherwise, naming it and the problem).
  std::optional<std::filesystem::path> resolve_resume(const std::string& resume) const;

  /// The directory checkpoint `step` has under the root (whether or not it exists).
  std::filesystem::path dir_of(int64_t step) const;
  /// "step-00000012" -> 12.
  static std::optional<int64_t> step_of(const std::filesystem::path& dir);
  static bool is_complete(const std::filesystem::path& dir);
  /// What is wrong with checkpoint `dir` against its MANIFEST.json (a missing, resized or changed
  /// file, an unreadable manifest), or nullopt when every file matches. A checkpoint written before
  /// manifests existed has none: nullopt, with a warning that it is not verified.
  static std::optional<std::string> verify(const std::filesystem::path& dir);
  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
  int keep_last_;
};

}  // namespace keel::checkpoint
