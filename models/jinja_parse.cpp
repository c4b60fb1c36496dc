// Lexer and parser of keel's Jinja subset: template text -> tokens -> syntax tree (jinja_ast.h).
// The lexer reproduces Jinja2's whitespace rules ({%- -%} {{- -}} {#- -#}, trim_blocks,
// lstrip_blocks, the dropped trailing newline); the parser follows Jinja2's precedence
// (jinja2/parser.py: condexpr < or < and < not < compare < + - < ~ < * / // % < ** < unary <
// postfix and filters). Anything outside the subset is a parse error naming the line, so a
// template keel cannot render fails when it is loaded, not half-way through a run.
#include "models/jinja_ast.h"

#include <algorithm>
#include <initializer_list>
#include <cctype>
#include <set>

#include "base/error.h"

namespace keel::models::jinja {

namespace {

struct Token {
  enum class Type { kText, kVarBegin, kVarEnd, kBlockBegin, kBlockEnd, kName, kString, kInt, kFloat, kOp, kEof };
  Type type = Type::kEof;
  std::string text;  // text, name, string value or operator
  int line = 0;
  int64_t i = 0;
  double f = 0;
};

[[noreturn]] void syntax_error(const std::string& origin, int line, const std::string& what) {
  fail("{}:{}: {}", origin, line, what);
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// ---- lexer -------------------------------------------------------------------------------------

class Lexer {
 public:
  Lexer(std::string src, const std::string& origin, const LexOptions& o) : s_(std::move(src)), origin_(origin), o_(o) {}

  std::vector<Token> run() {
    bool line_starting = true;  // the previous tag's end consumed a newline (or we are at the start)
    while (pos_ < s_.size()) {
      const size_t p = next_tag(pos_);
      std::string text = s_.substr(pos_, p - pos_);
      if (p == s_.size()) {
        emit_text(std::move(text));
        break;
      }
      const char kind = s_[p + 1];
      const char sign = p + 2 < s_.size() ? s_[p + 2] : 0;
      if (sign == '-') {
        text.erase(text.find_last_not_of(" \t\n\r\f\v") + 1);
      } else if (sign != '+' && o_.lstrip_blocks && kind != '{') {
        // Spaces between the line start and a block or comment tag vanish (Jinja's lstrip_blocks).
        const size_t l = text.rfind('\n') + 1;  // npos + 1 = 0
        if ((l > 0 || line_starting) && l < text.size() && text.find_first_not_of(" \t", l) == std::string::npos)
          text.erase(l);
      }
      emit_text(std::move(text));
      advance_to(p);
      size_t cur = p + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      if (kind == '#') {
        cur = comment(cur);
      } else {
        cur = tag(kind, cur);
      }
      line_starting = cur > 0 && s_[cur - 1] == '\n';
      advance_to(cur);
    }
    out_.push_back(Token{Token::Type::kEof, "", line_, 0, 0});
    return std::move(out_);
  }

 private:
  size_t next_tag(size_t from) const {
    for (size_t p = s_.find('{', from); p != std::string::npos; p = s_.find('{', p + 1))
      if (p + 1 < s_.size() && (s_[p + 1] == '{' || s_[p + 1] == '%' || s_[p + 1] == '#')) return p;
    return s_.size();
  }

  void advance_to(size_t p) {
    for (; pos_ < p; ++pos_)
      if (s_[pos_] == '\n') ++line_;
  }

  void emit_text(std::string text) {
    if (!text.empty()) out_.push_back(Token{Token::Type::kText, std::move(text), line_, 0, 0});
  }

  // After a tag's closing delimiter ending at `end`: "-" eats all following whitespace,
  // trim_blocks eats one newline after a block or comment.
  size_t after_close(size_t end, bool dash, bool block) const {
    if (dash) {
      while (end < s_.size() && is_space(s_[end])) ++end;
    } else if (block && o_.trim_blocks && end < s_.size() && s_[end] == '\n') {
      ++end;
    }
    return end;
  }

  size_t comment(size_t cur) {
    const size_t e = s_.find("#}", cur);
    if (e == std::string::npos) syntax_error(origin_, line_, "the comment {# is not closed by #}");
    const bool dash = e > cur && s_[e - 1] == '-';
    return after_close(e + 2, dash, /*block=*/true);
  }

  // One {{ ... }} or {% ... %}: its expression tokens between begin / end tokens.
  size_t tag(char kind, size_t cur) {
    const bool block = kind == '%';
    const size_t first = out_.size();
    out_.push_back(Token{block ? Token::Type::kBlockBegin : Token::Type::kVarBegin, "", line_, 0, 0});
    int depth = 0;  // open ( [ {: a "}}" inside a dict literal does not close the tag
    int line = line_;
    for (;;) {
      while (cur < s_.size() && is_space(s_[cur])) line += s_[cur++] == '\n';
      if (cur >= s_.size())
        syntax_error(origin_, line_, block ? "the tag {% is not closed by %}" : "the expression {{ is not closed by }}");
      const char close = block ? '%' : '}';
      const bool dash = s_[cur] == '-' && cur + 2 < s_.size() && s_[cur + 1] == close && s_[cur + 2] == '}';
      if (depth == 0 && (dash || (s_[cur] == close && cur + 1 < s_.size() && s_[cur + 1] == '}'))) {
        out_.push_back(Token{block ? Token::Type::kBlockEnd : Token::Type::kVarEnd, "", line, 0, 0});
        const size_t end = after_close(cur + (dash ? 3 : 2), dash, block);
        if (block && out_.size() == first + 3 && out_[first + 1].type == Token::Type::kName && out_[first + 1].text == "raw")
          return raw(first, end);
        return end;
      }
      cur = token(cur, line, depth);
    }
  }

  // {% raw %}...{% endraw %}: the text in between, verbatim.
  size_t raw(size_t first, size_t cur) {
    out_.resize(first);
    for (size_t p = s_.find("{%", cur); p != std::string::npos; p = s_.find("{%", p + 2)) {
      size_t q = p + 2;
      const bool dash_open = q < s_.size() && s_[q] == '-';
      if (dash_open) ++q;
      while (q < s_.size() && is_space(s_[q])) ++q;
      if (s_.compare(q, 6, "endraw") != 0) continue;
      q += 6;
      while (q < s_.size() && is_space(s_[q])) ++q;
      const bool dash_close = q < s_.size() && s_[q] == '-';
      if (dash_close) ++q;
      if (s_.compare(q, 2, "%}") != 0) continue;
      std::string text = s_.substr(cur, p - cur);
      if (dash_open) text.erase(text.find_last_not_of(" \t\n\r\f\v") + 1);
      out_.push_back(Token{Token::Type::kText, std::move(text), line_, 0, 0});
      return after_close(q + 2, dash_close, /*block=*/true);
    }
    syntax_error(origin_, line_, "{% raw %} is not closed by {% endraw %}");
  }

  size_t token(size_t cur, int& line, int& depth) {
    const char c = s_[cur];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t e = cur;
      while (e < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[e])) || s_[e] == '_')) ++e;
      out_.push_back(Token{Token::Type::kName, s_.substr(cur, e - cur), line, 0, 0});
      return e;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) return number(cur, line);
    if (c == '\'' || c == '"') return string(cur, line);
    static const char* const kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
                                       ">",  "=",  "(",  ")",  "[",  "]",  "{", "}", ",", ".", ":", "|"};
    for (const char* op : kOps) {
      const size_t n = std::char_traits<char>::length(op);
      if (s_.compare(cur, n, op) != 0) continue;
      if (n == 1 && (c == '(' || c == '[' || c == '{')) ++depth;
      if (n == 1 && (c == ')' || c == ']' || c == '}')) {
        if (depth == 0) syntax_error(origin_, line, std::string("unexpected '") + c + "'");
        --depth;
      }
      out_.push_back(Token{Token::Type::kOp, op, line, 0, 0});
      return cur + n;
    }
    syntax_error(origin_, line, std::string("unexpected character '") + c + "'");
  }

  size_t number(size_t cur, int line) {
    size_t e = cur;
    while (e < s_.size() && std::isdigit(static_cast<unsigned char>(s_[e]))) ++e;
    bool is_float = false;
    if (e + 1 < s_.size() && s_[e] == '.' && std::isdigit(static_cast<unsigned char>(s_[e + 1]))) {
      is_float = true;
      for (++e; e < s_.size() && std::isdigit(static_cast<unsigned char>(s_[e]));) ++e;
    }
    if (e < s_.size() && (s_[e] == 'e' || s_[e] == 'E')) {
      size_t x = e + 1;
      if (x < s_.size() && (s_[x] == '+' || s_[x] == '-')) ++x;
      if (x < s_.size() && std::isdigit(static_cast<unsigned char>(s_[x]))) {
        is_float = true;
        for (e = x; e < s_.size() && std::isdigit(static_cast<unsigned char>(s_[e]));) ++e;
      }
    }
    const std::string text = s_.substr(cur, e - cur);
    Token t{is_float ? Token::Type::kFloat : Token::Type::kInt, text, line, 0, 0};
    try {
      if (is_float) t.f = std::stod(text);
      else t.i = std::stoll(text);
    } catch (const std::exception&) {
      syntax_error(origin_, line, "number out of range: " + text);
    }
    out_.push_back(std::move(t));
    return e;
  }

  // A Python string literal with its backslash escapes.
  size_t string(size_t cur, int& line) {
    const char q = s_[cur];
    std::string v;
    size_t e = cur + 1;
    for (;; ++e) {
      if (e >= s_.size()) syntax_error(origin_, line, "unterminated string literal");
      const char c = s_[e];
      if (c == q) break;
      if (c == '\n') ++line;
      if (c != '\\' || e + 1 >= s_.size()) {
        v += c;
        continue;
      }
      const char x = s_[++e];
      switch (x) {
        case 'n': v += '\n'; break;
        case 't': v += '\t'; break;
        case 'r': v += '\r'; break;
        case 'b': v += '\b'; break;
        case 'f': v += '\f'; break;
        case 'v': v += '\v'; break;
        case 'a': v += '\a'; break;
        case '0': v += '\0'; break;
        case '\\': v += '\\'; break;
        case '\'': v += '\''; break;
        case '"': v += '"'; break;
        case '\n': ++line; break;  // a line continuation
        case 'x':
        case 'u':
        case 'U': {
          const size_t n = x == 'x' ? 2 : x == 'u' ? 4 : 8;
          if (e + n >= s_.size()) syntax_error(origin_, line, "truncated \\" + std::string(1, x) + " escape");
          const std::string hex = s_.substr(e + 1, n);
          if (hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
            syntax_error(origin_, line, "bad \\" + std::string(1, x) + " escape");
          v += utf8_encode(std::u32string(1, static_cast<char32_t>(std::stoul(hex, nullptr, 16))));
          e += n;
          break;
        }
        default: v += '\\'; v += x;  // Python keeps unknown escapes as written
      }
    }
    out_.push_back(Token{Token::Type::kString, std::move(v), line, 0, 0});
    return e + 1;
  }

  std::string s_;
  const std::string& origin_;
  LexOptions o_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> out_;
};

