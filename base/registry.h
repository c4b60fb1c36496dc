// Registry<Fn, Traits>: name -> (description, factory or function, traits), keyed by the YAML name.
// An object owned by main or by a test fixture, filled by explicit register_builtin_*() calls —
// never by static self-registration (linkers drop those objects from static libraries).
// Traits are what the rest of keel needs to know about an entry without calling it (an
// estimator's grouping and the inputs it requires, a learner's models ...): they are declared in
// the registration line, beside the code, never in string lists elsewhere.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/error.h"

namespace keel {

/// Traits of a registry whose entries need none.
struct NoTraits {};

template <typename Fn, typename Traits = NoTraits>
class Registry {
 public:
  struct Entry {
    std::string description;  ///< one line, shown by `keel list`
    Fn fn;
    Traits traits;
  };

  /// `kind` names the registry in error messages ("advantage estimator", "reward scheme", ...).
  explicit Registry(std::string kind) : kind_(std::move(kind)) {}

  /// Adds an entry; a duplicate name is a programming error and throws.
  void add(const std::string& name, std::string description, Fn fn, Traits traits = {}) {
    if (entries_.count(name)) fail("duplicate {} '{}' registered", kind_, name);
    entries_.emplace(name, Entry{std::move(description), std::move(fn), std::move(traits)});
  }

  bool contains(const std::string& name) const { return entries_.count(name) != 0; }

  /// Looks a name up; an unknown name throws and lists every known one.
  const Entry& get(const std::string& name) const {
    auto it = entries_.find(name);
    if (it == entries_.end()) fail("unknown {} '{}' (known: {})", kind_, name, known());
    return it->second;
  }

  /// Sorted names.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [k, v] : entries_) out.push_back(k);
    return out;
  }

  /// "a, b, c" — for error messages.
  std::string known() const {
    std::string s;
    for (const auto& [k, v] : entries_) s += (s.empty() ? "" : ", ") + k;
    return s.empty() ? "none registered" : s;
  }

  const std::string& kind() const { return kind_; }
  size_t size() const { return entries_.size(); }

 private:
  std::string kind_;
  std::map<std::string, Entry> entries_;
};

}  // namespace keel
