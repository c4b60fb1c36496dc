// config::Reader implementation: value parsing, unknown-key detection, resolved-config rendering.
#include "base/reader.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "base/error.h"

namespace keel::config {

void Diagnostics::error(const Source& src, const std::string& path, const std::string& msg) {
  entries_.push_back(Item{src, fmt::format("{}: {}: {}", src.str(), path, msg)});
}

std::vector<std::string> Diagnostics::errors() const {
  auto sorted = entries_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Item& a, const Item& b) {
    const bool ao = !a.src.override.empty(), bo = !b.src.override.empty();
    if (ao != bo) return !ao;  // file errors first, then overrides in argument order
    if (ao) return false;
    return a.src.line < b.src.line;
  });
  std::vector<std::string> out;
  for (const auto& e : sorted) out.push_back(e.text);
  return out;
}

void Diagnostics::throw_if_any() const {
  if (entries_.empty()) return;
  std::string all;
  for (const auto& e : errors()) all += (all.empty() ? "" : "\n") + e;
  throw Error(all);
}

// ---- scalar parsing ---------------------------------------------------------------------------

namespace {

std::string got(const Node& n) {
  if (n.is_scalar() && n.quoted()) return fmt::format("the quoted string '{}' (drop the quotes for a non-string)", n.text());
  return n.kind_name();
}

bool parse_int64(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  out = v;
  return true;
}

/// YAML's spellings of infinity and NaN (with any sign), which strtod would also take.
bool non_finite_spelling(std::string s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.erase(0, 1);
  if (!s.empty() && s[0] == '.') s.erase(0, 1);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s == "inf" || s == "infinity" || s == "nan";
}

bool decimal_chars(const std::string& s) {
  for (char c : s)
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+'))
      return false;
  return true;
}

/// A finite decimal number. No config value means "unbounded" through .inf, and an infinite lr or
/// temperature only turns into NaN losses steps later, so infinities and NaN are refused here,
/// once for every field (parse_value(double) names them).
bool parse_double(const std::string& s, double& out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (errno == ERANGE || *end != '\0' || std::isnan(v)) return false;
  if (!decimal_chars(s)) return false;  // strtod accepts "nan", "0x1p3", "infinity"
  out = v;
  return true;
}

template <typename T, typename Elem>
std::string parse_list(const Node& n, std::vector<Elem>& out, const char* what) {
  if (!n.is_seq()) return fmt::format("expected a list of {}, got {}", what, got(n));
  std::vector<Elem> tmp;
  for (size_t i = 0; i < n.items().size(); ++i) {
    Elem e{};
    const std::string err = parse_value(n.items()[i], e);
    if (!err.empty()) return fmt::format("item {}: {}", i, err);
    tmp.push_back(e);
  }
  out = std::move(tmp);
  return "";
}

}  // namespace

std::string parse_value(const Node& n, bool& out) {
  if (n.is_scalar() && !n.quoted()) {
    const auto& s = n.text();
    if (s == "true" || s == "True" || s == "TRUE") { out = true; return ""; }
    if (s == "false" || s == "False" || s == "FALSE") { out = false; return ""; }
  }
  return fmt::format("expected true or false, got {}", got(n));
}

std::string parse_value(const Node& n, int64_t& out) {
  int64_t v = 0;
  if (n.is_scalar() && !n.quoted() && parse_int64(n.text(), v)) { out = v; return ""; }
  return fmt::format("expected an integer, got {}", got(n));
}

std::string parse_value(const Node& n, int& out) {
  int64_t v = 0;
  if (n.is_scalar() && !n.quoted() && parse_int64(n.text(), v)) {
    if (v < INT32_MIN || v > INT32_MAX) return fmt::format("integer {} is out of range", v);
    out = static_cast<int>(v);
    return "";
  }
  return fmt::format("expected an integer, got {}", got(n));
}

std::string parse_value(const Node& n, double& out) {
  double v = 0;
  if (n.is_scalar() && !n.quoted() && parse_double(n.text(), v)) { out = v; return ""; }
  if (n.is_scalar() && !n.quoted() && non_finite_spelling(n.text()))
    return fmt::format("expected a finite number, got {}", got(n));
  if (n.is_scalar() && !n.quoted() && decimal_chars(n.text()) && std::isinf(std::strtod(n.text().c_str(), nullptr)))
    return fmt::format("expected a finite number, got {} (beyond the range of a double)", got(n));
  return fmt::format("expected a number, got {}", got(n));
}

