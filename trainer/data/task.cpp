#include "trainer/data/task.h"

#include <cctype>
#include <functional>

namespace keel::data {

std::string Task::wrong_response(const PromptRecord& r, uint64_t salt) const {
  std::string g = gold_response(r);
  size_t end = g.size();
  while (end > 0 && !std::isdigit(static_cast<unsigned char>(g[end - 1]))) --end;
  if (end == 0) return g + " 1";  // no number to change: any addition makes it wrong
  size_t begin = end;
  while (begin > 0 && std::isdigit(static_cast<unsigned char>(g[begin - 1]))) --begin;
  const int64_t v = std::stoll(g.substr(begin, end - begin));
  SplitMix64 rng(salt ^ problem_seed(0x3E11, Split::kTrain, std::hash<std::string>{}(r.prompt)));
  int64_t delta = rng.uniform(1, 9);
  if (v - delta >= 0 && rng.uniform(0, 1) == 0) delta = -delta;
  return g.substr(0, begin) + std::to_string(v + delta) + g.substr(end);
}

std::unique_ptr<Task> make_arithmetic_task(config::Reader& r);
std::unique_ptr<Task> make_arithmetic_steps_task(config::Reader& r);
std::unique_ptr<Task> make_countdown_task(config::Reader& r);
std::unique_ptr<Task> make_judge_arithmetic_task(config::Reader& r);
std::unique_ptr<Task> make_prm_arithmetic_task(config::Reader& r);
std::unique_ptr<Task> make_pairwise_arithmetic_task(config::Reader& r);

void register_builtin_tasks(TaskRegistry& r) {
  r.add("arithmetic", "multi-digit integer arithmetic 'a+b=' (knobs: min_digits, max_digits, operands, ops)",
        make_arithmetic_task);
  r.add("arithmetic_steps",
        "'3+14+5=' answered one left-to-right step a line, '3+14=17\\n17+5=22' (knobs: min_digits, max_digits, "
        "operands, ops)",
        make_arithmetic_steps_task);
  r.add("countdown", "reach a target from given numbers with + - * / (knobs: numbers, max_number, max_target, ops)",
        make_countdown_task);
  r.add("judge_arithmetic",
        "yes/no judge data: 'a+b=<shown>\\nQ: is the answer correct?\\nA:' -> yes/no (knobs: min_digits, max_digits, "
        "operands, ops, wrong_share, criteria, label_noise, content_free_share)",
        make_judge_arithmetic_task);
  r.add("prm_arithmetic",
        "process-reward data: arithmetic_steps prefixes, 'is the last step correct?' -> yes/no (knobs: "
        "min_digits, max_digits, operands, ops, wrong_share, label_noise, content_free_share)",
        make_prm_arithmetic_task);
  r.add("pairwise_arithmetic",
        "pairwise judge data: 'a+b=\\nA: x\\nB: y\\nQ: is A better than B?\\nA:' -> yes/no (knobs: max_digits, "
        "wrong_share, label_noise, content_free_share)",
        make_pairwise_arithmetic_task);
}

}  // namespace keel::data
