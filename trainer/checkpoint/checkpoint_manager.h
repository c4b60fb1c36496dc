// Checkpoint directories: <run>/checkpoints/step-00000012/, made atomically — the content is
// written into a hidden staging directory, every file is fsynced, a COMPLETE marker is written,
// and the directory is renamed into place. A kill at any moment leaves either a complete
// checkpoint or a staging directory that the next start removes. keep_last prunes old ones.
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
  /// fsyncs the staged files, writes COMPLETE, renames into place (replacing an older checkpoint of
  /// the same step), prunes to keep_last. Returns the final path.
  std::filesystem::path commit(const std::filesystem::path& staging, int64_t step);

  /// Complete checkpoints, oldest first.
  std::vector<std::filesystem::path> complete() const;
  /// The newest complete checkpoint.
  std::optional<std::filesystem::path> latest() const;
  /// Removes staging directories left by a killed run; returns how many.
  int discard_incomplete();

  /// run.resume -> a checkpoint directory to load, or nullopt to start fresh.
  /// "none" -> nullopt; "auto" -> latest() (nullopt if none); else a path that must be a complete
  /// checkpoint (keel::Error otherwise, naming it).
  std::optional<std::filesystem::path> resolve_resume(const std::string& resume) const;

  /// "step-00000012" -> 12.
  static std::optional<int64_t> step_of(const std::filesystem::path& dir);
  static bool is_complete(const std::filesystem::path& dir);
  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
  int keep_last_;
};

}  // namespace keel::checkpoint
