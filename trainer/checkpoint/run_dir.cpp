#include "trainer/checkpoint/run_dir.h"

#include "base/build_info.h"
#include "base/error.h"
#include "base/fs.h"

namespace keel::checkpoint {

RunDirInfo prepare_run_dir(const std::filesystem::path& dir, const std::string& resolved_yaml,
                           const std::vector<std::string>& argv) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("{}: cannot create the run directory ({})", dir.string(), ec.message());
  fs::write_file_atomic(dir / "config.yaml", "# resolved config of this run (keel print-config)\n" + resolved_yaml);
  fs::write_file_atomic(dir / "git_revision", std::string(build_git_revision()) + "\n");
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  fs::write_file_atomic(dir / "command", cmd + "\n");
  return RunDirInfo{dir};
}

}  // namespace keel::checkpoint
