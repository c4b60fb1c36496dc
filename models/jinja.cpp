// The renderer of keel's Jinja subset: walks the syntax tree (jinja_ast.h) with Jinja2's scoping
// (a for loop's body gets a fresh scope each iteration, so `set` inside it is invisible after it
// and in the next iteration; namespace() attributes are how templates carry state out) and
// Python's operator semantics (`and` / `or` return an operand, + on str / list / numbers, ~
// stringifies). Errors carry the line of the innermost expression being evaluated.
#include "models/jinja.h"

#include <cmath>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "models/jinja_ast.h"
#include "models/jinja_builtins.h"

namespace keel::models::jinja {

namespace {

// A short source-like name of an expression for "is undefined" messages: message.tool_calls.
std::string describe(const Expr& e) {
  switch (e.kind) {
    case Expr::Kind::kName: return e.name;
    case Expr::Kind::kAttr: return describe(*e.args[0]) + "." + e.name;
    case Expr::Kind::kItem: return describe(*e.args[0]) + "[...]";
    case Expr::Kind::kCall: return describe(*e.args[0]) + "(...)";
    case Expr::Kind::kFilter: return describe(*e.args[0]) + " | " + e.name;
    case Expr::Kind::kLiteral: return to_repr(e.value);
    default: return "the expression";
  }
}

Value arithmetic(const std::string& op, const Value& a, const Value& b) {
  auto bad = [&]() -> Value {
    throw RenderError("unsupported operand types for " + op + ": " + a.type_name() + " and " + b.type_name());
  };
  if (op == "+") {
    if (a.is_string() && b.is_string()) return a.str() + b.str();
    if (a.is_array() && b.is_array()) {
      Array out = a.array();
      out.insert(out.end(), b.array().begin(), b.array().end());
      return out;
    }
  }
  if (op == "*" && (a.is_string() || b.is_string()) && (a.is_int() || b.is_int())) {
    const std::string& s = a.is_string() ? a.str() : b.str();
    const int64_t n = a.is_int() ? a.as_int() : b.as_int();
    if (n > 0 && s.size() * static_cast<uint64_t>(n) > (uint64_t{1} << 26))
      throw RenderError("str * int: the result would exceed 64 MiB");
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += s;
    return out;
  }
  if (!a.is_number() || !b.is_number()) return bad();
  const bool ints = !a.is_float() && !b.is_float();
  const int64_t x = ints ? a.as_int() : 0, y = ints ? b.as_int() : 0;
  const double fx = a.as_float(), fy = b.as_float();
  if (op == "+") return ints ? Value(x + y) : Value(fx + fy);
  if (op == "-") return ints ? Value(x - y) : Value(fx - fy);
  if (op == "*") return ints ? Value(x * y) : Value(fx * fy);
  if (op == "/") {
    if (fy == 0) throw RenderError("division by zero");
    return fx / fy;
  }
  if (op == "//" || op == "%") {
    if (fy == 0) throw RenderError("integer division or modulo by zero");
    if (ints) {  // Python floors towards negative infinity
      int64_t q = x / y;
      if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
      return op == "//" ? Value(q) : Value(x - q * y);
    }
    const double q = std::floor(fx / fy);
    return op == "//" ? Value(q) : Value(fx - q * fy);
  }
  if (op == "**") {
    if (ints && y >= 0) {  // square and multiply (wraps on overflow, where Python grows)
      uint64_t r = 1, base = static_cast<uint64_t>(x);
      for (uint64_t e = static_cast<uint64_t>(y); e; e >>= 1, base *= base)
        if (e & 1) r *= base;
      return static_cast<int64_t>(r);
    }
    return std::pow(fx, fy);
  }
  return bad();
}

class Renderer {
 public:
  Renderer(const std::string& origin, const Value& context) : origin_(origin) {
    scopes_.emplace_back();
    for (const auto& [k, v] : context.object().items) scopes_.back()[k] = v;
  }

