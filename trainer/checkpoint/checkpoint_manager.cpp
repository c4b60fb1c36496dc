#include "trainer/checkpoint/checkpoint_manager.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/checksum.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/log.h"

namespace keel::checkpoint {

namespace stdfs = std::filesystem;

namespace {
constexpr const char* kPrefix = "step-";
constexpr const char* kStaging = ".staging-step-";
constexpr const char* kMarker = "COMPLETE";
constexpr const char* kManifest = "MANIFEST.json";

std::string dir_name(int64_t step) { return fmt::format("{}{:08d}", kPrefix, step); }

/// {"format": 1, "files": [{"path", "bytes", "xxh64"}, ...]} over every regular file below `dir`
/// (paths relative to it, sorted, the marker and the manifest itself excluded).
std::string manifest_of(const stdfs::path& dir) {
  std::vector<stdfs::path> files;
  for (const auto& e : stdfs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(stdfs::relative(e.path(), dir));
  std::sort(files.begin(), files.end());
  nlohmann::json list = nlohmann::json::array();
  for (const auto& rel : files) {
    if (rel == kMarker || rel == kManifest) continue;
    list.push_back({{"path", rel.generic_string()},
                    {"bytes", stdfs::file_size(dir / rel)},
                    {"xxh64", checksum::hex(checksum::file_xxh64(dir / rel))}});
  }
  return nlohmann::json{{"format", 1}, {"files", list}}.dump(1) + "\n";
}
}  // namespace

CheckpointManager::CheckpointManager(stdfs::path root, int keep_last) : root_(std::move(root)), keep_last_(keep_last) {
  if (keep_last_ < 1) fail("checkpoint.keep_last must be >= 1, got {}", keep_last_);
}

stdfs::path CheckpointManager::dir_of(int64_t step) const { return root_ / dir_name(step); }

std::optional<int64_t> CheckpointManager::step_of(const stdfs::path& dir) {
  const std::string name = dir.filename().string();
  if (name.rfind(kPrefix, 0) != 0) return std::nullopt;
  const std::string digits = name.substr(std::string(kPrefix).size());
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return std::nullopt;
  return std::stoll(digits);
}

bool CheckpointManager::is_complete(const stdfs::path& dir) { return stdfs::is_regular_file(dir / kMarker); }

stdfs::path CheckpointManager::staging_dir(int64_t step) const { return root_ / fmt::format("{}{:08d}", kStaging, step); }

stdfs::path CheckpointManager::begin(int64_t step) {
  const auto staging = staging_dir(step);
  std::error_code ec;
  keel::fs::remove_tree(staging, ec);
  stdfs::create_directories(staging, ec);
  if (ec) fail("{}: cannot create the checkpoint staging directory ({})", staging.string(), ec.message());
  return staging;
}

stdfs::path CheckpointManager::commit(const stdfs::path& staging, int64_t step) {
  for (const auto& e : stdfs::recursive_directory_iterator(staging)) fs::fsync_path(e.path());
  fs::write_file_atomic(staging / kManifest, manifest_of(staging));
  fs::write_file_atomic(staging / kMarker, fmt::format("step {}\n", step));
  fs::fsync_path(staging);
  const auto final_dir = dir_of(step);
  std::error_code ec;
  if (stdfs::exists(final_dir)) keel::fs::remove_tree(final_dir, ec);
  fs::rename_dir_atomic(staging, final_dir);
  auto all = complete();
  while (static_cast<int>(all.size()) > keep_last_) {
    keel::fs::remove_tree(all.front(), ec);
    all.erase(all.begin());
  }
  return final_dir;
}

std::vector<stdfs::path> CheckpointManager::complete() const {
  std::vector<std::pair<int64_t, stdfs::path>> found;
  std::error_code ec;
  if (!stdfs::is_directory(root_, ec)) return {};
  for (const auto& e : stdfs::directory_iterator(root_)) {
    const auto s = step_of(e.path());
    if (s && e.is_directory() && is_complete(e.path())) found.emplace_back(*s, e.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<stdfs::path> out;
  for (auto& [s, p] : found) out.push_back(std::move(p));
  return out;
}

std::optional<stdfs::path> CheckpointManager::latest() const {
  auto all = complete();
  if (all.empty()) return std::nullopt;
  return all.back();
}

std::optional<std::string> CheckpointManager::verify(const stdfs::path& dir) {
  const auto mf = dir / kManifest;
  std::error_code ec;
  if (!stdfs::exists(mf, ec)) {
    log::warn("{}: no {} (written by an older keel): not verified", dir.string(), kManifest);
    return std::nullopt;
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(fs::read_file(mf, "checkpoint manifest"));
    if (!j.is_object() || !j.contains("files") || !j["files"].is_array()) return fmt::format("{}: not a manifest", mf.string());
    for (const auto& f : j["files"]) {
      const auto rel = f.at("path").get<std::string>();
      const auto want_bytes = f.at("bytes").get<uint64_t>();
      const auto want_hash = f.at("xxh64").get<std::string>();
      const auto p = dir / rel;
      if (rel.empty() || rel.find("..") != std::string::npos) return fmt::format("{}: bad path '{}'", mf.string(), rel);
      if (!stdfs::is_regular_file(p, ec)) return fmt::format("{} is missing", p.string());
      const auto bytes = stdfs::file_size(p, ec);
      if (ec || bytes != want_bytes)
        return fmt::format("{} has {} bytes, the manifest says {} (truncated or replaced)", p.string(), bytes, want_bytes);
      const auto hash = checksum::hex(checksum::file_xxh64(p));
      if (hash != want_hash)
        return fmt::format("{}: checksum {} differs from the manifest's {} (the file changed after it was written)",
                           p.string(), hash, want_hash);
    }
  } catch (const nlohmann::json::exception& e) {
    return fmt::format("{}: unreadable manifest ({})", mf.string(), e.what());
  } catch (const Error& e) {
    return e.what();
  }
  return std::nullopt;
}

std::optional<stdfs::path> CheckpointManager::latest_verified() const {
  const auto all = complete();
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const auto problem = verify(*it);
    if (!problem) return *it;
    log::warn("skipping checkpoint {}: {}", it->string(), *problem);
  }
  return std::nullopt;
}

int CheckpointManager::discard_incomplete() {
  int n = 0;
  std::error_code ec;
  if (!stdfs::is_directory(root_, ec)) return 0;
  std::vector<stdfs::path> stale;
  for (const auto& e : stdfs::directory_iterator(root_)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(kStaging, 0) == 0 || (step_of(e.path()) && !is_complete(e.path()))) stale.push_back(e.path());
  }
  for (const auto& p : stale) {
    keel::fs::remove_tree(p, ec);
    ++n;
  }
  return n;
}

std::optional<stdfs::path> CheckpointManager::resolve_resume(const std::string& resume) const {
  if (resume == "none") return std::nullopt;
  if (resume == "auto") {
    const auto found = latest_verified();
    // Nothing sound to resume: the run starts over rather than never finishing. The damaged
    // checkpoints stay (the new run's replace them step by step, keep_last prunes the rest).
    if (!found && !complete().empty())
      log::warn("run.resume auto: none of the {} checkpoint(s) in {} verifies (see above): starting from step 0",
                complete().size(), root_.string());
    return found;
  }
  const stdfs::path p(resume);
  if (!stdfs::is_directory(p)) fail("run.resume: {} is not a directory", resume);
  if (!is_complete(p))
    fail("run.resume: {} is not a complete checkpoint (no {} marker; it was probably interrupted)", resume, kMarker);
  if (const auto problem = verify(p)) fail("run.resume: {} does not verify: {}", resume, *problem);
  return p;
}

}  // namespace keel::checkpoint
