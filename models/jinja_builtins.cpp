// Filters, tests, globals and methods of keel's Jinja subset (see jinja_builtins.h): the ones HF
// chat templates use, with Jinja2 3.x / CPython semantics. tojson is transformers' version
// (json.dumps with ensure_ascii=False, insertion order), not Jinja2's HTML-safe one, because
// apply_chat_template installs it. upper / lower / title change ASCII letters only.
#include "models/jinja_builtins.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <functional>
#include <map>
#include <optional>

#include "models/jinja_ast.h"

namespace keel::models::jinja {

namespace {

using FilterFn = std::function<Value(const Value&, const Args&)>;
using TestFn = std::function<bool(const Value&, const Args&)>;

[[noreturn]] void type_error(const std::string& what, const Value& v) {
  throw RenderError(what + " (got " + v.type_name() + ")");
}

const std::string& need_str(const Value& v, const char* what) {
  if (!v.is_string()) type_error(std::string(what) + " needs a string", v);
  return v.str();
}

int64_t need_int(const Value* v, const char* what, int64_t dflt) {
  if (!v || v->is_none()) return dflt;
  if (!v->is_int() && !v->is_bool()) type_error(std::string(what) + " needs an integer", *v);
  return v->as_int();
}

const Value& arg(const Args& a, size_t i, const char* name, const char* fn) {
  const Value* v = a.get(i, name);
  if (!v) throw RenderError(std::string(fn) + ": missing argument '" + name + "'");
  return *v;
}

// ---- strings -----------------------------------------------------------------------------------

bool py_space(char32_t c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

// str.strip / lstrip / rstrip: whitespace, or the code points of `chars`.
std::string strip(const std::string& s, const Value* chars, bool left, bool right) {
  const std::u32string u = utf8_decode(s);
  std::u32string set;
  const bool ws = !chars || chars->is_none();
  if (!ws) set = utf8_decode(need_str(*chars, "strip"));
  auto drop = [&](char32_t c) { return ws ? py_space(c) : set.find(c) != std::u32string::npos; };
  size_t b = 0, e = u.size();
  if (left)
    while (b < e && drop(u[b])) ++b;
  if (right)
    while (e > b && drop(u[e - 1])) --e;
  return utf8_encode(u.substr(b, e - b));
}

std::string map_ascii(std::string s, int (*f)(int)) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x80) c = static_cast<char>(f(c));
  return s;
}

std::string capitalize(const std::string& s) {
  std::string out = map_ascii(s, [](int c) { return std::tolower(c); });
  if (!out.empty() && static_cast<unsigned char>(out[0]) < 0x80) out[0] = static_cast<char>(std::toupper(out[0]));
  return out;
}

std::string title(const std::string& s) {
  std::string out = s;
  bool prev_alpha = false;
  for (char& c : out) {
    const bool alpha = std::isalpha(static_cast<unsigned char>(c)) != 0;
    if (alpha) c = static_cast<char>(prev_alpha ? std::tolower(c) : std::toupper(c));
    prev_alpha = alpha;
  }
  return out;
}

std::string replace(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  std::string out;
  size_t pos = 0;
  int64_t done = 0;
  if (from.empty()) {  // Python inserts `to` around every character
    const std::u32string u = utf8_decode(s);
    for (size_t i = 0; i <= u.size(); ++i) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      if (i < u.size()) out += utf8_encode(u.substr(i, 1));
    }
    return out;
  }
  for (size_t f; (count < 0 || done < count) && (f = s.find(from, pos)) != std::string::npos; ++done) {
    out += s.substr(pos, f - pos) + to;
    pos = f + from.size();
  }
  return out + s.substr(pos);
}

