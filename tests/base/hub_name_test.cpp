// Tests of base/hub_name.{h,cpp}: which model paths read as Hugging Face hub names.
#include "base/hub_name.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <string>

namespace keel {
namespace {

TEST(HubName, RecognisesOrgSlashNameThatIsNotLocal) {
  EXPECT_TRUE(looks_like_hub_name("Qwen/Qwen2.5-0.5B-Instruct"));
  EXPECT_TRUE(looks_like_hub_name("meta-llama/Llama-3.2-1B"));
  EXPECT_FALSE(looks_like_hub_name(""));
  EXPECT_FALSE(looks_like_hub_name("Qwen2.5-0.5B-Instruct"));              // no org
  EXPECT_FALSE(looks_like_hub_name("/models/Qwen2.5-0.5B-Instruct"));      // absolute
  EXPECT_FALSE(looks_like_hub_name("./Qwen/Qwen2.5"));                     // relative, said so
  EXPECT_FALSE(looks_like_hub_name("runs/steps_sft/checkpoints/step-1"));  // deeper than org/name
  EXPECT_FALSE(looks_like_hub_name("Qwen/"));
  EXPECT_FALSE(looks_like_hub_name("/tmp"));
  // An existing first component is a local directory: "<dir>/model" is a local path not made yet.
  const std::string org = "keel_hub_test_" + std::to_string(::getpid());
  EXPECT_TRUE(looks_like_hub_name(org + "/model"));
  std::filesystem::create_directory(org);
  EXPECT_FALSE(looks_like_hub_name(org + "/model"));
  std::filesystem::remove(org);
}

TEST(HubName, MessageSaysHubNamesAreNotResolved) {
  const auto m = hub_name_message("Qwen/Qwen2.5-0.5B-Instruct", "model.path:");
  EXPECT_NE(m.find("'Qwen/Qwen2.5-0.5B-Instruct' is not a local directory and looks like a Hugging Face hub name"),
            std::string::npos) << m;
  EXPECT_NE(m.find("keel does not download or resolve hub names"), std::string::npos) << m;
  EXPECT_NE(m.find("huggingface-cli download Qwen/Qwen2.5-0.5B-Instruct --local-dir models/Qwen2.5-0.5B-Instruct"),
            std::string::npos) << m;
  EXPECT_NE(m.find("then model.path: models/Qwen2.5-0.5B-Instruct"), std::string::npos) << m;
}

}  // namespace
}  // namespace keel
