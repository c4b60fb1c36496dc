// The metrics writers: metrics.jsonl (with resume), TensorBoard event files (read back by the
// independent reader in tfevents_reader.h), CRC-32C, and the console progress line.
#include "trainer/metrics/metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "tests/trainer/metrics/tfevents_reader.h"
#include "base/fs.h"

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

TEST(TfeventsReader, OwnCrc32cMatchesTheCheckValueAndTheWriters) {
  // The reader's bitwise CRC-32C against the standard check value, then against the writer's table.
  EXPECT_EQ(keel::testing::tf_crc32c("123456789"), 0xE3069283u);
  std::string bytes;
  for (int i = 0; i < 300; ++i) bytes += static_cast<char>((i * 131 + 7) & 0xFF);
  for (size_t n : {0, 1, 7, 8, 63, 300}) {
    EXPECT_EQ(keel::testing::tf_crc32c(std::string_view(bytes).substr(0, n)), crc32c(bytes.data(), n)) << n;
    EXPECT_EQ(keel::testing::tf_masked_crc32c(std::string_view(bytes).substr(0, n)), masked_crc32c(bytes.data(), n))
        << n;
  }
}

// Several steps with several keys, read back by the independent reader: frames and both CRCs,
// the file_version event, then one Summary per step with every key as a float scalar.
TEST(TensorBoardWriter, StepsAndKeysReadBackByAnIndependentParser) {
  const auto dir = scratch("tb");
  const std::vector<std::pair<int64_t, Metrics>> steps = {
      {1, {{"reward/mean", 0.25}, {"actor/pg_clipfrac", 0.0}, {"actor/kl", -1.5e-3}, {"time/step_s", 2.0}}},
      {2, {{"reward/mean", 0.75}, {"actor/pg_clipfrac", 0.125}, {"eval/pass@1", 1.0 / 3.0}}},
      {10'000'000'000, {{"reward/mean", std::nan("")}, {"perf/tokens_per_s", 1e30}}},  // a step past 2^32
  };
  std::filesystem::path path;
  const auto now_s = [] {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  };
  const double t0 = std::floor(now_s());
  {
    TensorBoardWriter w(dir);
    path = w.path();
    for (const auto& [step, m] : steps) w.write(step, m);
  }
  const double t1 = now_s();
  EXPECT_EQ(path.parent_path(), dir);
  EXPECT_EQ(path.filename().string().rfind("events.out.tfevents.", 0), 0u) << path;

  std::vector<keel::testing::TfEvent> events;
  ASSERT_NO_THROW(events = keel::testing::read_tfevents(path));
  ASSERT_EQ(events.size(), 1 + steps.size());
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  EXPECT_EQ(events[0].step, 0);
  EXPECT_FALSE(events[0].has_summary);
  for (size_t i = 0; i < steps.size(); ++i) {
    const auto& e = events[i + 1];
    const auto& [step, m] = steps[i];
    SCOPED_TRACE("step " + std::to_string(step));
    EXPECT_EQ(e.step, step);
    EXPECT_FALSE(e.file_version.has_value());
    EXPECT_GE(e.wall_time, t0);
    EXPECT_LE(e.wall_time, t1 + 1);
    ASSERT_TRUE(e.has_summary);
    ASSERT_EQ(e.scalars.size(), m.size());
    size_t j = 0;
    for (const auto& [key, value] : m) {  // the map's (sorted) order
      const auto& s = e.scalars[j++];
      EXPECT_EQ(s.tag, key);
      ASSERT_TRUE(s.simple_value.has_value()) << key << ": a scalar without a value (0.0 must be written)";
      if (std::isnan(value)) EXPECT_TRUE(std::isnan(*s.simple_value)) << key;
      else EXPECT_EQ(*s.simple_value, static_cast<float>(value)) << key;
    }
  }
  keel::fs::remove_tree(dir);
}

TEST(TfeventsReader, RejectsACorruptedByte) {
  const auto dir = scratch("tbcorrupt");
  std::filesystem::path path;
  {
    TensorBoardWriter w(dir);
    w.write(3, {{"reward/mean", 0.5}});
    path = w.path();
  }
  const std::string good = fs::read_file(path);
  ASSERT_NO_THROW(keel::testing::read_tfrecords(good));
  // One flipped bit in the length, in the payload and in each stored CRC of the last record.
  const size_t last = good.rfind("reward/mean");
  ASSERT_NE(last, std::string::npos);
  for (size_t at : {size_t{0}, size_t{8}, last, good.size() - 1}) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x10);
    EXPECT_THROW(keel::testing::read_tfrecords(bad), std::runtime_error) << "byte " << at;
  }
  EXPECT_THROW(keel::testing::read_tfrecords(good.substr(0, good.size() - 2)), std::runtime_error);
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