// ---- parser ------------------------------------------------------------------------------------

class Parser {
 public:
  Parser(std::vector<Token> t, const std::string& origin) : t_(std::move(t)), origin_(origin) {}

  Body run() {
    std::string end;
    Body b = body({}, end, 0, "");
    return b;
  }

 private:
  const Token& peek(size_t k = 0) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  const Token& next() { return t_[std::min(i_++, t_.size() - 1)]; }
  bool is_op(const char* op, size_t k = 0) const {
    return peek(k).type == Token::Type::kOp && peek(k).text == op;
  }
  bool is_name(const char* n, size_t k = 0) const {
    return peek(k).type == Token::Type::kName && peek(k).text == n;
  }
  [[noreturn]] void error(const std::string& what) const { syntax_error(origin_, peek().line, what); }
  std::string describe(const Token& t) const {
    switch (t.type) {
      case Token::Type::kText: return "text";
      case Token::Type::kVarEnd: return "'}}'";
      case Token::Type::kBlockEnd: return "'%}'";
      case Token::Type::kEof: return "the end of the template";
      case Token::Type::kString: return "a string";
      default: return "'" + t.text + "'";
    }
  }
  void expect_op(const char* op) {
    if (!is_op(op)) error(std::string("expected '") + op + "', got " + describe(peek()));
    ++i_;
  }
  void expect(Token::Type type, const char* what) {
    if (peek().type != type) error(std::string("expected ") + what + ", got " + describe(peek()));
    ++i_;
  }
  std::string expect_name(const char* what) {
    if (peek().type != Token::Type::kName) error(std::string("expected ") + what + ", got " + describe(peek()));
    return next().text;
  }
  void block_end() { expect(Token::Type::kBlockEnd, "'%}'"); }

