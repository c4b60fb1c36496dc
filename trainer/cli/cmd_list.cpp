// keel list [what]: every registered name with a one-line description.
#include <iostream>

#include "trainer/cli/catalog.h"
#include "trainer/cli/commands.h"
#include "base/error.h"

namespace keel::cli {

int run_list(const ListArgs& a) {
  const Catalog cat = builtin_catalog();
  if (a.what != "all" && !cat.count(a.what)) {
    std::string kinds;
    for (const auto& [k, v] : cat) kinds += k + ", ";
    fail("list: unknown kind '{}' (known: {}all)", a.what, kinds);
  }
  for (const auto& [kind, entries] : cat) {
    if (a.what != "all" && a.what != kind) continue;
    std::cout << kind << ":\n";
    if (entries.empty()) std::cout << "  (none registered yet)\n";
    size_t width = 0;
    for (const auto& e : entries) width = std::max(width, e.name.size());
    for (const auto& e : entries) std::cout << fmt::format("  {:<{}}  {}\n", e.name, width, e.description);
  }
  return 0;
}

}  // namespace keel::cli
