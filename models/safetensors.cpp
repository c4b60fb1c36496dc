// safetensors reader (mmap, validated header) and atomic writer. See safetensors.h.
#include "models/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/fs.h"

static_assert(std::endian::native == std::endian::little, "keel's safetensors reader assumes a little-endian host");

namespace keel::models {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The reference implementation refuses headers above 100 MB; a real header is a few hundred KB.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
// Legit headers nest {file {entry [shape]}}: depth 3. Anything deeper is hostile.
constexpr int kMaxJsonDepth = 4;

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  uint64_t size;
};
constexpr DtypeInfo kDtypes[] = {{"F32", at::kFloat, 4}, {"F16", at::kHalf, 2}, {"BF16", at::kBFloat16, 2}};
// Dtypes of the format keel does not read (named in the error so it is clearly "unsupported",
// not "corrupt").
const std::set<std::string> kOtherFormatDtypes = {"F64", "I64", "I32", "I16", "I8", "U64", "U32", "U16",
                                                  "U8", "BOOL", "F8_E4M3", "F8_E5M2", "C64", "F4", "F6_E2M3",
                                                  "F6_E3M2", "F8_E8M0", "E8M0"};

uint64_t element_size(at::ScalarType t) {
  for (const auto& d : kDtypes)
    if (d.type == t) return d.size;
  return 0;
}

// Maximum bracket depth outside strings; stops early once above the limit.
int json_depth(const std::string& s) {
  int depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') max_depth = std::max(max_depth, ++depth);
    else if (c == '}' || c == ']') --depth;
    if (max_depth > kMaxJsonDepth) break;
  }
  return max_depth;
}

}  // namespace

// The whole file mapped MAP_PRIVATE (copy-on-write), unmapped when the last tensor dies.
struct SafetensorsFile::Mapping {
  char* base = nullptr;
  size_t size = 0;
  uint64_t data_start = 0;  ///< 8 + header length
  ~Mapping() {
    if (base) ::munmap(base, size);
  }
};

