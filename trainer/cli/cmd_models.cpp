// keel generate / keel logprobs / keel tokenize: the model library from the command line.
// Inputs are JSONL records holding text or token ids; every output line echoes the record's id.
#include <filesystem>
#include <functional>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/generate.h"
#include "models/rollout_engine.h"
#include "models/logprobs.h"
#include "models/model_config.h"
#include "models/lora.h"
#include "models/pretrained.h"
#include "models/tokenizer.h"
#include "trainer/cli/model_commands.h"
#include "trainer/cli/train_common.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/log.h"
#include "trainer/data/jsonl.h"
#include "trainer/data/record.h"
#include "trainer/rollout/prompt_format.h"

namespace keel::cli {

namespace {

using nlohmann::json;

constexpr const char* kSkipHint = " (--skip-bad-lines skips and counts bad lines)";

/// scan_jsonl with the model commands' hint; one warning at the end for the lines skipped.
void for_each_record(std::istream& in, const std::string& source, bool skip_bad_lines,
                     const std::function<void(const json&, const std::string&)>& parse) {
  const auto scan = data::scan_jsonl(in, source, skip_bad_lines, kSkipHint, parse);
  if (scan.skipped > 0)
    log::warn("{}: skipped {} bad line(s); the first: {}", source, scan.skipped, scan.skipped_reasons.front());
}

/// The "id" to echo: the record's own (a string or a number), else "FILE:LINE".
json record_id(const json& o, const std::string& where) {
  if (!o.contains("id")) return where;
  const json& id = o["id"];
  if (!id.is_string() && !id.is_number())
    fail("{}: 'id' must be a string or a number, got {}", where, id.type_name());
  return id;
}

/// `key` as a non-empty list of token ids in [0, vocab_size).
std::vector<int64_t> read_ids(const json& o, const char* key, int64_t vocab_size, const std::string& where) {
  const json& v = o[key];
  if (!v.is_array() || v.empty()) fail("{}: '{}' must be a non-empty list of token ids", where, key);
  std::vector<int64_t> ids;
  ids.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number_integer()) fail("{}: '{}'[{}] must be an integer token id, got {}", where, key, i, v[i].dump());
    const auto id = v[i].get<int64_t>();
    if (id < 0 || id >= vocab_size)
      fail("{}: '{}'[{}] is {}, outside the vocabulary [0, {})", where, key, i, id, vocab_size);
    ids.push_back(id);
  }
  return ids;
}

ModelInput parse_model_input(const json& o, const std::string& where, const models::Tokenizer& tok,
                             const ModelInputOptions& opt) {
  ModelInput in;
  in.where = where;
  in.id_json = record_id(o, where).dump();

  // The completion first: its length is part of the prompt's context check.
  if (opt.with_completion) {
    const bool text = o.contains("completion"), ids = o.contains("completion_ids");
    if (text && ids) fail("{}: give 'completion' (text) or 'completion_ids' (token ids), not both", where);
    if (ids) {
      in.completion = read_ids(o, "completion_ids", opt.vocab_size, where);
    } else if (text) {
      if (!o["completion"].is_string()) fail("{}: 'completion' must be a string, got {}", where, o["completion"].type_name());
      in.completion = tok.encode(o["completion"].get<std::string>(), /*add_special=*/false);
      if (in.completion.empty()) fail("{}: the completion is empty after tokenization", where);
    } else {
      fail("{}: missing 'completion' (a string) or 'completion_ids' (a list of token ids)", where);
    }
  }
  const int64_t room = opt.max_new_tokens + static_cast<int64_t>(in.completion.size());

  const bool text = o.contains("prompt") || o.contains("messages"), ids = o.contains("prompt_ids");
  if (text && ids) fail("{}: give 'prompt' or 'messages' (text) or 'prompt_ids' (token ids), not both", where);
  if (ids) {
    in.prompt = read_ids(o, "prompt_ids", opt.vocab_size, where);
    in.prompt_text = tok.decode(in.prompt, /*skip_special=*/false);
    if (opt.context_length > 0 && static_cast<int64_t>(in.prompt.size()) + room > opt.context_length)
      fail("{}: prompt of {} tokens + {} exceeds the model's context of {} tokens", where, in.prompt.size(),
           opt.with_completion ? fmt::format("completion of {} tokens", in.completion.size())
                               : fmt::format("max_new_tokens {}", opt.max_new_tokens),
           opt.context_length);
    return in;
  }
  if (!text)
    fail("{}: missing 'prompt' (a string), 'messages' (a list of {{role, content}}) or 'prompt_ids' (a list of "
         "token ids)", where);
  if (!o.contains("messages") && !o["prompt"].is_string() && !o["prompt"].is_array())
    fail("{}: 'prompt' must be a string or a list of {{role, content}}", where);
  data::PromptRecord r;
  r.id = where;
  data::read_prompt(o, "prompt", r.prompt, r.messages);
  in.prompt_text = rollout::render_prompt(r, opt.chat_template);
  in.prompt = rollout::encode_prompt(r, tok, opt.chat_template, opt.context_length, room);
  return in;
}

