// The CLI surface: help, version, list, print-config (resolved and reference), and every YAML
// under configs/ validating.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/trainer/cli/run_keel.h"

namespace keel::testing {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Cli, HelpListsEverySubcommand) {
  const auto r = run_keel("--help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* cmd : {"version", "list", "validate", "print-config", "train", "sft", "train-rm", "average-rm", "launch", "generate"})
    EXPECT_NE(r.out.find(cmd), std::string::npos) << cmd << "\n" << r.out;
}

TEST(Cli, EachSubcommandHasItsOwnHelp) {
  const auto r = run_keel("validate --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--world-size"), std::string::npos) << r.out;
}

TEST(Cli, UnknownSubcommandIsAUsageError) {
  const auto r = run_keel("frobnicate");
  EXPECT_EQ(r.exit_code, 2) << r.out;
}

TEST(Cli, VersionReportsTorchBlasAndThreads) {
  const auto r = run_keel("version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("LibTorch "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("BLAS: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("intra-op threads: "), std::string::npos) << r.out;
}

TEST(Cli, ListKnowsItsKinds) {
  const auto r = run_keel("list algorithms");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("grpo"), std::string::npos) << r.out;
  const auto kl = run_keel("list kl");
  EXPECT_EQ(kl.exit_code, 0);
  EXPECT_NE(kl.out.find("abs"), std::string::npos) << kl.out;
  const auto bad = run_keel("list frobs");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(bad.out.rfind("keel: error: list: unknown kind 'frobs'", 0), 0u) << bad.out;
}

TEST(CliConfig, ReferenceYamlIsFresh) {
  const auto r = run_keel("print-config --reference");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, read_file(fs::path(KEEL_SOURCE_DIR) / "configs" / "reference.yaml"))
      << "configs/reference.yaml is stale: run scripts/gen_reference_config.sh";
}

TEST(CliConfig, EveryConfigUnderConfigsValidates) {
  int n = 0;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(KEEL_SOURCE_DIR) / "configs")) {
    if (!e.is_regular_file() || e.path().extension() != ".yaml") continue;
    ++n;
    // Each config opens with its launch command.
    EXPECT_NE(read_file(e.path()).find("# Launch: keel "), std::string::npos) << e.path();
    // Configs whose judges (or policy) a chain trains first name those runs' directories; they
    // validate once trained, in JudgeChainSlow (judge_chain_test.cpp).
    if (read_file(e.path()).find("path: runs/") != std::string::npos) continue;
    // Configs for several ranks validate at their launch line's world size.
    const int nproc = config_nproc(read_file(e.path()));
    const auto r = run_keel("validate '" + e.path().string() + "' --world-size " + std::to_string(nproc));
    EXPECT_EQ(r.exit_code, 0) << e.path() << "\n" << r.out;
  }
  EXPECT_GE(n, 2);
}

TEST(CliConfig, PrintedConfigReloadsToTheSameConfig) {
  ScratchDir dir("print");
  dir.write("c.yaml", "optim:\n  lr: 0.001\nrollout:\n  stop_token_ids: [3, 4]\n");
  const auto first = run_keel("print-config c.yaml learner.clip_high=0.3", dir.path());
  ASSERT_EQ(first.exit_code, 0) << first.out;
  EXPECT_NE(first.out.find("  lr: 0.001\n"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("  clip_high: 0.3\n"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("  stop_token_ids: [3, 4]\n"), std::string::npos) << first.out;
  dir.write("resolved.yaml", first.out);
  const auto second = run_keel("print-config resolved.yaml", dir.path());
  ASSERT_EQ(second.exit_code, 0) << second.out;
  EXPECT_EQ(first.out, second.out);
}

}  // namespace
}  // namespace keel::testing