  std::string run(const Body& body) {
    exec(body);
    return std::move(out_);
  }

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow exec(const Body& body) {
    for (const Node& n : body) {
      const Flow f = exec(n);
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

  Flow exec(const Node& n) {
    line_ = n.line;
    try {
      return exec_node(n);
    } catch (const RenderError& e) {
      fail("{}:{}: {}", origin_, line_, e.what());
    }
  }

  Flow exec_node(const Node& n) {
    switch (n.kind) {
      case Node::Kind::kText: out_ += n.text; return Flow::kNormal;
      case Node::Kind::kOutput: out_ += to_str(eval(*n.expr)); return Flow::kNormal;
      case Node::Kind::kIf:
        for (const auto& [cond, body] : n.branches)
          if (eval(*cond).truthy()) return exec(body);
        return exec(n.else_body);
      case Node::Kind::kFor: return exec_for(n);
      case Node::Kind::kSet: assign(n, eval(*n.expr)); return Flow::kNormal;
      case Node::Kind::kSetBlock: {
        std::string saved = std::move(out_);
        out_.clear();
        exec(n.body);
        std::string captured = std::move(out_);
        out_ = std::move(saved);
        scopes_.back()[n.targets[0]] = std::move(captured);
        return Flow::kNormal;
      }
      case Node::Kind::kBreak: return Flow::kBreak;
      case Node::Kind::kContinue: return Flow::kContinue;
    }
    return Flow::kNormal;
  }

  void bind(const std::vector<std::string>& targets, const Value& v) {
    if (targets.size() == 1) {
      scopes_.back()[targets[0]] = v;
      return;
    }
    if (!v.is_array() || v.array().size() != targets.size())
      throw RenderError("cannot unpack " + v.type_name() + " into " + std::to_string(targets.size()) + " names");
    for (size_t i = 0; i < targets.size(); ++i) scopes_.back()[targets[i]] = v.array()[i];
  }

  void assign(const Node& n, Value v) {
    if (n.attr.empty()) return bind(n.targets, v);
    const Value ns = lookup(n.targets[0]);
    if (!ns.is_object() || !ns.object().is_namespace)
      throw RenderError("cannot assign attribute '" + n.attr + "' of '" + n.targets[0] + "' (" + ns.type_name() +
                        "): only a namespace() takes attributes");
    ns.object().set(n.attr, std::move(v));
  }

  Flow exec_for(const Node& n) {
    const Array all = iterate(eval(*n.expr));
    Array items;
    if (n.filter) {  // the loop filter sees the loop variables but no `loop`
      scopes_.emplace_back();
      for (const Value& v : all) {
        bind(n.targets, v);
        if (eval(*n.filter).truthy()) items.push_back(v);
      }
      scopes_.pop_back();
    } else {
      items = all;
    }
    if (items.empty()) return exec(n.else_body);
    const int64_t len = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < len; ++i) {
      scopes_.emplace_back();
      bind(n.targets, items[static_cast<size_t>(i)]);
      Object loop;
      loop.items = {{"index", i + 1},
                    {"index0", i},
                    {"revindex", len - i},
                    {"revindex0", len - i - 1},
                    {"first", i == 0},
                    {"last", i == len - 1},
                    {"length", len},
                    {"previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value()},
                    {"nextitem", i + 1 < len ? items[static_cast<size_t>(i + 1)] : Value()},
                    {"cycle", Value::function("loop.cycle", [i](const Args& a) {
                       if (a.positional.empty()) throw RenderError("loop.cycle needs at least one value");
                       return a.positional[static_cast<size_t>(i) % a.positional.size()];
                     })}};
      scopes_.back()["loop"] = Value(std::move(loop));
      const Flow f = exec(n.body);
      scopes_.pop_back();
      if (f == Flow::kBreak) break;
    }
    return Flow::kNormal;
  }

  Value lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      const auto found = it->find(name);
      if (found != it->end()) return found->second;
    }
    return global(name);
  }

  Args eval_args(const Expr& e, size_t first) {
    Args a;
    for (size_t i = first; i < e.args.size(); ++i) a.positional.push_back(eval(*e.args[i]));
    for (const auto& [k, v] : e.kwargs) a.keyword.emplace_back(k, eval(*v));
    return a;
  }

  Value defined(const Expr& e) {
    Value v = eval(e);
    if (v.is_undefined()) throw RenderError("'" + describe(e) + "' is undefined");
    return v;
  }

