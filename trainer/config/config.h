// The typed run configuration: one plain struct per YAML section, defaults here and nowhere else.
// Field names equal YAML keys. Loaded (and fully validated) by load_config(); never mutated after.
// Section docs and checks live in the read_*() functions of config.cpp / credit_config.cpp /
// reward_config.cpp; `keel print-config` and configs/reference.yaml are rendered from them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "trainer/config/credit_config.h"
#include "base/reader.h"
#include "trainer/config/reward_config.h"
#include "trainer/config/rm_config.h"

namespace keel::config {

/// The most threads any thread-count key accepts (run.threads, env.threads, reward.threads): a
/// sane bound far above any machine keel runs on; a million threads hung in pool creation.
inline constexpr int kMaxThreads = 1024;

struct RunSection {
  std::string name = "quickstart";      // run name; the run directory is <output_dir>/<name>
  std::string output_dir = "runs";
  int64_t seed = 1;
  int64_t total_steps = 100;            // optimizer-step loop iterations (RL steps)
  std::string device = "auto";          // auto | cpu | cuda
  int threads = 0;                      // intra-op threads; 0 = all cores
  std::string log_level = "info";       // trace | debug | info | warn | error
  bool log_all_ranks = false;
  std::string resume = "none";          // none | auto | <checkpoint dir>
  bool overwrite = false;               // a fresh run may replace another run's checkpoints in the run dir
  bool skip_memory_check = false;       // run even when the memory estimate exceeds this machine's
};

struct ModelInitSection {  // random initialisation when model.path is empty
  std::string family = "llama";         // llama | qwen2 | mistral
  int hidden_size = 128;
  int num_layers = 2;
  int num_heads = 4;
  int num_kv_heads = 2;
  int intermediate_size = 352;
  int max_position_embeddings = 256;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = true;
};

struct LoraSection {                   // LoRA adapters on the policy (models/lora.h); rank 0 = full fine-tuning
  int rank = 0;
  double alpha = 16.0;                  // scale = alpha / rank
  double dropout = 0.0;                 // on the adapters' input, training only
  std::vector<std::string> target_modules = {"all-linear"};
  std::string adapter;                  // PEFT adapter directory to start from; its adapter_config.json sets the rest
  bool enabled() const { return rank > 0 || !adapter.empty(); }
};

struct ModelSection {
  std::string path;                     // HF model directory (config.json + safetensors); "" = init
  std::string tokenizer;                // tokenizer file/dir; "" = the model directory's
  std::string chat_template = "auto";   // auto (the model's own, else plain) | model | plain | chatml | llama3 | mistral
  std::string enable_thinking = "auto";  // auto (not passed) | true | false: a model's own template's enable_thinking
  std::string dtype = "auto";           // auto | float32 | bfloat16
  bool activation_checkpointing = false;
  ModelInitSection init;
  LoraSection lora;
};

struct DataSection {
  std::string task = "arithmetic";      // built-in task; ignored when train_file is set
  Node task_params;                     // the task's knobs, read by its factory
  std::string train_file;               // JSONL of `format`
  std::string format = "auto";          // auto | prompts | preferences | sft
  std::string eval_file;                // held-out JSONL; "" = split eval_fraction off train
  double eval_fraction = 0.05;
  int64_t eval_size = 128;              // held-out prompts for built-in tasks
  bool skip_bad_lines = false;
  bool shuffle = true;
  std::string prompt_key = "prompt";    // the field holding the prompt (a string or {role, content} messages)
  std::string answer_key = "answer";    // the field holding the gold answer (prompts format)
  std::string answer_extract = "none";  // none | gsm8k | regex: how the answer is cut from its text
  std::string answer_regex;             // answer_extract regex: the answer is capture group 1
  std::string too_long = "error";       // error | skip: records whose tokens do not fit the model's context
  int64_t max_record_bytes = int64_t{8} << 20;  // a longer JSONL line is a bad line; 0 = no limit
};

struct RolloutSection {
  int samples_per_prompt = 8;
  int max_new_tokens = 32;
  double temperature = 1.0;
  int top_k = 0;                        // 0 = off
  double top_p = 1.0;
  std::vector<int64_t> stop_token_ids;
  int batch_size = 64;                  // sequences decoded together
  int max_staleness = 0;                // async: policy versions rollout may run ahead
  std::string engine = "paged";         // paged | static: the generation engine (models/rollout_engine.h)
  int kv_block_size = 16;               // paged: tokens per KV block
  int64_t kv_blocks = 0;                // paged: blocks in the pool; 0 = batch_size rows of the longest sequence
  bool prefix_cache = true;             // paged: share full prompt blocks across prompts by content
};

struct EnvSection {                     // multi-turn episodes (trainer/env/); name "" = single-turn
  std::string name;                     // a registered environment (keel list environments)
  Node params;                          // its knobs, read by its factory
  int max_turns = 4;                    // policy turns per episode
  int max_tokens = 256;                 // response-side budget per episode: turns + observations
  std::string observation_role = "tool"; // tool | user: how observations are rendered
  double step_timeout_s = 10.0;         // deadline of one environment call
  int threads = 2;                      // environment calls in flight
  bool reuse_kv = true;                 // extend the KV cache across turns (false: recompute each turn)
};

struct BatchSection {
  int prompts_per_step = 8;             // global prompts per RL step
  int mini_batch_size = 64;             // samples per optimizer step (global)
  int micro_batch_size = 16;            // samples per forward/backward on one rank
  bool padding_free = false;            // pack each micro-batch's real tokens into one row (varlen attention)
  int64_t max_tokens_per_micro_batch = 0;  // > 0: also cap a micro-batch's real tokens (a longer row goes alone)
  int epochs = 1;                       // passes over each rollout batch
};

struct OptimSection {
  double lr = 1e-5;
  double min_lr_ratio = 0.0;
  int64_t warmup_steps = 0;
  std::string lr_schedule = "constant"; // constant | cosine | linear
  double weight_decay = 0.0;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_eps = 1e-8;
  double grad_clip = 1.0;               // 0 = off
  int rollback_after = 3;               // consecutive non-finite steps before rolling back
  int max_rollbacks = 3;                // rollbacks to one checkpoint before the run stops
};

struct CriticSection {
  std::string mode = "value_head";      // value_head | separate
  double lr = 1e-5;
  double cliprange_value = 0.2;
  double vf_coef = 0.5;
};

struct EvalSection {
  int64_t every = 10;                   // steps; 0 = never
  int64_t num_prompts = 64;
  int k = 4;                            // pass@k samples
};

struct CheckpointSection {
  int64_t every = 50;                   // steps; 0 = only at the end
  int keep_last = 2;
};

struct MetricsSection {
  bool jsonl = true;
  bool tensorboard = false;
  int64_t console_every = 1;
};

struct DistSection {
  std::string placement = "colocated";  // colocated | disaggregated
  int rollout_ranks = 0;                // disaggregated only
  int reward_ranks = 0;
  int learner_ranks = 0;
  std::string backend = "auto";         // auto | gloo | nccl
  double timeout_s = 300;
  double bucket_mb = 64;
  std::string sharding = "none";        // none | optimizer | gradients | full (ZeRO-1 / 2 / 3 over the learner ranks)
};

struct RunConfig {
  RunSection run;
  ModelSection model;
  DataSection data;
  RolloutSection rollout;
  EnvSection env;
  BatchSection batch;
  LearnerSection learner;
  OptimSection optim;
  AdvantageSection advantage;
  KlSection kl;
  FilterSection filter;
  OverlongSection overlong;
  DpoSection dpo;
  CriticSection critic;
  RewardSection reward;
  RmSection rm;                         // keel train-rm only
  EvalSection eval;
  CheckpointSection checkpoint;
  MetricsSection metrics;
  DistSection dist;