  // Statements until one of `ends` ({% elif %} ...): returns them and the end tag's name in `end`
  // with its name consumed. `opener` / `opener_line` name the open tag for the unclosed error.
  Body body(const std::set<std::string>& ends, std::string& end, int opener_line, const std::string& opener) {
    Depth d(*this);
    Body out;
    for (;;) {
      const Token& t = peek();
      if (t.type == Token::Type::kEof) {
        if (ends.empty()) return out;
        syntax_error(origin_, opener_line, "{% " + opener + " %} is not closed (expected {% end" + opener + " %})");
      }
      if (t.type == Token::Type::kText) {
        Node n;
        n.kind = Node::Kind::kText;
        n.line = t.line;
        n.text = next().text;
        out.push_back(std::move(n));
      } else if (t.type == Token::Type::kVarBegin) {
        Node n;
        n.kind = Node::Kind::kOutput;
        n.line = next().line;
        n.expr = expression();
        expect(Token::Type::kVarEnd, "'}}'");
        out.push_back(std::move(n));
      } else if (t.type == Token::Type::kBlockBegin) {
        ++i_;
        const int line = peek().line;
        const std::string name = expect_name("a tag name");
        if (ends.count(name)) {
          end = name;
          return out;
        }
        statement(name, line, out);
      } else {
        error("unexpected " + describe(t));
      }
    }
  }