Array split(const std::string& s, const Value* sep, int64_t maxsplit) {
  Array out;
  if (!sep || sep->is_none()) {  // runs of whitespace, no empty pieces
    const std::u32string u = utf8_decode(s);
    size_t i = 0;
    while (i < u.size()) {
      while (i < u.size() && py_space(u[i])) ++i;
      if (i == u.size()) break;
      size_t j = i;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        size_t e = u.size();
        while (e > i && py_space(u[e - 1])) --e;
        out.emplace_back(utf8_encode(u.substr(i, e - i)));
        break;
      }
      while (j < u.size() && !py_space(u[j])) ++j;
      out.emplace_back(utf8_encode(u.substr(i, j - i)));
      i = j;
    }
    return out;
  }
  const std::string& d = need_str(*sep, "split");
  if (d.empty()) throw RenderError("split: empty separator");
  size_t pos = 0;
  for (size_t f; (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) && (f = s.find(d, pos)) != std::string::npos;) {
    out.emplace_back(s.substr(pos, f - pos));
    pos = f + d.size();
  }
  out.emplace_back(s.substr(pos));
  return out;
}

bool starts_or_ends(const std::string& s, const Value& x, bool start) {
  if (x.is_array()) {
    for (const Value& p : x.array())
      if (starts_or_ends(s, p, start)) return true;
    return false;
  }
  const std::string& p = need_str(x, start ? "startswith" : "endswith");
  if (p.size() > s.size()) return false;
  return start ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0;
}

Value str_method(const std::string& s, const std::string& name, const Args& a) {
  if (name == "startswith" || name == "endswith") return starts_or_ends(s, arg(a, 0, "prefix", name.c_str()), name == "startswith");
  if (name == "strip") return strip(s, a.get(0, "chars"), true, true);
  if (name == "lstrip") return strip(s, a.get(0, "chars"), true, false);
  if (name == "rstrip") return strip(s, a.get(0, "chars"), false, true);
  if (name == "split") return split(s, a.get(0, "sep"), need_int(a.get(1, "maxsplit"), "split", -1));
  if (name == "replace")
    return replace(s, need_str(arg(a, 0, "old", "replace"), "replace"), need_str(arg(a, 1, "new", "replace"), "replace"),
                   need_int(a.get(2, "count"), "replace", -1));
  if (name == "upper") return map_ascii(s, [](int c) { return std::toupper(c); });
  if (name == "lower") return map_ascii(s, [](int c) { return std::tolower(c); });
  if (name == "capitalize") return capitalize(s);
  if (name == "title") return title(s);
  if (name == "find" || name == "rfind" || name == "count") {
    const std::string& sub = need_str(arg(a, 0, "sub", name.c_str()), name.c_str());
    if (name == "count") {
      if (sub.empty()) return static_cast<int64_t>(utf8_decode(s).size() + 1);
      int64_t n = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return n;
    }
    const size_t p = name == "find" ? s.find(sub) : s.rfind(sub);
    return p == std::string::npos ? int64_t{-1} : static_cast<int64_t>(utf8_decode(s.substr(0, p)).size());
  }
  if (name == "join") {
    std::string out;
    const Array items = iterate(arg(a, 0, "iterable", "join"));
    for (size_t i = 0; i < items.size(); ++i) out += (i ? s : "") + need_str(items[i], "join");
    return out;
  }
  if (name == "splitlines") {
    Array out;
    size_t pos = 0;
    while (pos < s.size()) {
      const size_t e = s.find('\n', pos);
      if (e == std::string::npos) {
        out.emplace_back(s.substr(pos));
        break;
      }
      out.emplace_back(s.substr(pos, e - pos));
      pos = e + 1;
    }
    return out;
  }
  if (name == "isdigit" || name == "isalpha" || name == "isspace" || name == "isalnum") {
    if (s.empty()) return false;
    for (unsigned char c : s) {
      const bool ok = name == "isdigit"   ? std::isdigit(c)
                      : name == "isalpha" ? std::isalpha(c)
                      : name == "isspace" ? py_space(c)
                                          : std::isalnum(c);
      if (!ok) return false;
    }
    return true;
  }
  throw RenderError("str has no method '" + name + "' in keel's Jinja subset");
}

