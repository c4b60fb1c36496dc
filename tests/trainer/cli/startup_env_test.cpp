// Tests for base/startup_env: which library settings keel starts with, that a user's own
// values win, and (through the CLI) that a bare environment ends with fast OpenBLAS kernels.
// Lives in trainer_tests because the rules only apply with LibTorch's OpenBLAS and libgomp loaded.
#include "base/startup_env.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>

#include "models/fused_cpu_kernels.h"
#include "tests/trainer/cli/run_keel.h"

namespace keel::startup {
namespace {

/// Sets or unsets environment variables for one test, restoring them after.
class ScopedEnv {
 public:
  void set(const std::string& k, const std::optional<std::string>& v) {
    if (!saved_.count(k)) {
      const char* old = std::getenv(k.c_str());
      saved_[k] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    if (v) setenv(k.c_str(), v->c_str(), 1);
    else unsetenv(k.c_str());
  }
  ~ScopedEnv() {
    for (const auto& [k, v] : saved_) {
      if (v) setenv(k.c_str(), v->c_str(), 1);
      else unsetenv(k.c_str());
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

std::map<std::string, std::string> as_map(const std::vector<std::pair<std::string, std::string>>& v) {
  return {v.begin(), v.end()};
}

TEST(StartupEnv, AddsOnlyWhatTheUserDidNotSet) {
  if (openblas_core().empty()) GTEST_SKIP() << "no OpenBLAS loaded";
  ScopedEnv env;
  env.set("KEEL_KEEP_LIBRARY_ENV", std::nullopt);
  env.set("GOMP_SPINCOUNT", std::nullopt);
  env.set("OPENBLAS_CORETYPE", std::nullopt);
  env.set("OMP_WAIT_POLICY", std::nullopt);
  auto m = as_map(missing_library_env());
  // This process already runs with the kernels ctest exported (or OpenBLAS's own good choice), so
  // a core is only proposed when the loaded one is weaker than the CPU.
  const std::string better = better_openblas_core();
  EXPECT_EQ(m.count("OPENBLAS_CORETYPE"), better.empty() ? 0u : 1u);
  EXPECT_EQ(m["OMP_WAIT_POLICY"], "passive");  // Debian's OpenBLAS-pthread next to LibTorch's libgomp

  env.set("OMP_WAIT_POLICY", "active");
  env.set("OPENBLAS_CORETYPE", "Haswell");
  EXPECT_TRUE(missing_library_env().empty());
  env.set("OMP_WAIT_POLICY", std::nullopt);
  env.set("GOMP_SPINCOUNT", "1000");  // a spin setting of the user's own counts as a choice
  EXPECT_TRUE(missing_library_env().empty());

  env.set("GOMP_SPINCOUNT", std::nullopt);
  env.set("KEEL_KEEP_LIBRARY_ENV", "1");
  EXPECT_TRUE(missing_library_env().empty());
}

TEST(StartupEnv, KeelStartsWithFastKernelsFromABareEnvironment) {
  if (openblas_core().empty()) GTEST_SKIP() << "no OpenBLAS loaded";
  const std::string bare =
      "env -u OPENBLAS_CORETYPE -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u KEEL_KEEP_LIBRARY_ENV -u KEEL_LIBRARY_ENV_SET";
  auto r = testing::run_keel("version --library-env", std::filesystem::current_path(), bare);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("export OMP_WAIT_POLICY=passive"), std::string::npos) << r.out;
  // Whatever OpenBLAS picks by itself on this CPU, keel ends up with kernels at least as good as the
  // CPU supports: with AVX2 never the SSE-era fallbacks.
  auto v = testing::run_keel("version", std::filesystem::current_path(), bare);
  ASSERT_EQ(v.exit_code, 0) << v.out;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    EXPECT_EQ(v.out.find(" Prescott "), std::string::npos) << v.out;
    EXPECT_EQ(v.out.find(" Core2 "), std::string::npos) << v.out;
    EXPECT_EQ(v.out.find(" Nehalem "), std::string::npos) << v.out;
  }
#endif
  // The settings are exported again by what --library-env printed: running with them re-runs nothing.
  auto again = testing::run_keel("version", std::filesystem::current_path(),
                                 bare + " KEEL_KEEP_LIBRARY_ENV= " + [&] {
                                   std::string s;
                                   std::stringstream ss(r.out);
                                   for (std::string line; std::getline(ss, line);)
                                     if (line.rfind("export ", 0) == 0) s += line.substr(7) + " ";
                                   return s;
                                 }());
  ASSERT_EQ(again.exit_code, 0) << again.out;
  EXPECT_EQ(again.out.find("keel set"), std::string::npos) << again.out;
}

// KEEL_ISA forces every fused CPU kernel onto one instruction-set build (what the CI's per-path
// step relies on): `keel version` names the path it runs; a path this CPU lacks, or an unknown
// name, stops keel at start with exit code 2 and the paths it has.
TEST(StartupEnv, KeelIsaForcesTheKernelPath) {
  using models::kernels::Isa;
  const auto cwd = std::filesystem::current_path();
  for (Isa isa : {Isa::kBaseline, Isa::kAvx2, Isa::kAvx512}) {
    const std::string name = models::kernels::isa_name(isa);
    auto r = testing::run_keel("version", cwd, "KEEL_ISA=" + name);
    if (!models::kernels::isa_supported(isa)) {
      EXPECT_EQ(r.exit_code, 2) << r.out;
      EXPECT_NE(r.out.find("cannot run the " + name + " kernels"), std::string::npos) << r.out;
      continue;
    }
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.out;
    EXPECT_NE(r.out.find("CPU kernels: " + name), std::string::npos) << r.out;
  }
  auto r = testing::run_keel("version", cwd, "KEEL_ISA=");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find(std::string("CPU kernels: ") + models::kernels::isa_name(models::kernels::best_isa())),
            std::string::npos)
      << r.out;
  r = testing::run_keel("version", cwd, "KEEL_ISA=sse9");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("KEEL_ISA=sse9 is not a kernel path"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(models::kernels::supported_isa_names()), std::string::npos) << r.out;
}

}  // namespace
}  // namespace keel::startup
