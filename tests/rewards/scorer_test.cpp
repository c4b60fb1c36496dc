// Tests of the rule-based scorer: results in order, per-sample deadline with fallback and worker
// replacement, throwing / non-finite verifiers, malformed text (empty, huge, invalid UTF-8).
#include "rewards/scorer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "base/error.h"

namespace keel::rewards {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

TEST(Scorer, ValidUtf8) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("plain ascii"));
  EXPECT_TRUE(valid_utf8("caf\xC3\xA9"));              // é (2 bytes)
  EXPECT_TRUE(valid_utf8("\xE2\x88\x92"));             // U+2212 (3 bytes)
  EXPECT_TRUE(valid_utf8("\xF0\x9F\x98\x80"));         // U+1F600 (4 bytes)
  EXPECT_TRUE(valid_utf8("\xF4\x8F\xBF\xBF"));         // U+10FFFF, the last code point
  EXPECT_FALSE(valid_utf8("\xff"));                    // never valid
  EXPECT_FALSE(valid_utf8("\x80"));                    // stray continuation byte
  EXPECT_FALSE(valid_utf8("\xC0\x80"));                // overlong NUL
  EXPECT_FALSE(valid_utf8("\xE0\x80\xAF"));            // overlong '/'
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));            // surrogate U+D800
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));        // above U+10FFFF
  EXPECT_FALSE(valid_utf8("\xF5\x80\x80\x80"));
  EXPECT_FALSE(valid_utf8("ab\xC3"));                  // truncated at the end
  EXPECT_FALSE(valid_utf8("\xE2\x88" "a"));            // truncated in the middle
}

TEST(Scorer, ScoresInOrderOnSeveralThreads) {
  ScorerOptions o;
  o.threads = 3;
  Scorer s(o);
  std::vector<std::string> responses;
  std::vector<json> meta;
  for (int i = 0; i < 50; ++i) {
    responses.push_back(std::to_string(i));
    meta.push_back(json{{"k", i * 2}});
  }
  const ScoreResult r = s.score(
      [](std::string_view resp, const json& m) { return std::stod(std::string(resp)) + m.at("k").get<double>(); },
      responses, meta);
  ASSERT_EQ(r.values.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_DOUBLE_EQ(r.values[static_cast<size_t>(i)], 3.0 * i);  // i + 2i
    EXPECT_EQ(r.status[static_cast<size_t>(i)], ScoreStatus::kOk);
  }
  EXPECT_EQ(r.timeouts + r.errors + r.malformed, 0);
  // Empty metadata: every sample sees an empty object.
  const ScoreResult e = s.score([](std::string_view, const json& m) { return m.empty() ? 1.0 : 0.0; }, {"a", "b"}, {});
  EXPECT_EQ(e.values, (std::vector<double>{1.0, 1.0}));
}

TEST(Scorer, SlowVerifierTimesOutWithFallbackAndTheStepProceeds) {
  ScorerOptions o;
  o.threads = 2;
  o.timeout_ms = 20;
  o.fallback = -1.0;
  Scorer s(o);
  // "slow" sleeps 300 ms (15x the deadline); others answer at once. 4 slow samples on 2 threads:
  // without worker replacement the last two would wait ~300 ms for a free worker.
  auto fn = [](std::string_view resp, const json&) {
    if (resp == "slow") std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return 1.0;
  };
  const std::vector<std::string> batch = {"slow", "fast", "slow", "fast", "slow", "slow", "fast"};
  const auto t0 = Clock::now();
  const ScoreResult r = s.score(fn, batch, {});
  const double took = ms_since(t0);
  EXPECT_LT(took, 200.0) << "the batch waited for a stuck verifier";
  EXPECT_EQ(r.timeouts, 4);
  for (size_t i = 0; i < batch.size(); ++i) {
    const bool slow = batch[i] == "slow";
    EXPECT_DOUBLE_EQ(r.values[i], slow ? -1.0 : 1.0) << i;
    EXPECT_EQ(r.status[i], slow ? ScoreStatus::kTimeout : ScoreStatus::kOk) << i;
  }
  EXPECT_EQ(s.stuck_workers(), 4);
  // The pool was replenished: a following batch runs normally and fast.
  const auto t1 = Clock::now();
  const ScoreResult r2 = s.score(fn, {"fast", "fast", "fast"}, {});
  EXPECT_LT(ms_since(t1), 100.0);
  EXPECT_EQ(r2.values, (std::vector<double>{1.0, 1.0, 1.0}));
  EXPECT_EQ(r2.timeouts, 0);
}

TEST(Scorer, StopsRunningAVerifierThatKeepsHanging) {
  ScorerOptions o;
  o.threads = 1;
  o.timeout_ms = 5;
  o.max_stuck_workers = 2;
  Scorer s(o);
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto hang = [calls](std::string_view, const json&) {
    ++*calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    return 1.0;
  };
  EXPECT_EQ(s.score(hang, {"a", "b"}, {}).timeouts, 2);
  EXPECT_EQ(s.stuck_workers(), 2);
  const ScoreResult r = s.score(hang, {"c", "d", ""}, {});
  EXPECT_EQ(r.errors, 2);      // not started: the cap is reached
  EXPECT_EQ(r.malformed, 1);   // malformed text is still told apart
  EXPECT_NE(r.first_error.find("max_stuck_workers"), std::string::npos) << r.first_error;
  EXPECT_EQ(calls->load(), 2);
}

