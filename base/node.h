// A YAML document as keel sees it: a small tree of maps / sequences / scalars, each node carrying
// where it came from (file:line, or the command-line override that set it). yaml-cpp stays inside
// node.cpp; the rest of keel reads configs through config::Reader (reader.h).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace keel::config {

/// Where a value came from, for error messages: "grpo.yaml:14" or "override learner.lr=abc".
struct Source {
  std::string file;      ///< display name of the file ("" for built-in defaults)
  int line = 0;          ///< 1-based; 0 when unknown
  std::string override;  ///< the "a.b=c" argument when the value came from the command line

  /// "grpo.yaml:14", "override learner.lr=abc", "grpo.yaml" or "<defaults>".
  std::string str() const;
};

class Node {
 public:
  enum class Kind { kNull, kScalar, kSeq, kMap };

  Node() = default;
  static Node scalar(std::string v, Source src, bool quoted = false);
  static Node null(Source src);
  static Node map(Source src);
  static Node seq(Source src);

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::kNull; }
  bool is_scalar() const { return kind_ == Kind::kScalar; }
  bool is_map() const { return kind_ == Kind::kMap; }
  bool is_seq() const { return kind_ == Kind::kSeq; }
  /// Scalar text (only for kScalar).
  const std::string& text() const { return text_; }
  /// True when the scalar was quoted in YAML ("1" is then a string, not a number).
  bool quoted() const { return quoted_; }
  const Source& source() const { return src_; }
  void set_source(Source src) { src_ = std::move(src); }
  /// "a map", "a list", "a value", "nothing" — for "expected X, got Y" messages.
  std::string kind_name() const;

  // Maps keep insertion order.
  const std::vector<std::pair<std::string, Node>>& entries() const { return map_; }
  const Node* find(const std::string& key) const;
  Node* find(const std::string& key);
  /// Inserts or replaces.
  Node& set(const std::string& key, Node value);

  const std::vector<Node>& items() const { return seq_; }
  std::vector<Node>& items() { return seq_; }
  void push_back(Node n) { seq_.push_back(std::move(n)); }

 private:
  Kind kind_ = Kind::kNull;
  std::string text_;
  bool quoted_ = false;
  Source src_;
  std::vector<std::pair<std::string, Node>> map_;
  std::vector<Node> seq_;
};

/// Where the value at a dotted path ("reward.components.1.params.input"; list items by index) came
/// from: its own source, else that of its deepest ancestor present in the tree (a defaulted key
/// points at the section that would hold it).
Source source_of(const Node& root, const std::string& path);

/// Parses a YAML file. A missing/unreadable file or a YAML syntax error throws keel::Error naming
/// the file (and line). `display_name` is what messages call the file (default: the path).
Node parse_yaml_file(const std::string& path, const std::string& display_name = "");
/// Parses YAML text (tests, overrides); `file` names it in messages.
Node parse_yaml_string(const std::string& text, const std::string& file);

/// Applies one "a.b.c=value" override (list items by index: "reward.components.0.weight=2").
/// The value is parsed as YAML, so "[1, 2]" is a list and "'3'" a string. Malformed overrides throw
/// keel::Error naming the argument.
void apply_override(Node& root, const std::string& arg);

}  // namespace keel::config