  void statement(const std::string& name, int line, Body& out) {
    Node n;
    n.line = line;
    if (name == "if") {
      n.kind = Node::Kind::kIf;
      std::string end = "elif";
      while (end == "elif") {
        ExprPtr cond = expression();
        block_end();
        Body b = body({"elif", "else", "endif"}, end, line, "if");
        n.branches.emplace_back(std::move(cond), std::move(b));
      }
      if (end == "else") {
        block_end();
        n.else_body = body({"endif"}, end, line, "if");
      }
      block_end();
    } else if (name == "for") {
      for_statement(n, line);
    } else if (name == "set") {
      set_statement(n, line);
    } else if (name == "break" || name == "continue") {
      if (loops_ == 0) error("{% " + name + " %} outside a for loop");
      n.kind = name == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
      block_end();
    } else if (name == "generation") {
      // transformers' assistant-mask marker: renders its body unchanged.
      block_end();
      std::string end;
      for (Node& inner : body({"endgeneration"}, end, line, "generation")) out.push_back(std::move(inner));
      block_end();
      return;
    } else if (name == "macro" || name == "call" || name == "filter" || name == "include" || name == "import" ||
               name == "from" || name == "extends" || name == "block" || name == "with" || name == "do" ||
               name == "autoescape") {
      syntax_error(origin_, line, "{% " + name + " %} is not supported (keel's Jinja subset has if, for, set, "
                                  "break, continue, raw and generation)");
    } else {
      syntax_error(origin_, line, "unknown tag '" + name + "'");
    }
    out.push_back(std::move(n));
  }

