// config::Reader — reads one YAML section into a plain struct, field by field, and records what it
// read. The same read function therefore (1) loads a config, (2) reports every bad value with its
// file:line and YAML path, (3) flags unknown keys, (4) prints the resolved config and (5) writes
// configs/reference.yaml from the struct defaults (read an empty document).
//
//   void read(Reader& r, LearnerConfig& c) {
//     r.field("lr", c.lr, "peak learning rate").gt(0);
//     r.field("clip_high", c.clip_high, "upper clip").ge(0);
//     if (c.clip_high < c.clip_low) r.error("clip_high", fmt::format("must be >= ..."));
//   }
//
// Errors are collected in Diagnostics and thrown together by the loader (all at once).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/node.h"

namespace keel::config {

/// Collected config errors, each already formatted "<file>:<line>: <path>: <message>".
class Diagnostics {
 public:
  void error(const Source& src, const std::string& path, const std::string& msg);
  bool ok() const { return entries_.empty(); }
  /// The messages in file order (file errors by line, then command-line overrides).
  std::vector<std::string> errors() const;
  /// Throws keel::Error with every message, one per line, when there is at least one.
  void throw_if_any() const;

 private:
  struct Item {
    Source src;
    std::string text;
  };
  std::vector<Item> entries_;
};

/// What print-config and the reference generator emit: a tree of keys, values and one-line docs.
struct Doc {
  std::string key;         ///< "" for a list item
  std::string value;       ///< YAML text for leaves
  std::string doc;         ///< one-line comment
  std::string constraint;  ///< "> 0", "one of: a|b" ...
  enum class Kind { kLeaf, kSection, kList, kItem } kind = Kind::kLeaf;
  std::vector<Doc> children;
};
/// Renders a Doc tree as commented YAML.
std::string render_yaml(const Doc& root, bool with_comments);

// Value conversion, one overload per supported field type (defined in reader.cpp).
// Return "" on success or the "expected ..." message.
std::string parse_value(const Node& n, bool& out);
std::string parse_value(const Node& n, int& out);
std::string parse_value(const Node& n, int64_t& out);
std::string parse_value(const Node& n, double& out);
std::string parse_value(const Node& n, std::string& out);
std::string parse_value(const Node& n, std::vector<double>& out);
std::string parse_value(const Node& n, std::vector<int64_t>& out);
std::string parse_value(const Node& n, std::vector<std::string>& out);
std::string format_value(bool v);
std::string format_value(int v);
std::string format_value(int64_t v);
std::string format_value(double v);
std::string format_value(const std::string& v);
std::string format_value(const std::vector<double>& v);
std::string format_value(const std::vector<int64_t>& v);
std::string format_value(const std::vector<std::string>& v);

class Reader;

/// Returned by Reader::field; chains range checks on the value just read. Each check also adds its
/// text to the reference documentation.
template <typename T>
class FieldRef {
 public:
  FieldRef(Reader& r, std::string key, T& value, Doc* doc, bool present)
      : r_(r), key_(std::move(key)), value_(value), doc_(doc), present_(present) {}

  FieldRef& gt(double lo);
  FieldRef& ge(double lo);
  FieldRef& lt(double hi);
  FieldRef& le(double hi);
  /// For strings: the value must be one of `choices`; `what` names the kind in the message.
  FieldRef& one_of(const std::vector<std::string>& choices, const std::string& what = "");
  FieldRef& nonempty();
  bool present() const { return present_; }

 private:
  void constraint(const std::string& text);
  Reader& r_;
  std::string key_;
  T& value_;
  Doc* doc_;
  bool present_;
};

class Reader {
 public:
  /// `node` may be null or a null node (section absent: every field keeps its default).
  /// `path` is the YAML path of this section ("" at the root). `out` (optional) receives the
  /// resolved values and docs.
  Reader(const Node* node, std::string path, Diagnostics& diag, Doc* out = nullptr);

  /// Reads an optional key into `value` (which holds the default on entry).
  template <typename T>
  FieldRef<T> field(const std::string& key, T& value, const std::string& doc) {
    const Node* n = take(key);
    const bool present = n && !n->is_null();
    if (present) {
      T parsed = value;
      const std::string err = parse_value(*n, parsed);
      if (err.empty()) value = parsed;
      else error_at(n->source(), key, err);
    } else if (n && n->is_null()) {
      error_at(n->source(), key, fmt::format("expected a value, got nothing (omit the key for the default {})", format_value(value)));
    }
    Doc* d = record_leaf(key, format_value(value), doc);
    return FieldRef<T>(*this, key, value, d, present);
  }

