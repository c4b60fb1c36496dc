// Every registry of keel, built once: estimators, policy and DPO losses, KL estimators, learners,
// reward schemes, tasks, model families and chat templates — each entry with its description, its function or
// factory and its traits. `keel list`, the config loader's name checks, the contract check and
// `keel train` all read this one set.
#pragma once

#include "models/chat_template.h"
#include "models/model_config.h"
#include "rewards/reward.h"
#include "trainer/credit/advantage.h"
#include "trainer/data/task.h"
#include "trainer/env/environment.h"
#include "trainer/learner/dpo_loss.h"
#include "trainer/learner/kl.h"
#include "trainer/learner/learners.h"
#include "trainer/learner/policy_loss.h"

namespace keel::loop {

struct Registries {
  credit::AdvantageRegistry estimators{"advantage estimator"};
  learner::PolicyLossRegistry policy_losses{"policy loss"};
  learner::DpoLossRegistry dpo_losses{"DPO loss"};
  Registry<learner::KlEstimator> kl_estimators{"KL estimator"};
  learner::LearnerRegistry learners{"learner"};
  rewards::RewardRegistry rewards{"reward scheme"};
  data::TaskRegistry tasks{"task"};
  models::ModelRegistry models{"model family"};
  models::ChatTemplateRegistry chat_templates{"chat template"};
  env::EnvRegistry environments{"environment"};
};

/// The built-in registries (filled on first use, then shared and immutable).
const Registries& registries();

}  // namespace keel::loop
