// Scorer implementation: a worker pool fed from one queue; the calling thread is the watchdog that
// settles overrunning samples and replaces their workers (see scorer.h for the design).
#include "rewards/scorer.h"

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "base/error.h"

namespace keel::rewards {

using Clock = std::chrono::steady_clock;

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) { ++i; continue; }
    size_t len = 0;
    uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    else return false;  // continuation byte as lead, 0xC0/0xC1 (overlong), > 0xF4
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return false;  // overlong / surrogate
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return false;
    i += len;
  }
  return true;
}

namespace {

enum class SlotState { kQueued, kRunning, kSettled };

}  // namespace

/// One batch: owns copies of its inputs so a retired worker can outlive the score() call.
struct ScorerBatch {
  VerifyFn fn;
  std::function<double(size_t)> task;  ///< run(): slot i calls task(i) instead of fn
  std::vector<std::string> responses;
  std::vector<nlohmann::json> metadata;
  // Guarded by Scorer::Shared::mu:
  std::vector<SlotState> state;
  std::vector<Clock::time_point> started;
  std::vector<int> worker;  // id of the worker running slot i
  ScoreResult result;
  size_t remaining = 0;
};

namespace {

struct Job {
  std::shared_ptr<ScorerBatch> batch;
  size_t index = 0;
};

}  // namespace

struct Scorer::Shared {
  std::mutex mu;
  std::condition_variable work_cv;  // workers wait for jobs
  std::condition_variable done_cv;  // callers wait for settled samples
  std::deque<Job> queue;
  bool stopping = false;
  int next_worker_id = 0;
  struct Worker {
    int id = 0;
    std::thread thread;
  };
  std::vector<Worker> workers;       // live workers (joined by ~Scorer)
  std::vector<int> retired;          // ids of detached workers that must exit after their job
  int64_t stuck = 0;

  bool is_retired(int id) const {
    for (int r : retired)
      if (r == id) return true;
    return false;
  }
};

namespace {

const nlohmann::json& empty_object() {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  return kEmpty;
}

/// A batch of n queued slots, every value the fallback until settled.
std::shared_ptr<ScorerBatch> new_batch(size_t n, double fallback) {
  auto b = std::make_shared<ScorerBatch>();
  b->state.assign(n, SlotState::kQueued);
  b->started.assign(n, Clock::time_point{});
  b->worker.assign(n, -1);
  b->result.values.assign(n, fallback);
  b->result.status.assign(n, ScoreStatus::kOk);
  b->remaining = n;
  return b;
}

void settle(ScorerBatch& b, size_t i, double value, ScoreStatus status, const ScorerOptions& opt) {
  b.state[i] = SlotState::kSettled;
  b.result.status[i] = status;
  b.result.values[i] = status == ScoreStatus::kOk ? value : opt.fallback;
  if (status == ScoreStatus::kTimeout) ++b.result.timeouts;
  if (status == ScoreStatus::kError) ++b.result.errors;
  if (status == ScoreStatus::kMalformed) ++b.result.malformed;
  --b.remaining;
}

// The worker loop. Holds the shared state by shared_ptr: a retired worker may outlive the Scorer.
void worker_main(std::shared_ptr<Scorer::Shared> sh, int id, ScorerOptions opt) {
  std::unique_lock<std::mutex> lock(sh->mu);
  for (;;) {
    sh->work_cv.wait(lock, [&] { return sh->stopping || !sh->queue.empty() || sh->is_retired(id); });
    if (sh->is_retired(id) || (sh->stopping && sh->queue.empty())) return;
    Job job = std::move(sh->queue.front());
    sh->queue.pop_front();
    ScorerBatch& b = *job.batch;
    const size_t i = job.index;
    b.state[i] = SlotState::kRunning;
    b.started[i] = Clock::now();
    b.worker[i] = id;
    sh->done_cv.notify_all();  // the watchdog learns the new deadline
    lock.unlock();

    double value = 0;
    ScoreStatus status = ScoreStatus::kOk;
    std::string error;
    try {
      if (b.task) {
        value = b.task(i);
      } else {
        const nlohmann::json& meta = b.metadata.empty() ? empty_object() : b.metadata[i];
        value = b.fn(b.responses[i], meta);
      }
      if (!std::isfinite(value)) {
        status = ScoreStatus::kError;
        error = "verifier returned a non-finite value";
      }
    } catch (const std::exception& e) {
      status = ScoreStatus::kError;
      error = e.what();
    } catch (...) {
      status = ScoreStatus::kError;
      error = "verifier threw a non-standard exception";
    }

    lock.lock();
    if (b.state[i] == SlotState::kRunning) {  // not settled by the watchdog in the meantime
      if (status == ScoreStatus::kError && b.result.first_error.empty()) b.result.first_error = error;
      settle(b, i, value, status, opt);
      sh->done_cv.notify_all();
    }
    // A retired worker was replaced while it ran: it leaves now (its thread is detached).
    if (sh->is_retired(id)) {
      std::erase(sh->retired, id);
      return;
    }
  }
}

}  // namespace

