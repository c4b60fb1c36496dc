// register_builtin_reward_models: the learned rewards of spec/rewards.md group D that score at
// run time — a trained scalar reward model and a generative yes/no judge. (Reward-model training
// is `keel train-rm`, trainer/cli/cmd_train_rm.cpp; its loss is trainer/learner/rm_loss.h.)
// Names: reward_model (no spec name; the scalar RM that group A's shaping consumes) and
// generative_yes (the spec's `reward.judge.type: generative_yes`).
// A factory only reads params (so `keel validate` loads no model); the model is loaded, and the
// judge's master-key self-test run, when CompositeReward binds the scheme at start-up.
// Contracts: reward_model reads only the prompt and response; generative_yes also metadata "answer"
// when its template has {answer}.
#include "rewards/models/generative_judge.h"
#include "rewards/models/reward_model.h"
#include "rewards/reward.h"
#include "base/reader.h"

namespace keel::rewards {

void register_builtin_reward_models(RewardRegistry& reg) {
  reg.add("reward_model", "learned scalar reward: an HF reward model (score head) on prompt + response, batched",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            RewardModelOptions o;
            read_reward_model_options(r, o);
            return std::make_unique<RewardModelScheme>(o, r.path());
          });
  reg.add("generative_yes",
          "generative judge: P(yes) of a judge LM under a prompt template, refused if it rewards master-key inputs",
          [](config::Reader& r) -> std::unique_ptr<RewardScheme> {
            GenerativeJudgeOptions o;
            read_generative_judge_options(r, o);
            // A template with {answer} shows the judge metadata["answer"] (score() requires it).
            if (o.prompt_template.find("{answer}") != std::string::npos) require_input(r, "meta.answer", "template");
            return std::make_unique<GenerativeJudge>(o, r.path());
          });
}

}  // namespace keel::rewards
