// Environment "subprocess": an external environment program, in any language, that keel talks to
// over JSON lines on the child's stdin/stdout (the protocol is in docs/environments.md). One child
// process per factory serves every episode, multiplexed by episode id; requests are serialised
// with a mutex, so environments made by one factory may be stepped from many threads.
// A child that hangs (no answer within timeout_s), exits, or writes a malformed line is killed;
// the episodes it was serving end as failed (done, reward 0, info env_failed = 1) and the next
// request starts a fresh child. step() never throws; restarts and failures are counted.
// Deliberately not here: a Python interpreter inside keel, several children per factory (one
// per rollout worker is the lead's choice of factories), and any retrying of a failed episode.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "trainer/env/environment.h"

namespace keel::env {

/// The `env.params` of "subprocess" (YAML keys = field names).
struct SubprocessOptions {
  /// argv of the environment program; [0] is looked up on PATH unless it contains a '/' (then it
  /// is a path, relative to `cwd` when that is set). Required, non-empty.
  std::vector<std::string> command;
  std::string cwd;              ///< the child's working directory ("" = keel's)
  double timeout_s = 10.0;      ///< per request: seconds to wait for the answer line
  double start_timeout_s = 30;  ///< for the hello of a fresh child (interpreter start, imports)
  /// Info keys every step reports; [] = ask the child (the hello answer's "info_keys"), which
  /// starts it when info_keys() is first called. "env_failed" is always appended.
  std::vector<std::string> info_keys;
  std::vector<std::string> required_meta;  ///< record meta fields the program reads
  std::string task;                        ///< built-in task whose records it is made for ("" = any)
  std::string stderr_file;  ///< append the child's stderr to this file ("" = keel's stderr)
};

/// Reads SubprocessOptions from `r`; errors (missing or empty command, a command[0] that is not
/// an executable file on PATH or at its path, non-positive timeouts) go to r's diagnostics.
void read(config::Reader& r, SubprocessOptions& o);

class SubprocessClient;  // the child process and its pipes (subprocess_env.cpp)

/// Makes SubprocessEnv episodes that share one child process. The child starts lazily, on the
/// first reset() (or on info_keys() when the YAML gives none), so loading a config runs nothing.
class SubprocessEnvFactory : public EnvFactory {
 public:
  explicit SubprocessEnvFactory(SubprocessOptions o);
  /// Closes the child's stdin, waits up to 1 s for it to exit, then SIGKILLs and reaps it.
  /// Environments still alive keep the child until they are destroyed.
  ~SubprocessEnvFactory() override;

  /// A fresh episode on the shared child. Thread-safe. reset() throws keel::Error only when the
  /// program cannot be started at all: posix_spawn fails, or the first child never answers hello,
  /// or three fresh children in a row fail before answering hello.
  std::unique_ptr<Environment> make() const override;
  /// The YAML's info_keys, else the hello answer's (starting the child; throws keel::Error when it
  /// cannot start), plus "env_failed".
  std::vector<std::string> info_keys() const override;
  std::vector<std::string> required_meta() const override;
  std::string task() const override;

  /// Children started after the first one (each after a hang, crash or malformed line).
  int64_t restarts() const;
  /// Episodes ended by an environment failure (what step() reported with info env_failed = 1).
  int64_t failures() const;
  /// {"restarts": restarts(), "failures": failures()}.
  std::map<std::string, double> metrics() const override;

 private:
  std::shared_ptr<SubprocessClient> client_;
};

/// Adds "subprocess" (params: SubprocessOptions) to `envs`.
void register_subprocess(EnvRegistry& envs);

}  // namespace keel::env
