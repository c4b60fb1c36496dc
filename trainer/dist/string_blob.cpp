#include "trainer/dist/string_blob.h"

#include <cstring>

#include <torch/torch.h>

#include "base/error.h"

namespace keel::dist {

void put_strings(std::string& blob, const std::vector<std::string>& v) {
  const auto put = [&](int64_t x) { blob.append(reinterpret_cast<const char*>(&x), sizeof x); };
  put(static_cast<int64_t>(v.size()));
  for (const auto& s : v) {
    put(static_cast<int64_t>(s.size()));
    blob += s;
  }
}

StringBlobReader::StringBlobReader(const std::string& blob, std::string what)
    : p_(blob.data()), end_(blob.data() + blob.size()), what_(std::move(what)) {}

int64_t StringBlobReader::get() {
  int64_t x;
  if (end_ - p_ < static_cast<std::ptrdiff_t>(sizeof x)) fail("{}: truncated string blob", what_);
  std::memcpy(&x, p_, sizeof x);
  p_ += sizeof x;
  return x;
}

std::vector<std::string> StringBlobReader::strings() {
  const int64_t n = get();
  if (n < 0) fail("{}: malformed string blob (count {})", what_, n);
  std::vector<std::string> out;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t len = get();
    if (len < 0 || end_ - p_ < len) fail("{}: truncated string blob", what_);
    out.emplace_back(p_, static_cast<size_t>(len));
    p_ += len;
  }
  return out;
}

at::Tensor bytes_tensor(const std::string& bytes) {
  auto t = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  if (!bytes.empty()) std::memcpy(t.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  return t;
}

std::string tensor_bytes(const at::Tensor& t) {
  const auto c = t.to(torch::kCPU).contiguous();
  TORCH_CHECK(c.scalar_type() == torch::kUInt8 && c.dim() == 1, "tensor_bytes: expected a 1-D uint8 tensor, got ",
              c.scalar_type(), " ", c.sizes());
  return {reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), static_cast<size_t>(c.numel())};
}

}  // namespace keel::dist
