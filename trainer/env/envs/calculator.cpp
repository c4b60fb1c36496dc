// Environment and task "calculator": multi-step arithmetic word problems with a calculator tool.
// Problem: "4 bags of 17 nuts, 5 lost. How many?" (templates over a*b±c, knobs below).
// The agent may call the tool in its chat template's format (tool_call.h), e.g. for Qwen / plain
//   <tool_call>
//   {"name": "calc", "arguments": {"expression": "4*17-5"}}
//   </tool_call>
// and sees the result ("63") as a tool observation; a turn without a tool call is the answer: the
// first integer in it is compared with the gold answer (done; reward 1 / 0, success 1 / 0).
// A malformed call (bad JSON, unknown tool, an expression that does not parse) is an observation
// saying what is wrong (info tool_error = 1); an answer turn without a number is invalid
// (invalid_action = 1); both let the episode go on.
// Deliberately not here: the turn loop (trainer/env/episodes.h).
#include <cctype>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/reader.h"
#include "trainer/env/environment.h"
#include "trainer/env/tool_call.h"

namespace keel::env {

namespace {

struct CalcOptions {
  int64_t max_a = 9, min_b = 10, max_b = 99, max_c = 20;
  std::string tool_format = "qwen";  ///< qwen | llama3: the format the expert writes and the env parses
  /// Share of episodes (drawn from the episode's seed) whose expert answers at once, without the
  /// tool: an SFT warm start that calls the tool only sometimes, which RL then has to learn to do.
  double expert_direct_share = 0.0;
};

void read_calc_options(config::Reader& r, CalcOptions& o) {
  r.field("max_a", o.max_a, "largest count a (from 2)").ge(2).le(99);
  r.field("min_b", o.min_b, "smallest size b").ge(1);
  r.field("max_b", o.max_b, "largest size b").ge(1).le(999);
  r.field("max_c", o.max_c, "largest change c (from 1)").ge(1).le(999);
  r.field("tool_format", o.tool_format, "tool-call format (the chat template's: qwen for plain / chatml, llama3)")
      .one_of({"qwen", "llama3"}, "tool format");
  r.field("expert_direct_share", o.expert_direct_share,
          "share of expert episodes that answer without calling the tool (environment param)").ge(0).le(1);
  if (o.min_b > o.max_b) r.error("min_b", fmt::format("min_b {} must be <= max_b {}", o.min_b, o.max_b));
}

ToolFormat format_of(const std::string& s) { return s == "llama3" ? ToolFormat::kLlama3 : ToolFormat::kQwen; }

/// Integer expression evaluator: + - * / ( ), non-negative integer literals, unary minus; exact
/// division only. Throws std::invalid_argument with what is wrong.
class Expr {
 public:
  explicit Expr(std::string_view s) : s_(s) {}
  int64_t eval() {
    const int64_t v = sum();
    skip();
    if (i_ != s_.size()) throw std::invalid_argument(fmt::format("unexpected '{}' at {}", s_[i_], i_));
    return v;
  }