  /// Reads a key that must be present.
  template <typename T>
  FieldRef<T> required(const std::string& key, T& value, const std::string& doc) {
    if (!has(key)) error(key, "missing required key");
    return field(key, value, doc + " (required)");
  }

  /// A nested section; `fn` reads it. Unknown keys inside are reported after `fn` returns.
  void section(const std::string& key, const std::string& doc, const std::function<void(Reader&)>& fn);
  /// A list of sections; `fn(item_reader, index)` reads each item.
  void list(const std::string& key, const std::string& doc,
            const std::function<void(Reader&, size_t)>& fn);

  /// Whether the key is present (and not null) in this section.
  bool has(const std::string& key) const;
  /// Takes a raw child node (marks it known); nullptr when absent.
  const Node* take(const std::string& key);
  /// Reports an error located at `key` (its line if present, else this section's line).
  void error(const std::string& key, const std::string& msg);
  /// Reports an error located at an explicit source.
  void error_at(const Source& src, const std::string& key, const std::string& msg);
  /// Reports keys that no field/section/take asked for. Called by section()/list() and the loader.
  void finish();

  /// "learner.lr" for key "lr" in section "learner".
  std::string path_of(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  const std::string& path() const { return path_; }
  Diagnostics& diagnostics() { return diag_; }
  Doc* out() { return out_; }
  const Source& source() const { return src_; }
  /// The section's node (nullptr when the section is absent).
  const Node* node() const { return node_; }

 private:
  Doc* record_leaf(const std::string& key, std::string value, const std::string& doc);

  const Node* node_;
  std::string path_;
  Diagnostics& diag_;
  Doc* out_;
  Source src_;
  std::vector<std::string> taken_;
};

// ---- FieldRef checks ---------------------------------------------------------------------------

std::string format_number(double v);

/// A bound as the field's type prints it: "1" for integer fields, "1.0" for numbers.
template <typename T>
std::string bound_text(double b) {
  if constexpr (std::is_integral_v<T> || std::is_same_v<T, std::vector<int64_t>>) {
    if (b == static_cast<double>(static_cast<int64_t>(b))) return std::to_string(static_cast<int64_t>(b));
  }
  return format_number(b);
}

template <typename T>
void FieldRef<T>::constraint(const std::string& text) {
  if (doc_) doc_->constraint += (doc_->constraint.empty() ? "" : ", ") + text;
}

#define KEEL_FIELD_NUMERIC_CHECK(NAME, OP, TEXT)                                                    \
  template <typename T>                                                                             \
  FieldRef<T>& FieldRef<T>::NAME(double bound) {                                                     \
    constraint(std::string(TEXT) + " " + bound_text<T>(bound));                                     \
    if constexpr (std::is_arithmetic_v<T>) {                                                         \
      if (!(static_cast<double>(value_) OP bound))                                                   \
        r_.error(key_, fmt::format("must be {} {}, got {}", TEXT, bound_text<T>(bound), format_value(value_))); \
    } else {                                                                                         \
      for (const auto& x : value_)                                                                   \
        if (!(static_cast<double>(x) OP bound)) {                                                    \
          r_.error(key_, fmt::format("every item must be {} {}, got {}", TEXT, bound_text<T>(bound), format_value(x))); \
          break;                                                                                     \
        }                                                                                            \
    }                                                                                                \
    return *this;                                                                                    \
  }
KEEL_FIELD_NUMERIC_CHECK(gt, >, ">")
KEEL_FIELD_NUMERIC_CHECK(ge, >=, ">=")
KEEL_FIELD_NUMERIC_CHECK(lt, <, "<")
KEEL_FIELD_NUMERIC_CHECK(le, <=, "<=")
#undef KEEL_FIELD_NUMERIC_CHECK

std::string check_choice(const std::string& value, const std::vector<std::string>& choices,
                         const std::string& what);

template <typename T>
FieldRef<T>& FieldRef<T>::one_of(const std::vector<std::string>& choices, const std::string& what) {
  std::string all;
  for (const auto& c : choices) all += (all.empty() ? "" : "|") + c;
  constraint("one of " + all);
  if constexpr (std::is_same_v<T, std::string>) {
    const std::string err = check_choice(value_, choices, what);
    if (!err.empty()) r_.error(key_, err);
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    for (const auto& v : value_) {
      const std::string err = check_choice(v, choices, what);
      if (!err.empty()) r_.error(key_, err);
    }
  }
  return *this;
}

template <typename T>
FieldRef<T>& FieldRef<T>::nonempty() {
  if (value_.empty()) r_.error(key_, "must not be empty");
  return *this;
}

}  // namespace keel::config