std::string parse_value(const Node& n, std::string& out) {
  if (n.is_scalar()) { out = n.text(); return ""; }
  return fmt::format("expected a string, got {}", got(n));
}

std::string parse_value(const Node& n, std::vector<double>& out) { return parse_list<double>(n, out, "numbers"); }
std::string parse_value(const Node& n, std::vector<int64_t>& out) { return parse_list<int64_t>(n, out, "integers"); }
std::string parse_value(const Node& n, std::vector<std::string>& out) { return parse_list<std::string>(n, out, "strings"); }

// ---- formatting ------------------------------------------------------------------------------

std::string format_number(double v) {
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{:.1f}", v);
  return fmt::format("{}", v);  // shortest round-trip
}

std::string format_value(bool v) { return v ? "true" : "false"; }
std::string format_value(int v) { return std::to_string(v); }
std::string format_value(int64_t v) { return std::to_string(v); }
std::string format_value(double v) { return format_number(v); }
std::string format_value(const std::string& v) {
  // Quote when YAML would read the text as something else (empty, number, bool, special chars).
  bool plain = !v.empty();
  for (char c : v)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == '/'))
      plain = false;
  int64_t i;
  double d;
  if (plain && (parse_int64(v, i) || parse_double(v, d) || non_finite_spelling(v) || v == "true" || v == "false" || v == "null" ||
                v == "yes" || v == "no" || v == "on" || v == "off"))
    plain = false;
  if (plain) return v;
  std::string q = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') q += '\\';
    if (c == '\n') { q += "\\n"; continue; }
    q += c;
  }
  return q + "\"";
}
template <typename T>
static std::string format_list(const std::vector<T>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + format_value(v[i]);
  return s + "]";
}
std::string format_value(const std::vector<double>& v) { return format_list(v); }
std::string format_value(const std::vector<int64_t>& v) { return format_list(v); }
std::string format_value(const std::vector<std::string>& v) { return format_list(v); }

// ---- choices and suggestions -----------------------------------------------------------------

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

/// The closest candidate within an edit distance of about a third of the word, or "".
std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_d) { best_d = d; best = c; }
  }
  return best;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

std::string check_choice(const std::string& value, const std::vector<std::string>& choices,
                         const std::string& what) {
  if (std::find(choices.begin(), choices.end(), value) != choices.end()) return "";
  const std::string kind = what.empty() ? "value" : what;
  const std::string hint = closest(value, choices);
  return fmt::format("unknown {} '{}'{} (known: {})", kind, value,
                     hint.empty() ? "" : fmt::format(", did you mean '{}'?", hint), join(choices));
}

// ---- Reader -----------------------------------------------------------------------------------

Reader::Reader(const Node* node, std::string path, Diagnostics& diag, Doc* out)
    : node_(node), path_(std::move(path)), diag_(diag), out_(out) {
  if (node_) src_ = node_->source();
  if (node_ && !node_->is_null() && !node_->is_map()) {
    diag_.error(src_, path_.empty() ? "<root>" : path_, fmt::format("expected a map of keys, got {}", node_->kind_name()));
    node_ = nullptr;  // keep defaults; don't report its "keys" as unknown
  }
}

bool Reader::has(const std::string& key) const {
  if (!node_ || !node_->is_map()) return false;
  const Node* n = node_->find(key);
  return n && !n->is_null();
}

const Node* Reader::take(const std::string& key) {
  taken_.push_back(key);
  if (!node_ || !node_->is_map()) return nullptr;
  return node_->find(key);
}

void Reader::error(const std::string& key, const std::string& msg) {
  const Node* n = (node_ && node_->is_map()) ? node_->find(key) : nullptr;
  error_at(n ? n->source() : src_, key, msg);
}

void Reader::error_at(const Source& src, const std::string& key, const std::string& msg) {
  diag_.error(src, key.empty() ? (path_.empty() ? "<root>" : path_) : path_of(key), msg);
}

