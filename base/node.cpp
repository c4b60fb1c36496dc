// YAML (yaml-cpp) -> config::Node, and command-line overrides. The only yaml-cpp user for configs.
#include "base/node.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "base/error.h"

namespace keel::config {

std::string Source::str() const {
  if (!override.empty()) return "override " + override;
  if (file.empty()) return "<defaults>";
  if (line > 0) return fmt::format("{}:{}", file, line);
  return file;
}

Node Node::scalar(std::string v, Source src, bool quoted) {
  Node n;
  n.kind_ = Kind::kScalar;
  n.text_ = std::move(v);
  n.quoted_ = quoted;
  n.src_ = std::move(src);
  return n;
}
Node Node::null(Source src) {
  Node n;
  n.src_ = std::move(src);
  return n;
}
Node Node::map(Source src) {
  Node n;
  n.kind_ = Kind::kMap;
  n.src_ = std::move(src);
  return n;
}
Node Node::seq(Source src) {
  Node n;
  n.kind_ = Kind::kSeq;
  n.src_ = std::move(src);
  return n;
}

std::string Node::kind_name() const {
  switch (kind_) {
    case Kind::kNull: return "nothing";
    case Kind::kScalar: return fmt::format("'{}'", text_);
    case Kind::kSeq: return "a list";
    case Kind::kMap: return "a map";
  }
  return "?";
}

const Node* Node::find(const std::string& key) const {
  for (const auto& [k, v] : map_)
    if (k == key) return &v;
  return nullptr;
}
Node* Node::find(const std::string& key) {
  for (auto& [k, v] : map_)
    if (k == key) return &v;
  return nullptr;
}
Node& Node::set(const std::string& key, Node value) {
  if (Node* n = find(key)) {
    *n = std::move(value);
    return *n;
  }
  map_.emplace_back(key, std::move(value));
  return map_.back().second;
}

namespace {

// A config is a few hundred values. These bounds keep a hostile or mistaken file from exhausting
// memory before any message: YAML aliases share one node in yaml-cpp but convert() copies them, so
// nested aliases ("billion laughs") expand exponentially, and an anchor inside its own value
// (`&a [*a]`) makes a cycle.
constexpr size_t kMaxConfigBytes = size_t{16} << 20;  // the file's text
constexpr size_t kMaxValues = 100000;                   // maps, lists and scalars after alias expansion
constexpr int kMaxDepth = 64;                           // nesting of maps and lists

/// What one conversion may still create; `file` names the document in its failures.
struct Budget {
  std::string file;
  size_t values = 0;
};

Node convert(const YAML::Node& y, const std::string& file, const Source* override_src, Budget& budget, int depth) {
  Source src = override_src ? *override_src : Source{file, y.Mark().line + 1, ""};
  if (++budget.values > kMaxValues)
    fail("{}: the YAML expands to more than {} values (aliases of aliases, a \"billion laughs\" document?); a "
         "config is a few hundred values",
         budget.file, kMaxValues);
  if (depth > kMaxDepth)
    fail("{}: values nested more than {} levels deep (an alias inside its own anchor?)", src.str(), kMaxDepth);
  switch (y.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return Node::null(src);
    case YAML::NodeType::Scalar:
      // yaml-cpp tags quoted scalars "!" and plain ones "?".
      return Node::scalar(y.Scalar(), src, y.Tag() == "!");
    case YAML::NodeType::Sequence: {
      Node n = Node::seq(src);
      for (const auto& item : y) n.push_back(convert(item, file, override_src, budget, depth + 1));
      return n;
    }
    case YAML::NodeType::Map: {
      Node n = Node::map(src);
      for (const auto& kv : y) {
        const auto& key = kv.first;
        if (!key.IsScalar())
          fail("{}:{}: map keys must be plain names", file, key.Mark().line + 1);
        const std::string k = key.Scalar();
        if (n.find(k))
          fail("{}:{}: duplicate key '{}'", file, key.Mark().line + 1, k);
        Node child = convert(kv.second, file, override_src, budget, depth + 1);
        // Messages about a key's value point at the key's line (a block map's own mark is its
        // first entry; a key with no value has no mark of its own).
        if (!override_src && !child.is_scalar()) child.set_source(Source{file, key.Mark().line + 1, ""});
        n.set(k, std::move(child));
      }
      return n;
    }
  }
  return Node();
}

/// `empty_ok`: a document with no content (empty, only comments, or `null`) is an empty map; else
/// it is an error — an empty config file is a mistake far more often than a wish for every
/// default, which `{}` states explicitly.
Node load_yaml(const std::string& text, const std::string& file, bool empty_ok) {
  if (text.size() > kMaxConfigBytes)
    fail("{}: {} bytes is too large for a config file (at most {} MiB); data belongs in data.train_file", file,
         text.size(), kMaxConfigBytes >> 20);
  YAML::Node y;
  try {
    y = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    fail("{}:{}: invalid YAML: {}", file, e.mark.line + 1, e.msg);
  }
  if (!y || y.IsNull()) {
    if (empty_ok) return Node::map(Source{file, 1, ""});
    fail("{}: the config file is empty (write `{{}}` to train every default, or start from configs/quickstart.yaml "
         "or configs/reference.yaml)",
         file);
  }
  if (!y.IsMap()) fail("{}:{}: a config must be a map of sections, got {}", file, y.Mark().line + 1,
                       y.IsSequence() ? "a list" : "a single value");
  Budget budget{file};
  return convert(y, file, nullptr, budget, 0);
}

/// A listing hint for a directory given as a config: its first few YAML files.
std::string yaml_files_in(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const auto ext = e.path().extension();
    if ((ext == ".yaml" || ext == ".yml") && e.is_regular_file(ec)) names.push_back(e.path().string());
  }
  std::sort(names.begin(), names.end());
  if (names.empty()) return "";
  std::string s;
  for (size_t i = 0; i < names.size() && i < 3; ++i) s += (i ? ", " : "") + names[i];
  return fmt::format(", e.g. {}{}", s, names.size() > 3 ? ", ..." : "");
}

}  // namespace