const char* const kStrMethods[] = {"startswith", "endswith", "strip",  "lstrip", "rstrip",  "split",   "replace",
                                   "upper",      "lower",    "capitalize", "title", "find", "rfind", "count",
                                   "join",       "splitlines", "isdigit", "isalpha", "isspace", "isalnum"};
const char* const kDictMethods[] = {"items", "keys", "values", "get"};
const char* const kListMethods[] = {"index", "count"};

template <size_t N>
bool listed(const char* const (&names)[N], const std::string& n) {
  return std::find_if(std::begin(names), std::end(names), [&](const char* x) { return n == x; }) != std::end(names);
}

Value items_of(const Value& v) {
  if (v.is_undefined()) return Array{};
  if (!v.is_object()) type_error("items needs a dict", v);
  Array out;
  for (const auto& [k, e] : v.object().items) out.emplace_back(Array{Value(k), e});
  return out;
}

Value dict_method(const Value& self, const std::string& name, const Args& a) {
  const Object& o = self.object();
  if (name == "items") return items_of(self);
  Array out;
  if (name == "keys")
    for (const auto& [k, e] : o.items) out.emplace_back(k);
  if (name == "values")
    for (const auto& [k, e] : o.items) out.push_back(e);
  if (name == "get") {
    const Value& key = arg(a, 0, "key", "get");
    const Value* v = key.is_string() ? o.find(key.str()) : nullptr;
    if (v) return *v;
    const Value* d = a.get(1, "default");
    return d ? *d : Value::none();
  }
  return out;
}

Value list_method(const Array& self, const std::string& name, const Args& a) {
  const Value& x = arg(a, 0, "value", name.c_str());
  int64_t n = 0;
  for (size_t i = 0; i < self.size(); ++i) {
    if (!equals(self[i], x)) continue;
    if (name == "index") return static_cast<int64_t>(i);
    ++n;
  }
  if (name == "index") throw RenderError("list.index: the value is not in the list");
  return n;
}

// ---- filters -----------------------------------------------------------------------------------

Value length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return int64_t{0};
    case Value::Kind::kString: return static_cast<int64_t>(utf8_decode(v.str()).size());
    case Value::Kind::kArray: return static_cast<int64_t>(v.array().size());
    case Value::Kind::kObject: return static_cast<int64_t>(v.object().items.size());
    default: type_error("length needs a str, list or dict", v);
  }
}

Value tojson(const Value& v, const Args& a) {
  JsonOptions o;
  o.indent = static_cast<int>(need_int(a.get(0, "indent"), "tojson indent", -1));
  if (const Value* s = a.get(1, "separators"); s && !s->is_none()) {
    if (!s->is_array() || s->array().size() != 2) type_error("tojson separators needs two strings", *s);
    o.item_sep = need_str(s->array()[0], "tojson separators");
    o.key_sep = need_str(s->array()[1], "tojson separators");
  }
  if (const Value* s = a.get(2, "sort_keys")) o.sort_keys = s->truthy();
  if (const Value* s = a.get(3, "ensure_ascii")) o.ensure_ascii = s->truthy();
  return to_json(v, o);
}

Value first_or_last(const Value& v, bool first) {
  if (v.is_string()) {
    const std::u32string u = utf8_decode(v.str());
    if (u.empty()) return Value();
    return utf8_encode(std::u32string(1, first ? u.front() : u.back()));
  }
  const Array items = iterate(v);
  if (items.empty()) return Value();
  return first ? items.front() : items.back();
}

