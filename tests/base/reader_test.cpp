// Tests of config::Node / Reader: parsing, typed fields, unknown keys, overrides, rendering.
#include "base/reader.h"

#include <gtest/gtest.h>

#include "base/error.h"

namespace keel::config {
namespace {

struct Small {
  double lr = 0.1;
  int steps = 3;
  bool flag = false;
  std::string mode = "a";
  std::vector<int64_t> ids;
};

void read_small(Reader& r, Small& s) {
  r.field("lr", s.lr, "learning rate").gt(0);
  r.field("steps", s.steps, "steps").ge(1);
  r.field("flag", s.flag, "a flag");
  r.field("mode", s.mode, "mode").one_of({"a", "b"}, "mode");
  r.field("ids", s.ids, "ids").ge(0);
}

std::vector<std::string> errors_of(const std::string& yaml, Small* out = nullptr,
                                   const std::vector<std::string>& overrides = {}) {
  Node root = parse_yaml_string(yaml, "t.yaml");
  for (const auto& o : overrides) apply_override(root, o);
  Diagnostics d;
  Small s;
  Reader r(&root, "", d);
  r.section("s", "", [&](Reader& sub) { read_small(sub, s); });
  r.finish();
  if (out) *out = s;
  return d.errors();
}

TEST(ConfigReader, ReadsTypedValuesAndKeepsDefaults) {
  Small s;
  EXPECT_TRUE(errors_of("s:\n  lr: 0.5\n  flag: true\n  ids: [1, 2]\n", &s).empty());
  EXPECT_DOUBLE_EQ(s.lr, 0.5);
  EXPECT_EQ(s.steps, 3);
  EXPECT_TRUE(s.flag);
  EXPECT_EQ(s.ids, (std::vector<int64_t>{1, 2}));
}

TEST(ConfigReader, ReportsEveryErrorWithLineAndPath) {
  const auto e = errors_of("s:\n  lr: -1\n  steps: 1.5\n  mode: zzz\n  bogus: 1\n");
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0], "t.yaml:2: s.lr: must be > 0.0, got -1.0");
  EXPECT_EQ(e[1], "t.yaml:3: s.steps: expected an integer, got '1.5'");
  EXPECT_EQ(e[2], "t.yaml:4: s.mode: unknown mode 'zzz' (known: a, b)");
  EXPECT_EQ(e[3], "t.yaml:5: s.bogus: unknown key (known here: lr, steps, flag, mode, ids)");
}

TEST(ConfigReader, OverridesAreTypedAndNamed) {
  Small s;
  EXPECT_TRUE(errors_of("s:\n  lr: 0.5\n", &s, {"s.lr=0.25", "s.ids=[3]"}).empty());
  EXPECT_DOUBLE_EQ(s.lr, 0.25);
  EXPECT_EQ(s.ids, (std::vector<int64_t>{3}));
  const auto e = errors_of("s: {}\n", nullptr, {"s.steps=abc"});
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0], "override s.steps=abc: s.steps: expected an integer, got 'abc'");
}

TEST(ConfigReader, MalformedOverrideThrows) {
  Node root = parse_yaml_string("s: {}\n", "t.yaml");
  EXPECT_THROW(apply_override(root, "novalue"), Error);
  EXPECT_THROW(apply_override(root, "a..b=1"), Error);
}

TEST(ConfigReader, RendersResolvedYaml) {
  Node root = parse_yaml_string("s:\n  lr: 0.5\n", "t.yaml");
  Diagnostics d;
  Doc doc;
  Small s;
  Reader r(&root, "", d, &doc);
  r.section("s", "small", [&](Reader& sub) { read_small(sub, s); });
  EXPECT_EQ(render_yaml(doc, false), "s:\n  lr: 0.5\n  steps: 3\n  flag: false\n  mode: a\n  ids: []\n");
}

TEST(ConfigReader, YamlSyntaxErrorNamesFileAndLine) {
  try {
    parse_yaml_string("a: 1\nb: [1, 2\n", "bad.yaml");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("bad.yaml:", 0), 0u) << e.what();
  }
}

// `temperature: .inf`, `lr: .inf` passed validate and only broke training steps later: every
// floating-point field refuses infinities and NaN, in the file and in overrides, in lists too.
TEST(ConfigReader, NumbersMustBeFinite) {
  for (const char* v : {".inf", "-.inf", ".Inf", "+.inf", "inf", "infinity", ".nan", ".NaN", "nan"}) {
    const auto e = errors_of(std::string("s:\n  lr: ") + v + "\n");
    ASSERT_EQ(e.size(), 1u) << v;
    EXPECT_EQ(e[0], fmt::format("t.yaml:2: s.lr: expected a finite number, got '{}'", v));
  }
  auto e = errors_of("s:\n  lr: 1e400\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0], "t.yaml:2: s.lr: expected a finite number, got '1e400' (beyond the range of a double)");
  e = errors_of("s:\n  lr: 0.5\n", nullptr, {"s.lr=.inf"});
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0], "override s.lr=.inf: s.lr: expected a finite number, got '.inf'");
  Node root = parse_yaml_string("xs: [1.0, .inf]\n", "t.yaml");
  std::vector<double> xs;
  EXPECT_EQ(parse_value(*root.find("xs"), xs), "item 1: expected a finite number, got '.inf'");
  // A string field still takes the text, and prints it quoted so it reads back as a string.
  std::string str;
  EXPECT_EQ(parse_value(*parse_yaml_string("a: .inf\n", "t.yaml").find("a"), str), "");
  EXPECT_EQ(str, ".inf");
  EXPECT_EQ(format_value(str), "\".inf\"");
}

}  // namespace
}  // namespace keel::config
