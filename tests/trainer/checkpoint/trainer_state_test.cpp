#include "trainer/checkpoint/trainer_state.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <string>

#include <torch/torch.h>

#include "base/error.h"
#include "base/fs.h"

namespace keel::checkpoint {
namespace {

namespace stdfs = std::filesystem;

class TrainerStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = stdfs::temp_directory_path() / ("keel_trainer_state_" + std::to_string(::getpid()) + "_" +
                                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    stdfs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_tree(dir_); }

  /// The keel::Error message read_trainer_state throws on dir_ ("" if none).
  std::string read_error(const std::vector<std::string>& required = {}) const {
    try {
      read_trainer_state(dir_, required);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  stdfs::path dir_;
};

TEST_F(TrainerStateTest, RoundTripKeepsEveryFieldAndTheExtras) {
  TrainerState st;
  st.step = 12;
  st.opt_step = 24;
  st.data_cursor = {/*epoch=*/3, /*position=*/96};
  st.skipped_steps = 2;
  st.extras["critic_opt_step"] = 7;
  st.extras["kl_controller"] = std::map<std::string, double>{{"beta", 0.05}};
  st.extras["estimator_state"] = std::map<std::string, double>{{"baseline", -0.25}};
  st.extras["reward_state_scorers"] = 2;
  write_trainer_state(dir_, st);

  const auto back = read_trainer_state(dir_, {"estimator_state"});
  EXPECT_EQ(back.step, 12);
  EXPECT_EQ(back.opt_step, 24);
  EXPECT_EQ(back.data_cursor.epoch, 3);
  EXPECT_EQ(back.data_cursor.position, 96);
  EXPECT_EQ(back.skipped_steps, 2);
  EXPECT_EQ(back.extras, st.extras);
  using Map = std::map<std::string, double>;
  EXPECT_EQ(back.extras.at("kl_controller").get<Map>().at("beta"), 0.05);
}

TEST_F(TrainerStateTest, WritesTheLayoutEarlierCheckpointsHave) {
  // The layout `keel train` and `keel train-rm` wrote before this file existed: one object, keys
  // sorted, extras at the top level, two-space indent and a final newline.
  TrainerState st;
  st.step = 2;
  st.opt_step = 4;
  st.data_cursor = {/*epoch=*/0, /*position=*/8};
  st.extras["critic_opt_step"] = 4;
  write_trainer_state(dir_, st);
  EXPECT_EQ(fs::read_file(dir_ / kTrainerStateFile),
            "{\n"
            "  \"critic_opt_step\": 4,\n"
            "  \"data_cursor\": {\n"
            "    \"epoch\": 0,\n"
            "    \"position\": 8\n"
            "  },\n"
            "  \"opt_step\": 4,\n"
            "  \"skipped_steps\": 0,\n"
            "  \"step\": 2\n"
            "}\n");
}

TEST_F(TrainerStateTest, ReadsATrainRmCheckpointWithNoExtras) {
  fs::write_file_atomic(dir_ / kTrainerStateFile,
                        R"({"step": 5, "opt_step": 5, "data_cursor": {"epoch": 1, "position": 0}, "skipped_steps": 0})");
  const auto st = read_trainer_state(dir_);
  EXPECT_EQ(st.step, 5);
  EXPECT_EQ(st.data_cursor.epoch, 1);
  EXPECT_TRUE(st.extras.is_object());
  EXPECT_TRUE(st.extras.empty());
}

TEST_F(TrainerStateTest, MissingKeyErrorNamesTheFileAndTheKey) {
  const auto file = (dir_ / kTrainerStateFile).string();
  fs::write_file_atomic(dir_ / kTrainerStateFile, R"({"step": 5, "data_cursor": {"epoch": 1, "position": 0}, "skipped_steps": 0})");
  auto msg = read_error();
  EXPECT_NE(msg.find(file), std::string::npos) << msg;
  EXPECT_NE(msg.find("'opt_step'"), std::string::npos) << msg;

  fs::write_file_atomic(dir_ / kTrainerStateFile, R"({"step": 5, "opt_step": 5, "data_cursor": {"epoch": 1}, "skipped_steps": 0})");
  msg = read_error();
  EXPECT_NE(msg.find(file), std::string::npos) << msg;
  EXPECT_NE(msg.find("'data_cursor.position'"), std::string::npos) << msg;

  fs::write_file_atomic(dir_ / kTrainerStateFile,
                        R"({"step": 5, "opt_step": 5, "data_cursor": {"epoch": 1, "position": 0}, "skipped_steps": 0})");
  msg = read_error({"estimator_state"});
  EXPECT_NE(msg.find(file), std::string::npos) << msg;
  EXPECT_NE(msg.find("'estimator_state'"), std::string::npos) << msg;
}

TEST_F(TrainerStateTest, MalformedFileErrorsNameTheFile) {
  const auto file = (dir_ / kTrainerStateFile).string();
  fs::write_file_atomic(dir_ / kTrainerStateFile, "{\"step\": 5,");
  auto msg = read_error();
  EXPECT_NE(msg.find(file), std::string::npos) << msg;
  EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;

  fs::write_file_atomic(dir_ / kTrainerStateFile,
                        R"({"step": "5", "opt_step": 5, "data_cursor": {"epoch": 1, "position": 0}, "skipped_steps": 0})");
  msg = read_error();
  EXPECT_NE(msg.find(file), std::string::npos) << msg;
  EXPECT_NE(msg.find("'step' must be an integer"), std::string::npos) << msg;

  stdfs::remove(dir_ / kTrainerStateFile);
  msg = read_error();
  EXPECT_NE(msg.find(file), std::string::npos) << msg;
}

// A hand-edited `"step": -5` resumed training at step -4; counters past int64 wrapped to negatives.
TEST_F(TrainerStateTest, NegativeCountersAreRefused) {
  const auto file = (dir_ / kTrainerStateFile).string();
  for (const char* bad : {R"({"step": -5, "opt_step": 5, "data_cursor": {"epoch": 1, "position": 0}, "skipped_steps": 0})",
                          R"({"step": 5, "opt_step": -1, "data_cursor": {"epoch": 1, "position": 0}, "skipped_steps": 0})",
                          R"({"step": 5, "opt_step": 5, "data_cursor": {"epoch": 1, "position": -3}, "skipped_steps": 0})",
                          R"({"step": 5, "opt_step": 5, "data_cursor": {"epoch": 1, "position": 0}, "skipped_steps": 18446744073709551615})"}) {
    fs::write_file_atomic(dir_ / kTrainerStateFile, bad);
    const auto msg = read_error();
    EXPECT_NE(msg.find(file), std::string::npos) << msg;
    EXPECT_NE(msg.find("must be an integer >= 0"), std::string::npos) << bad << "\n" << msg;
  }
  fs::write_file_atomic(dir_ / kTrainerStateFile,
                        R"({"step": 5, "opt_step": -1, "data_cursor": {"epoch": 1, "position": 0}, "skipped_steps": 0})");
  EXPECT_NE(read_error().find("key 'opt_step' must be an integer >= 0"), std::string::npos) << read_error();
  fs::write_file_atomic(dir_ / kTrainerStateFile,
                        R"({"step": 0, "opt_step": 0, "data_cursor": {"epoch": 0, "position": 0}, "skipped_steps": 0})");
  EXPECT_EQ(read_error(), "");
}

TEST_F(TrainerStateTest, AnExtraMayNotShadowACommonKey) {
  TrainerState st;
  st.extras["step"] = 99;
  EXPECT_THROW(write_trainer_state(dir_, st), Error);
  EXPECT_FALSE(stdfs::exists(dir_ / kTrainerStateFile));
}

TEST_F(TrainerStateTest, SaveOptimizerWritesAnArchiveThatLoadsBack) {
  auto w = torch::ones({3}, torch::requires_grad());
  torch::optim::AdamW opt({w}, torch::optim::AdamWOptions(0.1));
  w.sum().backward();
  opt.step();
  save_optimizer(opt, dir_ / "optimizer.pt");

  auto w2 = w.detach().clone().requires_grad_(true);
  torch::optim::AdamW back({w2}, torch::optim::AdamWOptions(0.1));
  torch::serialize::InputArchive ar;
  ar.load_from((dir_ / "optimizer.pt").string());
  back.load(ar);
  const auto& s1 = static_cast<const torch::optim::AdamWParamState&>(*opt.state().begin()->second);
  const auto& s2 = static_cast<const torch::optim::AdamWParamState&>(*back.state().begin()->second);
  EXPECT_EQ(s2.step(), 1);
  EXPECT_TRUE(torch::equal(s1.exp_avg(), s2.exp_avg()));
  EXPECT_TRUE(torch::equal(s1.exp_avg_sq(), s2.exp_avg_sq()));
}

}  // namespace
}  // namespace keel::checkpoint