std::string safetensors_dtype_name(at::ScalarType t) {
  for (const auto& d : kDtypes)
    if (d.type == t) return d.name;
  fail("safetensors: dtype {} is not supported (keel writes F32, F16, BF16)", c10::toString(t));
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("{}: cannot open safetensors file: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("{}: not a regular file", path);
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    fail("{}: truncated safetensors file: {} bytes, need at least the 8-byte header length", path, file_size);
  }
  auto map = std::make_shared<Mapping>();
  void* p = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) fail("{}: mmap failed: {}", path, std::strerror(errno));
  map->base = static_cast<char*>(p);
  map->size = file_size;
  f.map_ = map;

  uint64_t header_len = 0;
  std::memcpy(&header_len, map->base, 8);  // little-endian u64 (host checked above)
  if (header_len == 0) fail("{}: safetensors header length is 0", path);
  if (header_len > kMaxHeaderBytes)
    fail("{}: safetensors header length {} exceeds the 100 MB limit (corrupt or not a safetensors file)", path,
         header_len);
  if (header_len > file_size - 8)
    fail("{}: safetensors header length {} runs past the end of the {}-byte file (truncated?)", path, header_len,
         file_size);
  const std::string header(map->base + 8, header_len);
  if (header[0] != '{') fail("{}: safetensors header does not start with '{{'", path);
  if (json_depth(header) > kMaxJsonDepth) fail("{}: safetensors header JSON is nested too deeply", path);
  const json j = json::parse(header, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) fail("{}: safetensors header is not a valid JSON object", path);

  const uint64_t data_size = file_size - 8 - header_len;
  map->data_start = 8 + header_len;
  for (const auto& [name, v] : j.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) fail("{}: __metadata__ must be an object of strings", path);
      for (const auto& [mk, mv] : v.items()) {
        if (!mv.is_string()) fail("{}: __metadata__ value for '{}' is not a string", path, mk);
        f.metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) fail("{}: tensor '{}': header entry is not an object", path, name);
    SafetensorsEntry e;
    e.name = name;
    // dtype
    if (!v.contains("dtype") || !v["dtype"].is_string()) fail("{}: tensor '{}': missing string 'dtype'", path, name);
    const std::string dt = v["dtype"].get<std::string>();
    uint64_t esize = 0;
    for (const auto& d : kDtypes)
      if (dt == d.name) e.dtype = d.type, esize = d.size;
    if (esize == 0) {
      if (kOtherFormatDtypes.count(dt))
        fail("{}: tensor '{}': dtype {} is not supported (keel reads F32, F16, BF16)", path, name, dt);
      fail("{}: tensor '{}': unknown dtype '{}'", path, name, dt);
    }
    // shape
    if (!v.contains("shape") || !v["shape"].is_array()) fail("{}: tensor '{}': missing array 'shape'", path, name);
    uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (d.is_number_integer() && !d.is_number_unsigned())
        fail("{}: tensor '{}': negative dimension {} in shape", path, name, d.get<int64_t>());
      if (!d.is_number_unsigned()) fail("{}: tensor '{}': shape entries must be non-negative integers", path, name);
      const uint64_t n = d.get<uint64_t>();
      if (n > static_cast<uint64_t>(INT64_MAX) || (n != 0 && numel > UINT64_MAX / n))
        fail("{}: tensor '{}': shape {} overflows", path, name, v["shape"].dump());
      numel *= n;
      e.shape.push_back(static_cast<int64_t>(n));
    }
    if (numel > UINT64_MAX / esize) fail("{}: tensor '{}': shape {} overflows", path, name, v["shape"].dump());
    // data_offsets
    const auto& off = v.contains("data_offsets") ? v["data_offsets"] : json();
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail("{}: tensor '{}': 'data_offsets' must be two non-negative integers", path, name);
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    if (e.begin > e.end) fail("{}: tensor '{}': data_offsets [{}, {}] are reversed", path, name, e.begin, e.end);
    if (e.end > data_size)
      fail("{}: tensor '{}': data_offsets [{}, {}] run past the {}-byte data buffer (truncated file?)", path, name,
           e.begin, e.end, data_size);
    if (e.end - e.begin != numel * esize)
      fail("{}: tensor '{}': {} bytes in data_offsets but shape {} x {} needs {}", path, name, e.end - e.begin,
           v["shape"].dump(), dt, numel * esize);
    f.entries_.emplace(name, std::move(e));
  }

  // The ranges must tile the data buffer exactly: no overlap (aliasing), no gap, no trailing bytes
  // (the reference implementation's rule).
  std::vector<const SafetensorsEntry*> sorted;
  for (const auto& [n, e] : f.entries_) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(),
            [](auto* a, auto* b) { return std::tie(a->begin, a->end) < std::tie(b->begin, b->end); });
  uint64_t cursor = 0;
  const SafetensorsEntry* prev = nullptr;
  for (const auto* e : sorted) {
    if (e->begin < cursor)
      fail("{}: tensor '{}' [{}, {}) overlaps tensor '{}' [{}, {})", path, e->name, e->begin, e->end, prev->name,
           prev->begin, prev->end);
    if (e->begin > cursor)
      fail("{}: tensor '{}' starts at byte {} but the previous tensor ends at {} (gap in data buffer)", path, e->name,
           e->begin, cursor);
    cursor = e->end;
    prev = e;
  }
  if (cursor != data_size)
    fail("{}: data buffer is {} bytes but tensors cover only {} (trailing bytes)", path, data_size, cursor);
  return f;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<const SafetensorsEntry*> v;
  for (const auto& [n, e] : entries_) v.push_back(&e);
  std::sort(v.begin(), v.end(), [](auto* a, auto* b) { return std::tie(a->begin, a->name) < std::tie(b->begin, b->name); });
  std::vector<std::string> out;
  for (auto* e : v) out.push_back(e->name);
  return out;
}

bool SafetensorsFile::contains(const std::string& name) const { return entries_.count(name) != 0; }

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail("{}: no tensor named '{}'", path_, name);
  return it->second;
}

