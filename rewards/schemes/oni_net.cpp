// ONI's char-level CNN + MLP, its Adam and its sampler (see oni_net.h).
#include "rewards/schemes/oni_net.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/ranges.h>  // fmt::join (in fmt/format.h before fmt 11; the pip LibTorch bundles fmt 11+)

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "base/error.h"

namespace keel::rewards {

namespace {

int64_t conv_out(int64_t l, int64_t k) { return l - k + 1; }
int64_t pool_out(int64_t l) { return l < 3 ? 0 : (l - 3) / 3 + 1; }

}  // namespace

int64_t oni_cnn_positions(int64_t l) {
  l = pool_out(conv_out(l, 7));
  l = pool_out(conv_out(l, 7));
  for (int i = 0; i < 4; ++i) l = conv_out(l, 3);
  return l < 3 ? 0 : pool_out(l);
}

at::Tensor oni_encode_messages(const std::vector<std::string>& messages, int64_t max_chars) {
  TORCH_CHECK(max_chars > 0, "oni_encode_messages: max_chars must be > 0, got ", max_chars);
  const auto b = static_cast<int64_t>(messages.size());
  at::Tensor bytes = torch::zeros({b, max_chars}, torch::kUInt8);  // [B, L]
  uint8_t* p = bytes.data_ptr<uint8_t>();
  for (int64_t i = 0; i < b; ++i) {
    const std::string& m = messages[static_cast<size_t>(i)];
    std::memcpy(p + i * max_chars, m.data(), std::min<size_t>(m.size(), static_cast<size_t>(max_chars)));
  }
  return bytes.to(torch::kLong);
}

struct OniNet::Impl : torch::nn::Module {
  Impl(const OniNetOptions& o, int64_t n_out) {
    const int64_t e = o.embed_dim, h = o.hidden_dim, pos = oni_cnn_positions(o.max_chars);
    TORCH_CHECK(pos > 0, "OniNet: max_chars must be >= ", kOniMinChars, ", got ", o.max_chars);
    TORCH_CHECK(e > 0 && h > 0 && n_out > 0, "OniNet: embed_dim, hidden_dim and n_out must be > 0");
    emb = register_module("emb", torch::nn::Embedding(torch::nn::EmbeddingOptions(256, e).padding_idx(0)));
    conv.push_back(register_module("conv1", torch::nn::Conv1d(torch::nn::Conv1dOptions(e, h, 7))));
    conv.push_back(register_module("conv2", torch::nn::Conv1d(torch::nn::Conv1dOptions(h, h, 7))));
    for (int i = 3; i <= 6; ++i)
      conv.push_back(register_module("conv" + std::to_string(i), torch::nn::Conv1d(torch::nn::Conv1dOptions(h, h, 3))));
    fc = register_module("fc", torch::nn::Linear(h * pos, 2 * h));
    int64_t in = 2 * h;
    for (size_t i = 0; i < o.mlp_hidden.size(); ++i) {
      TORCH_CHECK(o.mlp_hidden[i] > 0, "OniNet: mlp_hidden sizes must be > 0");
      mlp.push_back(register_module("mlp" + std::to_string(i), torch::nn::Linear(in, o.mlp_hidden[i])));
      in = o.mlp_hidden[i];
    }
    mlp.push_back(register_module("out", torch::nn::Linear(in, n_out)));
    init(static_cast<uint64_t>(o.seed));
  }

  /// PyTorch's default ranges (U(±1/sqrt(fan_in)) for conv / linear weights and biases, N(0, 1) for
  /// the embedding, pad row 0), drawn from a private generator so the global torch seed is untouched.
  void init(uint64_t seed) {
    torch::NoGradGuard ng;
    at::Generator gen = at::detail::createCPUGenerator(seed);
    emb->weight.normal_(0.0, 1.0, gen);
    emb->weight[0].zero_();
    const auto uniform = [&](at::Tensor& w, at::Tensor& b, int64_t fan_in) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
      w.uniform_(-bound, bound, gen);
      b.uniform_(-bound, bound, gen);
    };
    for (auto& c : conv) uniform(c->weight, c->bias, c->weight.size(1) * c->weight.size(2));
    uniform(fc->weight, fc->bias, fc->weight.size(1));
    for (auto& l : mlp) uniform(l->weight, l->bias, l->weight.size(1));
  }

  at::Tensor forward(const at::Tensor& codes) {
    at::Tensor x = emb->forward(codes).transpose(1, 2);  // [B, E, L]
    const auto pool = [](const at::Tensor& t) { return torch::max_pool1d(t, /*kernel_size=*/3, /*stride=*/3); };
    x = pool(torch::relu(conv[0]->forward(x)));
    x = pool(torch::relu(conv[1]->forward(x)));
    for (size_t i = 2; i < conv.size(); ++i) x = torch::relu(conv[i]->forward(x));
    x = pool(x).flatten(1);  // [B, H·P]
    x = torch::relu(fc->forward(x));
    for (size_t i = 0; i + 1 < mlp.size(); ++i) x = torch::relu(mlp[i]->forward(x));
    return mlp.back()->forward(x);  // [B, n_out]
  }

  torch::nn::Embedding emb{nullptr};
  std::vector<torch::nn::Conv1d> conv;
  torch::nn::Linear fc{nullptr};
  std::vector<torch::nn::Linear> mlp;
};