// The attribute `path` of v: "a.b" walks dicts, a digit part indexes lists (Jinja's attribute=).
Value attribute(const Value& v, const std::string& path) {
  Value cur = v;
  size_t pos = 0;
  while (pos <= path.size()) {
    const size_t dot = path.find('.', pos);
    const std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    const bool digits = !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
    cur = digits ? get_item(cur, Value(static_cast<int64_t>(std::stoll(part)))) : get_item(cur, Value(part));
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return cur;
}

// select / reject / selectattr / rejectattr: keep the items whose (attribute's) test result is `keep`.
Value select(const Value& v, const Args& a, bool by_attr, bool keep) {
  size_t k = 0;
  std::string attr;
  if (by_attr) attr = need_str(arg(a, k++, "attribute", "selectattr"), "selectattr");
  std::string test;
  Args test_args;
  if (k < a.positional.size()) test = need_str(a.positional[k++], "select test name");
  for (; k < a.positional.size(); ++k) test_args.positional.push_back(a.positional[k]);
  if (!test.empty() && !has_test(test)) throw RenderError("unknown test '" + test + "'");
  Array out;
  for (const Value& item : iterate(v)) {
    const Value x = by_attr ? attribute(item, attr) : item;
    const bool ok = test.empty() ? x.truthy() : call_test(test, x, test_args);
    if (ok == keep) out.push_back(item);
  }
  return out;
}

Value map_filter(const Value& v, const Args& a) {
  Array out;
  if (const Value* attr = a.get(99, "attribute")) {
    const Value* dflt = a.get(99, "default");
    for (const Value& item : iterate(v)) {
      Value x = attribute(item, need_str(*attr, "map attribute"));
      out.push_back(x.is_undefined() && dflt ? *dflt : x);
    }
    return out;
  }
  const std::string& f = need_str(arg(a, 0, "filter", "map"), "map");
  if (!has_filter(f)) throw RenderError("unknown filter '" + f + "'");
  Args rest;
  rest.positional.assign(a.positional.begin() + 1, a.positional.end());
  rest.keyword = a.keyword;
  for (const Value& item : iterate(v)) out.push_back(call_filter(f, item, rest));
  return out;
}

Value sort_filter(const Value& v, const Args& a) {
  Array items = iterate(v);
  const bool reverse = a.get(0, "reverse") && a.get(0, "reverse")->truthy();
  const Value* attr = a.get(2, "attribute");
  auto key = [&](const Value& x) { return attr && !attr->is_none() ? attribute(x, need_str(*attr, "sort")) : x; };
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    return reverse ? less(key(y), key(x)) : less(key(x), key(y));
  });
  return items;
}

Value indent_filter(const Value& v, const Args& a) {
  const Value* w = a.get(0, "width");
  const std::string pad = w && w->is_string() ? w->str() : std::string(static_cast<size_t>(need_int(w, "indent", 4)), ' ');
  const bool first = a.get(1, "first") && a.get(1, "first")->truthy();
  const bool blank = a.get(2, "blank") && a.get(2, "blank")->truthy();
  const std::string s = to_str(v);
  std::string out;
  size_t pos = 0;
  bool is_first = true;
  while (pos <= s.size()) {
    const size_t e = s.find('\n', pos);
    const std::string line = s.substr(pos, e == std::string::npos ? std::string::npos : e - pos);
    if ((!is_first || first) && (blank || !line.empty())) out += pad;
    out += line;
    if (e == std::string::npos) break;
    out += '\n';
    pos = e + 1;
    is_first = false;
  }
  return out;
}

