// Rank-aware logging (spdlog behind a small interface; only log.cpp includes spdlog).
// Only rank 0 logs at info and below unless `all_ranks` is set; warnings and errors always print.
// Math code never logs: losses and estimators return metrics, the trainer logs them.
#pragma once

#include <string>
#include <utility>

#include <fmt/format.h>

namespace keel::log {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError, kOff };

/// Parses "trace|debug|info|warn|error|off"; throws keel::Error otherwise.
Level parse_level(const std::string& s);
/// Configures the process-wide logger. Messages are prefixed "[rank N]" when world_size > 1.
void init(Level level, int rank = 0, int world_size = 1, bool all_ranks = false);
void emit(Level level, const std::string& msg);
bool enabled(Level level);

template <typename... A> void trace(fmt::format_string<A...> f, A&&... a) { if (enabled(Level::kTrace)) emit(Level::kTrace, fmt::format(f, std::forward<A>(a)...)); }
template <typename... A> void debug(fmt::format_string<A...> f, A&&... a) { if (enabled(Level::kDebug)) emit(Level::kDebug, fmt::format(f, std::forward<A>(a)...)); }
template <typename... A> void info(fmt::format_string<A...> f, A&&... a) { if (enabled(Level::kInfo)) emit(Level::kInfo, fmt::format(f, std::forward<A>(a)...)); }
template <typename... A> void warn(fmt::format_string<A...> f, A&&... a) { if (enabled(Level::kWarn)) emit(Level::kWarn, fmt::format(f, std::forward<A>(a)...)); }
template <typename... A> void error(fmt::format_string<A...> f, A&&... a) { if (enabled(Level::kError)) emit(Level::kError, fmt::format(f, std::forward<A>(a)...)); }

}  // namespace keel::log
