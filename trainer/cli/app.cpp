// The one place where subcommands are registered.
#include "trainer/cli/app.h"

#include <CLI/CLI.hpp>
#include <iostream>

#include "trainer/cli/commands.h"
#include "trainer/cli/model_commands.h"
#include "trainer/cli/system_info.h"
#include "base/error.h"
#include "base/log.h"
#include "trainer/dist/launch.h"

namespace keel::cli {

namespace {

void add_config_args(CLI::App* sub, ConfigArgs& a) {
  sub->add_option("config", a.config, "YAML config file")->required();
  sub->add_option("overrides", a.overrides, "dotted overrides, e.g. optim.lr=1e-6 rollout.samples_per_prompt=8");
  sub->add_option("--world-size", a.world_size, "world size for the batch arithmetic (default: $WORLD_SIZE or 1)");
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{"keel: native C++/LibTorch RL post-training (GRPO, PPO, DPO, ...)", "keel"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "help for every command");
  std::string log_level;
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off (default: run.log_level, info)");

  int rc = 0;

  VersionArgs version;
  auto* v = app.add_subcommand("version", "keel and LibTorch versions, CUDA/NCCL, BLAS and threads");
  v->add_flag("--matmul", version.matmul, "also measure fp32 matmul GFLOP/s (2048x2048)");
  v->add_flag("--library-env", version.library_env,
              "print only the library settings keel starts with (OPENBLAS_CORETYPE, OMP_WAIT_POLICY) as shell exports");
  v->add_flag("--kernel-paths", version.kernel_paths,
              "print only the CPU kernel paths this CPU runs, widest first, one a line (values of KEEL_ISA)");

  ListArgs list;
  auto* l = app.add_subcommand("list", "list registered names: estimators, losses, rewards, tasks, models, ...");
  l->add_option("what", list.what, "estimators|losses|rewards|tasks|models|algorithms|templates|kl|all");

  ConfigArgs validate;
  auto* va = app.add_subcommand("validate", "check a config (and its batch arithmetic) without touching data or devices");
  add_config_args(va, validate);

  ConfigArgs train;
  auto* tr = app.add_subcommand("train", "train: the main job (rollout, reward, credit, update, eval, checkpoints)");
  add_config_args(tr, train);

  ConfigArgs sft;
  auto* sf = app.add_subcommand("sft", "supervised fine-tuning: keel train with learner.algorithm=sft (task gold responses or SFT JSONL)");
  add_config_args(sf, sft);
  ConfigArgs train_rm;
  auto* trm = app.add_subcommand("train-rm", "train a Bradley-Terry reward model on preference JSONL (learner.algorithm: rm)");
  add_config_args(trm, train_rm);

  PrintConfigArgs print;
  AverageRmArgs avg;
  auto* ar = app.add_subcommand("average-rm", "WARM: average the weights of reward models of one architecture into one");
  ar->add_option("--out", avg.out, "output HF reward-model directory")->required();
  ar->add_option("--weights", avg.weights_csv, "comma-separated weights, one per model (default: uniform)");
  ar->add_option("models", avg.models, "reward-model directories (keel train-rm checkpoints' model/)")->required();

  auto* pc = app.add_subcommand("print-config", "print the fully resolved config");
  pc->add_option("config", print.cfg.config, "YAML config file");
  pc->add_option("overrides", print.cfg.overrides, "dotted overrides");
  pc->add_option("--world-size", print.cfg.world_size, "world size for the batch arithmetic");
  pc->add_flag("--reference", print.reference, "print configs/reference.yaml (every key, default, comment)");
  pc->add_flag("--comments", print.comments, "annotate each key with its doc line");

  GenerateArgs gen;
  auto* g = app.add_subcommand("generate", "sample completions for a prompt JSONL from an HF model directory");
  g->add_option("model", gen.model, "HF model directory")->required();
  g->add_option("prompts", gen.prompts, "prompt JSONL ({prompt | messages | prompt_ids, id?} per line)")->required();
  g->add_option("-o,--output", gen.output, "completions JSONL (default: stdout)");
  g->add_option("--tokenizer", gen.tokenizer, "tokenizer file or directory (default: the model's)");
  g->add_option("--chat-template", gen.chat_template,
                "plain | chatml | llama3 | mistral | model (the model directory's own) | auto (its own, else plain)");
  g->add_option("--max-new-tokens", gen.max_new_tokens, "response length limit")->check(CLI::PositiveNumber);
  g->add_option("--temperature", gen.temperature, "0 = greedy")->check(CLI::NonNegativeNumber);
  g->add_option("--top-k", gen.top_k, "0 = off")->check(CLI::NonNegativeNumber);
  g->add_option("--top-p", gen.top_p, "1 = off")->check(CLI::Range(0.0, 1.0));
  g->add_option("--seed", gen.seed, "sampling seed");
  g->add_option("--samples", gen.samples, "completions per prompt")->check(CLI::PositiveNumber);
  g->add_option("--batch-size", gen.batch_size, "sequences decoded together")->check(CLI::PositiveNumber);
  g->add_flag("--logprobs", gen.with_logprobs, "include per-token log-probs");
  g->add_flag("--skip-bad-lines", gen.skip_bad_lines, "skip (and count) malformed or too-long records instead of failing");
  g->add_option("--device", gen.device, "auto | cpu | cuda (auto: CUDA when usable)");
  g->add_option("--adapter", gen.adapter, "PEFT LoRA adapter directory to apply on the model (e.g. a checkpoint's policy_adapter/)");

  LogprobsArgs lpa;
  auto* lp = app.add_subcommand("logprobs", "teacher-forced per-token log-probs of {prompt, completion} JSONL");
  lp->add_option("model", lpa.model, "HF model directory")->required();
  lp->add_option("input", lpa.input, "JSONL of {prompt | messages | prompt_ids, completion | completion_ids, id?}")
      ->required();
  lp->add_option("-o,--output", lpa.output, "output JSONL (default: stdout)");
  lp->add_option("--tokenizer", lpa.tokenizer, "tokenizer file or directory (default: the model's)");
  lp->add_option("--chat-template", lpa.chat_template,
                 "plain | chatml | llama3 | mistral | model (the model directory's own) | auto (its own, else plain)");
  lp->add_option("--temperature", lpa.temperature, "logits are divided by this")->check(CLI::PositiveNumber);
  lp->add_flag("--skip-bad-lines", lpa.skip_bad_lines, "skip (and count) malformed or too-long records instead of failing");
  lp->add_option("--device", lpa.device, "auto | cpu | cuda (auto: CUDA when usable)");
  lp->add_option("--adapter", lpa.adapter, "PEFT LoRA adapter directory to apply on the model (e.g. a checkpoint's policy_adapter/)");

  TokenizeArgs tka;
  auto* tk = app.add_subcommand("tokenize", "print the ids and pieces of a text, or tokenize a JSONL file of texts");
  tk->add_option("tokenizer", tka.tokenizer, "tokenizer file (tokenizer.json, *.model) or model directory")->required();
  auto* tk_text = tk->add_option("text", tka.text, "one text: prints a table of ids and pieces");
  tk->add_option("--jsonl", tka.jsonl, "JSONL of {text, id?} ('-' = stdin): prints {id, ids, tokens} per line")
      ->excludes(tk_text);
  tk->add_option("-o,--output", tka.output, "output file (default: stdout)");
  tk->add_flag("--add-special", tka.add_special, "add the tokenizer's special tokens around each text (BOS), as "
               "transformers' add_special_tokens=True");
  tk->add_flag("--skip-bad-lines", tka.skip_bad_lines, "skip (and count) malformed --jsonl lines instead of failing");

  dist::LaunchOptions launch;
  auto* la = dist::add_launch_command(app, launch);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    log::init(log::parse_level(log_level.empty() ? "info" : log_level));
    init_threads(0);
    if (*v) rc = run_version(version);
    else if (*l) rc = run_list(list);
    else if (*va) rc = run_validate(validate);
    else if (*tr) {
      train.log_level = log_level;
      rc = run_train(train, std::vector<std::string>(argv, argv + argc));
    } else if (*sf) {
      sft.log_level = log_level;
      sft.overrides.push_back("learner.algorithm=sft");
      rc = run_train(sft, std::vector<std::string>(argv, argv + argc));
    }
    else if (*trm) {
      train_rm.log_level = log_level;
      rc = run_train_rm(train_rm, std::vector<std::string>(argv, argv + argc));
    }
    else if (*g) rc = run_generate(gen);
    else if (*lp) rc = run_logprobs(lpa);
    else if (*tk) {
      tka.has_text = tk_text->count() > 0;
      rc = run_tokenize(tka);
    }
    else if (*la) rc = dist::run_launch(launch);
    else if (*ar) rc = run_average_rm(avg);
    else if (*pc) {
      if (!print.reference && print.cfg.config.empty()) fail("print-config: a config file is required (or --reference)");
      rc = run_print_config(print);
    }
  } catch (const Error& e) {
    // One "keel: error: " line per problem (config errors come all together).
    std::string msg = e.what();
    size_t start = 0;
    while (start <= msg.size()) {
      const size_t nl = msg.find('\n', start);
      std::cerr << "keel: error: " << msg.substr(start, nl - start) << "\n";
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "keel: internal error: " << e.what() << "\n";
    return 3;
  }
  return rc;
}

}  // namespace keel::cli