 private:
  void skip() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool eat(char c) {
    skip();
    if (i_ < s_.size() && s_[i_] == c) return ++i_, true;
    return false;
  }
  static int64_t checked(__int128 v) {
    if (v > INT64_MAX / 2 || v < INT64_MIN / 2) throw std::invalid_argument("number too large");
    return static_cast<int64_t>(v);
  }
  int64_t sum() {
    int64_t v = product();
    for (;;) {
      if (eat('+')) v = checked(static_cast<__int128>(v) + product());
      else if (eat('-')) v = checked(static_cast<__int128>(v) - product());
      else return v;
    }
  }
  int64_t product() {
    int64_t v = unary();
    for (;;) {
      if (eat('*')) {
        v = checked(static_cast<__int128>(v) * unary());
      } else if (eat('/')) {
        const int64_t d = unary();
        if (d == 0) throw std::invalid_argument("division by zero");
        if (v % d != 0) throw std::invalid_argument("inexact division");
        v /= d;
      } else {
        return v;
      }
    }
  }
  int64_t unary() {
    if (eat('-')) return -unary();
    if (eat('(')) {
      if (++depth_ > 32) throw std::invalid_argument("nested too deeply");
      const int64_t v = sum();
      --depth_;
      if (!eat(')')) throw std::invalid_argument("missing ')'");
      return v;
    }
    skip();
    const size_t b = i_;
    while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    if (b == i_) throw std::invalid_argument(i_ < s_.size() ? fmt::format("unexpected '{}'", s_[i_]) : "missing number");
    if (i_ - b > 12) throw std::invalid_argument("number too large");
    return std::stoll(std::string(s_.substr(b, i_ - b)));
  }
  std::string_view s_;
  size_t i_ = 0;
  int depth_ = 0;
};

/// The first (optionally signed) integer in `s`, if any.
std::optional<int64_t> first_integer(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) continue;
    size_t e = i;
    while (e < s.size() && std::isdigit(static_cast<unsigned char>(s[e]))) ++e;
    if (e - i > 15) return std::nullopt;
    const int64_t v = std::stoll(std::string(s.substr(i, e - i)));
    return i > 0 && s[i - 1] == '-' ? -v : v;
  }
  return std::nullopt;
}

struct Templates {
  const char* text;  // {a} {b} {c}
  char op;           // a*b op c
};
constexpr Templates kTemplates[] = {
    {"{} bags of {} nuts, {} lost. How many?", '-'},
    {"{} rows of {} seats, {} more. How many?", '+'},
    {"{} boxes of {} pens, {} sold. How many?", '-'},
    {"{} teams of {} kids, {} join. How many?", '+'},
};

class CalculatorEnv : public Environment {
 public:
  explicit CalculatorEnv(const CalcOptions& o) : fmt_(format_of(o.tool_format)), direct_share_(o.expert_direct_share) {}

  std::string reset(const data::PromptRecord& r, uint64_t seed) override {
    const auto it = r.meta.find("expression");
    if (it == r.meta.end()) fail("{}: calculator: the record has no meta 'expression'", r.id);
    expression_ = nlohmann::json::parse(it->second).get<std::string>();
    answer_ = std::stoll(r.answer);
    called_ = false;
    data::SplitMix64 rng(seed ^ 0xD1EC7ull);
    direct_ = static_cast<double>(rng.next() >> 11) * 0x1.0p-53 < direct_share_;
    return "";
  }

  StepResult step(const std::string& action) override {
    StepResult out;
    out.info = {{"success", 0.0}, {"tool_calls", 0.0}, {"tool_error", 0.0}, {"invalid_action", 0.0}};
    const ParsedTurn p = parse_tool_calls(action, fmt_);
    if (!p.error.empty()) {
      out.info["tool_error"] = 1;
      out.observation = "error: " + p.error;
      return out;
    }
    if (!p.calls.empty()) {
      out.info["tool_calls"] = static_cast<double>(p.calls.size());
      std::string results;
      for (const auto& c : p.calls) {
        std::string res;
        if (c.name != "calc") {
          res = "error: unknown tool '" + c.name + "' (tools: calc)";
          out.info["tool_error"] = 1;
        } else {
          const auto args = nlohmann::json::parse(c.arguments);
          const auto e = args.find("expression");
          if (e == args.end() || !e->is_string()) {
            res = "error: calc needs {\"expression\": string}";
            out.info["tool_error"] = 1;
          } else {
            try {
              res = std::to_string(Expr(e->get<std::string>()).eval());
              called_ = true;
            } catch (const std::invalid_argument& ex) {
              res = std::string("error: ") + ex.what();
              out.info["tool_error"] = 1;
            }
          }
        }
        results += (results.empty() ? "" : "\n") + res;
      }
      out.observation = results;
      return out;
    }
    const auto v = first_integer(p.text);
    if (!v) {
      out.info["invalid_action"] = 1;
      out.observation = "error: answer with a number or call calc";
      return out;
    }
    out.done = true;
    out.reward = *v == answer_ ? 1.0 : 0.0;
    out.info["success"] = out.reward;
    return out;
  }

