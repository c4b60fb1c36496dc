// Fills the catalog from each area's register_builtin_*() function, and gives the config loader
// the registries' names and the hooks that validate registered components' own parameters.
#include "trainer/cli/catalog.h"

#include "models/chat_template.h"
#include "models/model_config.h"
#include "rewards/composite.h"
#include "rewards/judges/judge.h"
#include "rewards/reward.h"
#include "base/reader.h"
#include "trainer/credit/advantage.h"
#include "trainer/credit/advantage_options.h"
#include "trainer/data/task.h"
#include "trainer/learner/dpo_loss.h"
#include "trainer/learner/kl.h"
#include "trainer/learner/policy_loss.h"
#include "trainer/loop/contracts.h"
#include "trainer/loop/registries.h"
#include "trainer/loop/resources.h"

namespace keel::cli {

namespace {

template <typename Reg>
std::vector<CatalogEntry> entries(const Reg& reg) {
  std::vector<CatalogEntry> out;
  for (const auto& n : reg.names()) out.push_back({n, reg.get(n).description});
  return out;
}

}  // namespace

const rewards::RewardRegistry& reward_registry() { return loop::registries().rewards; }

Catalog builtin_catalog() {
  const auto& reg = loop::registries();
  Catalog c;
  c["algorithms"] = entries(reg.learners);
  c["kl"] = entries(reg.kl_estimators);
  c["estimators"] = entries(reg.estimators);
  c["losses"] = entries(reg.policy_losses);
  c["dpo_losses"] = entries(reg.dpo_losses);
  c["rewards"] = entries(reg.rewards);
  c["judges"] = entries(rewards::builtin_judges());
  c["tasks"] = entries(reg.tasks);
  c["models"] = entries(reg.models);
  c["templates"] = entries(reg.chat_templates);
  c["environments"] = entries(reg.environments);
  return c;
}

config::KnownNames known_names() {
  const Catalog c = builtin_catalog();
  auto names = [&](const std::string& kind) {
    std::vector<std::string> v;
    for (const auto& e : c.at(kind)) v.push_back(e.name);
    return v;
  };
  config::KnownNames k;
  k.algorithms = names("algorithms");
  k.chat_templates = names("templates");
  k.kl_estimators = names("kl");
  k.estimators = names("estimators");
  k.policy_losses = names("losses");
  k.dpo_losses = names("dpo_losses");
  k.reward_schemes = names("rewards");
  k.judge_types = names("judges");
  k.tasks = names("tasks");
  k.model_families = names("models");
  k.environments = names("environments");
  k.env_params = [](config::Reader& r, const std::string& env) {
    loop::registries().environments.get(env).fn(r);  // reads (and so validates) the knobs
  };
  k.task_params = [](config::Reader& r, const std::string& task) {
    loop::registries().tasks.get(task).fn(r);  // reads (and so validates) the knobs
  };
  k.reward_params = [](config::Reader& r, const std::string& scheme) {
    rewards::validate_reward_params(reward_registry(), r, scheme);
  };
  k.judge_params = [](config::Reader& r, const std::string& type, const std::string& name) {
    (void)rewards::build_judge(rewards::builtin_judges(), r, type, name);
  };
  k.advantage_subsections = [](config::Reader& r) {
    credit::AdvantageOptions o;
    credit::read_advantage_subsections(r, o);
  };
  k.contracts = loop::report_contracts;
  k.resources = loop::report_resources;
  return k;
}

}  // namespace keel::cli