namespace {
/// The torch::nn constructors draw their default initialisation from the global CPU generator; the
/// net re-initialises from its own seed, so the global stream is put back as it was.
std::shared_ptr<OniNet::Impl> make_impl(const OniNetOptions& o, int64_t n_out) {
  at::Generator global = at::detail::getDefaultCPUGenerator();
  const at::Tensor saved = global.get_state();
  auto impl = std::make_shared<OniNet::Impl>(o, n_out);
  global.set_state(saved);
  return impl;
}
}  // namespace

OniNet::OniNet(const OniNetOptions& o, int64_t n_out) : impl_(make_impl(o, n_out)), n_out_(n_out) {}

at::Tensor OniNet::forward(const at::Tensor& codes) const {
  TORCH_CHECK(codes.dim() == 2 && codes.scalar_type() == torch::kLong, "OniNet::forward: codes must be [B, L] int64, got ",
              codes.sizes(), " ", codes.scalar_type());
  return impl_->forward(codes);
}

std::vector<at::Tensor> OniNet::parameters() const { return impl_->parameters(); }

namespace {
/// "conv1.weight" -> "conv1_weight": checkpoint archives keep keys as attribute names, so no dots.
std::string state_key(std::string name) {
  std::replace(name.begin(), name.end(), '.', '_');
  return name;
}
}  // namespace

void OniNet::save_state(StateDict& out, const std::string& prefix) const {
  for (const auto& p : impl_->named_parameters()) out[prefix + state_key(p.key())] = p.value().detach().clone();
}

void OniNet::load_state(const StateDict& in, const std::string& prefix) {
  torch::NoGradGuard ng;
  for (auto& p : impl_->named_parameters()) {
    const std::string key = prefix + state_key(p.key());
    const at::Tensor t = state_get(in, key);
    if (t.sizes() != p.value().sizes())
      fail("reward state: '{}' has shape [{}], the network expects [{}] (were net options changed since the checkpoint?)",
           key, fmt::join(t.sizes(), ", "), fmt::join(p.value().sizes(), ", "));
    p.value().copy_(t);
  }
}

OniAdam::OniAdam(std::vector<at::Tensor> params, OniAdamOptions o) : params_(std::move(params)), o_(o) {
  for (const auto& p : params_) {
    m_.push_back(torch::zeros_like(p).detach());
    v_.push_back(torch::zeros_like(p).detach());
  }
}

void OniAdam::zero_grad() {
  for (auto& p : params_)
    if (p.grad().defined()) p.mutable_grad() = at::Tensor();
}

void OniAdam::step() {
  torch::NoGradGuard ng;
  ++step_;
  const double c1 = 1.0 - std::pow(o_.beta1, static_cast<double>(step_));
  const double c2 = 1.0 - std::pow(o_.beta2, static_cast<double>(step_));
  for (size_t i = 0; i < params_.size(); ++i) {
    const at::Tensor& g = params_[i].grad();
    if (!g.defined()) continue;
    m_[i].mul_(o_.beta1).add_(g, 1.0 - o_.beta1);
    v_[i].mul_(o_.beta2).addcmul_(g, g, 1.0 - o_.beta2);
    const at::Tensor denom = (v_[i].sqrt() / std::sqrt(c2)).add_(o_.eps);
    params_[i].addcdiv_(m_[i], denom, -o_.lr / c1);
  }
}

void OniAdam::save_state(StateDict& out, const std::string& prefix) const {
  out[prefix + "step"] = torch::tensor(step_, torch::kLong);
  for (size_t i = 0; i < m_.size(); ++i) {
    out[prefix + "m/" + std::to_string(i)] = m_[i].clone();
    out[prefix + "v/" + std::to_string(i)] = v_[i].clone();
  }
}

void OniAdam::load_state(const StateDict& in, const std::string& prefix) {
  step_ = state_get(in, prefix + "step").item<int64_t>();
  for (size_t i = 0; i < m_.size(); ++i) {
    for (auto* buf : {&m_, &v_}) {
      const std::string key = prefix + (buf == &m_ ? "m/" : "v/") + std::to_string(i);
      const at::Tensor t = state_get(in, key);
      if (t.sizes() != (*buf)[i].sizes()) fail("reward state: '{}' has shape [{}], expected [{}]", key, fmt::join(t.sizes(), ", "), fmt::join((*buf)[i].sizes(), ", "));
      (*buf)[i].copy_(t);
    }
  }
}

uint64_t OniRng::next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

int64_t OniRng::below(int64_t n) {
  TORCH_CHECK(n >= 1, "OniRng::below: n must be >= 1, got ", n);
  return static_cast<int64_t>(next() % static_cast<uint64_t>(n));  // modulo bias < n / 2^64: negligible here
}

std::vector<int64_t> OniRng::sample(int64_t n, int64_t k) {
  std::vector<int64_t> idx(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = i;
  if (k >= n) return idx;
  for (int64_t i = 0; i < k; ++i) std::swap(idx[static_cast<size_t>(i)], idx[static_cast<size_t>(i + below(n - i))]);
  idx.resize(static_cast<size_t>(k));
  return idx;
}

void OniRng::save_state(StateDict& out, const std::string& key) const {
  int64_t s;
  std::memcpy(&s, &state_, sizeof s);
  out[key] = torch::tensor(s, torch::kLong);
}

void OniRng::load_state(const StateDict& in, const std::string& key) {
  const int64_t s = state_get(in, key).item<int64_t>();
  std::memcpy(&state_, &s, sizeof s);
}

}  // namespace keel::rewards
