// keel generate / keel logprobs / keel tokenize: the model library from the command line.
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/generate.h"
#include "models/logprobs.h"
#include "models/model_config.h"
#include "models/pretrained.h"
#include "models/tokenizer.h"
#include "trainer/cli/model_commands.h"
#include "trainer/cli/train_common.h"
#include "trainer/common/error.h"
#include "trainer/common/fs.h"
#include "trainer/data/jsonl.h"
#include "trainer/rollout/prompt_format.h"

namespace keel::cli {

namespace {

struct Loaded {
  models::Transformer model;
  std::unique_ptr<models::Tokenizer> tok;
};

/// --device: the commands compute in fp32 on either device, so that `keel logprobs` stays comparable
/// with the sampler's log-probs (the log-prob contract).
Loaded load_model_and_tokenizer(const std::string& model_dir, const std::string& tokenizer, const std::string& device) {
  models::ModelRegistry reg("model family");
  models::register_builtin_models(reg);
  models::LoadOptions lo;
  lo.device = select_device(device, "--device");
  Loaded l{models::load_pretrained(model_dir, reg, lo), nullptr};
  l.tok = models::load_tokenizer(tokenizer.empty() ? model_dir : tokenizer);
  return l;
}

}  // namespace

int run_generate(const GenerateArgs& a) {
  torch::NoGradGuard ng;
  auto l = load_model_and_tokenizer(a.model, a.tokenizer, a.device);
  data::JsonlOptions jo;
  const auto prompts = data::load_prompts(a.prompts, jo).records;
  const int64_t ctx = l.model.config().max_position_embeddings;
  models::SamplingOptions so;
  so.max_new_tokens = a.max_new_tokens;
  so.temperature = a.temperature;
  so.top_k = a.top_k;
  so.top_p = a.top_p;
  so.greedy = a.temperature <= 0;
  so.seed = a.seed;
  if (l.tok->eos_id() != models::kNoToken) so.eos_token_ids = {l.tok->eos_id()};
  if (l.tok->pad_id() != models::kNoToken) so.pad_token_id = l.tok->pad_id();

  // Every prompt is encoded (and checked against the context) before anything runs.
  std::vector<std::vector<int64_t>> ids;
  std::vector<const data::PromptRecord*> recs;
  for (const auto& r : prompts)
    for (int s = 0; s < a.samples; ++s) {
      ids.push_back(rollout::encode_prompt(r, *l.tok, a.chat_template, ctx, a.max_new_tokens));
      recs.push_back(&r);
    }
  std::string out_text;
  for (size_t start = 0; start < ids.size(); start += static_cast<size_t>(a.batch_size)) {
    const size_t end = std::min(ids.size(), start + static_cast<size_t>(a.batch_size));
    std::vector<std::vector<int64_t>> batch(ids.begin() + static_cast<long>(start), ids.begin() + static_cast<long>(end));
    so.seed = a.seed + start;  // rows draw from (seed, row): batches get distinct streams
    const auto g = models::generate(l.model, batch, so);
    for (size_t i = 0; i < batch.size(); ++i) {
      const auto row = static_cast<int64_t>(i);
      const int64_t n = g.response_mask[row].sum().item<int64_t>();
      std::vector<int64_t> resp(static_cast<size_t>(n));
      auto acc = g.response_ids[row];
      for (int64_t t = 0; t < n; ++t) resp[static_cast<size_t>(t)] = acc[t].item<int64_t>();
      nlohmann::json o;
      o["id"] = recs[start + i]->id;
      o["prompt"] = rollout::render_prompt(*recs[start + i], a.chat_template);
      o["completion"] = l.tok->decode(resp, /*skip_special=*/true);
      o["finish_reason"] = models::finish_reason_name(g.finish_reasons[i]);
      o["num_tokens"] = n;
      if (a.with_logprobs) {
        std::vector<double> lp;
        for (int64_t t = 0; t < n; ++t) lp.push_back(g.logprobs[row][t].item<double>());
        o["logprobs"] = lp;
      }
      out_text += o.dump() + "\n";
    }
  }
  if (a.output.empty() || a.output == "-") std::cout << out_text;
  else fs::write_file_atomic(a.output, out_text);
  return 0;
}

int run_logprobs(const LogprobsArgs& a) {
  torch::NoGradGuard ng;
  auto l = load_model_and_tokenizer(a.model, a.tokenizer, a.device);
  const int64_t ctx = l.model.config().max_position_embeddings;
  // {prompt | messages, completion} per line.
  std::ifstream in(a.input);
  if (!in) fail("{}: cannot open input file", a.input);
  std::string line, out_text;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json o;
    try {
      o = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      fail("{}:{}: invalid JSON at column {}", a.input, lineno, e.byte);
    }
    if (!o.is_object() || !o.contains("completion") || !o["completion"].is_string())
      fail("{}:{}: expected an object with a string 'completion' and a 'prompt' or 'messages'", a.input, lineno);
    data::PromptRecord r;
    r.id = fmt::format("{}:{}", a.input, lineno);
    if (o.contains("prompt") && o["prompt"].is_string()) {
      r.prompt = o["prompt"].get<std::string>();
    } else if (o.contains("messages") && o["messages"].is_array()) {
      for (const auto& m : o["messages"]) {
        if (!m.is_object() || !m.contains("role") || !m.contains("content"))
          fail("{}:{}: 'messages' items need 'role' and 'content'", a.input, lineno);
        r.messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
      }
    } else {
      fail("{}:{}: missing 'prompt' (a string) or 'messages'", a.input, lineno);
    }
    const auto completion = l.tok->encode(o["completion"].get<std::string>(), /*add_special=*/false);
    if (completion.empty()) fail("{}:{}: the completion is empty after tokenization", a.input, lineno);
    const auto prompt = rollout::encode_prompt(r, *l.tok, a.chat_template, ctx, static_cast<int64_t>(completion.size()));
    auto [pids, pmask] = models::left_pad({prompt}, 0);
    auto rids = torch::tensor(completion, torch::kLong).unsqueeze(0);
    auto rmask = torch::ones_like(rids);
    models::LogprobOptions lo;
    lo.temperature = a.temperature;
    const auto dev = l.model.device();
    const auto lp =
        models::sequence_logprobs(l.model, pids.to(dev), pmask.to(dev), rids.to(dev), rmask.to(dev), lo).logprobs[0].cpu();
    nlohmann::json res;
    res["id"] = r.id;
    std::vector<std::string> pieces;
    std::vector<double> vals;
    for (size_t t = 0; t < completion.size(); ++t) {
      pieces.push_back(l.tok->id_to_piece(completion[t]));
      vals.push_back(lp[static_cast<int64_t>(t)].item<double>());
    }
    res["tokens"] = completion;
    res["pieces"] = pieces;
    res["logprobs"] = vals;
    double sum = 0;
    for (double v : vals) sum += v;
    res["sum_logprob"] = sum;
    out_text += res.dump() + "\n";
  }
  if (a.output.empty() || a.output == "-") std::cout << out_text;
  else fs::write_file_atomic(a.output, out_text);
  return 0;
}

int run_tokenize(const TokenizeArgs& a) {
  const auto tok = models::load_tokenizer(a.tokenizer);
  std::cout << models::tokenize_debug(*tok, a.text);
  return 0;
}

}  // namespace keel::cli