  void for_statement(Node& n, int line) {
    n.kind = Node::Kind::kFor;
    n.targets.push_back(expect_name("a loop variable"));
    while (is_op(",")) {
      ++i_;
      n.targets.push_back(expect_name("a loop variable"));
    }
    if (!is_name("in")) error("expected 'in' in the for loop, got " + describe(peek()));
    ++i_;
    n.expr = expression(/*condexpr=*/false);
    if (is_name("if")) {
      ++i_;
      n.filter = expression();
    }
    if (is_name("recursive")) error("recursive for loops are not supported");
    block_end();
    std::string end;
    ++loops_;
    n.body = body({"else", "endfor"}, end, line, "for");
    --loops_;
    if (end == "else") {
      block_end();
      n.else_body = body({"endfor"}, end, line, "for");
    }
    block_end();
  }

  void set_statement(Node& n, int line) {
    n.kind = Node::Kind::kSet;
    n.targets.push_back(expect_name("a variable name"));
    if (is_op(".")) {
      ++i_;
      n.attr = expect_name("an attribute name");
    }
    while (is_op(",") && n.attr.empty()) {
      ++i_;
      n.targets.push_back(expect_name("a variable name"));
    }
    if (is_op("=")) {
      ++i_;
      n.expr = expression();
      if (is_op(",")) {  // set a = 1, 2: a tuple
        auto tuple = make(Expr::Kind::kList, n.expr->line);
        tuple->args.push_back(std::move(n.expr));
        while (is_op(",")) {
          ++i_;
          tuple->args.push_back(expression());
        }
        n.expr = std::move(tuple);
      }
      block_end();
      return;
    }
    if (n.targets.size() != 1 || !n.attr.empty()) error("expected '=' in {% set %}");
    n.kind = Node::Kind::kSetBlock;
    block_end();
    std::string end;
    n.body = body({"endset"}, end, line, "set");
    block_end();
  }

  // ---- expressions ----

  static ExprPtr make(Expr::Kind k, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->line = line;
    return e;
  }
  static ExprPtr binary(Expr::Kind k, std::string op, ExprPtr a, ExprPtr b) {
    auto e = make(k, a->line);
    e->name = std::move(op);
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return e;
  }

  // Bounds the parser's (and so the renderer's) recursion: a hostile template cannot overflow the stack.
  struct Depth {
    Depth(Parser& p) : p_(p) {
      if (++p_.depth_ > 200) p_.error("expressions or blocks nested more than 200 deep");
    }
    ~Depth() { --p_.depth_; }
    Parser& p_;
  };

  ExprPtr expression(bool condexpr = true) {
    Depth d(*this);
    return condexpr ? cond_expr() : or_expr();
  }

  ExprPtr cond_expr() {
    ExprPtr e = or_expr();
    while (is_name("if")) {
      ++i_;
      auto c = make(Expr::Kind::kCond, e->line);
      c->args.push_back(std::move(e));
      c->args.push_back(or_expr());
      if (is_name("else")) {
        ++i_;
        c->args.push_back(cond_expr());
      } else {
        c->args.push_back(nullptr);
      }
      e = std::move(c);
    }
    return e;
  }

  // One precedence level: a left-associative chain `operand (op operand)*` over `ops` (symbols
  // such as "+" or names such as "or"); "or" / "and" make their short-circuit kinds.
  ExprPtr left_chain(ExprPtr (Parser::*operand)(), std::initializer_list<const char*> ops) {
    ExprPtr e = (this->*operand)();
    for (;;) {
      const auto it = std::find_if(ops.begin(), ops.end(), [&](const char* op) { return is_op(op) || is_name(op); });
      if (it == ops.end()) return e;
      const std::string op = next().text;
      const auto kind = op == "or" ? Expr::Kind::kOr : op == "and" ? Expr::Kind::kAnd : Expr::Kind::kBinary;
      e = binary(kind, op, std::move(e), (this->*operand)());
    }
  }

  ExprPtr or_expr() { return left_chain(&Parser::and_expr, {"or"}); }
  ExprPtr and_expr() { return left_chain(&Parser::not_expr, {"and"}); }

  ExprPtr not_expr() {
    if (is_name("not")) {
      auto e = make(Expr::Kind::kUnary, next().line);
      e->name = "not";
      e->args.push_back(not_expr());
      return e;
    }
    return compare();
  }

