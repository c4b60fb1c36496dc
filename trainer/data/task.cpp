#include "trainer/data/task.h"

namespace keel::data {

std::unique_ptr<Task> make_arithmetic_task(config::Reader& r);
std::unique_ptr<Task> make_countdown_task(config::Reader& r);

void register_builtin_tasks(TaskRegistry& r) {
  r.add("arithmetic", "multi-digit integer arithmetic 'a+b=' (knobs: min_digits, max_digits, operands, ops)",
        make_arithmetic_task);
  r.add("countdown", "reach a target from given numbers with + - * / (knobs: numbers, max_number, max_target, ops)",
        make_countdown_task);
}

}  // namespace keel::data
