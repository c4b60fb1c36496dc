// Tests for models/safetensors: round trips in every dtype, a table of hostile / malformed files
// (each a keel::Error naming the file and the problem), truncation and byte-flip fuzzing, shards.
#include "models/safetensors.h"

#include <cstring>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "tests/models/test_util.h"
#include "base/error.h"
#include "base/fs.h"

namespace keel::models {
namespace {

using testing::TempDir;

// Writes a raw file: 8-byte little-endian `header_len` (default: header.size()), header, data.
void write_raw(const std::string& path, const std::string& header, const std::string& data,
               std::optional<uint64_t> header_len = std::nullopt) {
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = header_len.value_or(header.size());
  char len[8];
  std::memcpy(len, &n, 8);
  out.write(len, 8);
  out << header << data;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Expects keel::Error whose message contains the file path and `needle`.
void expect_error(const std::string& path, const std::string& needle) {
  try {
    load_safetensors(path);
    ADD_FAILURE() << "no error for case '" << needle << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << "expected '" << needle << "' in: " << msg;
  }
}

TEST(Safetensors, RoundTripAllDtypes) {
  TempDir dir;
  torch::manual_seed(0);
  std::map<std::string, at::Tensor> in = {
      {"a.f32", torch::randn({3, 5})},
      {"b.f16", torch::randn({7}).to(torch::kHalf)},
      {"c.bf16", torch::randn({2, 3, 1}).to(torch::kBFloat16)},
      {"scalar", torch::tensor(3.5f).reshape({})},
      {"empty", torch::zeros({0, 4}, torch::kHalf)},
      {"odd.f16", torch::randn({3}).to(torch::kHalf)},  // 6 bytes: the next tensor would misalign
  };
  const std::string path = dir / "t.safetensors";
  save_safetensors(path, in, {{"format", "pt"}, {"note", "x"}});
  const auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "x");
  const auto out = load_safetensors(path);
  ASSERT_EQ(out.size(), in.size());
  for (const auto& [name, t] : in) {
    const auto& u = out.at(name);
    EXPECT_EQ(u.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(u.sizes(), t.sizes()) << name;
    EXPECT_TRUE(torch::equal(u, t)) << name;  // bitwise
  }
  // Header length is padded to a multiple of 8, and no temp file is left behind.
  const std::string bytes = read_all(path);
  uint64_t hl = 0;
  std::memcpy(&hl, bytes.data(), 8);
  EXPECT_EQ(hl % 8, 0u);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

TEST(Safetensors, TensorsAreCopyOnWrite) {
  TempDir dir;
  const std::string path = dir / "t.safetensors";
  save_safetensors(path, {{"w", torch::ones({4})}});
  {
    auto t = load_safetensors(path).at("w");
    t.mul_(5);  // must not touch the file
  }
  EXPECT_TRUE(torch::equal(load_safetensors(path).at("w"), torch::ones({4})));
}

TEST(Safetensors, ReadsUnalignedTensorsByCopy) {
  // F16 [3] (6 bytes) then F32 [2] at offset 6: legal in the format, not 4-byte aligned.
  TempDir dir;
  const std::string path = dir / "u.safetensors";
  auto h = torch::tensor({1.0, 2.0, 3.0}).to(torch::kHalf);
  auto f = torch::tensor({4.0f, -5.5f});
  std::string data(static_cast<const char*>(h.data_ptr()), 6);
  data.append(static_cast<const char*>(f.data_ptr()), 8);
  std::string header = R"({"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"f":{"dtype":"F32","shape":[2],"data_offsets":[6,14]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  write_raw(path, header, data);
  const auto out = load_safetensors(path);
  EXPECT_TRUE(torch::equal(out.at("h"), h));
  EXPECT_TRUE(torch::equal(out.at("f"), f));
}

TEST(Safetensors, RejectsUnsupportedDtypeOnWrite) {
  TempDir dir;
  EXPECT_THROW(save_safetensors(dir / "x.safetensors", {{"i", torch::ones({2}, torch::kLong)}}), Error);
  EXPECT_THROW(save_safetensors(dir / "x.safetensors", {{"__metadata__", torch::ones({2})}}), Error);
  EXPECT_FALSE(std::filesystem::exists(dir / "x.safetensors"));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 0);  // no temp left
}

struct HostileCase {
  const char* name;
  std::string header;
  std::string data;
  std::optional<uint64_t> header_len;
  const char* needle;  // expected in the message
};

TEST(Safetensors, HostileFilesAreClearErrors) {
  TempDir dir;
  const std::string d16(16, '\0');
  const auto entry = [](const char* dtype, const char* shape, const char* offsets) {
    return fmt::format(R"({{"t":{{"dtype":"{}","shape":{},"data_offsets":{}}}}})", dtype, shape, offsets);
  };
  std::string deep = "{\"a\":" + std::string(5000, '[') + std::string(5000, ']') + "}";
  const std::vector<HostileCase> cases = {
      {"huge_header_len", "{}", "", uint64_t{1} << 62, "100 MB"},
      {"header_past_eof", entry("F32", "[4]", "[0,16]"), d16, 4096, "runs past the end"},
      {"zero_header_len", "", d16, 0, "header length is 0"},
      {"not_json", "{not json", "", std::nullopt, "not a valid JSON object"},
      {"not_object", "[1, 2]", "", std::nullopt, "does not start with"},
      {"deep_nesting", deep, "", std::nullopt, "nested too deeply"},
      {"entry_not_object", R"({"t": 5})", "", std::nullopt, "not an object"},
      {"missing_dtype", R"({"t":{"shape":[4],"data_offsets":[0,16]}})", d16, std::nullopt, "'dtype'"},
      {"unknown_dtype", entry("F33", "[4]", "[0,16]"), d16, std::nullopt, "unknown dtype 'F33'"},
      {"unsupported_dtype", entry("I64", "[2]", "[0,16]"), d16, std::nullopt, "dtype I64 is not supported"},
      {"negative_dim", entry("F32", "[-4]", "[0,16]"), d16, std::nullopt, "negative dimension"},
      {"float_dim", entry("F32", "[2.5]", "[0,16]"), d16, std::nullopt, "non-negative integers"},
      {"missing_shape", R"({"t":{"dtype":"F32","data_offsets":[0,16]}})", d16, std::nullopt, "'shape'"},
      {"shape_overflow", entry("F32", "[4294967296,4294967296,16]", "[0,16]"), d16, std::nullopt, "overflows"},
      {"offsets_past_end", entry("F32", "[4]", "[0,16]"), std::string(8, '\0'), std::nullopt, "run past"},
      {"offsets_huge", entry("F32", "[4]", "[18446744073709551600,18446744073709551615]"), d16, std::nullopt, "run past"},
      {"offsets_reversed", entry("F32", "[0]", "[16,0]"), d16, std::nullopt, "reversed"},
      {"offsets_three", entry("F32", "[4]", "[0,8,16]"), d16, std::nullopt, "two non-negative integers"},
      {"offsets_negative", entry("F32", "[4]", "[-16,0]"), d16, std::nullopt, "two non-negative integers"},
      {"size_mismatch", entry("F32", "[2,3]", "[0,16]"), d16, std::nullopt, "needs 24"},
      {"overlap",
       R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[4],"data_offsets":[4,20]}})",
       std::string(20, '\0'), std::nullopt, "overlaps"},
      {"alias_same_range",
       R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
       d16, std::nullopt, "overlaps"},
      {"gap", entry("F32", "[2]", "[8,16]"), d16, std::nullopt, "gap"},
      {"trailing", entry("F32", "[2]", "[0,8]"), d16, std::nullopt, "trailing"},
      {"metadata_not_string", R"({"__metadata__":{"a":1}})", "", std::nullopt, "not a string"},
      {"metadata_not_object", R"({"__metadata__":[1]})", "", std::nullopt, "__metadata__"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir / (std::string(c.name) + ".safetensors");
    write_raw(path, c.header, c.data, c.header_len);
    expect_error(path, c.needle);
  }
  // Files shorter than the length prefix.
  for (int n : {0, 1, 7}) {
    const std::string path = dir / fmt::format("short{}.safetensors", n);
    std::ofstream(path, std::ios::binary) << std::string(static_cast<size_t>(n), '\x01');
    expect_error(path, "truncated");
  }
  expect_error(dir / "missing.safetensors", "cannot open");
}

// Truncations of a valid file are errors, and random byte flips give either a valid load or a
// keel::Error — never a crash or another exception type. `stride` samples the truncation lengths.
void fuzz_truncations_and_flips(size_t stride, int flips) {
  TempDir dir;
  const std::string good = dir / "good.safetensors";
  save_safetensors(good, {{"a", torch::randn({3, 2})}, {"b", torch::randn({5}).to(torch::kBFloat16)}}, {{"k", "v"}});
  const std::string bytes = read_all(good);
  const std::string path = dir / "bad.safetensors";
  for (size_t n = 0; n < bytes.size(); n += (n < 16 || n + 16 > bytes.size()) ? 1 : stride) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes.substr(0, n);
    EXPECT_THROW(load_safetensors(path), Error) << "truncated to " << n << " of " << bytes.size();
  }
  std::mt19937 rng(123);
  int loaded = 0, rejected = 0;
  for (int i = 0; i < flips; ++i) {
    std::string b = bytes;
    const size_t header_end = std::min(b.size(), size_t{8} + 200);  // mostly the header
    const size_t pos = rng() % header_end;
    b[pos] = static_cast<char>(rng() & 0xff);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << b;
    try {
      for (auto& [n, t] : load_safetensors(path)) (void)t.sum().item<double>();
      ++loaded;
    } catch (const Error&) {
      ++rejected;
    }
  }
  EXPECT_EQ(loaded + rejected, flips);
  EXPECT_GT(rejected, 0);
}

TEST(Safetensors, TruncationAndByteFlipFuzz) { fuzz_truncations_and_flips(/*stride=*/13, /*flips=*/60); }
TEST(SafetensorsSlow, ExhaustiveTruncationAndByteFlipFuzz) { fuzz_truncations_and_flips(/*stride=*/1, /*flips=*/1000); }

TEST(Safetensors, ShardedIndex) {
  TempDir dir;
  torch::manual_seed(1);
  std::map<std::string, at::Tensor> s1 = {{"x", torch::randn({2, 2})}, {"y", torch::randn({3})}};
  std::map<std::string, at::Tensor> s2 = {{"z", torch::randn({4}).to(torch::kHalf)}};
  save_safetensors(dir / "model-00001-of-00002.safetensors", s1);
  save_safetensors(dir / "model-00002-of-00002.safetensors", s2);
  nlohmann::json index = {{"metadata", {{"total_size", 36}}},
                          {"weight_map",
                           {{"x", "model-00001-of-00002.safetensors"},
                            {"y", "model-00001-of-00002.safetensors"},
                            {"z", "model-00002-of-00002.safetensors"}}}};
  keel::fs::write_file_atomic(dir / "model.safetensors.index.json", index.dump());
  const auto out = load_safetensors_dir(dir.str());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(torch::equal(out.at("x"), s1.at("x")));
  EXPECT_TRUE(torch::equal(out.at("y"), s1.at("y")));
  EXPECT_TRUE(torch::equal(out.at("z"), s2.at("z")));

  const auto expect_dir_error = [&](const nlohmann::json& idx, const std::string& needle) {
    keel::fs::write_file_atomic(dir / "model.safetensors.index.json", idx.dump());
    try {
      load_safetensors_dir(dir.str());
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  auto bad = index;
  bad["weight_map"]["w"] = "model-00002-of-00002.safetensors";
  expect_dir_error(bad, "missing from that shard");
  bad = index;
  bad["weight_map"]["x"] = "../escape.safetensors";
  expect_dir_error(bad, "not a file inside the model directory");
  bad = index;
  bad["weight_map"]["x"] = "/etc/passwd";
  expect_dir_error(bad, "not a file inside the model directory");
  bad = index;
  bad["weight_map"]["x"] = "model-00009-of-00009.safetensors";
  expect_dir_error(bad, "cannot open");
  expect_dir_error(nlohmann::json{{"metadata", {}}}, "weight_map");
  TempDir empty;
  EXPECT_THROW(load_safetensors_dir(empty.str()), Error);
}

TEST(Safetensors, AtomicOverwrite) {
  TempDir dir;
  const std::string path = dir / "m.safetensors";
  save_safetensors(path, {{"a", torch::zeros({2})}});
  save_safetensors(path, {{"b", torch::ones({3})}});
  const auto out = load_safetensors(path);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(torch::equal(out.at("b"), torch::ones({3})));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

}  // namespace
}  // namespace keel::models
