// Section readers, batch arithmetic and the loader (see config.h).
#include "trainer/config/config.h"

#include <algorithm>
#include <regex>

#include <fmt/ranges.h>

#include "base/error.h"
#include "base/hub_name.h"
#include "models/lora_options.h"  // header-only: the target names

namespace keel::config {

namespace {

void read_run(Reader& r, RunSection& c) {
  r.field("name", c.name, "run name; the run directory is <output_dir>/<name>").nonempty();
  r.field("output_dir", c.output_dir, "parent directory of run directories").nonempty();
  r.field("seed", c.seed, "seed of every RNG (data order, sampling, init)").ge(0);
  r.field("total_steps", c.total_steps, "RL steps to train").ge(1);
  r.field("device", c.device, "where to run").one_of({"auto", "cpu", "cuda"}, "device");
  r.field("threads", c.threads, "intra-op CPU threads; 0 = all cores; more than the machine's hardware threads are "
          "capped to them with a warning").ge(0).le(kMaxThreads);
  r.field("log_level", c.log_level, "console log level").one_of({"trace", "debug", "info", "warn", "error"}, "log level");
  r.field("log_all_ranks", c.log_all_ranks, "log from every rank, not only rank 0");
  r.field("resume", c.resume, "none | auto (newest complete checkpoint that verifies) | a checkpoint directory").nonempty();
  r.field("overwrite", c.overwrite, "a fresh run (resume none) may replace the checkpoints another run left in the run directory");
  r.field("skip_memory_check", c.skip_memory_check, "run even when the memory estimate (keel validate prints it) "
          "exceeds this machine's available RAM, or the GPU's memory on CUDA");
}

void read_model(Reader& r, ModelSection& c, const KnownNames& known) {
  r.field("path", c.path, "HF model directory (config.json + safetensors); empty = random init from model.init");
  r.field("tokenizer", c.tokenizer, "tokenizer file or directory; empty = the model directory's");
  auto tmpl = r.field("chat_template", c.chat_template, "chat template: auto = the model directory's own Jinja template "
                      "(tokenizer_config.json) when it has one, else plain; model = the directory's own (required); "
                      "or a built-in");
  if (!known.chat_templates.empty()) {
    std::vector<std::string> choices = {"auto", "model"};
    choices.insert(choices.end(), known.chat_templates.begin(), known.chat_templates.end());
    tmpl.one_of(choices, "chat template");
  }
  r.field("enable_thinking", c.enable_thinking, "enable_thinking passed to the model's own chat template (Qwen3: "
          "false renders an empty <think></think>); auto = not passed").one_of({"auto", "true", "false"}, "setting");
  r.field("dtype", c.dtype, "parameter/compute dtype; auto = bfloat16 autocast on CUDA, float32 on CPU")
      .one_of({"auto", "float32", "bfloat16"}, "dtype");
  r.field("activation_checkpointing", c.activation_checkpointing, "recompute activations in backward");
  r.section("lora", "LoRA adapters on the policy's projections: the base frozen (and the reference is the base, "
            "no second copy), only the adapters (and a value head) trained and synced; checkpoints hold the merged "
            "model (policy/) and the adapter in PEFT's layout (policy_adapter/)", [&](Reader& s) {
    auto& l = c.lora;
    s.field("rank", l.rank, "adapter rank r; 0 = full fine-tuning (no adapters)").ge(0);
    s.field("alpha", l.alpha, "scale = alpha / rank (PEFT lora_alpha)").gt(0);
    s.field("dropout", l.dropout, "dropout on the adapters' input while training (PEFT lora_dropout)").ge(0).lt(1);
    s.field("target_modules", l.target_modules,
            "projections to adapt: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, or all-linear");
    s.field("adapter", l.adapter, "PEFT adapter directory (adapter_config.json + adapter_model.safetensors) to start "
            "from; its r, lora_alpha, lora_dropout and target_modules apply, and rank must be 0 or its r");
    if (l.target_modules.empty()) s.error("target_modules", "expected at least one module (or all-linear)");
    for (const auto& t : l.target_modules)
      if (t != "all-linear" && std::find(models::kLoraTargets.begin(), models::kLoraTargets.end(), t) == models::kLoraTargets.end())
        s.error("target_modules", fmt::format("unknown module '{}' (expected one of all-linear, {})", t,
                                              fmt::join(models::kLoraTargets, ", ")));
  });
  r.section("init", "random initialisation (used when path is empty)", [&](Reader& s) {
    auto& m = c.init;
    auto fam = s.field("family", m.family, "model family");
    if (!known.model_families.empty()) fam.one_of(known.model_families, "model family");
    s.field("hidden_size", m.hidden_size, "").ge(8);
    s.field("num_layers", m.num_layers, "").ge(1);
    s.field("num_heads", m.num_heads, "").ge(1);
    s.field("num_kv_heads", m.num_kv_heads, "").ge(1);
    s.field("intermediate_size", m.intermediate_size, "").ge(1);
    s.field("max_position_embeddings", m.max_position_embeddings, "").ge(2);
    s.field("rope_theta", m.rope_theta, "").gt(0);
    s.field("tie_word_embeddings", m.tie_word_embeddings, "share embedding and LM head weights");
    if (m.num_heads > 0 && m.hidden_size % m.num_heads != 0)
      s.error("num_heads", fmt::format("must divide {} ({}), got {}", s.path_of("hidden_size"), m.hidden_size, m.num_heads));
    if (m.num_kv_heads > 0 && m.num_heads % m.num_kv_heads != 0)
      s.error("num_kv_heads", fmt::format("must divide {} ({}), got {}", s.path_of("num_heads"), m.num_heads, m.num_kv_heads));
  });
}

void read_data(Reader& r, DataSection& c, const KnownNames& known) {
  auto task = r.field("task", c.task, "built-in synthetic task (keel list tasks); used when train_file is empty");
  if (!known.tasks.empty()) task.one_of(known.tasks, "task");
  if (const Node* p = r.take("task_params")) c.task_params = *p;
  const bool task_ok = known.tasks.empty() || check_choice(c.task, known.tasks, "").empty();
  if (known.task_params && task_ok)
    r.section("task_params", "knobs of the built-in task (keel list tasks)", [&](Reader& s) { known.task_params(s, c.task); });
  r.field("train_file", c.train_file, "training JSONL: prompts ({prompt | messages, answer, ...}), preferences "
          "({prompt | messages, chosen, rejected}) or SFT ({prompt, response} | {messages})");
  r.field("format", c.format, "train_file/eval_file format; auto = sft for learner sft, preferences for offline "
          "dpo, else prompts").one_of({"auto", "prompts", "preferences", "sft"}, "data format");
  r.field("eval_file", c.eval_file, "held-out JSONL; empty = split eval_fraction off train_file");
  r.field("eval_fraction", c.eval_fraction, "held-out share of train_file when eval_file is empty").ge(0).lt(1);
  r.field("eval_size", c.eval_size, "held-out prompts of a built-in task").ge(0);
  r.field("skip_bad_lines", c.skip_bad_lines, "skip and count malformed JSONL lines instead of failing");
  r.field("shuffle", c.shuffle, "shuffle prompts each epoch (seeded by run.seed)");
  r.field("prompt_key", c.prompt_key, "field of a record holding its prompt: a string, or a list of {role, content} "
          "messages (a record without it may give 'messages')").nonempty();
  r.field("answer_key", c.answer_key, "field of a prompt record holding its gold answer, what verifiers read as "
          "metadata 'answer' (e.g. GSM8K: answer, with answer_extract gsm8k)").nonempty();
  r.field("answer_extract", c.answer_extract, "how the gold answer is cut from answer_key's text (a number is taken as "
          "written): none = the whole text; gsm8k = the text after the last '####', trimmed; regex = capture group 1 "
          "of answer_regex's first match; a record it finds nothing in is a bad line")
      .one_of({"none", "gsm8k", "regex"}, "answer extraction");
  r.field("answer_regex", c.answer_regex, "answer_extract regex: an ECMAScript pattern with a capture group");
  if (c.answer_extract == "regex") {
    if (c.answer_regex.empty()) {
      r.error("answer_regex", "answer_extract regex needs a pattern with a capture group, e.g. 'answer: (\\S+)'");
    } else {
      try {
        if (std::regex(c.answer_regex).mark_count() < 1)
          r.error("answer_regex", fmt::format("'{}' has no capture group: the answer is capture group 1", c.answer_regex));
      } catch (const std::regex_error& e) {
        r.error("answer_regex", fmt::format("'{}' is not a valid ECMAScript regex ({})", c.answer_regex, e.what()));
      }
    }
  } else if (!c.answer_regex.empty()) {
    r.error("answer_regex", fmt::format("is only read with answer_extract regex, got answer_extract {}", c.answer_extract));
  }
  r.field("too_long", c.too_long, "a record whose tokens do not fit the model's context (its templated prompt plus "
          "the response side: rollout.max_new_tokens, env.max_tokens with an environment, an SFT response or the "
          "longer DPO answer, each with EOS): error = refuse the data at load naming the record; skip = drop and "
          "count it (logged, and data/skipped_too_long in the first step's metrics)")
      .one_of({"error", "skip"}, "too-long policy");
  r.field("max_record_bytes", c.max_record_bytes, "a JSONL line longer than this is a bad line (an error naming "
          "file:line, or skipped with skip_bad_lines); 0 = no limit").ge(0);
}

void read_rollout(Reader& r, RolloutSection& c) {
  r.field("samples_per_prompt", c.samples_per_prompt, "G: responses sampled per prompt").ge(1);
  r.field("max_new_tokens", c.max_new_tokens, "response length limit").ge(1);
  r.field("temperature", c.temperature, "sampling temperature; 0 = greedy").ge(0);
  r.field("top_k", c.top_k, "keep the k most likely tokens; 0 = off").ge(0);
  r.field("top_p", c.top_p, "nucleus sampling mass; 1 = off").gt(0).le(1);
  r.field("stop_token_ids", c.stop_token_ids, "extra token ids that end a response (EOS always does)").ge(0);
  r.field("batch_size", c.batch_size, "sequences decoded together").ge(1);
  r.field("max_staleness", c.max_staleness, "async rollout: policy versions rollout may run ahead; 0 = synchronous").ge(0);
  r.field("engine", c.engine, "generation engine: paged = paged KV cache, the samples of a prompt prefill once, "
          "continuous batching (batch_size rows decode together, a finished row's slot refilled at once); static = "
          "one left-padded batch of batch_size rows with a dense cache, every row waits for the longest")
      .one_of({"paged", "static"}, "rollout engine");
  r.field("kv_block_size", c.kv_block_size, "paged engine: tokens per KV-cache block").ge(1).le(4096);
  r.field("kv_blocks", c.kv_blocks, "paged engine: blocks in the KV pool; 0 = enough for batch_size rows of the "
          "longest prompt plus max_new_tokens (what the static engine allocates). A smaller pool preempts the newest "
          "rows and recomputes them later; one too small for a single sequence is an error").ge(0);
  r.field("prefix_cache", c.prefix_cache, "paged engine: prompts that open with the same tokens (a system prompt, "
          "a few-shot header) share those full blocks instead of computing them again");
}

void read_env(Reader& r, EnvSection& c, const KnownNames& known) {
  auto name = r.field("name", c.name, "environment of multi-turn episodes (keel list environments); empty = single-turn");
  if (!known.environments.empty() && !c.name.empty()) name.one_of(known.environments, "environment");
  if (const Node* p = r.take("params")) c.params = *p;
  const bool ok = !c.name.empty() && (known.environments.empty() || check_choice(c.name, known.environments, "").empty());
  if (known.env_params && ok)
    r.section("params", "knobs of the environment (keel list environments)", [&](Reader& s) { known.env_params(s, c.name); });
  r.field("max_turns", c.max_turns, "policy turns per episode").ge(1).le(64);
  r.field("max_tokens", c.max_tokens, "response-side token budget per episode (policy turns and observations)").ge(1);
  r.field("observation_role", c.observation_role, "role observations are rendered with by the chat template")
      .one_of({"tool", "user"}, "observation role");
  r.field("step_timeout_s", c.step_timeout_s, "deadline of one environment call (reset or step)").gt(0);
  r.field("threads", c.threads, "environment calls run at once").ge(1).le(kMaxThreads);
  r.field("reuse_kv", c.reuse_kv, "extend each episode's KV cache across turns (false: recompute it every turn)");
}

void read_batch(Reader& r, BatchSection& c) {
  r.field("prompts_per_step", c.prompts_per_step, "global prompts per RL step").ge(1);
  r.field("mini_batch_size", c.mini_batch_size, "samples per optimizer step (global)").ge(1);
  r.field("micro_batch_size", c.micro_batch_size, "samples per forward/backward on one rank").ge(1);
  r.field("padding_free", c.padding_free,
          "learner passes pack the rows' real tokens into one sequence row (varlen attention), so a micro-batch "
          "costs its real tokens, not rows x longest row (verl use_remove_padding, TRL padding_free)");
  r.field("max_tokens_per_micro_batch", c.max_tokens_per_micro_batch,
          "0 = off; else a micro-batch also stops before its real tokens (prompt + response) exceed this, a longer "
          "row going alone (verl ppo_max_token_len_per_gpu); the loss is the same, only the memory bound changes")
      .ge(0);
  r.field("epochs", c.epochs, "passes over each rollout batch (PPO epochs)").ge(1);
}

void read_optim(Reader& r, OptimSection& c) {
  r.field("lr", c.lr, "peak learning rate (AdamW)").gt(0);
  r.field("min_lr_ratio", c.min_lr_ratio, "final lr / peak lr for cosine and linear schedules").ge(0).le(1);
  r.field("warmup_steps", c.warmup_steps, "linear warm-up steps").ge(0);
  r.field("lr_schedule", c.lr_schedule, "learning-rate schedule after warm-up").one_of({"constant", "cosine", "linear"}, "schedule");
  r.field("weight_decay", c.weight_decay, "AdamW decoupled weight decay").ge(0);
  r.field("adam_beta1", c.adam_beta1, "").ge(0).lt(1);
  r.field("adam_beta2", c.adam_beta2, "").ge(0).lt(1);
  r.field("adam_eps", c.adam_eps, "").gt(0);
  r.field("grad_clip", c.grad_clip, "max global gradient norm; 0 = off").ge(0);
  r.field("rollback_after", c.rollback_after,
          "non-finite loss/grad steps are skipped; this many in a row roll back to the last good checkpoint").ge(1);
  r.field("max_rollbacks", c.max_rollbacks,
          "rollbacks to the same checkpoint (each resumes on new data and a new seed) before the run stops with an error").ge(1);
}

void read_critic(Reader& r, CriticSection& c) {
  r.field("mode", c.mode, "PPO critic: a value head on the policy trunk, or a separate model")
      .one_of({"value_head", "separate"}, "critic mode");
  r.field("lr", c.lr, "critic learning rate").gt(0);
  r.field("cliprange_value", c.cliprange_value, "value clipping range; 0 = off").ge(0);
  r.field("vf_coef", c.vf_coef, "value loss coefficient").ge(0);
}

void read_eval(Reader& r, EvalSection& c) {
  r.field("every", c.every, "evaluate every N steps; 0 = never").ge(0);
  r.field("num_prompts", c.num_prompts, "held-out prompts per evaluation").ge(1);
  r.field("k", c.k, "samples per prompt for pass@k").ge(1);
}

void read_checkpoint(Reader& r, CheckpointSection& c) {
  r.field("every", c.every, "checkpoint every N steps; 0 = only at the end").ge(0);
  r.field("keep_last", c.keep_last, "complete checkpoints to keep").ge(1);
}

void read_metrics(Reader& r, MetricsSection& c) {
  r.field("jsonl", c.jsonl, "write metrics.jsonl in the run directory");
  r.field("tensorboard", c.tensorboard, "write TensorBoard scalars (metrics.jsonl's keys) to tensorboard/ in the run directory");
  r.field("console_every", c.console_every, "print a progress line every N steps").ge(1);
}

void read_dist(Reader& r, DistSection& c) {
  r.field("placement", c.placement, "where the roles run").one_of({"colocated", "disaggregated"}, "placement");
  r.field("rollout_ranks", c.rollout_ranks, "disaggregated: ranks that generate").ge(0);
  r.field("reward_ranks", c.reward_ranks, "disaggregated: ranks that score").ge(0);
  r.field("learner_ranks", c.learner_ranks, "disaggregated: data-parallel learner ranks").ge(0);
  r.field("backend", c.backend, "collective backend; auto = nccl on CUDA, gloo on CPU").one_of({"auto", "gloo", "nccl"}, "backend");
  r.field("timeout_s", c.timeout_s, "rendezvous and collective timeout").gt(0);
  r.field("bucket_mb", c.bucket_mb, "weight-sync bucket size").gt(0);
  r.field("sharding", c.sharding, "none = every learner rank holds the whole AdamW state; optimizer = ZeRO-1: each of "
          "the W data-parallel learner ranks holds the moments of 1/W of the parameters and updates those, then the "
          "ranks all-gather the weights; gradients = ZeRO-2: also each layer's gradients reduce-scattered in backward, "
          "each rank keeping 1/W; full = ZeRO-3 (FSDP): also the decoder layers' weights sharded during the update, "
          "each layer all-gathered for its forward and backward (the next one prefetched) and freed after. gradients "
          "and full need model.activation_checkpointing. Same result at every level; checkpoints stay unsharded, so a "
          "run resumes on any rank count")
      .one_of({"none", "optimizer", "gradients", "full"}, "sharding level");
}

}  // namespace

void derive_batch(Reader& r, RunConfig& cfg, int world_size) {
  auto& d = cfg.derived;
  d.world_size = world_size;
  const auto& b = cfg.batch;
  if (cfg.dist.placement == "disaggregated") {
    const int sum = cfg.dist.rollout_ranks + cfg.dist.reward_ranks + cfg.dist.learner_ranks;
    if (cfg.dist.rollout_ranks < 1 || cfg.dist.learner_ranks < 1)
      r.error("dist", fmt::format("disaggregated placement needs rollout_ranks >= 1 and learner_ranks >= 1, got {} and {}",
                                  cfg.dist.rollout_ranks, cfg.dist.learner_ranks));
    else if (sum != world_size)
      r.error("dist", fmt::format("rollout_ranks + reward_ranks + learner_ranks = {} + {} + {} = {} must equal the world size {}",
                                  cfg.dist.rollout_ranks, cfg.dist.reward_ranks, cfg.dist.learner_ranks, sum, world_size));
    d.learner_ranks = std::max(1, cfg.dist.learner_ranks);
    d.rollout_ranks = std::max(1, cfg.dist.rollout_ranks);
  } else {
    d.learner_ranks = world_size;
    d.rollout_ranks = world_size;
  }
  d.rollout_batch = static_cast<int64_t>(b.prompts_per_step) * cfg.rollout.samples_per_prompt;
  // Rows of a batch are counted in int down the line (and 2^31 rows are terabytes of tokens): the
  // products of two int keys are checked here, in int64, before anything multiplies them again.
  if (d.rollout_batch > INT32_MAX)
    r.error("batch", fmt::format("the rollout batch prompts_per_step {} x rollout.samples_per_prompt {} = {} sequences "
                                 "is more than {}", b.prompts_per_step, cfg.rollout.samples_per_prompt, d.rollout_batch,
                                 INT32_MAX));
  if (static_cast<double>(cfg.eval.num_prompts) * cfg.eval.k > INT32_MAX &&
      (!cfg.data.train_file.empty() || static_cast<double>(cfg.data.eval_size) * cfg.eval.k > INT32_MAX))
    r.error("eval", fmt::format("num_prompts {} x k {} samples per evaluation is more than {}", cfg.eval.num_prompts,
                                cfg.eval.k, INT32_MAX));
  if (b.prompts_per_step % d.rollout_ranks != 0)
    r.error("batch", fmt::format("prompts_per_step {} does not divide among {} rollout ranks", b.prompts_per_step, d.rollout_ranks));
  if (cfg.learner.algorithm == "dpo" || cfg.learner.algorithm == "sft" || cfg.learner.algorithm == "rm") {
    // Offline learners: a "step" is one mini-batch of examples.
    d.mini_batches_per_epoch = 1;
  } else if (b.mini_batch_size > d.rollout_batch || d.rollout_batch % b.mini_batch_size != 0) {
    r.error("batch", fmt::format("mini_batch_size {} must divide the rollout batch (prompts_per_step {} x "
                                 "rollout.samples_per_prompt {} = {})",
                                 b.mini_batch_size, b.prompts_per_step, cfg.rollout.samples_per_prompt, d.rollout_batch));
  } else {
    d.mini_batches_per_epoch = d.rollout_batch / b.mini_batch_size;
  }
  if (cfg.dist.sharding != "none" && cfg.learner.algorithm == "rm")
    r.error("dist", "sharding: reward-model training (learner rm) runs as one process");
  if (cfg.dist.sharding == "gradients" || cfg.dist.sharding == "full") {
    // The recomputing backward of activation checkpointing is where a layer's weights are gathered
    // again and where its gradients are complete (trainer/dist/sharded_model.h).
    const auto sharding_error = [&](const std::string& msg) {
      if (r.node() != nullptr) r.diagnostics().error(source_of(*r.node(), "dist.sharding"), "dist.sharding", msg);
      else r.error("dist", "sharding: " + msg);
    };
    if (!cfg.model.activation_checkpointing)
      sharding_error(fmt::format("{} needs model.activation_checkpointing: true (each layer is gathered again and its "
                                 "gradients reduce-scattered inside its recomputed backward)",
                                 cfg.dist.sharding));
    if (cfg.model.lora.enabled())
      sharding_error(fmt::format("{} does not shard LoRA adapters (they are small); use dist.sharding optimizer or "
                                 "none with model.lora",
                                 cfg.dist.sharding));
  }
  const int64_t per_pass = static_cast<int64_t>(b.micro_batch_size) * d.learner_ranks;
  if (b.mini_batch_size % per_pass != 0 || b.mini_batch_size / per_pass < 1) {
    r.error("batch", fmt::format("mini_batch_size {} is not a whole number (>= 1) of micro_batch_size {} x {} learner "
                                 "rank(s) = {}: it would give {} gradient-accumulation steps",
                                 b.mini_batch_size, b.micro_batch_size, d.learner_ranks, per_pass,
                                 format_number(static_cast<double>(b.mini_batch_size) / static_cast<double>(per_pass))));
  } else {
    d.grad_accum_steps = b.mini_batch_size / per_pass;
  }
}

void read_run_config(Reader& r, RunConfig& c, const KnownNames& known) {
  r.section("run", "run identity, length, device and logging", [&](Reader& s) { read_run(s, c.run); });
  r.section("model", "policy model", [&](Reader& s) { read_model(s, c.model, known); });
  r.section("data", "prompts", [&](Reader& s) { read_data(s, c.data, known); });
  r.section("rollout", "generation", [&](Reader& s) { read_rollout(s, c.rollout); });
  r.section("env", "multi-turn environment", [&](Reader& s) { read_env(s, c.env, known); });
  r.section("batch", "batch arithmetic (checked at load against the world size)", [&](Reader& s) { read_batch(s, c.batch); });
  r.section("learner", "learner algorithm and policy loss", [&](Reader& s) { read_learner(s, c.learner, known); });
  r.section("optim", "optimizer and schedule", [&](Reader& s) { read_optim(s, c.optim); });
  r.section("advantage", "credit assignment", [&](Reader& s) { read_advantage(s, c.advantage, known); });
  r.section("kl", "KL regularisation against the frozen reference", [&](Reader& s) { read_kl(s, c.kl, known); });
  r.section("filter", "DAPO dynamic-sampling group filter", [&](Reader& s) { read_filter(s, c.filter); });
  r.section("overlong", "DAPO overlong shaping", [&](Reader& s) { read_overlong(s, c.overlong); });
  r.section("dpo", "DPO family", [&](Reader& s) { read_dpo(s, c.dpo, known); });
  r.section("critic", "PPO critic", [&](Reader& s) { read_critic(s, c.critic); });
  r.section("reward", "reward composition and scorer", [&](Reader& s) { read_reward(s, c.reward, known); });
  r.section("rm", "reward-model training (keel train-rm)", [&](Reader& s) { read_rm(s, c.rm); });
  r.section("eval", "held-out evaluation", [&](Reader& s) { read_eval(s, c.eval); });
  r.section("checkpoint", "checkpointing", [&](Reader& s) { read_checkpoint(s, c.checkpoint); });
  r.section("metrics", "metrics outputs", [&](Reader& s) { read_metrics(s, c.metrics); });
  r.section("dist", "distributed placement", [&](Reader& s) { read_dist(s, c.dist); });

  // Checks that need the registries' traits (an estimator's grouping, critic, outcome-only) are
  // the contract check's (KnownNames::contracts); the ones here only need the config.
  if (c.overlong.enable && c.overlong.buffer_len > c.rollout.max_new_tokens)
    r.error("overlong", fmt::format("overlong.buffer_len {} must be <= rollout.max_new_tokens {}: the penalty ramps "
                                    "over the last buffer_len tokens before the maximum length",
                                    c.overlong.buffer_len, c.rollout.max_new_tokens));
  // A hub name would fail only at load, blaming the tokenizer it could not find. A first component
  // naming the runs' directory is a chain's earlier run (trained later), not a hub name.
  const std::string& mp = c.model.path;
  if (r.node() && looks_like_hub_name(mp) && mp.substr(0, mp.find('/')) != c.run.output_dir)
    r.diagnostics().error(source_of(*r.node(), "model.path"), "model.path", hub_name_message(mp, "model.path:"));
  // A pool that cannot hold one response (plus at least one prompt token) fails every rollout.
  const auto& ro = c.rollout;
  if (ro.engine == "paged" && ro.kv_blocks > 0 &&
      ro.kv_blocks * ro.kv_block_size < static_cast<int64_t>(ro.max_new_tokens) + 1)
    r.error("rollout", fmt::format("kv_blocks {} x kv_block_size {} = {} tokens cannot hold one sequence of a prompt "
                                   "and max_new_tokens {}: raise kv_blocks (0 = sized from batch_size)",
                                   ro.kv_blocks, ro.kv_block_size, ro.kv_blocks * ro.kv_block_size,
                                   ro.max_new_tokens));
  if (c.learner.algorithm == "dpo" && c.dpo.online && c.rollout.samples_per_prompt < 2)
    r.error("rollout", fmt::format("online DPO pairs the best and worst of each prompt's samples: "
                                   "rollout.samples_per_prompt must be >= 2, got {}", c.rollout.samples_per_prompt));
}

RunConfig load_config_node(Node root, const LoadOptions& opt, const KnownNames& known, Doc* doc) {
  for (const auto& o : opt.overrides) apply_override(root, o);
  Diagnostics diag;
  RunConfig cfg;
  Reader r(&root, "", diag, doc);
  read_run_config(r, cfg, known);
  r.finish();
  if (opt.world_size < 1) fail("world size must be >= 1, got {}", opt.world_size);
  if (diag.ok()) derive_batch(r, cfg, opt.world_size);
  if (diag.ok() && known.contracts) known.contracts(cfg, root, diag);
  if (diag.ok() && known.resources) known.resources(cfg, root, diag);
  diag.throw_if_any();
  return cfg;
}

RunConfig load_config(const std::string& path, const LoadOptions& opt, const KnownNames& known, Doc* doc) {
  return load_config_node(parse_yaml_file(path, opt.display_name), opt, known, doc);
}

std::string reference_yaml(const KnownNames& known) {
  Diagnostics diag;
  RunConfig cfg;
  Doc doc;
  Node empty = Node::map(Source{});
  Reader r(&empty, "", diag, &doc);
  read_run_config(r, cfg, known);
  std::string out =
      "# keel reference config: every key with its default. GENERATED by `keel print-config --reference`\n"
      "# (scripts/gen_reference_config.sh); a test fails when this file is stale. Do not edit by hand.\n"
      "# Launch: keel train configs/reference.yaml\n\n";
  return out + render_yaml(doc, /*with_comments=*/true);
}

}  // namespace keel::config
