#include "base/fs.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/error.h"

namespace keel::fs {

std::string read_file(const std::filesystem::path& p, std::string_view what) {
  std::ifstream in(p, std::ios::binary);
  if (!in) fail("{}: cannot open {} ({})", p.string(), what, std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail("{}: error reading {}", p.string(), what);
  return ss.str();
}

void fsync_path(const std::filesystem::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("{}: cannot open for fsync ({})", p.string(), std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // Some file systems cannot fsync a directory (EINVAL / ENOTSUP, e.g. several FUSE and virtual
  // machine shares); the rename is then as durable as that file system makes it.
  const bool unsupported = std::filesystem::is_directory(p) && (err == EINVAL || err == ENOTSUP || err == EROFS);
  if (rc != 0 && !unsupported) fail("{}: fsync failed ({})", p.string(), std::strerror(err));
}

namespace {
// nftw's callback takes no context: the count and the first failure of the walk in this thread.
thread_local std::uintmax_t tl_removed = 0;
thread_local int tl_errno = 0;
thread_local std::string tl_failed;

int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
  if (::remove(path) != 0) {
    tl_errno = errno;
    tl_failed = path;
    return 1;  // stop the walk
  }
  ++tl_removed;
  return 0;
}
}  // namespace

std::uintmax_t remove_tree(const std::filesystem::path& p, std::error_code& ec) noexcept {
  ec.clear();
  struct stat st;
  if (::lstat(p.c_str(), &st) != 0) {
    if (errno != ENOENT) ec.assign(errno, std::generic_category());
    return 0;
  }
  tl_removed = 0;
  tl_errno = 0;
  tl_failed.clear();
  // Depth first (children before their directory), physical (a link is removed, not followed).
  const int rc = ::nftw(p.c_str(), remove_entry, 32, FTW_DEPTH | FTW_PHYS);
  if (rc != 0) ec.assign(tl_errno != 0 ? tl_errno : errno, std::generic_category());
  return tl_removed;
}

std::uintmax_t remove_tree(const std::filesystem::path& p) {
  std::error_code ec;
  const auto n = remove_tree(p, ec);
  if (ec) fail("{}: cannot remove {} ({})", p.string(), tl_failed.empty() ? p.string() : tl_failed, ec.message());
  return n;
}

void write_all(int fd, const void* data, size_t n, const std::string& what) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("{}: write failed ({})", what, std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void write_atomic_with(const std::filesystem::path& p, const std::function<void(int fd, const std::string& tmp)>& fill) {
  const auto dir = p.parent_path().empty() ? std::filesystem::path(".") : p.parent_path();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("{}: cannot create directory ({})", dir.string(), ec.message());
  static std::atomic<uint64_t> counter{0};
  const auto tmp = (dir / fmt::format(".{}.tmp.{}.{}", p.filename().string(), ::getpid(), counter++)).string();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail("{}: cannot create temporary file {} ({})", p.string(), tmp, std::strerror(errno));
  try {
    fill(fd, tmp);
    if (::fsync(fd) != 0) fail("{}: fsync failed ({})", tmp, std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), p.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    fail("{}: rename from {} failed ({})", p.string(), tmp, why);
  }
  fsync_path(dir);
}

void write_file_atomic(const std::filesystem::path& p, std::string_view contents) {
  write_atomic_with(p, [&](int fd, const std::string& tmp) { write_all(fd, contents.data(), contents.size(), tmp); });
}

void write_dir_atomic(const std::filesystem::path& dir, const std::function<void(const std::filesystem::path& tmp)>& fill,
                      std::string_view what) {
  namespace stdfs = std::filesystem;
  const stdfs::path target = stdfs::absolute(dir).lexically_normal();
  const stdfs::path parent = target.parent_path();
  static std::atomic<uint64_t> counter{0};
  const std::string tag = std::to_string(::getpid()) + "." + std::to_string(counter++);
  const stdfs::path tmp = parent / ("." + target.filename().string() + ".tmp." + tag);
  try {
    stdfs::create_directories(parent);
    stdfs::create_directory(tmp);
    fill(tmp);
    if (stdfs::exists(target)) {
      const stdfs::path old = parent / ("." + target.filename().string() + ".old." + tag);
      stdfs::rename(target, old);
      stdfs::rename(tmp, target);
      remove_tree(old);
    } else {
      stdfs::rename(tmp, target);
    }
  } catch (const stdfs::filesystem_error& e) {
    std::error_code ec;
    remove_tree(tmp, ec);
    fail("{}: saving the {} failed: {}", dir.string(), what, e.what());
  } catch (...) {
    std::error_code ec;
    remove_tree(tmp, ec);
    throw;
  }
}

void rename_dir_atomic(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (std::filesystem::exists(to)) fail("{}: already exists", to.string());
  if (::rename(from.c_str(), to.c_str()) != 0)
    fail("{}: cannot rename to {} ({})", from.string(), to.string(), std::strerror(errno));
  fsync_path(to.parent_path().empty() ? std::filesystem::path(".") : to.parent_path());
}

}  // namespace keel::fs
