#include "trainer/common/fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "trainer/common/error.h"

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
  if (rc != 0) fail("{}: fsync failed ({})", p.string(), std::strerror(err));
}

void write_file_atomic(const std::filesystem::path& p, std::string_view contents) {
  const auto dir = p.parent_path().empty() ? std::filesystem::path(".") : p.parent_path();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("{}: cannot create directory ({})", dir.string(), ec.message());
  const auto tmp = dir / (".tmp." + p.filename().string() + "." + std::to_string(::getpid()));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("{}: cannot create ({})", tmp.string(), std::strerror(errno));
  size_t off = 0;
  while (off < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + off, contents.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      std::filesystem::remove(tmp, ec);
      fail("{}: write failed ({})", p.string(), std::strerror(err));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int err = errno;
    std::filesystem::remove(tmp, ec);
    fail("{}: fsync/close failed ({})", p.string(), std::strerror(err));
  }
  std::filesystem::rename(tmp, p, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    fail("{}: rename failed ({})", p.string(), ec.message());
  }
  fsync_path(dir);
}

void rename_dir_atomic(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (std::filesystem::exists(to)) fail("{}: already exists", to.string());
  if (::rename(from.c_str(), to.c_str()) != 0)
    fail("{}: cannot rename to {} ({})", from.string(), to.string(), std::strerror(errno));
  fsync_path(to.parent_path().empty() ? std::filesystem::path(".") : to.parent_path());
}

}  // namespace keel::fs
