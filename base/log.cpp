#include "base/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "base/error.h"

namespace keel::log {

namespace {
struct State {
  Level level = Level::kInfo;
  int rank = 0;
  bool all_ranks = false;
  std::shared_ptr<spdlog::logger> logger;
};
State& state() {
  static State s;
  return s;
}
spdlog::level::level_enum to_spd(Level l) {
  switch (l) {
    case Level::kTrace: return spdlog::level::trace;
    case Level::kDebug: return spdlog::level::debug;
    case Level::kInfo: return spdlog::level::info;
    case Level::kWarn: return spdlog::level::warn;
    case Level::kError: return spdlog::level::err;
    case Level::kOff: return spdlog::level::off;
  }
  return spdlog::level::info;
}
}  // namespace

Level parse_level(const std::string& s) {
  if (s == "trace") return Level::kTrace;
  if (s == "debug") return Level::kDebug;
  if (s == "info") return Level::kInfo;
  if (s == "warn") return Level::kWarn;
  if (s == "error") return Level::kError;
  if (s == "off") return Level::kOff;
  fail("unknown log level '{}' (known: trace, debug, info, warn, error, off)", s);
}

void init(Level level, int rank, int world_size, bool all_ranks) {
  auto& st = state();
  st.level = level;
  st.rank = rank;
  st.all_ranks = all_ranks;
  // stderr so that stdout stays clean for command output (list, print-config, generate).
  // A fresh, unregistered logger each time (init may run more than once in tests).
  st.logger = std::make_shared<spdlog::logger>("keel", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  st.logger->set_level(to_spd(level));
  st.logger->set_pattern(world_size > 1 ? fmt::format("[%H:%M:%S] [rank {}] [%^%l%$] %v", rank)
                                        : std::string("[%H:%M:%S] [%^%l%$] %v"));
}

bool enabled(Level level) {
  const auto& st = state();
  if (level < st.level) return false;
  if (level < Level::kWarn && st.rank != 0 && !st.all_ranks) return false;
  return true;
}

void emit(Level level, const std::string& msg) {
  auto& st = state();
  if (!st.logger) init(st.level, st.rank, 1, st.all_ranks);
  st.logger->log(to_spd(level), msg);
}

}  // namespace keel::log
