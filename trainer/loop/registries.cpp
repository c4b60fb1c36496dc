#include "trainer/loop/registries.h"

namespace keel::loop {

const Registries& registries() {
  static const Registries reg = [] {
    Registries r;
    credit::register_builtin_advantages(r.estimators);
    learner::register_builtin_policy_losses(r.policy_losses);
    learner::register_builtin_dpo_losses(r.dpo_losses);
    for (const auto& e : learner::kl_estimators()) r.kl_estimators.add(e.name, e.description, e.estimator);
    learner::register_builtin_learners(r.learners);
    rewards::register_builtin_rewards(r.rewards);
    rewards::register_builtin_reward_schemes(r.rewards);
    rewards::register_builtin_reward_models(r.rewards);
    data::register_builtin_tasks(r.tasks);
    env::register_builtin_environments(r.environments, r.tasks);
    models::register_builtin_models(r.models);
    models::register_builtin_chat_templates(r.chat_templates);
    return r;
  }();
  return reg;
}

}  // namespace keel::loop
