#include "trainer/rollout/rollout.h"

#include <torch/torch.h>

#include "models/generate.h"
#include "models/tokenizer.h"
#include "models/transformer.h"
#include "trainer/rollout/prompt_format.h"

namespace keel::rollout {

RolloutBatch generate_rollouts(models::Transformer& policy, const models::Tokenizer& tok,
                               const std::vector<data::PromptRecord>& prompts, const RolloutOptions& opt,
                               models::EngineStats* stats) {
  torch::NoGradGuard ng;
  const int64_t ctx = policy.config().max_position_embeddings;
  const int64_t pad = tok.pad_id() != models::kNoToken ? tok.pad_id() : 0;
  std::vector<std::vector<int64_t>> rows;
  RolloutBatch b;
  std::vector<int64_t> groups;
  for (size_t p = 0; p < prompts.size(); ++p) {
    const auto ids = encode_prompt(prompts[p], tok, opt.chat_template, ctx, opt.max_new_tokens);
    const std::string text = render_prompt(prompts[p], opt.chat_template);
    for (int s = 0; s < opt.samples_per_prompt; ++s) {
      rows.push_back(ids);
      groups.push_back(static_cast<int64_t>(p));
      b.prompt_texts.push_back(text);
      b.records.push_back(&prompts[p]);
    }
  }
  models::SamplingOptions so;
  so.max_new_tokens = opt.max_new_tokens;
  so.temperature = opt.temperature;
  so.greedy = opt.temperature <= 0;
  so.top_k = opt.top_k;
  so.top_p = opt.top_p;
  so.stop_token_ids = opt.stop_token_ids;
  if (tok.eos_id() != models::kNoToken) so.eos_token_ids = {tok.eos_id()};
  so.pad_token_id = pad;

  // Paged: one call, batch_size rows decoding at a time. Static: chunks of batch_size rows, then
  // stitched (prompts re-padded to the global width).
  // One seed for the whole call and global row indexes: chunking (and splitting rows across ranks)
  // does not change what a row samples.
  so.seed = opt.seed * 1000003ull;
  std::vector<models::GenerateOutput> parts;
  if (opt.paged) {
    so.first_row = opt.first_row;
    auto eo = opt.engine;
    eo.max_batch = opt.batch_size;
    parts.push_back(models::generate_paged(policy, rows, so, eo, stats));
  } else {
    for (size_t start = 0; start < rows.size(); start += static_cast<size_t>(opt.batch_size)) {
      const size_t end = std::min(rows.size(), start + static_cast<size_t>(opt.batch_size));
      so.first_row = opt.first_row + static_cast<int64_t>(start);
      parts.push_back(models::generate(
          policy, {rows.begin() + static_cast<long>(start), rows.begin() + static_cast<long>(end)}, so));
    }
  }
  int64_t max_p = 0, max_r = 0;
  for (const auto& g : parts) {
    max_p = std::max(max_p, g.prompt_ids.size(1));
    max_r = std::max(max_r, g.response_ids.size(1));
  }
  std::vector<at::Tensor> pid, pm, rid, rm, lp;
  for (auto& g : parts) {
    const int64_t dp = max_p - g.prompt_ids.size(1), dr = max_r - g.response_ids.size(1);
    pid.push_back(torch::constant_pad_nd(g.prompt_ids, {dp, 0}, static_cast<double>(pad)));
    pm.push_back(torch::constant_pad_nd(g.prompt_mask, {dp, 0}, 0));
    rid.push_back(torch::constant_pad_nd(g.response_ids, {0, dr}, static_cast<double>(pad)));
    rm.push_back(torch::constant_pad_nd(g.response_mask, {0, dr}, 0));
    lp.push_back(torch::constant_pad_nd(g.logprobs, {0, dr}, 0));
    for (auto r : g.finish_reasons) b.finish_reasons.push_back(models::finish_reason_name(r));
  }
  b.prompt_ids = torch::cat(pid).cpu();
  b.prompt_mask = torch::cat(pm).cpu().to(torch::kLong);
  b.response_ids = torch::cat(rid).cpu();
  b.response_mask = torch::cat(rm).cpu().to(torch::kLong);
  b.old_logprobs = torch::cat(lp).cpu().to(torch::kFloat);
  b.group_ids = torch::tensor(groups, torch::kLong);
  // Decoded texts (special tokens such as EOS dropped).
  const auto lens = b.response_mask.sum(1);
  for (int64_t i = 0; i < b.size(); ++i) {
    const int64_t n = lens[i].item<int64_t>();
    const auto row = b.response_ids[i].slice(0, 0, n).contiguous();
    std::vector<int64_t> ids(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + n);
    b.response_texts.push_back(tok.decode(ids, /*skip_special=*/true));
  }
  return b;
}

}  // namespace keel::rollout