Scorer::Scorer(ScorerOptions opt) : opt_(opt), shared_(std::make_shared<Shared>()) {
  if (!(opt_.timeout_ms > 0)) fail("reward scorer: timeout_ms must be > 0, got {}", opt_.timeout_ms);
  if (opt_.threads < 0) fail("reward scorer: threads must be >= 0, got {}", opt_.threads);
  if (opt_.threads == 0) opt_.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

Scorer::~Scorer() {
  std::vector<Shared::Worker> workers;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->stopping = true;
    workers = std::move(shared_->workers);
  }
  shared_->work_cv.notify_all();
  for (auto& w : workers)
    if (w.thread.joinable()) w.thread.join();
}

int64_t Scorer::stuck_workers() const {
  std::lock_guard<std::mutex> lock(shared_->mu);
  return shared_->stuck;
}

// Called with shared_->mu held.
void Scorer::ensure_workers() {
  while (static_cast<int>(shared_->workers.size()) < opt_.threads) {
    const int id = shared_->next_worker_id++;
    shared_->workers.push_back({id, std::thread(worker_main, shared_, id, opt_)});
  }
}

// Called with shared_->mu held: detaches worker `id` (it exits after its current job) and starts a
// replacement so the pool keeps its size.
void Scorer::retire_and_replace(int worker_id) {
  auto& ws = shared_->workers;
  for (auto it = ws.begin(); it != ws.end(); ++it) {
    if (it->id != worker_id) continue;
    it->thread.detach();
    ws.erase(it);
    shared_->retired.push_back(worker_id);
    ++shared_->stuck;
    break;
  }
  ensure_workers();
}

ScoreResult Scorer::score(const VerifyFn& fn, const std::vector<std::string>& responses,
                          const std::vector<nlohmann::json>& metadata) {
  const size_t n = responses.size();
  if (!metadata.empty() && metadata.size() != n)
    fail("reward scorer: {} metadata records for {} responses", metadata.size(), n);
  auto b = new_batch(n, opt_.fallback);
  b->fn = fn;
  b->responses.resize(n);
  if (!metadata.empty()) b->metadata = metadata;

  std::unique_lock<std::mutex> lock(shared_->mu);
  // Malformed text is settled here without reaching a verifier.
  std::vector<size_t> todo;
  for (size_t i = 0; i < n; ++i) {
    const std::string& r = responses[i];
    const char* why = r.empty()                                          ? "an empty response"
                      : static_cast<int64_t>(r.size()) > opt_.max_bytes ? "a response over reward.max_bytes"
                      : !valid_utf8(r)                                   ? "a response that is not valid UTF-8"
                                                                         : nullptr;
    if (why) {
      if (b->result.first_malformed.empty())
        b->result.first_malformed = fmt::format("{} ({} bytes)", why, r.size());
      settle(*b, i, 0.0, ScoreStatus::kMalformed, opt_);
    } else {
      b->responses[i] = r;
      todo.push_back(i);
    }
  }
  lock.unlock();
  dispatch(b, todo);
  return std::move(b->result);
}

ScoreResult Scorer::run(size_t n, const std::function<double(size_t)>& task) {
  auto b = new_batch(n, opt_.fallback);
  b->task = task;
  std::vector<size_t> todo(n);
  for (size_t i = 0; i < n; ++i) todo[i] = i;
  dispatch(b, todo);
  return std::move(b->result);
}

void Scorer::dispatch(const std::shared_ptr<ScorerBatch>& b, const std::vector<size_t>& todo) {
  std::unique_lock<std::mutex> lock(shared_->mu);
  if (todo.empty()) return;
  if (shared_->stuck >= opt_.max_stuck_workers) {
    for (size_t i : todo) settle(*b, i, 0.0, ScoreStatus::kError, opt_);
    b->result.first_error = fmt::format("{} verifier threads are stuck past the deadline (max_stuck_workers); "
                                        "the verifier hangs and is no longer run", shared_->stuck);
    return;
  }
  ensure_workers();
  for (size_t i : todo) shared_->queue.push_back(Job{b, i});
  shared_->work_cv.notify_all();

  const auto timeout = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(opt_.timeout_ms));
  while (b->remaining > 0) {
    const auto now = Clock::now();
    Clock::time_point next = Clock::time_point::max();
    for (size_t i : todo) {
      if (b->state[i] != SlotState::kRunning) continue;
      const auto deadline = b->started[i] + timeout;
      if (deadline <= now) {
        settle(*b, i, 0.0, ScoreStatus::kTimeout, opt_);
        retire_and_replace(b->worker[i]);
        shared_->work_cv.notify_all();
      } else {
        next = std::min(next, deadline);
      }
    }
    if (b->remaining == 0) break;
    if (next == Clock::time_point::max()) shared_->done_cv.wait(lock);  // only queued samples: wait for a start or a result
    else shared_->done_cv.wait_until(lock, next);
  }
}

void add_scorer_metrics(const ScoreResult& r, std::map<std::string, double>& metrics) {
  metrics["scorer/timeouts"] += static_cast<double>(r.timeouts);
  metrics["scorer/errors"] += static_cast<double>(r.errors);
  metrics["scorer/malformed"] += static_cast<double>(r.malformed);
}

}  // namespace keel::rewards
