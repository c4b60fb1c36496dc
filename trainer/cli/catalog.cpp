// Fills the catalog from each area's register_builtin_*() function, and gives the config loader
// the registries' names and the hooks that validate registered components' own parameters.
#include "trainer/cli/catalog.h"

#include "models/chat_template.h"
#include "models/model_config.h"
#include "rewards/composite.h"
#include "rewards/reward.h"
#include "base/reader.h"
#include "trainer/credit/advantage.h"
#include "trainer/credit/advantage_options.h"
#include "trainer/data/task.h"
#include "trainer/learner/dpo_loss.h"
#include "trainer/learner/kl.h"
#include "trainer/learner/policy_loss.h"

namespace keel::cli {

namespace {

template <typename Reg>
std::vector<CatalogEntry> entries(const Reg& reg) {
  std::vector<CatalogEntry> out;
  for (const auto& n : reg.names()) out.push_back({n, reg.get(n).description});
  return out;
}


const data::TaskRegistry& task_registry() {
  static const data::TaskRegistry reg = [] {
    data::TaskRegistry r("task");
    data::register_builtin_tasks(r);
    return r;
  }();
  return reg;
}

}  // namespace

const rewards::RewardRegistry& reward_registry() {
  static const rewards::RewardRegistry reg = [] {
    rewards::RewardRegistry r("reward scheme");
    rewards::register_builtin_rewards(r);
    rewards::register_builtin_reward_schemes(r);
    rewards::register_builtin_reward_models(r);
    return r;
  }();
  return reg;
}

Catalog builtin_catalog() {
  Catalog c;
  c["algorithms"] = {{"grpo", "group-relative policy optimization (critic-free RL)"},
                     {"ppo", "PPO with a learned critic and GAE"},
                     {"dpo", "direct preference optimization from preference pairs"},
                     {"sft", "supervised fine-tuning on prompt/response pairs"},
                     {"rm", "Bradley-Terry reward-model training"}};
  for (const auto& e : learner::kl_estimators()) c["kl"].push_back({e.name, e.description});
  {
    credit::AdvantageRegistry reg = credit::make_advantage_registry();
    credit::register_builtin_advantages(reg);
    c["estimators"] = entries(reg);
  }
  {
    learner::PolicyLossRegistry pl("policy loss");
    learner::register_builtin_policy_losses(pl);
    c["losses"] = entries(pl);
    learner::DpoLossRegistry dl("DPO loss");
    learner::register_builtin_dpo_losses(dl);
    c["dpo_losses"] = entries(dl);
  }
  c["rewards"] = entries(reward_registry());
  c["tasks"] = entries(task_registry());
  {
    models::ModelRegistry reg("model family");
    models::register_builtin_models(reg);
    c["models"] = entries(reg);
  }
  {
    models::ChatTemplateRegistry reg("chat template");
    models::register_builtin_chat_templates(reg);
    c["templates"] = entries(reg);
  }
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
  k.tasks = names("tasks");
  k.model_families = names("models");
  k.task_params = [](config::Reader& r, const std::string& task) {
    task_registry().get(task).fn(r);  // reads (and so validates) the knobs
  };
  k.reward_params = [](config::Reader& r, const std::string& scheme) {
    rewards::validate_reward_params(reward_registry(), r, scheme);
  };
  k.advantage_subsections = [](config::Reader& r) {
    credit::AdvantageOptions o;
    credit::read_advantage_subsections(r, o);
  };
  return k;
}

}  // namespace keel::cli
