// Tests of trainer/loop/resources.{h,cpp}: the memory estimate's parameter count against a real
// Transformer built from the same sizes (so the formula tracks the model, not only itself), the
// shape read from model.path's config.json, and this machine's budget.
#include "trainer/loop/resources.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <torch/torch.h>

#include "base/fs.h"
#include "models/model_config.h"
#include "tests/models/test_util.h"
#include "models/transformer.h"
#include "trainer/config/config.h"

namespace keel::loop {
namespace {

/// The tests' tiny model, tied or not.
models::ModelConfig model_config(const std::string& family, bool tied) {
  auto c = models::testing::tiny_config(family);
  c.tie_word_embeddings = tied;
  return c;
}

double numel(const models::Transformer& m) {
  double n = 0;
  for (const auto& p : m.parameters()) n += static_cast<double>(p.numel());
  return n;
}

TEST(Resources, ParameterCountMatchesARealModel) {
  for (const bool tied : {true, false}) {
    const auto c = model_config("llama", tied);
    EXPECT_EQ(config::parameter_count(shape_of(c)), numel(models::Transformer(c))) << "tied " << tied;
  }
}

TEST(Resources, ShapeComesFromModelPathConfigJson) {
  const auto dir = std::filesystem::temp_directory_path() / ("keel_resources_" + std::to_string(::getpid()));
  const auto c = model_config("llama", false);
  fs::write_file_atomic(dir / "config.json", models::model_config_to_json(c));
  config::RunConfig cfg;
  cfg.model.path = dir.string();
  const auto s = model_shape(cfg);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(config::parameter_count(*s), config::parameter_count(shape_of(c)));
  // No config.json yet (a chain's later stage): unknown, not an error here.
  cfg.model.path = (dir / "missing").string();
  EXPECT_FALSE(model_shape(cfg).has_value());
  fs::remove_tree(dir);
}

TEST(Resources, CpuBudgetIsTheAvailableRamSharedByTheRanks) {
  config::RunConfig cfg;
  cfg.derived.world_size = 3;
  const auto b = memory_budget(cfg, /*cuda=*/false);
  EXPECT_GT(b.bytes, 1e6);
  if (!std::getenv("LOCAL_WORLD_SIZE")) {
    EXPECT_EQ(b.ranks, 3);
  }
  EXPECT_EQ(b.what, "RAM available on this machine");
}

}  // namespace
}  // namespace keel::loop