  Value eval(const Expr& e) {
    line_ = e.line;
    switch (e.kind) {
      case Expr::Kind::kLiteral: return e.value;
      case Expr::Kind::kName: return lookup(e.name);
      case Expr::Kind::kList: {
        Array a;
        for (const auto& x : e.args) a.push_back(eval(*x));
        return a;
      }
      case Expr::Kind::kDict: {
        Object o;
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          const Value k = eval(*e.args[i]);
          if (!k.is_string()) throw RenderError("dict keys must be strings in keel's Jinja subset");
          o.set(k.str(), eval(*e.args[i + 1]));
        }
        return o;
      }
      case Expr::Kind::kAttr: {
        const Value obj = eval(*e.args[0]);
        if (obj.is_undefined()) throw RenderError("'" + describe(*e.args[0]) + "' is undefined (reading ." + e.name + ")");
        return get_attr(obj, e.name);
      }
      case Expr::Kind::kItem: {
        const Value obj = eval(*e.args[0]);
        if (obj.is_undefined()) throw RenderError("'" + describe(*e.args[0]) + "' is undefined (indexing it)");
        return get_item(obj, eval(*e.args[1]));
      }
      case Expr::Kind::kSlice: {
        const Value obj = defined(*e.args[0]);
        auto part = [&](const ExprPtr& p) { return p ? eval(*p) : Value(); };
        return slice(obj, part(e.args[1]), part(e.args[2]), part(e.args[3]));
      }
      case Expr::Kind::kCall: return call(e);
      case Expr::Kind::kFilter: {
        const Value v = eval(*e.args[0]);
        return call_filter(e.name, v, eval_args(e, 1));
      }
      case Expr::Kind::kTest: {
        const Value v = eval(*e.args[0]);
        return call_test(e.name, v, eval_args(e, 1)) != e.negated;
      }
      case Expr::Kind::kUnary: {
        const Value v = eval(*e.args[0]);
        if (e.name == "not") return !v.truthy();
        if (!v.is_number()) throw RenderError("bad operand type for unary " + e.name + ": " + v.type_name());
        if (e.name == "+") return v.is_float() ? Value(v.as_float()) : Value(v.as_int());
        return v.is_float() ? Value(-v.as_float()) : Value(-v.as_int());
      }
      case Expr::Kind::kAnd: {
        Value a = eval(*e.args[0]);
        return a.truthy() ? eval(*e.args[1]) : a;
      }
      case Expr::Kind::kOr: {
        Value a = eval(*e.args[0]);
        return a.truthy() ? a : eval(*e.args[1]);
      }
      case Expr::Kind::kCond:
        if (eval(*e.args[1]).truthy()) return eval(*e.args[0]);
        return e.args[2] ? eval(*e.args[2]) : Value();
      case Expr::Kind::kBinary: return binary(e);
    }
    return Value();
  }

  Value call(const Expr& e) {
    const Value f = eval(*e.args[0]);
    if (!f.is_function()) {
      if (f.is_undefined())
        throw RenderError("'" + describe(*e.args[0]) + "' is undefined or not a function in keel's Jinja subset");
      throw RenderError("'" + describe(*e.args[0]) + "' (" + f.type_name() + ") is not callable");
    }
    Args a = eval_args(e, 1);
    line_ = e.line;
    return f.function().fn(a);
  }

  Value binary(const Expr& e) {
    const std::string& op = e.name;
    const Value a = eval(*e.args[0]);
    const Value b = eval(*e.args[1]);
    line_ = e.line;
    if (op == "~") return to_str(a) + to_str(b);
    if (op == "==") return equals(a, b);
    if (op == "!=") return !equals(a, b);
    if (op == "<") return less(a, b);
    if (op == ">") return less(b, a);
    if (op == "<=") return !less(b, a);
    if (op == ">=") return !less(a, b);
    if (op == "in") return contains(b, a);
    if (op == "not in") return !contains(b, a);
    if (a.is_undefined()) throw RenderError("'" + describe(*e.args[0]) + "' is undefined (in '" + op + "')");
    if (b.is_undefined()) throw RenderError("'" + describe(*e.args[1]) + "' is undefined (in '" + op + "')");
    return arithmetic(op, a, b);
  }

  const std::string& origin_;
  std::vector<std::unordered_map<std::string, Value>> scopes_;
  std::string out_;
  int line_ = 0;
};

}  // namespace

Template Template::parse(const std::string& source, const std::string& origin) {
  Template t;
  t.program_ = parse_program(source, origin, LexOptions{});
  t.origin_ = origin;
  return t;
}

std::string Template::render(const nlohmann::ordered_json& context) const {
  if (!context.is_object()) fail("{}: the template variables must be a JSON object", origin_);
  const Value vars = Value::from_json(context);
  return Renderer(origin_, vars).run(program_->body);
}

}  // namespace keel::models::jinja
