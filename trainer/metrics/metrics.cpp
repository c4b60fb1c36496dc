#include "trainer/metrics/metrics.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "base/error.h"
#include "base/fs.h"
#include "trainer/metrics/tensorboard_event.h"

namespace keel::metrics {

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) o += fmt::format("\\u{:04x}", c);
        else o += c;
    }
  }
  return o;
}

/// The "step" of a metrics line, or -1 when it has none.
int64_t step_of(const std::string& line) {
  const auto p = line.find("\"step\":");
  if (p == std::string::npos) return -1;
  return std::strtoll(line.c_str() + p + 7, nullptr, 10);
}

}  // namespace

JsonlWriter::JsonlWriter(std::filesystem::path path, int64_t resume_step) : path_(std::move(path)) {
  if (resume_step >= 0 && std::filesystem::exists(path_)) {
    std::ifstream in(path_);
    std::string line, kept;
    while (std::getline(in, line))
      if (!line.empty() && step_of(line) <= resume_step && line.back() == '}') kept += line + "\n";
    fs::write_file_atomic(path_, kept);
  }
  f_ = std::fopen(path_.c_str(), resume_step >= 0 ? "a" : "w");
  if (!f_) fail("{}: cannot open the metrics file ({})", path_.string(), std::strerror(errno));
}

JsonlWriter::~JsonlWriter() {
  if (f_) std::fclose(f_);
}

void JsonlWriter::write(int64_t step, const Metrics& m) {
  std::string line = fmt::format("{{\"step\": {}, \"wall_time\": {:.3f}", step, now_s());
  for (const auto& [k, v] : m) {
    if (std::isfinite(v)) line += fmt::format(", \"{}\": {}", json_escape(k), v);
    else line += fmt::format(", \"{}\": null", json_escape(k));
  }
  line += "}\n";
  if (std::fwrite(line.data(), 1, line.size(), f_) != line.size() || std::fflush(f_) != 0)
    fail("{}: write failed ({})", path_.string(), std::strerror(errno));
}

// ---- CRC-32C ----------------------------------------------------------------------------------

uint32_t crc32c(const void* data, size_t n) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

// ---- TensorBoard --------------------------------------------------------------------------------

namespace {

template <typename T>
void put_le(std::string& s, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // little-endian hosts only (x86-64, aarch64), as TFRecord wants
  s.append(b, sizeof(T));
}

}  // namespace

TensorBoardWriter::TensorBoardWriter(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("{}: cannot create the TensorBoard directory ({})", dir.string(), ec.message());
  path_ = dir / fmt::format("events.out.tfevents.{}.keel.{}", static_cast<int64_t>(now_s()), ::getpid());
  f_ = std::fopen(path_.c_str(), "wb");
  if (!f_) fail("{}: cannot open ({})", path_.string(), std::strerror(errno));
  write_record(tensorboard_file_version_event(now_s(), "brain.Event:2"));
}

TensorBoardWriter::~TensorBoardWriter() {
  if (f_) std::fclose(f_);
}

void TensorBoardWriter::write_record(const std::string& data) {
  std::string rec;
  const uint64_t len = data.size();
  put_le(rec, len);
  put_le(rec, masked_crc32c(&len, sizeof(len)));
  rec += data;
  put_le(rec, masked_crc32c(data.data(), data.size()));
  if (std::fwrite(rec.data(), 1, rec.size(), f_) != rec.size() || std::fflush(f_) != 0)
    fail("{}: write failed ({})", path_.string(), std::strerror(errno));
}

void TensorBoardWriter::write(int64_t step, const Metrics& m) {
  write_record(tensorboard_scalars_event(now_s(), step, m));
}

// ---- console ------------------------------------------------------------------------------------

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const auto t = static_cast<int64_t>(std::llround(s));
  if (t >= 3600) return fmt::format("{}h{:02d}m", t / 3600, (t % 3600) / 60);
  if (t >= 60) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

std::string progress_line(int64_t step, int64_t total, const Metrics& m, double elapsed_s, int64_t steps_done) {
  std::string s = fmt::format("step {}/{}", step, total);
  auto add = [&](const char* key, const char* label, const char* f, double scale = 1.0) {
    auto it = m.find(key);
    if (it == m.end()) return;
    s += fmt::format(" | {} ", label);
    s += fmt::format(fmt::runtime(f), it->second * scale);
  };
  add("reward/mean", "reward", "{:.3f}");
  add("reward/accuracy", "acc", "{:.1f}%", 100.0);
  add("eval/pass@1", "eval pass@1", "{:.1f}%", 100.0);
  add("sft/loss", "loss", "{:.4f}");
  add("dpo/loss", "dpo loss", "{:.4f}");
  add("rewards/accuracies", "pair acc", "{:.1f}%", 100.0);
  add("critic/vf_loss", "vf loss", "{:.4f}");
  add("actor/kl", "kl", "{:.4f}");
  add("actor/entropy", "entropy", "{:.3f}");
  add("response/length_mean", "len", "{:.1f}");
  add("perf/tokens_per_s", "tok/s", "{:.0f}");
  if (steps_done > 0) {
    const double per_step = elapsed_s / static_cast<double>(steps_done);
    s += fmt::format(" | {:.2f} s/step | ETA {}", per_step, format_duration(per_step * static_cast<double>(total - step)));
  }
  return s;
}

}  // namespace keel::metrics
