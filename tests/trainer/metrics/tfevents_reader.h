// Test helper: a reader of TensorBoard event files that shares no code with the writer. It splits
// the TFRecord frames (uint64 length, masked CRC-32C of the length, data, masked CRC-32C of the
// data) checking both CRCs with its own bitwise CRC-32C, and decodes the Event / Summary protobuf
// wire format by hand (no protobuf library). Anything malformed or unexpected throws
// std::runtime_error naming the byte offset.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "base/fs.h"

namespace keel::testing {

/// CRC-32C (Castagnoli), bit by bit: reflected polynomial 0x82F63B78, initial and final XOR ~0.
inline uint32_t tf_crc32c(std::string_view data) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char byte : data) {
    c ^= byte;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
  }
  return ~c;
}

/// TFRecord's mask: rotate right by 15, add 0xA282EAD8.
inline uint32_t tf_masked_crc32c(std::string_view data) {
  const uint32_t c = tf_crc32c(data);
  return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

struct TfScalar {
  std::string tag;
  std::optional<float> simple_value;  // absent when the Value carried no field 2
};

struct TfEvent {
  double wall_time = 0;
  int64_t step = 0;
  std::optional<std::string> file_version;
  bool has_summary = false;
  std::vector<TfScalar> scalars;  // Summary.value, in file order
};

namespace tfevents_detail {

[[noreturn]] inline void bad(const std::string& what, size_t at) {
  throw std::runtime_error(what + " at byte " + std::to_string(at));
}

template <typename T>
T le(std::string_view b, size_t at) {
  if (at + sizeof(T) > b.size()) bad("truncated fixed-width field", at);
  T v;
  std::memcpy(&v, b.data() + at, sizeof(T));  // the test hosts are little-endian, like the format
  return v;
}

/// A cursor over one protobuf message.
struct Wire {
  std::string_view b;
  size_t pos = 0;

  bool done() const { return pos >= b.size(); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (pos >= b.size()) bad("truncated varint", pos);
      const auto byte = static_cast<unsigned char>(b[pos++]);
      v |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if (!(byte & 0x80)) return v;
    }
    bad("varint longer than 10 bytes", pos);
  }
  std::string_view bytes() {
    const uint64_t n = varint();
    if (n > b.size() - pos) bad("length-delimited field runs past its message", pos);
    const auto s = b.substr(pos, n);
    pos += n;
    return s;
  }
  template <typename T>
  T fixed() {
    const T v = le<T>(b, pos);
    pos += sizeof(T);
    return v;
  }
  /// The next key's field number (1..max_field, else it throws); its wire type goes to *wire_type.
  uint32_t key(uint32_t max_field, int* wire_type) {
    const uint64_t k = varint();
    *wire_type = static_cast<int>(k & 7);
    const auto field = static_cast<uint32_t>(k >> 3);
    if (field == 0 || field > max_field) bad("unexpected field " + std::to_string(field), pos);
    return field;
  }
};

inline void expect_wire(int got, int want, const char* field, size_t at) {
  if (got != want)
    bad(std::string(field) + " has wire type " + std::to_string(got) + ", expected " + std::to_string(want), at);
}

// Summary.Value { string tag = 1; float simple_value = 2; }
inline TfScalar decode_value(std::string_view b) {
  TfScalar v;
  Wire w{b};
  while (!w.done()) {
    int wt;
    switch (w.key(2, &wt)) {
      case 1: expect_wire(wt, 2, "Value.tag", w.pos); v.tag = std::string(w.bytes()); break;
      case 2: expect_wire(wt, 5, "Value.simple_value", w.pos); v.simple_value = w.fixed<float>(); break;
    }
  }
  return v;
}

// Summary { repeated Value value = 1; }
inline std::vector<TfScalar> decode_summary(std::string_view b) {
  std::vector<TfScalar> out;
  Wire w{b};
  while (!w.done()) {
    int wt;
    w.key(1, &wt);
    expect_wire(wt, 2, "Summary.value", w.pos);
    out.push_back(decode_value(w.bytes()));
  }
  return out;
}

}  // namespace tfevents_detail

/// Event { double wall_time = 1; int64 step = 2; oneof what { string file_version = 3; Summary summary = 5; } }
inline TfEvent decode_tf_event(std::string_view b) {
  using namespace tfevents_detail;
  TfEvent e;
  Wire w{b};
  while (!w.done()) {
    int wt;
    switch (w.key(5, &wt)) {
      case 1: expect_wire(wt, 1, "Event.wall_time", w.pos); e.wall_time = w.fixed<double>(); break;
      case 2: expect_wire(wt, 0, "Event.step", w.pos); e.step = static_cast<int64_t>(w.varint()); break;
      case 3: expect_wire(wt, 2, "Event.file_version", w.pos); e.file_version = std::string(w.bytes()); break;
      case 5:
        expect_wire(wt, 2, "Event.summary", w.pos);
        e.has_summary = true;
        for (auto& s : decode_summary(w.bytes())) e.scalars.push_back(std::move(s));
        break;
      default: bad("unexpected Event field", w.pos);
    }
  }
  return e;
}

/// The payloads of a TFRecord file's frames, with both masked CRCs of every frame checked.
inline std::vector<std::string> read_tfrecords(const std::string& file_bytes) {
  using tfevents_detail::bad, tfevents_detail::le;
  const std::string_view b = file_bytes;
  std::vector<std::string> out;
  size_t off = 0;
  while (off < b.size()) {
    if (b.size() - off < 12) bad("truncated record header", off);
    const auto len = le<uint64_t>(b, off);
    if (le<uint32_t>(b, off + 8) != tf_masked_crc32c(b.substr(off, 8))) bad("bad length CRC", off + 8);
    if (b.size() - off - 12 < len + 4) bad("truncated record data", off + 12);
    const auto data = b.substr(off + 12, len);
    if (le<uint32_t>(b, off + 12 + len) != tf_masked_crc32c(data)) bad("bad data CRC", off + 12 + len);
    out.emplace_back(data);
    off += 12 + len + 4;
  }
  return out;
}

/// Every Event of an event file, in order.
inline std::vector<TfEvent> read_tfevents(const std::filesystem::path& file) {
  std::vector<TfEvent> out;
  for (const auto& rec : read_tfrecords(fs::read_file(file))) out.push_back(decode_tf_event(rec));
  return out;
}

/// The TensorBoard event files (names containing "tfevents") directly under `dir`, sorted.
inline std::vector<std::filesystem::path> tfevents_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  if (!std::filesystem::is_directory(dir)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().find("tfevents") != std::string::npos) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace keel::testing
