// Parity with Hugging Face transformers, and CUDA mixed precision.
//
// HfParityPeer: driven by scripts/hf_parity.py with PyTorch + transformers (in CI the peers venv of
// scripts/peers_env.sh runs it as the ctest entry Peers.TransformersLogitsBothWays; on a GPU machine
// scripts/gpu_session.sh runs it with that machine's PyTorch, and CUDA is compared too). The script
// writes, for each of llama / qwen2 / qwen3 / mistral, an HF model directory made by transformers
// ($KEEL_HF_PARITY_DIR/hf_<family>), inputs (ids + a left-padded attention mask) and transformers'
// fp32 logits. This test loads each directory into keel (CPU, and CUDA when present), compares the
// logits at every real position (max abs difference <= 1e-4), then writes a keel-initialised model
// of the same config with keel's save_pretrained plus keel's logits (keel_<family>/), which the
// script loads back into transformers and compares the same way. Suites named *Peer are not
// discovered by ctest (tests/CMakeLists.txt); run alone, it skips when the variable is unset.
//
// TransformerGpu: bf16 autocast on CUDA against fp32, and activation checkpointing under autocast
// (the recomputation must re-enter autocast). Skipped without CUDA.
#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/compat.h"
#include "models/logprobs.h"
#include "models/lora.h"
#include "models/model_config.h"
#include "models/pretrained.h"
#include "models/safetensors.h"
#include "tests/models/test_util.h"