  // One comparison; Python's chains (a < b < c) are refused, no chat template writes them.
  ExprPtr compare() {
    ExprPtr e = math1();
    bool done = false;
    for (;;) {
      std::string op;
      if (is_op("==") || is_op("!=") || is_op("<") || is_op("<=") || is_op(">") || is_op(">=")) {
        op = peek().text;
      } else if (is_name("in")) {
        op = "in";
      } else if (is_name("not") && is_name("in", 1)) {
        op = "not in";
      } else {
        return e;
      }
      if (done) error("chained comparisons (a < b < c) are not supported");
      i_ += op == "not in" ? 2 : 1;
      e = binary(Expr::Kind::kBinary, op, std::move(e), math1());
      done = true;
    }
  }

  ExprPtr math1() { return left_chain(&Parser::concat, {"+", "-"}); }
  ExprPtr concat() { return left_chain(&Parser::math2, {"~"}); }
  ExprPtr math2() { return left_chain(&Parser::power, {"*", "/", "//", "%"}); }
  ExprPtr power() { return left_chain(&Parser::filtered_unary, {"**"}); }
  ExprPtr filtered_unary() { return unary(true); }

  ExprPtr unary(bool with_filter) {
    Depth d(*this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      e = make(Expr::Kind::kUnary, peek().line);
      e->name = next().text;
      e->args.push_back(unary(false));
    } else {
      e = primary();
    }
    e = postfix(std::move(e));
    return with_filter ? filters(std::move(e)) : std::move(e);
  }

  ExprPtr primary() {
    const Token& t = peek();
    const int line = t.line;
    if (t.type == Token::Type::kName) {
      const std::string n = next().text;
      auto e = make(Expr::Kind::kLiteral, line);
      if (n == "true" || n == "True") e->value = true;
      else if (n == "false" || n == "False") e->value = false;
      else if (n == "none" || n == "None") e->value = Value::none();
      else {
        e->kind = Expr::Kind::kName;
        e->name = n;
      }
      return e;
    }
    if (t.type == Token::Type::kString) {
      std::string s;
      while (peek().type == Token::Type::kString) s += next().text;  // "a" "b" is "ab"
      auto e = make(Expr::Kind::kLiteral, line);
      e->value = std::move(s);
      return e;
    }
    if (t.type == Token::Type::kInt || t.type == Token::Type::kFloat) {
      auto e = make(Expr::Kind::kLiteral, line);
      e->value = t.type == Token::Type::kInt ? Value(t.i) : Value(t.f);
      ++i_;
      return e;
    }
    if (is_op("(")) {
      ++i_;
      if (is_op(")")) {
        ++i_;
        return make(Expr::Kind::kList, line);
      }
      ExprPtr e = expression();
      if (!is_op(",")) {
        expect_op(")");
        return e;
      }
      auto tuple = make(Expr::Kind::kList, line);
      tuple->args.push_back(std::move(e));
      while (is_op(",")) {
        ++i_;
        if (is_op(")")) break;
        tuple->args.push_back(expression());
      }
      expect_op(")");
      return tuple;
    }
    if (is_op("[")) {
      ++i_;
      auto e = make(Expr::Kind::kList, line);
      while (!is_op("]")) {
        e->args.push_back(expression());
        if (!is_op(",")) break;
        ++i_;
      }
      expect_op("]");
      return e;
    }
    if (is_op("{")) {
      ++i_;
      auto e = make(Expr::Kind::kDict, line);
      while (!is_op("}")) {
        e->args.push_back(expression());
        expect_op(":");
        e->args.push_back(expression());
        if (!is_op(",")) break;
        ++i_;
      }
      expect_op("}");
      return e;
    }
    error("expected an expression, got " + describe(t));
  }