  std::optional<std::string> expert_action() const override {
    if (!called_ && !direct_) return format_tool_call({"calc", nlohmann::json{{"expression", expression_}}.dump()}, fmt_);
    return std::to_string(answer_);
  }

 private:
  ToolFormat fmt_;
  std::string expression_;
  int64_t answer_ = 0;
  bool called_ = false;
  double direct_share_ = 0.0;
  bool direct_ = false;  ///< this episode's expert answers without the tool
};

class CalculatorFactory : public EnvFactory {
 public:
  explicit CalculatorFactory(CalcOptions o) : o_(std::move(o)) {}
  std::unique_ptr<Environment> make() const override { return std::make_unique<CalculatorEnv>(o_); }
  std::vector<std::string> info_keys() const override { return {"success", "tool_calls", "tool_error", "invalid_action"}; }
  std::vector<std::string> required_meta() const override { return {"expression"}; }
  std::string task() const override { return "calculator"; }

 private:
  CalcOptions o_;
};

class CalculatorTask : public data::Task {
 public:
  explicit CalculatorTask(CalcOptions o) : o_(std::move(o)) {}
  data::PromptRecord make(uint64_t seed, data::Split split, uint64_t index) const override {
    data::SplitMix64 rng(data::problem_seed(seed ^ 0xCA1Cull, split, index));
    const int64_t a = rng.uniform(2, o_.max_a), b = rng.uniform(o_.min_b, o_.max_b), c = rng.uniform(1, o_.max_c);
    const auto& t = kTemplates[rng.uniform(0, std::size(kTemplates) - 1)];
    const int64_t v = t.op == '+' ? a * b + c : a * b - c;
    data::PromptRecord r;
    r.id = fmt::format("calculator/{}/{}", split == data::Split::kTrain ? "train" : "eval", index);
    r.prompt = fmt::format(fmt::runtime(t.text), a, b, c);
    r.answer = std::to_string(v);
    r.meta["expression"] = fmt::format("\"{}*{}{}{}\"", a, b, t.op, c);
    return r;
  }
  /// The expert's episode as text (tokenizer training): the call, its result, the answer.
  std::string gold_response(const data::PromptRecord& r) const override {
    const std::string e = nlohmann::json::parse(r.meta.at("expression")).get<std::string>();
    return format_tool_call({"calc", nlohmann::json{{"expression", e}}.dump()}, format_of(o_.tool_format)) + "\n" +
           r.answer + "\n" + r.answer;
  }
  std::string verifier() const override { return "env"; }
  std::vector<std::string> tokenizer_symbols() const override { return {"<tool_call>", "</tool_call>"}; }
  int tokenizer_extra_pieces() const override { return 96; }

 private:
  CalcOptions o_;
};

}  // namespace

void register_calculator(EnvRegistry& envs, data::TaskRegistry& tasks) {
  envs.add("calculator",
           "word problems a*b±c with a calc tool in the chat template's tool-call format; reward 1 for the right "
           "answer (params: max_a, min_b, max_b, max_c, tool_format, expert_direct_share)",
           [](config::Reader& r) -> std::unique_ptr<EnvFactory> {
             CalcOptions o;
             read_calc_options(r, o);
             return std::make_unique<CalculatorFactory>(o);
           });
  tasks.add("calculator", "word problems for the calculator environment (knobs: max_a, min_b, max_b, max_c, tool_format)",
            [](config::Reader& r) -> std::unique_ptr<data::Task> {
              CalcOptions o;
              read_calc_options(r, o);
              return std::make_unique<CalculatorTask>(o);
            });
}

}  // namespace keel::env
