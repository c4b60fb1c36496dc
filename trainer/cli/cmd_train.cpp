// keel train: loads and validates the config (with the command line's overrides and world size),
// then runs the job — trainer/loop/train.h (the lifecycle and loop) and the stage files beside it.
#include <string>
#include <utility>
#include <vector>

#include "base/stop_signal.h"
#include "trainer/cli/catalog.h"
#include "trainer/cli/commands.h"
#include "trainer/config/config.h"
#include "trainer/loop/train.h"

namespace keel::cli {

int run_train(const ConfigArgs& a, const std::vector<std::string>& argv) {
  stop::install_handlers();  // before the config and data load: a signal then stops after step 1
  loop::TrainJob job;
  config::LoadOptions lopt;
  lopt.overrides = a.overrides;
  lopt.world_size = resolve_world_size(a.world_size);
  config::Doc doc;
  job.cfg = config::load_config(a.config, lopt, known_names(), &doc);
  job.resolved_yaml = config::render_yaml(doc, false);
  job.config_name = a.config;
  job.world_size = lopt.world_size;
  job.log_level = a.log_level;
  job.argv = argv;
  return loop::train(std::move(job), reward_registry());
}

}  // namespace keel::cli
