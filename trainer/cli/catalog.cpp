// Fills the catalog from each area's register_builtin_*() function.
#include "trainer/cli/catalog.h"

#include "trainer/config/reader.h"
#include "trainer/data/task.h"

namespace keel::cli {

Catalog builtin_catalog() {
  Catalog c;
  c["algorithms"] = {{"grpo", "group-relative policy optimization (critic-free RL)"},
                     {"ppo", "PPO with a learned critic and GAE"},
                     {"dpo", "direct preference optimization from preference pairs"},
                     {"sft", "supervised fine-tuning on prompt/response pairs"},
                     {"rm", "Bradley-Terry reward-model training"}};
  c["templates"] = {{"plain", "prompt text as is, no role markers"},
                    {"chatml", "<|im_start|>role ... <|im_end|> (Qwen)"},
                    {"llama3", "<|start_header_id|>role<|end_header_id|> ... <|eot_id|> (Llama 3)"}};
  c["kl"] = {{"k1", "log ratio"}, {"k2", "half squared log ratio"}, {"k3", "exp(-x) - 1 + x, low variance"},
             {"k1+", "k1 value, k2 gradient (straight-through)"},
             {"k2+", "k2 value, k2 gradient"},
             {"k3+", "k3 value, k2 gradient (straight-through)"}};
  // Areas register here as they land: estimators, losses, rewards, tasks, models.
  c["estimators"];
  c["losses"];
  c["rewards"];
  {
    data::TaskRegistry tasks("task");
    data::register_builtin_tasks(tasks);
    for (const auto& n : tasks.names()) c["tasks"].push_back({n, tasks.get(n).description});
  }
  c["models"];
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
  k.reward_schemes = names("rewards");
  k.tasks = names("tasks");
  k.model_families = names("models");
  k.task_params = [](config::Reader& r, const std::string& task) {
    data::TaskRegistry tasks("task");
    data::register_builtin_tasks(tasks);
    tasks.get(task).fn(r);  // reads (and so validates) the knobs
  };
  return k;
}

}  // namespace keel::cli