  ExprPtr postfix(ExprPtr e) {
    for (;;) {
      if (is_op(".")) {
        ++i_;
        auto a = make(Expr::Kind::kAttr, e->line);
        if (peek().type == Token::Type::kInt) {  // x.0 is x[0]
          a->kind = Expr::Kind::kItem;
          a->args.push_back(std::move(e));
          auto idx = make(Expr::Kind::kLiteral, peek().line);
          idx->value = next().i;
          a->args.push_back(std::move(idx));
        } else {
          a->name = expect_name("an attribute name");
          a->args.push_back(std::move(e));
        }
        e = std::move(a);
      } else if (is_op("[")) {
        e = subscript(std::move(e));
      } else if (is_op("(")) {
        auto c = make(Expr::Kind::kCall, e->line);
        c->args.push_back(std::move(e));
        call_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  ExprPtr subscript(ExprPtr e) {
    ++i_;  // [
    ExprPtr parts[3];
    int colons = 0;
    for (;;) {
      if (is_op("]")) break;
      if (is_op(":")) {
        if (++colons > 2) error("a slice has at most two ':'");
        ++i_;
        continue;
      }
      if (parts[colons]) error("expected ':' or ']' in the subscript, got " + describe(peek()));
      parts[colons] = expression();
    }
    expect_op("]");
    if (colons == 0) {
      if (!parts[0]) error("empty subscript []");
      auto item = make(Expr::Kind::kItem, e->line);
      item->args.push_back(std::move(e));
      item->args.push_back(std::move(parts[0]));
      return item;
    }
    auto s = make(Expr::Kind::kSlice, e->line);
    s->args.push_back(std::move(e));
    for (auto& p : parts) s->args.push_back(std::move(p));
    return s;
  }

  // (a, b, key=c): into e.args (after what is already there) and e.kwargs.
  void call_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (peek().type == Token::Type::kName && is_op("=", 1)) {
        std::string k = next().text;
        ++i_;
        e.kwargs.emplace_back(std::move(k), expression());
      } else {
        if (!e.kwargs.empty()) error("a positional argument follows a keyword argument");
        e.args.push_back(expression());
      }
      if (!is_op(",")) break;
      ++i_;
    }
    expect_op(")");
  }

  ExprPtr filters(ExprPtr e) {
    for (;;) {
      if (is_op("|")) {
        ++i_;
        auto f = make(Expr::Kind::kFilter, peek().line);
        f->name = expect_name("a filter name");
        if (!has_filter(f->name)) syntax_error(origin_, f->line, "unknown filter '" + f->name + "'");
        f->args.push_back(std::move(e));
        if (is_op("(")) call_args(*f);
        e = std::move(f);
      } else if (is_name("is")) {
        ++i_;
        auto t = make(Expr::Kind::kTest, peek().line);
        if (is_name("not")) {
          ++i_;
          t->negated = true;
        }
        t->name = expect_name("a test name");
        if (!has_test(t->name)) syntax_error(origin_, t->line, "unknown test '" + t->name + "'");
        t->args.push_back(std::move(e));
        const Token& a = peek();
        if (is_op("(")) {
          call_args(*t);
        } else if ((a.type == Token::Type::kName || a.type == Token::Type::kString || a.type == Token::Type::kInt ||
                    a.type == Token::Type::kFloat || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
          if (is_name("is")) error("tests cannot be chained with 'is'");
          t->args.push_back(postfix(primary()));  // x is divisibleby 3
        }
        e = std::move(t);
      } else if (is_op("(")) {
        auto c = make(Expr::Kind::kCall, e->line);
        c->args.push_back(std::move(e));
        call_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  std::vector<Token> t_;
  const std::string& origin_;
  size_t i_ = 0;
  int loops_ = 0;
  int depth_ = 0;
};

}  // namespace

std::unique_ptr<Program> parse_program(const std::string& source, const std::string& origin, const LexOptions& o) {
  // Jinja reads any line ending as \n and, unless told otherwise, drops one trailing newline.
  std::string s;
  s.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      s += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      s += source[i];
    }
  }
  if (!o.keep_trailing_newline && !s.empty() && s.back() == '\n') s.pop_back();
  auto p = std::make_unique<Program>();
  p->body = Parser(Lexer(std::move(s), origin, o).run(), origin).run();
  return p;
}

}  // namespace keel::models::jinja