Value escape(const Value& v) {
  std::string out;
  for (char c : to_str(v)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Value min_max(const Value& v, bool is_max) {
  const Array items = iterate(v);
  if (items.empty()) return Value();
  Value best = items[0];
  for (const Value& x : items)
    if (is_max ? less(best, x) : less(x, best)) best = x;
  return best;
}

const std::map<std::string, FilterFn>& filters() {
  static const std::map<std::string, FilterFn> f = {
      {"trim", [](const Value& v, const Args& a) { return Value(strip(to_str(v), a.get(0, "chars"), true, true)); }},
      {"length", [](const Value& v, const Args&) { return length(v); }},
      {"count", [](const Value& v, const Args&) { return length(v); }},
      {"tojson", tojson},
      {"string", [](const Value& v, const Args&) { return Value(to_str(v)); }},
      {"upper", [](const Value& v, const Args&) { return Value(map_ascii(to_str(v), [](int c) { return std::toupper(c); })); }},
      {"lower", [](const Value& v, const Args&) { return Value(map_ascii(to_str(v), [](int c) { return std::tolower(c); })); }},
      {"capitalize", [](const Value& v, const Args&) { return Value(capitalize(to_str(v))); }},
      {"title", [](const Value& v, const Args&) { return Value(title(to_str(v))); }},
      {"default",
       [](const Value& v, const Args& a) {
         const Value* d = a.get(0, "default_value");
         const bool boolean = a.get(1, "boolean") && a.get(1, "boolean")->truthy();
         if (v.is_undefined() || (boolean && !v.truthy())) return d ? *d : Value("");
         return v;
       }},
      {"items", [](const Value& v, const Args&) { return items_of(v); }},
      {"first", [](const Value& v, const Args&) { return first_or_last(v, true); }},
      {"last", [](const Value& v, const Args&) { return first_or_last(v, false); }},
      {"join",
       [](const Value& v, const Args& a) {
         const Value* d = a.get(0, "d");
         const Value* attr = a.get(1, "attribute");
         std::string out;
         const Array items = iterate(v);
         for (size_t i = 0; i < items.size(); ++i)
           out += (i && d ? to_str(*d) : "") + to_str(attr ? attribute(items[i], need_str(*attr, "join")) : items[i]);
         return Value(out);
       }},
      {"replace",
       [](const Value& v, const Args& a) {
         return Value(replace(to_str(v), to_str(arg(a, 0, "old", "replace")), to_str(arg(a, 1, "new", "replace")),
                              need_int(a.get(2, "count"), "replace", -1)));
       }},
      {"selectattr", [](const Value& v, const Args& a) { return select(v, a, true, true); }},
      {"rejectattr", [](const Value& v, const Args& a) { return select(v, a, true, false); }},
      {"select", [](const Value& v, const Args& a) { return select(v, a, false, true); }},
      {"reject", [](const Value& v, const Args& a) { return select(v, a, false, false); }},
      {"map", map_filter},
      {"list", [](const Value& v, const Args&) { return Value(iterate(v)); }},
      {"reverse",
       [](const Value& v, const Args&) {
         if (v.is_string()) {
           std::u32string u = utf8_decode(v.str());
           std::reverse(u.begin(), u.end());
           return Value(utf8_encode(u));
         }
         Array items = iterate(v);
         std::reverse(items.begin(), items.end());
         return Value(std::move(items));
       }},
      {"sort", sort_filter},
      {"unique",
       [](const Value& v, const Args&) {
         Array out;
         for (const Value& x : iterate(v))
           if (std::none_of(out.begin(), out.end(), [&](const Value& y) { return equals(x, y); })) out.push_back(x);
         return Value(std::move(out));
       }},
      {"min", [](const Value& v, const Args&) { return min_max(v, false); }},
      {"max", [](const Value& v, const Args&) { return min_max(v, true); }},
      {"sum",
       [](const Value& v, const Args&) {
         Value total = int64_t{0};
         for (const Value& x : iterate(v)) {
           if (!x.is_number()) type_error("sum needs numbers", x);
           total = total.is_float() || x.is_float() ? Value(total.as_float() + x.as_float()) : Value(total.as_int() + x.as_int());
         }
         return total;
       }},
      {"abs",
       [](const Value& v, const Args&) {
         if (!v.is_number()) type_error("abs needs a number", v);
         return v.is_float() ? Value(std::fabs(v.as_float())) : Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
       }},
      {"int",
       [](const Value& v, const Args& a) {
         if (v.is_number()) return Value(static_cast<int64_t>(v.as_float()));
         try {
           return Value(static_cast<int64_t>(std::stoll(to_str(v))));
         } catch (const std::exception&) {
           const Value* d = a.get(0, "default");
           return d ? *d : Value(int64_t{0});
         }
       }},
      {"float",
       [](const Value& v, const Args& a) {
         if (v.is_number()) return Value(v.as_float());
         try {
           return Value(std::stod(to_str(v)));
         } catch (const std::exception&) {
           const Value* d = a.get(0, "default");
           return d ? *d : Value(0.0);
         }
       }},
      {"round",
       [](const Value& v, const Args& a) {
         if (!v.is_number()) type_error("round needs a number", v);
         const double p = std::pow(10.0, static_cast<double>(need_int(a.get(0, "precision"), "round", 0)));
         return Value(std::nearbyint(v.as_float() * p) / p);
       }},
      {"safe", [](const Value& v, const Args&) { return v; }},
      {"escape", [](const Value& v, const Args&) { return escape(v); }},
      {"e", [](const Value& v, const Args&) { return escape(v); }},
      {"indent", indent_filter},
      {"dictsort",
       [](const Value& v, const Args&) {
         Array items = items_of(v).array();
         std::stable_sort(items.begin(), items.end(),
                          [](const Value& x, const Value& y) { return less(x.array()[0], y.array()[0]); });
         return Value(std::move(items));
       }},
  };
  return f;
}

// ---- tests -------------------------------------------------------------------------------------

const std::map<std::string, TestFn>& tests() {
  auto cmp = [](bool (*op)(const Value&, const Value&)) {
    return [op](const Value& v, const Args& a) { return op(v, arg(a, 0, "other", "comparison test")); };
  };
  static const std::map<std::string, TestFn> t = {
      {"defined", [](const Value& v, const Args&) { return !v.is_undefined(); }},
      {"undefined", [](const Value& v, const Args&) { return v.is_undefined(); }},
      {"none", [](const Value& v, const Args&) { return v.is_none(); }},
      {"string", [](const Value& v, const Args&) { return v.is_string(); }},
      {"number", [](const Value& v, const Args&) { return v.is_number(); }},
      {"integer", [](const Value& v, const Args&) { return v.is_int(); }},
      {"float", [](const Value& v, const Args&) { return v.is_float(); }},
      {"boolean", [](const Value& v, const Args&) { return v.is_bool(); }},
      {"true", [](const Value& v, const Args&) { return v.is_bool() && v.as_bool(); }},
      {"false", [](const Value& v, const Args&) { return v.is_bool() && !v.as_bool(); }},
      {"mapping", [](const Value& v, const Args&) { return v.is_object(); }},
      // Jinja2's undefined iterates as empty, so it is iterable (and a sequence) too.
      {"iterable", [](const Value& v, const Args&) { return v.is_string() || v.is_array() || v.is_object() || v.is_undefined(); }},
      {"sequence", [](const Value& v, const Args&) { return v.is_string() || v.is_array() || v.is_object() || v.is_undefined(); }},
      {"callable", [](const Value& v, const Args&) { return v.is_function(); }},
      {"equalto", cmp([](const Value& x, const Value& y) { return equals(x, y); })},
      {"eq", cmp([](const Value& x, const Value& y) { return equals(x, y); })},
      {"==", cmp([](const Value& x, const Value& y) { return equals(x, y); })},
      {"ne", cmp([](const Value& x, const Value& y) { return !equals(x, y); })},
      {"!=", cmp([](const Value& x, const Value& y) { return !equals(x, y); })},
      {"lt", cmp([](const Value& x, const Value& y) { return less(x, y); })},
      {"le", cmp([](const Value& x, const Value& y) { return !less(y, x); })},
      {"gt", cmp([](const Value& x, const Value& y) { return less(y, x); })},
      {"ge", cmp([](const Value& x, const Value& y) { return !less(x, y); })},
      {"in", [](const Value& v, const Args& a) { return contains(arg(a, 0, "seq", "in"), v); }},
      {"sameas",
       [](const Value& v, const Args& a) {
         const Value& o = arg(a, 0, "other", "sameas");
         if (v.kind() != o.kind()) return false;
         if (v.is_array()) return &v.array() == &o.array();
         if (v.is_object()) return &v.object() == &o.object();
         return equals(v, o);
       }},
      {"divisibleby",
       [](const Value& v, const Args& a) {
         const int64_t d = need_int(&arg(a, 0, "num", "divisibleby"), "divisibleby", 1);
         return d != 0 && need_int(&v, "divisibleby", 0) % d == 0;
       }},
      {"even", [](const Value& v, const Args&) { return need_int(&v, "even", 0) % 2 == 0; }},
      {"odd", [](const Value& v, const Args&) { return need_int(&v, "odd", 0) % 2 != 0; }},
      {"lower", [](const Value& v, const Args&) { return v.is_string() && map_ascii(v.str(), [](int c) { return std::tolower(c); }) == v.str(); }},
      {"upper", [](const Value& v, const Args&) { return v.is_string() && map_ascii(v.str(), [](int c) { return std::toupper(c); }) == v.str(); }},
  };
  return t;
}

// ---- globals -----------------------------------------------------------------------------------

Value range(const Args& a) {
  int64_t start = 0, stop = 0, step = 1;
  if (a.positional.size() == 1) {
    stop = need_int(&a.positional[0], "range", 0);
  } else if (a.positional.size() == 2 || a.positional.size() == 3) {
    start = need_int(&a.positional[0], "range", 0);
    stop = need_int(&a.positional[1], "range", 0);
    if (a.positional.size() == 3) step = need_int(&a.positional[2], "range", 1);
  } else {
    throw RenderError("range takes 1 to 3 integers");
  }
  if (step == 0) throw RenderError("range: step must not be zero");
  Array out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (out.size() >= 1000000) throw RenderError("range: more than 1000000 items");
    out.emplace_back(i);
  }
  return out;
}

Value make_dict(const Args& a, bool is_namespace) {
  Object o;
  o.is_namespace = is_namespace;
  for (const Value& p : a.positional) {  // namespace({...}) / dict({...}) copies a dict
    if (!p.is_object()) type_error(is_namespace ? "namespace takes a dict" : "dict takes a dict", p);
    for (const auto& [k, v] : p.object().items) o.set(k, v);
  }
  for (const auto& [k, v] : a.keyword) o.set(k, v);
  return o;
}

Value strftime_now(const Args& a) {
  const std::string& fmt = need_str(arg(a, 0, "format", "strftime_now"), "strftime_now");
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[256];
  const size_t n = std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
  return std::string(buf, n);
}

}  // namespace

