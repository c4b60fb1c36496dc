#include "base/startup_env.h"

#include <dlfcn.h>
#include <strings.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string_view>

namespace keel::startup {

namespace {

template <typename Fn>
Fn lookup(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}

bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

bool one_of(std::string_view core, std::initializer_list<std::string_view> names) {
  for (auto n : names)
    if (core.size() == n.size() && strncasecmp(core.data(), n.data(), n.size()) == 0) return true;
  return false;
}

}  // namespace

std::string openblas_core() {
  auto* fn = lookup<char* (*)()>("openblas_get_corename");
  const char* name = fn != nullptr ? fn() : nullptr;
  return name == nullptr ? "" : name;
}

std::string better_openblas_core() {
  const std::string core = openblas_core();
  if (core.empty()) return "";
#if defined(__x86_64__)
  __builtin_cpu_init();
  // __builtin_cpu_supports also checks that the OS saves the vector registers (XCR0).
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx512 && !one_of(core, {"SkylakeX", "Cooperlake", "SapphireRapids"})) return "SkylakeX";
  if (!avx512 && avx2 && !one_of(core, {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"}))
    return "Haswell";
#endif
  return "";
}

std::vector<std::pair<std::string, std::string>> missing_library_env() {
  std::vector<std::pair<std::string, std::string>> out;
  if (env_set("KEEL_KEEP_LIBRARY_ENV")) return out;
  if (!env_set("OPENBLAS_CORETYPE")) {
    if (std::string core = better_openblas_core(); !core.empty()) out.emplace_back("OPENBLAS_CORETYPE", core);
  }
  // Two spinning pools only when OpenBLAS runs its own threads (openblas_get_parallel() == 1:
  // pthreads; 2 would be OpenMP, the same pool as LibTorch's) next to libgomp.
  auto* parallel = lookup<int (*)()>("openblas_get_parallel");
  const bool two_pools = parallel != nullptr && parallel() == 1 && lookup<int (*)()>("omp_get_max_threads") != nullptr;
  if (two_pools && !env_set("OMP_WAIT_POLICY") && !env_set("GOMP_SPINCOUNT"))
    out.emplace_back("OMP_WAIT_POLICY", "passive");
  return out;
}

void use_fast_library_settings(char** argv) {
  const auto missing = missing_library_env();
  if (missing.empty() || argv == nullptr || argv[0] == nullptr) return;
  std::string note;
  for (const auto& [k, v] : missing) {
    if (!note.empty()) note += ", ";
    note += k + "=" + v;
    if (k == "OPENBLAS_CORETYPE") note += " (OpenBLAS picked " + openblas_core() + ")";
  }
  setenv("KEEL_LIBRARY_ENV_SET", note.c_str(), 1);
  for (const auto& [k, v] : missing) setenv(k.c_str(), v.c_str(), 1);
  std::fflush(nullptr);
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "keel: warning: could not re-run itself with %s (%s); CPU math runs slower without\n",
               note.c_str(), std::strerror(errno));
  for (const auto& [k, v] : missing) unsetenv(k.c_str());
  unsetenv("KEEL_LIBRARY_ENV_SET");
}

std::string library_env_note() {
  const char* v = std::getenv("KEEL_LIBRARY_ENV_SET");
  return v == nullptr ? "" : v;
}

}  // namespace keel::startup
