#include "trainer/metrics/metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "trainer/common/fs.h"

namespace keel::metrics {
namespace {

namespace stdfs = std::filesystem;

stdfs::path scratch(const std::string& tag) {
  auto p = stdfs::temp_directory_path() / ("keel_metrics_" + tag + "_" + std::to_string(::getpid()));
  keel::fs::remove_tree(p);
  stdfs::create_directories(p);
  return p;
}

TEST(Crc32c, KnownVectors) {
  // The CRC-32C check value of "123456789" (RFC 3720 / iSCSI).
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c("", 0), 0u);
  // 32 bytes of zeros (RFC 3720 B.4).
  const std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
}

TEST(JsonlWriter, OneLinePerStepAndResumeDropsLaterSteps) {
  const auto dir = scratch("jsonl");
  {
    JsonlWriter w(dir / "m.jsonl");
    w.write(1, {{"reward/mean", 0.5}, {"bad", std::nan("")}});
    w.write(2, {{"reward/mean", 0.75}});
    w.write(3, {{"reward/mean", 1.0}});
  }
  const std::string all = fs::read_file(dir / "m.jsonl");
  EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 3);
  EXPECT_NE(all.find("\"bad\": null"), std::string::npos);
  EXPECT_NE(all.find("\"reward/mean\": 0.75}"), std::string::npos);
  {
    JsonlWriter w(dir / "m.jsonl", /*resume_step=*/2);  // the checkpoint was at step 2
    w.write(3, {{"reward/mean", 0.9}});
  }
  const std::string resumed = fs::read_file(dir / "m.jsonl");
  EXPECT_EQ(std::count(resumed.begin(), resumed.end(), '\n'), 3);
  EXPECT_EQ(resumed.find("\"reward/mean\": 1}"), std::string::npos) << resumed;
  EXPECT_NE(resumed.find("\"reward/mean\": 0.9}"), std::string::npos) << resumed;
  keel::fs::remove_tree(dir);
}

// Reads back TFRecord framing and the fields we wrote.
TEST(TensorBoardWriter, RecordsAreFramedWithValidCrcs) {
  const auto dir = scratch("tb");
  std::string path;
  {
    TensorBoardWriter w(dir);
    w.write(7, {{"reward/mean", 0.25}});
    path = w.path();
  }
  const std::string b = fs::read_file(path);
  size_t off = 0;
  int records = 0;
  std::string last;
  while (off < b.size()) {
    uint64_t len;
    uint32_t lcrc, dcrc;
    ASSERT_LE(off + 12, b.size());
    std::memcpy(&len, b.data() + off, 8);
    std::memcpy(&lcrc, b.data() + off + 8, 4);
    EXPECT_EQ(lcrc, masked_crc32c(&len, 8));
    ASSERT_LE(off + 12 + len + 4, b.size());
    last = b.substr(off + 12, len);
    std::memcpy(&dcrc, b.data() + off + 12 + len, 4);
    EXPECT_EQ(dcrc, masked_crc32c(last.data(), last.size()));
    off += 12 + len + 4;
    ++records;
  }
  EXPECT_EQ(records, 2);
  EXPECT_NE(b.find("brain.Event:2"), std::string::npos);
  // Event: wall_time (0x09 + 8 bytes), step (0x10, varint 7), summary (0x2A ...).
  ASSERT_GE(last.size(), 12u);
  EXPECT_EQ(static_cast<unsigned char>(last[0]), 0x09);
  EXPECT_EQ(static_cast<unsigned char>(last[9]), 0x10);
  EXPECT_EQ(static_cast<unsigned char>(last[10]), 7);
  EXPECT_EQ(static_cast<unsigned char>(last[11]), 0x2A);
  float v;
  const auto tag = last.find("reward/mean");
  ASSERT_NE(tag, std::string::npos);
  EXPECT_EQ(static_cast<unsigned char>(last[tag + 11]), 0x15);
  std::memcpy(&v, last.data() + tag + 12, 4);
  EXPECT_EQ(v, 0.25f);
  keel::fs::remove_tree(dir);
}

TEST(Progress, LineShowsWhatIsKnown) {
  const Metrics m{{"reward/mean", 0.4123}, {"reward/accuracy", 0.38}, {"actor/kl", 0.00123},
                  {"response/length_mean", 5.25}, {"perf/tokens_per_s", 1234.4}};
  EXPECT_EQ(progress_line(12, 60, m, 24.0, 12),
            "step 12/60 | reward 0.412 | acc 38.0% | kl 0.0012 | len 5.2 | tok/s 1234 | 2.00 s/step | ETA 1m36s");
  EXPECT_EQ(progress_line(1, 2, {}, 0, 0), "step 1/2");
  EXPECT_EQ(format_duration(3725), "1h02m");
  EXPECT_EQ(format_duration(42.4), "42s");
}

}  // namespace
}  // namespace keel::metrics
