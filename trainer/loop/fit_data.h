// The run's data held against the model's context at load (data.too_long), so that no record can
// stop a run mid-way: a prompt whose templated tokens plus the response side do not fit the
// context used to fail the step that drew it, and every resume replayed into it.
//
// The rule (the same one encode_prompt enforces when a batch is built): prompt tokens (chat
// template applied, BOS included) + the response side <= the model's context, where the response
// side is what the learner puts after the prompt — rollout.max_new_tokens for learners that sample
// (env.max_tokens with an environment: an episode's whole response-side budget), an SFT record's
// response + EOS, a preference pair's longer answer + EOS — and at least rollout.max_new_tokens
// wherever the run evaluates by generating. Generation is not cut short to fit: a prompt must
// leave the whole budget free.
// Deliberately not here: truncation (keel never trains on a cut prompt) and `keel train-rm`'s data.
#pragma once

#include <cstdint>
#include <string>

#include "trainer/data/record.h"
#include "trainer/metrics/metrics.h"

namespace keel::loop {

struct RunState;

/// The context the run's policy will have: model.path's config.json, else model.init's.
int64_t run_context_length(const RunState& s);

/// Why record `r` does not fit a context of `context` tokens in this run ("" when it does): its
/// id, prompt tokens, the response side by name and the context (see the file comment). A record
/// the chat template cannot render, or whose prompt is empty after tokenization, does not fit either.
std::string record_misfit(const RunState& s, const data::PromptRecord& r, int64_t context);

/// Checks every record of s.data (needs s.tok and s.reward built): data.too_long error refuses the
/// data at load (the first record that does not fit, and how many do not); skip drops and counts
/// them, with a warning. A task's problems are checked as they are drawn too (skipped and counted).
void fit_data_to_context(RunState& s);

/// data/skipped_too_long (records dropped as too long) and data/skipped_lines (malformed lines)
/// into the first step's metrics when there are any; later, data/skipped_too_long for a step whose
/// draw skipped task problems (that step's count). Call once per learner step, before the step
/// counter advances.
void add_data_metrics(RunState& s, metrics::Metrics& m);

}  // namespace keel::loop
