// Tests of base/node.{h,cpp}: what parse_yaml_file refuses before any config is read — a
// directory, an empty file, a document too large, an alias bomb and an alias cycle — each failing
// fast with the file's name.
#include "base/node.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "base/error.h"
#include "base/fs.h"

namespace keel::config {
namespace {

namespace stdfs = std::filesystem;

class ParseYamlFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = stdfs::temp_directory_path() / ("keel_node_" + std::to_string(::getpid()) + "_" +
                                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    stdfs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_tree(dir_); }

  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return (dir_ / name).string();
  }
  /// parse_yaml_file's keel::Error message ("" when it parses).
  static std::string error_of(const std::string& path, const std::string& display = "") {
    try {
      parse_yaml_file(path, display);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  stdfs::path dir_;
};

// `keel train <directory>` trained the built-in defaults: an ifstream reads nothing from a directory.
TEST_F(ParseYamlFile, ADirectoryIsNotAConfig) {
  EXPECT_EQ(error_of(dir_.string(), "configs"), "configs: is a directory, not a config file (give a YAML file)");
  write("b.yaml", "run: {}\n");
  write("a.yaml", "run: {}\n");
  write("notes.txt", "");
  EXPECT_EQ(error_of(dir_.string(), "configs"),
            fmt::format("configs: is a directory, not a config file (give a YAML file, e.g. {}, {})",
                        (dir_ / "a.yaml").string(), (dir_ / "b.yaml").string()));
}

// An empty file also trained the defaults; `{}` says so on purpose and still does.
TEST_F(ParseYamlFile, AnEmptyFileIsRefusedAndBracesMeanTheDefaults) {
  const std::string expected =
      "c.yaml: the config file is empty (write `{}` to train every default, or start from configs/quickstart.yaml or "
      "configs/reference.yaml)";
  EXPECT_EQ(error_of(write("c.yaml", ""), "c.yaml"), expected);
  EXPECT_EQ(error_of(write("c.yaml", "# only a comment\n\n"), "c.yaml"), expected);
  EXPECT_EQ(error_of(write("c.yaml", "---\n...\n"), "c.yaml"), expected);
  EXPECT_EQ(error_of(write("c.yaml", "{}\n"), "c.yaml"), "");
  // Text given in code (tests, a component's params) keeps "empty = no keys".
  EXPECT_TRUE(parse_yaml_string("", "t.yaml").is_map());
}

// A "billion laughs" document: nine levels of ten aliases each, 10^9 values once expanded. It took
// 7.4 GB and 17 s before bad_alloc; it must fail at once, naming the file.
TEST_F(ParseYamlFile, AnAliasBombFailsFastNamingTheFile) {
  std::string text = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i <= 9; ++i) {
    text += fmt::format("a{}: &a{} [", i, i);
    for (int j = 0; j < 10; ++j) text += fmt::format("{}*a{}", j ? ", " : "", i - 1);
    text += "]\n";
  }
  const auto path = write("bomb.yaml", text);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string e = error_of(path, "bomb.yaml");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 2.0);
  EXPECT_EQ(e.rfind("bomb.yaml: the YAML expands to more than 100000 values", 0), 0u) << e;
  // The same through an override.
  Node root = parse_yaml_string("{}", "t.yaml");
  std::string flow = "[&a0 [x, x, x, x, x, x, x, x, x, x]";
  for (int i = 1; i <= 9; ++i) {
    flow += fmt::format(", &a{} [", i);
    for (int j = 0; j < 10; ++j) flow += fmt::format("{}*a{}", j ? ", " : "", i - 1);
    flow += "]";
  }
  flow += "]";
  try {
    apply_override(root, "data.task_params=" + flow);
    ADD_FAILURE() << "the override bomb was accepted";
  } catch (const Error& err) {
    EXPECT_EQ(std::string(err.what()).rfind("override data.task_params=", 0), 0u) << err.what();
    EXPECT_NE(std::string(err.what()).find("expands to more than 100000 values"), std::string::npos) << err.what();
  }
}

// An anchor used inside its own value is a cycle in yaml-cpp's graph: unbounded recursion before.
TEST_F(ParseYamlFile, AnAliasCycleIsRefused) {
  const std::string e = error_of(write("c.yaml", "run: &a [x, *a]\n"), "c.yaml");
  EXPECT_NE(e.find("nested more than 64 levels deep"), std::string::npos) << e;
  EXPECT_EQ(e.rfind("c.yaml", 0), 0u) << e;
}

TEST_F(ParseYamlFile, AnOversizedDocumentIsRefusedUnread) {
  // /dev/zero never ends: reading stops one byte past the limit.
  const std::string e = error_of("/dev/zero");
  EXPECT_EQ(e.rfind("/dev/zero: ", 0), 0u) << e;
  EXPECT_NE(e.find("too large for a config file (at most 16 MiB)"), std::string::npos) << e;
}

}  // namespace
}  // namespace keel::config