at::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const auto& e = entry(name);
  const auto opts = at::TensorOptions().dtype(e.dtype).device(at::kCPU);
  char* ptr = map_->base + map_->data_start + e.begin;
  if (e.end == e.begin) return torch::empty(e.shape, opts);
  // The format does not align tensors; aliasing needs natural alignment, otherwise copy.
  if (reinterpret_cast<uintptr_t>(ptr) % element_size(e.dtype) == 0) {
    auto keep = map_;
    return torch::from_blob(ptr, e.shape, [keep](void*) mutable { keep.reset(); }, opts);
  }
  auto t = torch::empty(e.shape, opts);
  std::memcpy(t.data_ptr(), ptr, e.end - e.begin);
  return t;
}

std::map<std::string, at::Tensor> load_safetensors(const std::string& path) {
  const auto f = SafetensorsFile::open(path);
  std::map<std::string, at::Tensor> out;
  for (const auto& n : f.names()) out.emplace(n, f.tensor(n));
  return out;
}

std::map<std::string, at::Tensor> load_safetensors_dir(const std::string& dir) {
  const fs::path d(dir);
  const fs::path index = d / "model.safetensors.index.json";
  if (!fs::exists(index)) {
    const fs::path single = d / "model.safetensors";
    if (!fs::exists(single))
      fail("{}: no model.safetensors or model.safetensors.index.json in the model directory", dir);
    return load_safetensors(single.string());
  }
  std::ifstream in(index);
  std::stringstream ss;
  ss << in.rdbuf();
  const json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) fail("{}: not a valid JSON object", index.string());
  if (!j.contains("weight_map") || !j["weight_map"].is_object())
    fail("{}: missing object 'weight_map'", index.string());
  std::map<std::string, SafetensorsFile> shards;
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, file] : j["weight_map"].items()) {
    if (!file.is_string()) fail("{}: weight_map['{}'] is not a file name", index.string(), name);
    const std::string fname = file.get<std::string>();
    const fs::path rel(fname);
    bool escapes = rel.empty() || rel.is_absolute();
    for (const auto& part : rel) escapes = escapes || part == "..";
    if (escapes) fail("{}: weight_map['{}'] = '{}' is not a file inside the model directory", index.string(), name, fname);
    auto it = shards.find(fname);
    if (it == shards.end()) it = shards.emplace(fname, SafetensorsFile::open((d / rel).string())).first;
    if (!it->second.contains(name))
      fail("{}: tensor '{}' is listed in {} but missing from that shard", (d / rel).string(), name, index.string());
    out.emplace(name, it->second.tensor(name));
  }
  return out;
}

void save_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Largest element size first keeps every tensor naturally aligned (the header is padded to 8).
  struct Item {
    const std::string* name;
    at::Tensor t;
    uint64_t esize;
  };
  std::vector<Item> items;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") fail("{}: '__metadata__' is reserved and cannot name a tensor", path);
    TORCH_CHECK(t.defined(), "save_safetensors: tensor '", name, "' is undefined");
    const uint64_t es = element_size(t.scalar_type());
    if (es == 0)
      fail("{}: tensor '{}' has dtype {}, keel writes only F32, F16, BF16", path, name, c10::toString(t.scalar_type()));
    items.push_back({&name, t.detach().to(at::kCPU).contiguous(), es});
  }
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.esize > b.esize; });
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t off = 0;
  for (const auto& it : items) {
    const uint64_t n = static_cast<uint64_t>(it.t.numel()) * it.esize;
    h[*it.name] = {{"dtype", safetensors_dtype_name(it.t.scalar_type())},
                   {"shape", it.t.sizes().vec()},
                   {"data_offsets", {off, off + n}}};
    off += n;
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  keel::fs::write_atomic_with(path, [&](int fd, const std::string& tmp) {
    const uint64_t hl = header.size();
    char len[8];
    std::memcpy(len, &hl, 8);
    keel::fs::write_all(fd, len, 8, tmp);
    keel::fs::write_all(fd, header.data(), header.size(), tmp);
    for (const auto& it : items)
      keel::fs::write_all(fd, static_cast<const char*>(it.t.data_ptr()), static_cast<size_t>(it.t.numel()) * it.esize, tmp);
  });
}

}  // namespace keel::models
