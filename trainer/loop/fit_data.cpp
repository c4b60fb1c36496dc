#include "trainer/loop/fit_data.h"

#include <algorithm>

#include "base/error.h"
#include "base/log.h"
#include "models/model_config.h"
#include "models/tokenizer.h"
#include "trainer/loop/run_state.h"
#include "trainer/rollout/prompt_format.h"

namespace keel::loop {

namespace {

/// The response side of record `r`: its tokens and how to name them in a message.
struct ResponseSide {
  int64_t tokens = 0;
  std::string what;
};

int64_t response_tokens(const RunState& c, const std::string& text) {
  // As the learners encode a response (update.cpp's encode_response): the text, then EOS.
  const int64_t eos = c.tok->eos_id() != models::kNoToken ? 1 : 0;
  return static_cast<int64_t>(c.tok->encode(text, /*add_special=*/false).size()) + eos;
}

ResponseSide response_side(const RunState& c, const data::PromptRecord& r) {
  const auto& cfg = c.cfg;
  const ResponseSide generate = c.env ? ResponseSide{cfg.env.max_tokens, "env.max_tokens"}
                                      : ResponseSide{cfg.rollout.max_new_tokens, "rollout.max_new_tokens"};
  // With an environment the budget is the episode's, expert episodes included.
  if (c.samples() || c.env) return generate;
  ResponseSide own;
  const data::Task* task = c.data->task();
  if (c.is("sft")) {
    own = {response_tokens(c, task ? task->gold_response(r) : data::meta_string(r, "response")),
           "the response (with EOS)"};
  } else if (c.is("dpo")) {
    const int64_t chosen = response_tokens(c, task ? task->gold_response(r) : data::meta_string(r, "chosen"));
    const int64_t rejected =
        response_tokens(c, task ? task->wrong_response(r, /*salt=*/0) : data::meta_string(r, "rejected"));
    own = {std::max(chosen, rejected), "the longer answer (with EOS)"};
  } else {
    return generate;
  }
  // Evaluation generates from held-out prompts when there is a reward to score them with.
  const bool evaluates = c.reward && cfg.eval.every > 0;
  return evaluates && generate.tokens > own.tokens ? generate : own;
}

}  // namespace

int64_t run_context_length(const RunState& c) {
  if (c.cfg.model.path.empty()) return c.cfg.model.init.max_position_embeddings;
  return models::load_model_config(c.cfg.model.path, c.reg.models).max_position_embeddings;
}

std::string record_misfit(const RunState& c, const data::PromptRecord& r, int64_t context) {
  try {
    const auto side = response_side(c, r);
    const auto ids = c.tok->encode(rollout::render_prompt(r, c.chat_template), /*add_special=*/true);
    if (ids.empty()) return fmt::format("{}: the prompt is empty after tokenization", r.id);
    const auto prompt = static_cast<int64_t>(ids.size());
    if (prompt + side.tokens <= context) return "";
    return fmt::format("{}: prompt of {} tokens + {} {} = {} exceeds the model's context of {} tokens", r.id, prompt,
                       side.what, side.tokens, prompt + side.tokens, context);
  } catch (const Error& e) {
    // A record the chat template cannot render, or an SFT / preference record without its text.
    const std::string what = e.what();
    return what.rfind(r.id, 0) == 0 ? what : fmt::format("{}: {}", r.id, what);
  }
}

void fit_data_to_context(RunState& c) {
  const int64_t context = run_context_length(c);
  const bool skip = c.cfg.data.too_long == "skip";
  c.data->reject_records([&c, context](const data::PromptRecord& r) { return record_misfit(c, r, context); }, skip,
                         "\nHINT: set data.too_long: skip to drop and count the records that do not fit, shorten "
                         "them, or lower the response budget (rollout.max_new_tokens / env.max_tokens)");
  c.data_rejected_seen = c.data->rejected();
  if (c.data->rejected() > 0)
    log::warn("data: dropped {} record(s) that do not fit the model's context of {} tokens (data.too_long: skip); "
              "the first: {}", c.data->rejected(), context, c.data->first_rejection());
}

void add_data_metrics(RunState& c, metrics::Metrics& m) {
  const int64_t now = c.data->rejected();
  const int64_t drawn = now - c.data_rejected_seen;  // task problems skipped by this step's draw
  if (drawn > 0 && !c.data_warned_drawn) {
    log::warn("data: task problems drawn for training do not fit the model's context and are skipped "
              "(data/skipped_too_long counts them); the first: {}", c.data->first_rejection());
    c.data_warned_drawn = true;
  }
  c.data_rejected_seen = now;
  // The first step of the run reports what the load dropped (a resumed run does not again).
  const bool first = c.step == 0;
  const int64_t too_long = first ? now : drawn;
  if (too_long > 0) m["data/skipped_too_long"] = static_cast<double>(too_long);
  if (first && c.data->skipped_lines() > 0) m["data/skipped_lines"] = static_cast<double>(c.data->skipped_lines());
}

}  // namespace keel::loop
