// Countdown expression parser and verifier (see countdown.h).
#include "rewards/verifiers/countdown.h"

#include <algorithm>
#include <map>

#include "rewards/verifiers/text.h"

namespace keel::rewards {

namespace {

constexpr int kMaxDepth = 64;
constexpr size_t kMaxChars = 1000;

/// Recursive descent over the grammar
///   expr   := term (('+' | '-') term)*
///   term   := factor (('*' | '/') factor)*
///   factor := integer | '(' expr ')'
class Parser {
 public:
  Parser(std::string_view s, std::vector<int64_t>* literals) : s_(s), literals_(literals) {}

  std::optional<Rational> parse_all() {
    auto v = expr(0);
    skip_space();
    if (v && pos_ != s_.size()) return fail_with("unexpected '" + std::string(1, s_[pos_]) + "'");
    return v;
  }
  const std::string& error() const { return error_; }

 private:
  std::optional<Rational> fail_with(std::string msg) {
    if (error_.empty()) error_ = std::move(msg) + " at offset " + std::to_string(pos_);
    return std::nullopt;
  }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  /// The next operator as one of "+-*/", consuming it; 0 when none. Accepts × ÷ \times \div \cdot.
  char peek_op(bool consume) {
    skip_space();
    static const std::pair<std::string_view, char> kOps[] = {
        {"+", '+'}, {"-", '-'}, {"*", '*'}, {"/", '/'}, {"\xC3\x97", '*'}, {"\xC3\xB7", '/'},
        {"\\times", '*'}, {"\\div", '/'}, {"\\cdot", '*'}, {"\xE2\x88\x92", '-'}};
    for (const auto& [text, op] : kOps) {
      if (s_.substr(pos_, text.size()) == text) {
        if (consume) pos_ += text.size();
        return op;
      }
    }
    return 0;
  }

  std::optional<Rational> expr(int depth) {
    auto left = term(depth);
    while (left) {
      const char op = peek_op(false);
      if (op != '+' && op != '-') break;
      peek_op(true);
      auto right = term(depth);
      if (!right) return std::nullopt;
      left = op == '+' ? left->add(*right) : left->sub(*right);
      if (!left) return fail_with("overflow");
    }
    return left;
  }

  std::optional<Rational> term(int depth) {
    auto left = factor(depth);
    while (left) {
      const char op = peek_op(false);
      if (op != '*' && op != '/') break;
      peek_op(true);
      auto right = factor(depth);
      if (!right) return std::nullopt;
      if (op == '/' && right->num() == 0) return fail_with("division by zero");
      left = op == '*' ? left->mul(*right) : left->div(*right);
      if (!left) return fail_with("overflow");
    }
    return left;
  }

  std::optional<Rational> factor(int depth) {
    if (depth > kMaxDepth) return fail_with("nesting too deep");
    skip_space();
    if (pos_ >= s_.size()) return fail_with("expected a number or '('");
    const char c = s_[pos_];
    if (c == '(') {
      ++pos_;
      auto v = expr(depth + 1);
      if (!v) return std::nullopt;
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != ')') return fail_with("expected ')'");
      ++pos_;
      return v;
    }
    if (c >= '0' && c <= '9') {
      int64_t value = 0;
      const size_t start = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
        if (pos_ - start >= 18) return fail_with("number too long");
        value = value * 10 + (s_[pos_] - '0');
        ++pos_;
      }
      if (pos_ < s_.size() && (s_[pos_] == '.' || s_[pos_] == ',')) return fail_with("only integers are allowed");
      if (literals_) literals_->push_back(value);
      return Rational::make(value);
    }
    if (peek_op(false) != 0) return fail_with("unary operators are not allowed");
    return fail_with("unexpected '" + std::string(1, c) + "'");
  }

  std::string_view s_;
  std::vector<int64_t>* literals_;
  size_t pos_ = 0;
  std::string error_;
};

bool bare_integer(std::string_view s) {
  s = text::trim(s);
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::optional<Rational> eval_countdown_expression(std::string_view expr, std::vector<int64_t>* literals,
                                                  std::string* error) {
  if (expr.size() > kMaxChars) {
    if (error) *error = "expression longer than " + std::to_string(kMaxChars) + " characters";
    return std::nullopt;
  }
  if (text::trim(expr).empty()) {
    if (error) *error = "empty expression";
    return std::nullopt;
  }
  Parser p(expr, literals);
  auto v = p.parse_all();
  if (!v && error) *error = p.error();
  return v;
}

std::string extract_countdown_expression(std::string_view response) {
  std::string e;
  if (auto t = text::last_tag(response, "answer")) e = *t;
  else if (auto b = text::last_boxed(response)) e = *b;
  else e = text::last_line(response);
  for (std::string_view strip : {"$", "\\(", "\\)", "\\[", "\\]", "\\left", "\\right"}) e = text::replace_all(std::move(e), strip, "");
  e = std::string(text::trim(e));
  const size_t eq = e.find('=');
  if (eq != std::string::npos && e.find('=', eq + 1) == std::string::npos) {
    const std::string lhs(text::trim(std::string_view(e).substr(0, eq)));
    const std::string rhs(text::trim(std::string_view(e).substr(eq + 1)));
    if (bare_integer(rhs) && !bare_integer(lhs)) return lhs;
    if (bare_integer(lhs) && !bare_integer(rhs)) return rhs;
    return lhs;
  }
  return e;
}

CountdownResult check_countdown(std::string_view response, const std::vector<int64_t>& numbers, int64_t target,
                                bool use_all) {
  CountdownResult res;
  const bool has_region = text::last_tag(response, "answer") || text::last_boxed(response) ||
                          !text::trim(response).empty();
  if (!has_region) return res;
  res.expression = extract_countdown_expression(response);
  if (res.expression.empty()) return res;
  std::vector<int64_t> literals;
  res.value = eval_countdown_expression(res.expression, &literals);
  if (!res.value) {
    res.verdict = CountdownVerdict::kInvalid;
    return res;
  }
  std::map<int64_t, int> avail;
  for (int64_t n : numbers) ++avail[n];
  for (int64_t l : literals) {
    if (--avail[l] < 0) {
      res.verdict = CountdownVerdict::kBadNumbers;
      return res;
    }
  }
  if (use_all)
    for (const auto& [n, left] : avail)
      if (left != 0) {
        res.verdict = CountdownVerdict::kBadNumbers;
        return res;
      }
  const auto t = Rational::make(target);
  res.verdict = (*res.value == *t) ? CountdownVerdict::kCorrect : CountdownVerdict::kWrongValue;
  return res;
}

}  // namespace keel::rewards
