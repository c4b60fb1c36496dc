// reward_model: batched scoring with a trained reward head (see reward_model.h).
#include "rewards/models/reward_model.h"

#include <filesystem>

#include <torch/torch.h>

#include "models/model_config.h"
#include "models/pretrained.h"
#include "rewards/models/sequence_scoring.h"
#include "base/error.h"
#include "base/reader.h"

namespace keel::rewards {

std::string resolve_model_dir(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_regular_file(fs::path(path) / "config.json", ec)) return path;
  const fs::path ckpts = fs::path(path) / "checkpoints";
  if (!fs::is_directory(ckpts, ec)) return "";
  std::string best;
  for (const auto& e : fs::directory_iterator(ckpts, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("step-", 0) != 0) continue;  // staging / interrupted checkpoints have other names
    for (const char* sub : {"policy", "model"})
      if (fs::is_regular_file(e.path() / sub / "config.json", ec) && (e.path() / sub).string() > best)
        best = (e.path() / sub).string();
  }
  return best;
}

void read_model_path(config::Reader& r, std::string& path, const std::string& doc) {
  auto p = r.required("path", path, doc);
  if (!p.present() || path.empty()) return;
  const std::string dir = resolve_model_dir(path);
  if (dir.empty())
    r.error("path", fmt::format("'{}' has no config.json (an HF model directory, or a keel run directory with "
                                "checkpoints, is expected)", path));
  else
    path = dir;
}

void read_reward_model_options(config::Reader& r, RewardModelOptions& o) {
  read_model_path(r, o.path, "HF reward-model directory (score head), or the keel train-rm run that trained it");
  r.field("tokenizer", o.tokenizer, "tokenizer file or directory; empty = the model directory's");
  r.field("batch_size", o.batch_size, "sequences per forward pass").ge(1);
  r.field("normalize", o.normalize,
          "none: the raw score; sigmoid: σ(score) in (0, 1); minimax: −log(1 − σ(score)) = softplus(score), the "
          "reward of a discriminator (train-rm rm.variant: discriminator, spec A6/D6)")
      .one_of({"none", "sigmoid", "minimax"}, "normalisation");
  r.field("max_length", o.max_length, "longer prompt + response keep their last tokens; 0 = the model's context").ge(0);
}

std::vector<int64_t> reward_model_sequence(const models::Tokenizer& tok, const std::string& prompt,
                                           const std::string& response, int64_t max_len) {
  auto ids = tok.encode(prompt, /*add_special=*/true);
  const auto r = tok.encode(response, /*add_special=*/false);
  ids.insert(ids.end(), r.begin(), r.end());
  return keep_last_tokens(ids, max_len);
}

RewardModelScheme::RewardModelScheme(RewardModelOptions opt, std::string where)
    : opt_(std::move(opt)), where_(std::move(where)) {}

void RewardModelScheme::load() {
  if (model_) return;
  models::ModelRegistry reg("model family");
  models::register_builtin_models(reg);
  models::LoadOptions lo;
  lo.heads = models::HeadOptions{/*lm_head=*/false, /*value_head=*/false, /*reward_head=*/true};
  lo.init_missing_heads = false;  // a reward model without its score head would score noise
  lo.device = opt_.device;
  model_.emplace(models::load_pretrained(opt_.path, reg, lo));
  model_->train(false);
  model_->set_requires_grad(false);
  tok_ = models::load_tokenizer(opt_.tokenizer.empty() ? opt_.path : opt_.tokenizer);
}

void RewardModelScheme::bind(const RewardContext& ctx) {
  (void)ctx;
  load();
}

torch::Tensor RewardModelScheme::raw_scores(const std::vector<std::string>& prompts,
                                            const std::vector<std::string>& responses, int64_t* tokens) {
  TORCH_CHECK(prompts.size() == responses.size(), "RewardModelScheme: ", prompts.size(), " prompts but ",
              responses.size(), " responses");
  load();
  const int64_t ctx = opt_.max_length > 0 ? opt_.max_length : model_->config().max_position_embeddings;
  std::vector<std::vector<int64_t>> seqs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    seqs.push_back(reward_model_sequence(*tok_, prompts[i], responses[i], ctx));
    if (seqs.back().empty()) fail("{}: sample {} has an empty prompt and response", where_, i);
  }
  if (tokens) {
    *tokens = 0;
    for (const auto& s : seqs) *tokens += static_cast<int64_t>(s.size());
  }
  if (seqs.empty()) return torch::zeros({0}, torch::kFloat);
  const int64_t pad = tok_->pad_id() != models::kNoToken ? tok_->pad_id() : 0;
  return score_sequences(*model_, seqs, opt_.batch_size, pad);
}

RewardOutput RewardModelScheme::score(const RewardInput& in) {
  const auto raw = raw_scores(in.prompts, in.responses);
  RewardOutput out;
  if (opt_.normalize == "sigmoid") out.rewards = torch::sigmoid(raw);
  else if (opt_.normalize == "minimax") out.rewards = torch::nn::functional::softplus(raw);  // −log(1 − D), stable
  else out.rewards = raw;
  out.detail["raw"] = raw;
  if (raw.numel() > 0) {
    out.metrics["rm/raw_mean"] = raw.mean().item<double>();
    out.metrics["rm/raw_std"] = raw.std(/*unbiased=*/false).item<double>();
  }
  return out;
}

}  // namespace keel::rewards