Node parse_yaml_string(const std::string& text, const std::string& file) { return load_yaml(text, file, true); }

Node parse_yaml_file(const std::string& path, const std::string& display_name) {
  const std::string name = display_name.empty() ? path : display_name;
  std::error_code ec;
  // An ifstream opens a directory and reads nothing from it: without this a directory was an empty
  // config, i.e. the built-in defaults.
  if (std::filesystem::is_directory(path, ec))
    fail("{}: is a directory, not a config file (give a YAML file{})", name, yaml_files_in(path));
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open config file (does it exist and is it readable?)", name);
  // Read at most one byte past the limit: a device or pipe (/dev/zero) may never end.
  std::string text;
  char buf[1 << 16];
  while (text.size() <= kMaxConfigBytes && in.read(buf, sizeof buf).gcount() > 0)
    text.append(buf, static_cast<size_t>(in.gcount()));
  if (in.bad()) fail("{}: cannot read config file", name);
  return load_yaml(text, name, false);
}

Source source_of(const Node& root, const std::string& path) {
  const Node* n = &root;
  Source src = root.source();
  size_t pos = 0;
  while (pos <= path.size() && !path.empty()) {
    const size_t dot = path.find('.', pos);
    const std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    const Node* next = nullptr;
    if (n->is_map()) {
      next = n->find(part);
    } else if (n->is_seq() && !part.empty() && part.find_first_not_of("0123456789") == std::string::npos) {
      const size_t i = std::stoul(part);
      if (i < n->items().size()) next = &n->items()[i];
    }
    if (!next) break;
    n = next;
    src = n->source();
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return src;
}

void apply_override(Node& root, const std::string& arg) {
  const auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0)
    fail("override '{}': expected key.path=value (e.g. learner.lr=1e-6)", arg);
  const std::string path = arg.substr(0, eq);
  const std::string value = arg.substr(eq + 1);
  std::vector<std::string> parts;
  {
    size_t start = 0;
    while (true) {
      const auto dot = path.find('.', start);
      parts.push_back(path.substr(start, dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
  }
  for (const auto& p : parts)
    if (p.empty()) fail("override '{}': empty component in key path '{}'", arg, path);

  const Source src{"", 0, arg};
  Node parsed;
  try {
    YAML::Node y = YAML::Load(value);
    Budget budget{"override " + arg};
    parsed = (!y || y.IsNull()) ? Node::null(src) : convert(y, "", &src, budget, 0);
  } catch (const YAML::Exception& e) {
    fail("override '{}': value is not valid YAML: {}", arg, e.msg);
  }

  Node* cur = &root;
  std::string walked;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    const bool last = i + 1 == parts.size();
    if (cur->is_seq()) {
      char* end = nullptr;
      const long idx = std::strtol(part.c_str(), &end, 10);
      if (*end != '\0' || idx < 0 || static_cast<size_t>(idx) >= cur->items().size())
        fail("override '{}': {} is a list of {} items, '{}' is not a valid index", arg, walked,
             cur->items().size(), part);
      cur = &cur->items()[static_cast<size_t>(idx)];
    } else {
      if (cur->is_null()) *cur = Node::map(src);
      if (!cur->is_map())
        fail("override '{}': {} is a single value, it has no key '{}'", arg, walked, part);
      if (last) {
        cur->set(part, parsed);
        return;
      }
      Node* next = cur->find(part);
      if (!next) next = &cur->set(part, Node::map(src));
      cur = next;
    }
    walked += (walked.empty() ? "" : ".") + part;
    if (last) {
      *cur = parsed;
      return;
    }
  }
}

}  // namespace keel::config