std::istream& open_input(const std::string& path, std::ifstream& file) {
  if (path == "-") return std::cin;
  file.open(path, std::ios::binary);
  if (!file) fail("{}: cannot open input file (does it exist and is it readable?)", path);
  return file;
}

void write_output(const std::string& output, const std::string& text) {
  if (output.empty() || output == "-") std::cout << text;
  else fs::write_file_atomic(output, text);
}

std::string dump_line(const json& o) { return o.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"; }

/// The commands' tokenizer: --tokenizer, else the model directory's. Checked before the model loads,
/// so that a missing tokenizer is reported first, with the flag that supplies one.
std::unique_ptr<models::Tokenizer> load_command_tokenizer(const std::string& model_dir, const std::string& tokenizer) {
  namespace sfs = std::filesystem;
  std::error_code ec;
  if (tokenizer.empty() && sfs::is_directory(model_dir, ec) && !sfs::exists(sfs::path(model_dir) / "tokenizer.json", ec) &&
      !sfs::exists(sfs::path(model_dir) / "tokenizer.model", ec))
    fail("model directory '{}' has neither tokenizer.json nor tokenizer.model: pass --tokenizer FILE_OR_DIR", model_dir);
  return models::load_tokenizer(tokenizer.empty() ? model_dir : tokenizer);
}

struct Loaded {
  models::Transformer model;
  std::unique_ptr<models::Tokenizer> tok;
};

/// --device: the commands compute in fp32 on either device, so that `keel logprobs` stays comparable
/// with the sampler's log-probs (the log-prob contract).
Loaded load_model_and_tokenizer(const std::string& model_dir, const std::string& tokenizer, const std::string& device,
                                const std::string& adapter) {
  models::ModelRegistry reg("model family");
  models::register_builtin_models(reg);
  models::LoadOptions lo;
  lo.device = select_device(device, "--device");
  // The tokenizer first, so that a missing one is reported before the model loads; a model
  // directory that does not exist is load_pretrained's to report.
  std::error_code ec;
  std::unique_ptr<models::Tokenizer> tok;
  if (std::filesystem::exists(model_dir, ec)) tok = load_command_tokenizer(model_dir, tokenizer);
  Loaded l{models::load_pretrained(model_dir, reg, lo), std::move(tok)};
  if (!adapter.empty()) {  // --adapter: the base model with a PEFT LoRA adapter on top
    l.model.add_lora(models::read_adapter_config(adapter), 0);
    models::load_adapter(l.model, adapter);
  }
  return l;
}

/// Ids must index both the tokenizer (decode) and the embedding (which may have padding rows).
int64_t usable_vocab(const Loaded& l) { return std::min(l.tok->vocab_size(), l.model.config().vocab_size); }

}  // namespace

std::vector<ModelInput> read_model_inputs(const std::string& path, const models::Tokenizer& tok,
                                          const ModelInputOptions& o) {
  std::ifstream file;
  std::istream& in = open_input(path, file);
  std::vector<ModelInput> out;
  for_each_record(in, path == "-" ? "<stdin>" : path, o.skip_bad_lines,
                  [&](const json& rec, const std::string& where) { out.push_back(parse_model_input(rec, where, tok, o)); });
  if (out.empty()) fail("{}: no usable records", path);
  return out;
}

std::string tokenize_jsonl(const models::Tokenizer& tok, std::istream& in, const std::string& source, bool add_special,
                           bool skip_bad_lines) {
  std::string out;
  for_each_record(in, source, skip_bad_lines, [&](const json& rec, const std::string& where) {
    if (!rec.contains("text") || !rec["text"].is_string()) fail("{}: expected a string 'text'", where);
    json o;
    o["id"] = record_id(rec, where);
    const auto ids = tok.encode(rec["text"].get_ref<const std::string&>(), add_special, /*parse_special=*/true);
    std::vector<std::string> pieces;
    pieces.reserve(ids.size());
    for (int64_t id : ids) pieces.push_back(tok.id_to_piece(id));
    o["ids"] = ids;
    o["tokens"] = pieces;
    out += dump_line(o);
  });
  return out;
}