namespace keel::models {
namespace {

namespace fs = std::filesystem;

ModelRegistry registry() {
  ModelRegistry r("model family");
  register_builtin_models(r);
  return r;
}

/// max |a - b| over positions where mask [B, T] is 1; a, b [B, T, V].
double masked_max_diff(const at::Tensor& a, const at::Tensor& b, const at::Tensor& mask) {
  const auto m = mask.to(torch::kBool).unsqueeze(-1).expand_as(a);
  return (a.to(torch::kFloat).cpu() - b.to(torch::kFloat).cpu()).abs().masked_select(m.cpu()).max().item<double>();
}

TEST(HfParityPeer, LogitsMatchTransformersBothWays) {
  const char* root_env = std::getenv("KEEL_HF_PARITY_DIR");
  if (root_env == nullptr || *root_env == '\0') GTEST_SKIP() << "KEEL_HF_PARITY_DIR unset (run scripts/hf_parity.py)";
  const fs::path root(root_env);
  const auto reg = registry();
  int checked = 0;
  for (const std::string family : {"llama", "qwen2", "qwen3", "mistral"}) {
    const auto hf_dir = root / ("hf_" + family);
    if (!fs::exists(hf_dir)) continue;
    SCOPED_TRACE(family);
    const auto io = load_safetensors((hf_dir / "parity_io.safetensors").string());
    // ids and mask are stored as exact fp32 (keel's reader takes F32 / F16 / BF16).
    const auto ids = io.at("input_ids").to(torch::kLong), mask = io.at("attention_mask").to(torch::kLong);
    const auto ref = io.at("logits");
    torch::NoGradGuard ng;

    // transformers -> keel
    auto m = load_pretrained(hf_dir.string(), reg);
    const auto cpu_logits = m.forward(ids, mask);
    const double d_cpu = masked_max_diff(cpu_logits, ref, mask);
    std::cout << "[parity] " << family << " transformers->keel cpu fp32 max|dlogit| = " << d_cpu << "\n";
    EXPECT_LE(d_cpu, 1e-4);
    if (compat::cuda_available()) {
      const at::Device dev(at::kCUDA, 0);
      auto g = m.clone();
      g.to(dev);
      const double d_gpu = masked_max_diff(g.forward(ids.to(dev), mask.to(dev)), ref, mask);
      std::cout << "[parity] " << family << " transformers->keel cuda fp32 max|dlogit| = " << d_gpu << "\n";
      EXPECT_LE(d_gpu, 1e-4);
      g.set_autocast(at::kBFloat16);
      const double d_bf16 = masked_max_diff(g.forward(ids.to(dev), mask.to(dev)), ref, mask);
      const double scale = ref.abs().max().item<double>();
      std::cout << "[parity] " << family << " transformers->keel cuda bf16 autocast max|dlogit| = " << d_bf16
                << " (max|logit| " << scale << ")\n";
      EXPECT_LE(d_bf16, 0.05 * scale);
    }

    // keel -> transformers: a keel-initialised model of the same config, saved by keel.
    Transformer k(m.config());
    testing::randomize(k, 7);
    const auto keel_dir = root / ("keel_" + family);
    save_pretrained(k, keel_dir.string());
    save_safetensors((root / ("keel_" + family + "_logits.safetensors")).string(),
                     {{"logits", k.forward(ids, mask).contiguous()}});
    // And keel reads back what it wrote.
    auto back = load_pretrained(keel_dir.string(), reg);
    EXPECT_LE(masked_max_diff(back.forward(ids, mask), k.forward(ids, mask), mask), 0.0);
    ++checked;
  }
  EXPECT_GT(checked, 0) << "no hf_<family> directory under " << root;
}

// LoraParityPeer: driven by scripts/peers/peft_parity.py with PEFT. For each family the script writes
// a transformers base model ($KEEL_PEFT_PARITY_DIR/<family>/base), a PEFT LoRA adapter on every
// linear layer with random A and B (peft_adapter/), inputs and the PEFT model's fp32 logits. This
// test applies the adapter to the base in keel (read_adapter_config + load_adapter) and compares
// the logits (<= 1e-4); then it puts fresh random adapters of the same options on the base, writes
// them with keel's save_adapter (keel_adapter/) plus keel's logits, which the script loads with
// PeftModel.from_pretrained and compares the same way.
TEST(LoraParityPeer, AdaptersMatchPeftBothWays) {
  const char* root_env = std::getenv("KEEL_PEFT_PARITY_DIR");
  if (root_env == nullptr || *root_env == '\0') GTEST_SKIP() << "KEEL_PEFT_PARITY_DIR unset (run scripts/peers/peft_parity.py)";
  const fs::path root(root_env);
  const auto reg = registry();
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(root)) {
    const auto dir = entry.path();
    if (!fs::exists(dir / "peft_adapter")) continue;
    SCOPED_TRACE(dir.filename().string());
    const auto io = load_safetensors((dir / "peft_io.safetensors").string());
    const auto ids = io.at("input_ids").to(torch::kLong), mask = io.at("attention_mask").to(torch::kLong);
    torch::NoGradGuard ng;

    // PEFT -> keel
    auto base = load_pretrained((dir / "base").string(), reg);
    auto m = base.clone();
    const auto opts = read_adapter_config((dir / "peft_adapter").string());
    m.add_lora(opts, 0);
    load_adapter(m, (dir / "peft_adapter").string());
    const double d = masked_max_diff(m.forward(ids, mask), io.at("logits"), mask);
    // The adapter must matter: the base alone is far from the PEFT model's logits.
    const double d_base = masked_max_diff(base.forward(ids, mask), io.at("logits"), mask);
    std::cout << "[parity] " << dir.filename().string() << " PEFT adapter -> keel cpu fp32 max|dlogit| = " << d
              << " (without the adapter: " << d_base << ")\n";
    EXPECT_LE(d, 1e-4);
    EXPECT_GT(d_base, 1e-2);

    // keel -> PEFT: fresh adapters of the same options with random A and B, saved by keel.
    auto k = base.clone();
    k.add_lora(opts, 5);
    auto gen = at::detail::createCPUGenerator(17);
    for (auto& [name, p] : k.named_parameters())
      if (name.find("lora_") != std::string::npos) p.copy_(0.2 * at::normal(0.0, 1.0, p.sizes(), gen));
    save_adapter(k, (dir / "keel_adapter").string());
    save_safetensors((dir / "keel_lora_logits.safetensors").string(), {{"logits", k.forward(ids, mask).contiguous()}});
    ++checked;
  }
  EXPECT_GT(checked, 0) << "no <family>/peft_adapter directory under " << root;
}

Transformer cuda_model(bool checkpointing) {
  auto c = testing::tiny_config("qwen2");
  c.hidden_size = 64;
  c.head_dim = 16;
  c.intermediate_size = 96;
  c.vocab_size = 300;
  Transformer m(c);
  testing::randomize(m, 3);
  m.to(at::Device(at::kCUDA, 0));
  m.set_autocast(at::kBFloat16);
  m.set_gradient_checkpointing(checkpointing);
  m.train(true);
  return m;
}

TEST(TransformerGpu, Bf16AutocastKeepsFp32ParamsAndCheckpointingMatches) {
  if (!compat::cuda_available()) GTEST_SKIP() << "no CUDA device";
  const at::Device dev(at::kCUDA, 0);
  auto plain = cuda_model(false);
  auto ckpt = cuda_model(true);
  auto gen = at::detail::createCPUGenerator(11);
  const auto pids = torch::randint(3, 300, {4, 9}, gen, torch::kLong).to(dev);
  const auto pmask = torch::ones({4, 9}, torch::kLong).to(dev);
  const auto rids = torch::randint(3, 300, {4, 7}, gen, torch::kLong).to(dev);
  const auto rmask = torch::ones({4, 7}, torch::kLong).to(dev);

  // Log-probs come back fp32 even though the matmuls ran in bf16.
  const auto lp = sequence_logprobs(plain, pids, pmask, rids, rmask).logprobs;
  EXPECT_EQ(lp.scalar_type(), torch::kFloat);
  // bf16 autocast vs fp32 on the same weights: close, not equal.
  auto fp32 = plain.clone();
  fp32.set_autocast(std::nullopt);
  {
    torch::NoGradGuard ng;
    const auto ref = sequence_logprobs(fp32, pids, pmask, rids, rmask).logprobs;
    const double d = (lp.detach() - ref).abs().max().item<double>();
    std::cout << "[autocast] bf16 vs fp32 max|dlogprob| = " << d << "\n";
    EXPECT_GT(d, 0.0);
    EXPECT_LT(d, 0.5);
  }

  // Checkpointed and plain backward under autocast: same gradients (the recomputation runs in bf16 too).
  const auto loss = [&](Transformer& m) {
    return -sequence_logprobs(m, pids, pmask, rids, rmask).logprobs.mean();
  };
  loss(plain).backward();
  loss(ckpt).backward();
  const auto gp = plain.named_parameters(), gc = ckpt.named_parameters();
  for (const auto& [name, p] : gp) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_EQ(p.scalar_type(), torch::kFloat) << name;
    EXPECT_EQ(p.grad().scalar_type(), torch::kFloat) << name;
    const double d = (p.grad() - gc.at(name).grad()).abs().max().item<double>();
    EXPECT_LE(d, 1e-3 * std::max(1e-3, p.grad().abs().max().item<double>())) << name;
  }

  // A few AdamW steps under autocast lower the loss.
  torch::optim::AdamW opt(plain.parameters(), torch::optim::AdamWOptions(1e-2));
  double first = 0, last = 0;
  for (int i = 0; i < 20; ++i) {
    opt.zero_grad();
    auto l = loss(plain);
    l.backward();
    opt.step();
    (i == 0 ? first : last) = l.item<double>();
  }
  std::cout << "[autocast] 20 AdamW steps: loss " << first << " -> " << last << "\n";
  EXPECT_LT(last, first * 0.8);
}

}  // namespace
}  // namespace keel::models
