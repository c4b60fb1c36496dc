// The values of keel's Jinja interpreter (models/jinja.h) and the Python semantics chat templates
// rely on: truthiness, str() / repr() text, json.dumps text (transformers' tojson), equality and
// ordering. Lists and dicts are shared by reference like Python's (a namespace() is a dict whose
// attributes `set ns.x = ...` assigns in place); dicts keep insertion order.
// Deliberately not here: the template language itself (jinja_parse.cpp, jinja.cpp) and the
// built-in filters / tests / methods (jinja_builtins.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace keel::models::jinja {

/// A failure while rendering, without its location: the renderer adds "<origin>:<line>:" and
/// turns it into a keel::Error.
class RenderError : public std::runtime_error {
 public:
  explicit RenderError(const std::string& msg) : std::runtime_error(msg) {}
};

class Value;
using Array = std::vector<Value>;
/// A Python dict with string keys, in insertion order (small: looked up linearly).
struct Object {
  std::vector<std::pair<std::string, Value>> items;
  bool is_namespace = false;  ///< made by namespace(): attribute assignment allowed
  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value v);
};
/// Call arguments: positional then keyword, as written.
struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  /// The `i`-th positional argument or the keyword `name`, else nullptr.
  const Value* get(size_t i, const char* name) const;
};
struct Function {
  std::string name;
  std::function<Value(const Args&)> fn;
};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kArray, kObject, kFunction };

  Value() = default;  ///< undefined
  Value(bool b) : v_(b) {}
  Value(int i) : v_(static_cast<int64_t>(i)) {}
  Value(int64_t i) : v_(i) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(Array a) : v_(std::make_shared<Array>(std::move(a))) {}
  Value(Object o) : v_(std::make_shared<Object>(std::move(o))) {}
  static Value none() { Value v; v.v_ = None{}; return v; }
  static Value function(std::string name, std::function<Value(const Args&)> fn);
  /// From JSON (null, bool, numbers, strings, arrays, objects in their order).
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  bool is_number() const { return is_int() || is_float() || is_bool(); }  ///< Python: bool is an int
  bool is_string() const { return kind() == Kind::kString; }
  bool is_array() const { return kind() == Kind::kArray; }
  bool is_object() const { return kind() == Kind::kObject; }
  bool is_function() const { return kind() == Kind::kFunction; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const;  ///< int or bool
  double as_float() const;  ///< any number
  const std::string& str() const { return std::get<std::string>(v_); }
  const Array& array() const { return *std::get<std::shared_ptr<Array>>(v_); }
  Object& object() const { return *std::get<std::shared_ptr<Object>>(v_); }
  const Function& function() const { return *std::get<std::shared_ptr<Function>>(v_); }

  /// Python truthiness (undefined is false).
  bool truthy() const;
  /// Python's type name, for error messages ("str", "list", "dict", "NoneType", "undefined" ...).
  std::string type_name() const;

 private:
  struct Undefined {};
  struct None {};
  std::variant<Undefined, None, bool, int64_t, double, std::string, std::shared_ptr<Array>, std::shared_ptr<Object>,
               std::shared_ptr<Function>>
      v_;
};

/// Python str(v) as Jinja prints it: undefined -> "", None -> "None", True -> "True", lists and
/// dicts as their repr.
std::string to_str(const Value& v);
/// Python repr(v) ('quoted' strings).
std::string to_repr(const Value& v);
/// Python float repr: 1.0, 0.1, 1e-05, 1e+16.
std::string float_repr(double d);

struct JsonOptions {
  int indent = -1;                  ///< < 0: one line
  std::string item_sep, key_sep;    ///< "" = json.dumps' defaults for the indent
  bool sort_keys = false;
  bool ensure_ascii = false;
};
/// json.dumps(v, ...) text; throws RenderError for undefined or functions.
std::string to_json(const Value& v, const JsonOptions& o = {});

/// Python ==: numbers by value (1 == 1.0 == True), strings, lists and dicts deeply; undefined
/// equals undefined.
bool equals(const Value& a, const Value& b);
/// Python <: numbers, strings, lists; throws RenderError for other pairs.
bool less(const Value& a, const Value& b);

/// UTF-8 <-> code points, for Python's per-character len / index / slice.
std::u32string utf8_decode(const std::string& s);
std::string utf8_encode(const std::u32string& s);

}  // namespace keel::models::jinja
