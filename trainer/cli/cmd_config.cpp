// keel validate / keel print-config.
#include <cstdlib>
#include <iostream>

#include "trainer/cli/catalog.h"
#include "trainer/cli/commands.h"
#include "base/error.h"
#include "trainer/loop/resources.h"

namespace keel::cli {

int resolve_world_size(int explicit_world_size) {
  if (explicit_world_size > 0) return explicit_world_size;
  for (const char* var : {"WORLD_SIZE", "SLURM_NTASKS"}) {
    if (const char* v = std::getenv(var)) {
      char* end = nullptr;
      const long n = std::strtol(v, &end, 10);
      if (*end != '\0' || n < 1) fail("environment {}={} is not a positive integer", var, v);
      return static_cast<int>(n);
    }
  }
  return 1;
}

int run_validate(const ConfigArgs& a) {
  config::LoadOptions opt;
  opt.overrides = a.overrides;
  opt.world_size = resolve_world_size(a.world_size);
  const auto cfg = config::load_config(a.config, opt, known_names());
  const auto& d = cfg.derived;
  std::cout << fmt::format(
      "{}: ok ({} {}, world size {}: rollout batch {} = {} prompts x {} samples, {} mini-batch(es) per epoch, "
      "{} gradient-accumulation step(s) per mini-batch on each of {} learner rank(s); memory: {})\n",
      a.config, cfg.learner.algorithm, cfg.advantage.estimator, d.world_size, d.rollout_batch,
      cfg.batch.prompts_per_step, cfg.rollout.samples_per_prompt, d.mini_batches_per_epoch, d.grad_accum_steps,
      d.learner_ranks, loop::memory_summary(cfg));
  return 0;
}

int run_print_config(const PrintConfigArgs& a) {
  const auto known = known_names();
  if (a.reference) {
    std::cout << config::reference_yaml(known);
    return 0;
  }
  config::LoadOptions opt;
  opt.overrides = a.cfg.overrides;
  opt.world_size = resolve_world_size(a.cfg.world_size);
  config::Doc doc;
  config::load_config(a.cfg.config, opt, known, &doc);
  std::cout << config::render_yaml(doc, a.comments);
  return 0;
}

}  // namespace keel::cli