int run_generate(const GenerateArgs& a) {
  torch::NoGradGuard ng;
  auto l = load_model_and_tokenizer(a.model, a.tokenizer, a.device, a.adapter);
  ModelInputOptions io;
  io.chat_template = models::resolve_chat_template(a.chat_template, models::chat_template_dir(a.model, a.tokenizer));
  io.vocab_size = usable_vocab(l);
  io.context_length = l.model.config().max_position_embeddings;
  io.max_new_tokens = a.max_new_tokens;
  io.skip_bad_lines = a.skip_bad_lines;
  // Every prompt is encoded (and checked against the context) before anything runs.
  const auto inputs = read_model_inputs(a.prompts, *l.tok, io);
  models::SamplingOptions so;
  so.max_new_tokens = a.max_new_tokens;
  so.temperature = a.temperature;
  so.top_k = a.top_k;
  so.top_p = a.top_p;
  so.greedy = a.temperature <= 0;
  so.seed = a.seed;
  if (l.tok->eos_id() != models::kNoToken) so.eos_token_ids = {l.tok->eos_id()};
  if (l.tok->pad_id() != models::kNoToken) so.pad_token_id = l.tok->pad_id();

  std::vector<const ModelInput*> rows;  // [N = records x samples]
  for (const auto& in : inputs)
    for (int s = 0; s < a.samples; ++s) rows.push_back(&in);
  std::string out_text;
  // The paged engine (models/rollout_engine.h): batch_size rows decode together, a finished
  // row's slot refilled at once, the samples of a record prefill its prompt once. Row i draws
  // from (seed, i).
  std::vector<std::vector<int64_t>> batch;
  for (const auto* r : rows) batch.push_back(r->prompt);
  models::EngineOptions eo;
  eo.max_batch = a.batch_size;
  const auto g = models::generate_paged(l.model, batch, so, eo);
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto row = static_cast<int64_t>(i);
    const int64_t n = g.response_mask[row].sum().item<int64_t>();
    std::vector<int64_t> resp(static_cast<size_t>(n));
    auto acc = g.response_ids[row];
    for (int64_t t = 0; t < n; ++t) resp[static_cast<size_t>(t)] = acc[t].item<int64_t>();
    json o;
    o["id"] = json::parse(rows[i]->id_json);
    o["prompt"] = rows[i]->prompt_text;
    o["completion"] = l.tok->decode(resp, /*skip_special=*/true);
    o["finish_reason"] = models::finish_reason_name(g.finish_reasons[i]);
    o["num_tokens"] = n;
    if (a.with_logprobs) {
      std::vector<double> lp;
      for (int64_t t = 0; t < n; ++t) lp.push_back(g.logprobs[row][t].item<double>());
      o["logprobs"] = lp;
    }
    out_text += dump_line(o);
  }
  write_output(a.output, out_text);
  return 0;
}

int run_logprobs(const LogprobsArgs& a) {
  torch::NoGradGuard ng;
  auto l = load_model_and_tokenizer(a.model, a.tokenizer, a.device, a.adapter);
  ModelInputOptions io;
  io.chat_template = models::resolve_chat_template(a.chat_template, models::chat_template_dir(a.model, a.tokenizer));
  io.with_completion = true;
  io.vocab_size = usable_vocab(l);
  io.context_length = l.model.config().max_position_embeddings;
  io.skip_bad_lines = a.skip_bad_lines;
  const auto inputs = read_model_inputs(a.input, *l.tok, io);
  models::LogprobOptions lo;
  lo.temperature = a.temperature;
  const auto dev = l.model.device();
  std::string out_text;
  for (const auto& in : inputs) {
    auto [pids, pmask] = models::left_pad({in.prompt}, 0);              // [1, P]
    auto rids = torch::tensor(in.completion, torch::kLong).unsqueeze(0);  // [1, C]
    auto rmask = torch::ones_like(rids);
    const auto lp =
        models::sequence_logprobs(l.model, pids.to(dev), pmask.to(dev), rids.to(dev), rmask.to(dev), lo).logprobs[0].cpu();
    json res;
    res["id"] = json::parse(in.id_json);
    std::vector<std::string> pieces;
    std::vector<double> vals;
    double sum = 0;
    for (size_t t = 0; t < in.completion.size(); ++t) {
      pieces.push_back(l.tok->id_to_piece(in.completion[t]));
      vals.push_back(lp[static_cast<int64_t>(t)].item<double>());
      sum += vals.back();
    }
    res["tokens"] = in.completion;
    res["pieces"] = pieces;
    res["logprobs"] = vals;
    res["sum_logprob"] = sum;
    out_text += dump_line(res);
  }
  write_output(a.output, out_text);
  return 0;
}

int run_tokenize(const TokenizeArgs& a) {
  if (a.has_text && !a.jsonl.empty()) fail("tokenize: give a TEXT or --jsonl FILE, not both");
  if (!a.has_text && a.jsonl.empty()) fail("tokenize: give a TEXT or --jsonl FILE (a {{text, id?}} object per line)");
  const auto tok = models::load_tokenizer(a.tokenizer);
  if (a.has_text) {
    write_output(a.output, models::tokenize_debug(*tok, a.text, a.add_special));
    return 0;
  }
  std::ifstream file;
  std::istream& in = open_input(a.jsonl, file);
  write_output(a.output, tokenize_jsonl(*tok, in, a.jsonl == "-" ? "<stdin>" : a.jsonl, a.add_special, a.skip_bad_lines));
  return 0;
}

}  // namespace keel::cli
