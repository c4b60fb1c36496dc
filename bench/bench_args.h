// The benches' command lines: "--name value" pairs, parsed the same way by each of them.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

namespace keel::bench {

/// Calls on(name, value) for every "--name value" pair of argv; `on` returns false for a name it
/// does not know. An odd number of arguments or an unknown name prints why and exits with 2.
inline void for_each_option(int argc, char** argv,
                            const std::function<bool(const std::string& name, const std::string& value)>& on) {
  if (argc % 2 == 0) {
    std::fprintf(stderr, "options come in pairs: --name value\n");
    std::exit(2);
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!on(argv[i], argv[i + 1])) {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      std::exit(2);
    }
  }
}

}  // namespace keel::bench
