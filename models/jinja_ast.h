// The syntax tree of keel's Jinja subset, shared by the parser (jinja_parse.cpp) and the renderer
// (jinja.cpp). Internal to the interpreter: users see models/jinja.h only. Every node keeps the
// template line it starts on so that errors name it.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/jinja_value.h"

namespace keel::models::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,  // value
    kName,     // name
    kList,     // args: the items ([a, b] and (a, b) tuples alike)
    kDict,     // args: key, value, key, value ...
    kAttr,     // args[0].name
    kItem,     // args[0][args[1]]
    kSlice,    // args[0][args[1]:args[2]:args[3]] (null = omitted)
    kCall,     // args[0](args[1..], kwargs)
    kFilter,   // args[0] | name(args[1..], kwargs)
    kTest,     // args[0] is [not] name(args[1..])   (negated)
    kUnary,    // name in {"-", "+", "not"} applied to args[0]
    kBinary,   // args[0] name args[1]: + - * / // % ** ~ == != < <= > >= in "not in"
    kAnd,      // args[0] and args[1]
    kOr,       // args[0] or args[1]
    kCond,     // args[0] if args[1] else args[2] (args[2] null = undefined)
  };
  Kind kind = Kind::kLiteral;
  int line = 0;
  Value value;         // kLiteral
  std::string name;    // kName, kAttr, kFilter, kTest (name), kUnary / kBinary (operator)
  bool negated = false;  // kTest: "is not"
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;  // kCall, kFilter, kTest
};

struct Node;
using Body = std::vector<Node>;

struct Node {
  enum class Kind {
    kText,      // text
    kOutput,    // {{ expr }}
    kIf,        // branches (cond, body) ...; else_body
    kFor,       // for targets in expr [if filter]: body [else else_body]
    kSet,       // set targets = expr | set targets[0].attr = expr
    kSetBlock,  // set targets[0] %} body {% endset
    kBreak,
    kContinue,
  };
  Kind kind = Kind::kText;
  int line = 0;
  std::string text;                  // kText
  ExprPtr expr;                      // kOutput, kFor (iterable), kSet (value)
  std::vector<std::string> targets;  // kFor, kSet, kSetBlock: names (several = unpacking)
  std::string attr;                  // kSet of a namespace attribute: targets[0].attr
  ExprPtr filter;                    // kFor: the loop filter (may be null)
  std::vector<std::pair<ExprPtr, Body>> branches;  // kIf
  Body body, else_body;
};

/// What the parser produces: the template's statements.
struct Program {
  Body body;
};

/// Parser options: transformers renders chat templates with trim_blocks and lstrip_blocks on and
/// keep_trailing_newline off (Jinja's default), so these defaults reproduce apply_chat_template.
struct LexOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

/// Parses `source`; throws keel::Error "<origin>:<line>: <what>" for a syntax error or a
/// construct outside the subset (unknown tag, filter or test).
std::unique_ptr<Program> parse_program(const std::string& source, const std::string& origin, const LexOptions& o);

/// Whether a filter / test of this name exists (jinja_builtins.cpp); the parser refuses others.
bool has_filter(const std::string& name);
bool has_test(const std::string& name);

}  // namespace keel::models::jinja