bool has_filter(const std::string& name) { return filters().count(name) != 0; }
bool has_test(const std::string& name) { return tests().count(name) != 0; }

Value call_filter(const std::string& name, const Value& value, const Args& args) {
  const auto it = filters().find(name);
  if (it == filters().end()) throw RenderError("unknown filter '" + name + "'");
  return it->second(value, args);
}

bool call_test(const std::string& name, const Value& value, const Args& args) {
  const auto it = tests().find(name);
  if (it == tests().end()) throw RenderError("unknown test '" + name + "'");
  return it->second(value, args);
}

Value global(const std::string& name) {
  if (name == "range") return Value::function(name, range);
  if (name == "namespace") return Value::function(name, [](const Args& a) { return make_dict(a, true); });
  if (name == "dict") return Value::function(name, [](const Args& a) { return make_dict(a, false); });
  if (name == "raise_exception")
    return Value::function(name, [](const Args& a) -> Value {
      throw RenderError("the template raised an error: " + to_str(arg(a, 0, "message", "raise_exception")));
    });
  if (name == "strftime_now") return Value::function(name, strftime_now);
  return Value();
}

Value get_attr(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined: throw RenderError("cannot read '." + name + "' of an undefined value");
    case Value::Kind::kString:
      if (listed(kStrMethods, name))
        return Value::function("str." + name, [s = obj.str(), name](const Args& a) { return str_method(s, name, a); });
      return Value();
    case Value::Kind::kObject: {
      if (!obj.object().is_namespace && listed(kDictMethods, name))
        return Value::function("dict." + name, [obj, name](const Args& a) { return dict_method(obj, name, a); });
      const Value* v = obj.object().find(name);
      return v ? *v : Value();
    }
    case Value::Kind::kArray:
      if (listed(kListMethods, name))
        return Value::function("list." + name, [obj, name](const Args& a) { return list_method(obj.array(), name, a); });
      return Value();
    default: return Value();
  }
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) throw RenderError("cannot index an undefined value");
  if ((obj.is_array() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.as_int();
    if (obj.is_array()) {
      const int64_t n = static_cast<int64_t>(obj.array().size());
      if (i < 0) i += n;
      return i >= 0 && i < n ? obj.array()[static_cast<size_t>(i)] : Value();
    }
    const std::u32string u = utf8_decode(obj.str());
    const int64_t n = static_cast<int64_t>(u.size());
    if (i < 0) i += n;
    return i >= 0 && i < n ? Value(utf8_encode(u.substr(static_cast<size_t>(i), 1))) : Value();
  }
  if (obj.is_object() && key.is_string()) {
    const Value* v = obj.object().find(key.str());
    if (v) return *v;
  }
  return key.is_string() ? get_attr(obj, key.str()) : Value();
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (!obj.is_array() && !obj.is_string()) type_error("slicing needs a list or str", obj);
  auto opt = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!v.is_int() && !v.is_bool()) type_error(std::string("slice ") + what + " needs an integer", v);
    return v.as_int();
  };
  const int64_t st = opt(step, "step").value_or(1);
  if (st == 0) throw RenderError("slice step cannot be zero");
  const std::u32string u = obj.is_string() ? utf8_decode(obj.str()) : std::u32string();
  const int64_t n = obj.is_string() ? static_cast<int64_t>(u.size()) : static_cast<int64_t>(obj.array().size());
  // CPython's PySlice_AdjustIndices.
  auto adjust = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v;
    if (x < 0) x = std::max<int64_t>(x + n, st < 0 ? -1 : 0);
    else x = std::min<int64_t>(x, st < 0 ? n - 1 : n);
    return x;
  };
  const int64_t b = adjust(opt(start, "start"), st < 0 ? n - 1 : 0);
  const int64_t e = adjust(opt(stop, "stop"), st < 0 ? -1 : n);
  std::vector<size_t> idx;
  for (int64_t i = b; st > 0 ? i < e : i > e; i += st) idx.push_back(static_cast<size_t>(i));
  if (obj.is_string()) {
    std::u32string out;
    for (size_t i : idx) out += u[i];
    return utf8_encode(out);
  }
  Array out;
  for (size_t i : idx) out.push_back(obj.array()[i]);
  return out;
}

Array iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return {};
    case Value::Kind::kArray: return v.array();
    case Value::Kind::kObject: {
      Array keys;
      for (const auto& [k, e] : v.object().items) keys.emplace_back(k);
      return keys;
    }
    case Value::Kind::kString: {
      Array chars;
      for (char32_t c : utf8_decode(v.str())) chars.emplace_back(utf8_encode(std::u32string(1, c)));
      return chars;
    }
    default: type_error("cannot iterate over this value", v);
  }
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined: return false;
    case Value::Kind::kString: return container.str().find(need_str(item, "'in <str>'")) != std::string::npos;
    case Value::Kind::kArray:
      return std::any_of(container.array().begin(), container.array().end(), [&](const Value& x) { return equals(x, item); });
    case Value::Kind::kObject: return item.is_string() && container.object().find(item.str()) != nullptr;
    default: type_error("'in' needs a str, list or dict on the right", container);
  }
}

}  // namespace keel::models::jinja