  /// Derived at load from the batch arithmetic (see derive_batch()).
  struct Derived {
    int world_size = 1;                 ///< ranks in the job
    int learner_ranks = 1;              ///< data-parallel learner ranks
    int rollout_ranks = 1;
    int64_t rollout_batch = 0;          ///< prompts_per_step * samples_per_prompt
    int64_t mini_batches_per_epoch = 0;
    int64_t grad_accum_steps = 0;       ///< micro-batches per mini-batch on one learner rank
  } derived;
};

/// What the registries know; filled by trainer_core from the real registries (tests pass lists).
/// An empty list means "not checked".
struct KnownNames {
  std::vector<std::string> algorithms;
  std::vector<std::string> estimators;
  std::vector<std::string> policy_losses;
  std::vector<std::string> dpo_losses;
  std::vector<std::string> kl_estimators;
  std::vector<std::string> reward_schemes;
  std::vector<std::string> tasks;
  std::vector<std::string> model_families;
  std::vector<std::string> chat_templates;
  std::vector<std::string> environments;
  /// Validates (reads) env.params for the named environment; may be empty.
  std::function<void(Reader& params, const std::string& env)> env_params;
  /// Validates (reads) a reward component's scheme-specific parameters; may be empty.
  std::function<void(Reader& params, const std::string& scheme)> reward_params;
  std::vector<std::string> judge_types;
  /// Validates (reads) a judge's type-specific parameters; may be empty.
  std::function<void(Reader& params, const std::string& type, const std::string& name)> judge_params;
  /// Reads the estimator-specific subsections of `advantage:` (grpo, gae, rpp, agrae, ...); may be empty.
  std::function<void(Reader& advantage)> advantage_subsections;
  /// Validates (reads) data.task_params for the named task; may be empty.
  std::function<void(Reader& params, const std::string& task)> task_params;
  /// Resolves the data contracts of the whole run (every piece's requirements against the
  /// producers the config switches on; trainer/loop/contracts.h), reporting each unmet one into
  /// the diagnostics at the YAML key that asked for it; may be empty. Called once the config read
  /// cleanly, so `keel validate` and `keel train` refuse the same configs.
  std::function<void(const RunConfig& cfg, const Node& root, Diagnostics& diag)> contracts;
  /// Checks what the run asks of this machine (the memory estimate against its RAM or GPU memory;
  /// trainer/loop/resources.h), reporting into the diagnostics; may be empty. Called after
  /// `contracts`, once the config read cleanly.
  std::function<void(const RunConfig& cfg, const Node& root, Diagnostics& diag)> resources;
};

struct LoadOptions {
  std::vector<std::string> overrides;   ///< "a.b=c"
  int world_size = 1;                   ///< the job's world size (for the batch arithmetic)
  std::string display_name;             ///< how messages name the file ("" = the path)
};

/// Loads, overrides, reads and validates. All errors are collected and thrown together as one
/// keel::Error (one line per error). `doc` (optional) receives the resolved config.
RunConfig load_config(const std::string& path, const LoadOptions& opt, const KnownNames& known,
                      Doc* doc = nullptr);
/// Same from an already-parsed tree (tests, defaults).
RunConfig load_config_node(Node root, const LoadOptions& opt, const KnownNames& known, Doc* doc = nullptr);

/// Reads every section of `root` into `cfg` (errors into diag). Exposed for the reference generator.
void read_run_config(Reader& r, RunConfig& cfg, const KnownNames& known);

/// The batch arithmetic; reports impossible splits through `r` naming the numbers.
void derive_batch(Reader& r, RunConfig& cfg, int world_size);

/// configs/reference.yaml: every key with its default and a one-line comment.
std::string reference_yaml(const KnownNames& known);

}  // namespace keel::config