void Reader::finish() {
  if (!node_ || !node_->is_map()) return;
  for (const auto& [k, v] : node_->entries()) {
    if (std::find(taken_.begin(), taken_.end(), k) != taken_.end()) continue;
    const std::string hint = closest(k, taken_);
    std::string msg = "unknown key";
    if (!hint.empty()) msg += fmt::format(" (did you mean '{}'?)", hint);
    else if (!taken_.empty()) msg += fmt::format(" (known here: {})", join(taken_));
    // Point at the key itself; a null value already carries the key's line.
    error_at(v.source().line > 0 || !v.source().override.empty() ? v.source() : src_, k, msg);
  }
}

Doc* Reader::record_leaf(const std::string& key, std::string value, const std::string& doc) {
  if (!out_) return nullptr;
  out_->children.push_back(Doc{key, std::move(value), doc, "", Doc::Kind::kLeaf, {}});
  return &out_->children.back();
}

void Reader::section(const std::string& key, const std::string& doc, const std::function<void(Reader&)>& fn) {
  const Node* n = take(key);
  Doc* d = nullptr;
  if (out_) {
    out_->children.push_back(Doc{key, "", doc, "", Doc::Kind::kSection, {}});
    d = &out_->children.back();
  }
  Reader sub(n && !n->is_null() ? n : nullptr, path_of(key), diag_, d);
  if (n && n->is_null()) sub.src_ = n->source();
  else if (!n) sub.src_ = src_;
  fn(sub);
  sub.finish();
}

void Reader::list(const std::string& key, const std::string& doc,
                  const std::function<void(Reader&, size_t)>& fn) {
  const Node* n = take(key);
  Doc* d = nullptr;
  if (out_) {
    out_->children.push_back(Doc{key, "", doc, "", Doc::Kind::kList, {}});
    d = &out_->children.back();
  }
  if (!n || n->is_null()) return;
  if (!n->is_seq()) {
    error_at(n->source(), key, fmt::format("expected a list, got {}", n->kind_name()));
    return;
  }
  for (size_t i = 0; i < n->items().size(); ++i) {
    Doc* item_doc = nullptr;
    if (d) {
      d->children.push_back(Doc{"", "", "", "", Doc::Kind::kItem, {}});
      item_doc = &d->children.back();
    }
    Reader sub(&n->items()[i], path_of(key) + "." + std::to_string(i), diag_, item_doc);
    fn(sub, i);
    sub.finish();
  }
}

// ---- rendering --------------------------------------------------------------------------------

namespace {

void render(const Doc& d, int indent, bool comments, bool first_in_item, std::string& out) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  std::string lead = pad;
  if (first_in_item && indent >= 2) lead = std::string(static_cast<size_t>(indent - 2), ' ') + "- ";
  auto comment = [&](const Doc& x) {
    if (!comments || (x.doc.empty() && x.constraint.empty())) return std::string();
    std::string c = "  # " + x.doc;
    if (!x.constraint.empty()) c += (x.doc.empty() ? "" : " ") + ("(" + x.constraint + ")");
    return c;
  };
  switch (d.kind) {
    case Doc::Kind::kLeaf:
      out += lead + d.key + ": " + d.value + comment(d) + "\n";
      break;
    case Doc::Kind::kSection:
      if (d.children.empty()) {
        out += lead + d.key + ": {}" + comment(d) + "\n";
        break;
      }
      out += lead + d.key + ":" + comment(d) + "\n";
      for (const auto& c : d.children) render(c, indent + 2, comments, false, out);
      break;
    case Doc::Kind::kList:
      if (d.children.empty()) {
        out += lead + d.key + ": []" + comment(d) + "\n";
        break;
      }
      out += lead + d.key + ":" + comment(d) + "\n";
      for (const auto& item : d.children) {
        if (item.children.empty()) {
          out += pad + "  - {}\n";
          continue;
        }
        for (size_t i = 0; i < item.children.size(); ++i)
          render(item.children[i], indent + 4, comments, i == 0, out);
      }
      break;
    case Doc::Kind::kItem:
      for (size_t i = 0; i < d.children.size(); ++i) render(d.children[i], indent + 2, comments, i == 0, out);
      break;
  }
}

}  // namespace

std::string render_yaml(const Doc& root, bool with_comments) {
  std::string out;
  for (size_t i = 0; i < root.children.size(); ++i) {
    if (i && with_comments && root.children[i].kind == Doc::Kind::kSection) out += "\n";
    render(root.children[i], 0, with_comments, false, out);
  }
  return out;
}

}  // namespace keel::config