TEST(Scorer, RetiredWorkerMayOutliveTheScorer) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  {
    ScorerOptions o;
    o.threads = 1;
    o.timeout_ms = 5;
    Scorer s(o);
    const ScoreResult r = s.score(
        [calls](std::string_view, const json&) {
          std::this_thread::sleep_for(std::chrono::milliseconds(40));
          ++*calls;
          return 1.0;
        },
        {"x"}, {});
    EXPECT_EQ(r.timeouts, 1);
  }  // the Scorer is destroyed while its retired worker still sleeps
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  EXPECT_EQ(calls->load(), 1);  // it finished against memory that is still alive
}

TEST(Scorer, ThrowingAndNonFiniteVerifiersAreCountedErrors) {
  ScorerOptions o;
  o.threads = 2;
  o.fallback = 0.25;
  Scorer s(o);
  const ScoreResult r = s.score(
      [](std::string_view resp, const json&) -> double {
        if (resp == "throw") throw std::runtime_error("bad metadata");
        if (resp == "keel") fail("a keel error");
        if (resp == "int") throw 42;
        if (resp == "nan") return std::nan("");
        if (resp == "inf") return INFINITY;
        return 1.0;
      },
      {"ok", "throw", "keel", "int", "nan", "inf", "ok"}, {});
  EXPECT_EQ(r.errors, 5);
  EXPECT_EQ(r.values, (std::vector<double>{1.0, 0.25, 0.25, 0.25, 0.25, 0.25, 1.0}));
  EXPECT_FALSE(r.first_error.empty());
}

TEST(Scorer, MalformedTextNeverReachesTheVerifier) {
  ScorerOptions o;
  o.threads = 2;
  o.max_bytes = 100;
  o.fallback = -2.0;
  Scorer s(o);
  auto calls = std::make_shared<std::atomic<int>>(0);
  const ScoreResult r = s.score(
      [calls](std::string_view, const json&) {
        ++*calls;
        return 1.0;
      },
      {"", std::string(101, 'a'), std::string(100, 'a'), "ab\xff", "\xC0\x80", "ok \xF0\x9F\x98\x80"}, {});
  EXPECT_EQ(r.malformed, 4);  // empty, 101 bytes (> max_bytes), 0xFF, overlong NUL
  EXPECT_EQ(r.values, (std::vector<double>{-2.0, -2.0, 1.0, -2.0, -2.0, 1.0}));
  EXPECT_EQ(calls->load(), 2);
}

TEST(Scorer, ConcurrentBatchesFromTwoThreads) {
  ScorerOptions o;
  o.threads = 2;
  Scorer s(o);
  auto fn = [](std::string_view resp, const json&) { return static_cast<double>(resp.size()); };
  ScoreResult a, b;
  std::thread ta([&] { a = s.score(fn, std::vector<std::string>(40, "xx"), {}); });
  std::thread tb([&] { b = s.score(fn, std::vector<std::string>(40, "xxx"), {}); });
  ta.join();
  tb.join();
  EXPECT_EQ(a.values, std::vector<double>(40, 2.0));
  EXPECT_EQ(b.values, std::vector<double>(40, 3.0));
}

TEST(Scorer, RejectsBadOptionsAndMismatchedMetadata) {
  ScorerOptions o;
  o.timeout_ms = 0;
  EXPECT_THROW(Scorer{o}, Error);
  Scorer s;
  EXPECT_THROW(s.score([](std::string_view, const json&) { return 0.0; }, {"a", "b"}, {json::object()}), Error);
}

TEST(Scorer, RunsIndexedTasksUnderTheSameDeadline) {
  ScorerOptions o;
  o.timeout_ms = 50;
  o.threads = 2;
  Scorer s(o);
  auto hang = std::make_shared<std::atomic<bool>>(true);
  const auto r = s.run(4, [hang](size_t i) {
    if (i == 2)
      while (hang->load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (i == 3) throw std::runtime_error("task 3 failed");
    return static_cast<double>(i) * 10.0;
  });
  hang->store(false);
  ASSERT_EQ(r.status.size(), 4u);
  EXPECT_EQ(r.status[0], ScoreStatus::kOk);
  EXPECT_EQ(r.values[1], 10.0);
  EXPECT_EQ(r.status[2], ScoreStatus::kTimeout);
  EXPECT_EQ(r.status[3], ScoreStatus::kError);
  EXPECT_EQ(r.first_error, "task 3 failed");
  EXPECT_EQ(r.timeouts, 1);
  EXPECT_EQ(r.errors, 1);
  EXPECT_TRUE(s.run(0, [](size_t) { return 0.0; }).values.empty());
}

}  // namespace
}  // namespace keel::rewards
