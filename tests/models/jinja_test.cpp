// keel's Jinja interpreter on hand-written snippets: each construct of the subset with the output
// Python's jinja2 gives under transformers' settings (trim_blocks, lstrip_blocks), and each error
// (syntax, unsupported construct, render failure) with the origin and line it must name. The real
// chat templates are checked in chat_template_parity_test.cpp.
#include "models/jinja.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/error.h"

namespace keel::models::jinja {
namespace {

using nlohmann::ordered_json;

std::string render(const std::string& src, const ordered_json& ctx = ordered_json::object()) {
  return Template::parse(src, "t.jinja").render(ctx);
}

// The keel::Error message of parsing + rendering `src`.
std::string error_of(const std::string& src, const ordered_json& ctx = ordered_json::object()) {
  try {
    render(src, ctx);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Jinja, OutputAndLiterals) {
  EXPECT_EQ(render("a{{ 'b' }}c{{ \"d\\n\" }}{{ 1 }}{{ 2.5 }}{{ true }}{{ none }}{{ [1, 'x'] }}"),
            "abcd\n12.5TrueNone[1, 'x']");
  EXPECT_EQ(render("{{ x }}|{{ x.y is defined }}", {{"x", {{"z", 1}}}}), "{'z': 1}|False");
  EXPECT_EQ(render("{{ missing }}"), "");  // undefined prints as ""
  EXPECT_EQ(render("{{ 'a' 'b' }}"), "ab");
  EXPECT_EQ(render("{{ {'k': [1, 2]}['k'][1] }}"), "2");
}

TEST(Jinja, Operators) {
  EXPECT_EQ(render("{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 3 }} {{ 7 / 2 }}"),
            "7 3 -4 1 2 8 3.5");
  EXPECT_EQ(render("{{ 3 ** 13 }} {{ 2 ** 0 }} {{ 2 ** -1 }} {{ 1.5 * 2 }} {{ 7.5 // 2 }}"), "1594323 1 0.5 3.0 3.0");
  EXPECT_EQ(render("{{ 'a' + 'b' }}{{ 'a' ~ 1 ~ none }}{{ [1] + [2] }}{{ 'ab' * 2 }}"), "ab" "a1None" "[1, 2]" "abab");
  EXPECT_EQ(render("{{ 1 == 1.0 }}{{ 'a' != 'b' }}{{ 2 < 3 }}{{ 'b' >= 'a' }}{{ [1, 2] == [1, 2] }}"),
            "TrueTrueTrueTrueTrue");
  EXPECT_EQ(render("{{ 'x' in 'axb' }}{{ 2 in [1, 2] }}{{ 'k' in {'k': 1} }}{{ 'z' not in 'ab' }}{{ 'a' in u }}"),
            "TrueTrueTrueTrueFalse");
  // and / or return an operand, not / if-else, filters bind tighter than +.
  EXPECT_EQ(render("{{ 0 or 'x' }}|{{ 'a' and 'b' }}|{{ not 0 }}|{{ 'y' if 0 else 'n' }}|{{ 'y' if 0 }}|"
                   "{{ 'a' + ' b ' | trim }}"),
            "x|b|True|n||ab");
  EXPECT_EQ(render("{{ -3 | abs }}"), "3");
}

TEST(Jinja, IfElifElse) {
  const std::string t = "{% if x > 1 %}big{% elif x == 1 %}one{% else %}small{% endif %}";
  EXPECT_EQ(render(t, {{"x", 2}}), "big");
  EXPECT_EQ(render(t, {{"x", 1}}), "one");
  EXPECT_EQ(render(t, {{"x", 0}}), "small");
}

TEST(Jinja, ForLoopVariables) {
  EXPECT_EQ(render("{% for x in xs %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }}"
                   "{{ loop.revindex0 }},{% endfor %}",
                   {{"xs", {"a", "b"}}}),
            "01TrueFalse21,12FalseTrue20,");
  EXPECT_EQ(render("{% for x in xs if x != 2 %}{{ x }}{{ loop.last }}{% endfor %}", {{"xs", {1, 2, 3}}}), "1False3True");
  EXPECT_EQ(render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", {{"d", {{"b", 1}, {"a", 2}}}}), "b=1;a=2;");
  EXPECT_EQ(render("{% for k in d %}{{ k }}{% endfor %}{% for c in 'ab' %}[{{ c }}]{% endfor %}", {{"d", {{"x", 1}}}}),
            "x[a][b]");
  EXPECT_EQ(render("{% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}"
                   "{% endif %}{{ x }}{% endfor %}"),
            "13");
  EXPECT_EQ(render("{% for x in range(3) %}{{ loop.cycle('a', 'b') }}{% endfor %}"), "aba");
  EXPECT_EQ(render("{% for x in [1, 2] %}{% for y in [3] %}{{ x }}{{ y }}{% endfor %}{% endfor %}"), "1323");
}

TEST(Jinja, SetScopingAndNamespace) {
  // A set inside a loop is the iteration's own (jinja2 scoping); namespace() carries state out.
  EXPECT_EQ(render("{% set x = 5 %}{% for i in [1, 2] %}[{{ x }}]{% set x = i %}{% endfor %}{{ x }}"), "[5][5]5");
  EXPECT_EQ(render("{% set ns = namespace(n=0, found=false) %}{% for i in [1, 2, 3] %}{% set ns.n = ns.n + i %}"
                   "{% endfor %}{{ ns.n }}{{ ns.found }}"),
            "6False");
  EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.a = 'x' %}{{ ns.a }}"), "x");
  EXPECT_EQ(render("{% set a, b = [1, 2] %}{{ b }}{{ a }}"), "21");
  EXPECT_EQ(render("{% set messages = messages[1:] %}{{ messages | length }}", {{"messages", {1, 2, 3}}}), "2");
  EXPECT_EQ(render("{% set block %}in {{ 1 }}{% endset %}[{{ block }}]"), "[in 1]");
}

TEST(Jinja, WhitespaceControl) {
  EXPECT_EQ(render("a  {{- 'b' -}}  \n c"), "abc");
  EXPECT_EQ(render("a\n  {%- if true %}\n  b\n  {%- endif %}\nc"), "a  bc");
  // trim_blocks drops the newline after a tag; lstrip_blocks the indent before it.
  EXPECT_EQ(render("  {% if true %}\n  x\n  {% endif %}\n  y"), "  x\n  y");
  EXPECT_EQ(render("{# note #}\na{#- gone -#}  b"), "ab");
  EXPECT_EQ(render("x\n"), "x");  // one trailing newline is dropped, as Jinja does by default
  EXPECT_EQ(render("x\n\n"), "x\n");
  EXPECT_EQ(render("{% raw %}{{ not evaluated }}{% endraw %}"), "{{ not evaluated }}");
  EXPECT_EQ(render("{{ {'a': {'b': 1}}['a']['b'] }}"), "1");  // "}}" inside a dict literal
}

TEST(Jinja, Filters) {
  ordered_json ctx = {{"ms", {{{"role", "user"}, {"n", 1}}, {{"role", "bot"}, {"n", 2}}, {{"role", "user"}, {"n", 3}}}}};
  EXPECT_EQ(render("{{ ' a \n' | trim }}|{{ 'ab' | length }}|{{ [1, 2] | length }}|{{ 'Ab' | upper }}{{ 'Ab' | lower }}"),
            "a|2|2|ABab");
  EXPECT_EQ(render("{{ x | default('d') }}{{ '' | default('e', true) }}{{ 0 | string }}"), "de0");
  EXPECT_EQ(render("{{ [1, 2, 3] | first }}{{ [1, 2, 3] | last }}{{ [1, 2] | join(', ') }}{{ 'a-b' | replace('-', '+') }}"),
            "131, 2a+b");
  EXPECT_EQ(render("{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='n') | join }}", ctx), "13");
  EXPECT_EQ(render("{{ ms | rejectattr('role', 'equalto', 'user') | list | length }}", ctx), "1");
  EXPECT_EQ(render("{{ ['a', 'b', 'code'] | reject('equalto', 'code') | join(', ') }}"), "a, b");
  EXPECT_EQ(render("{% for k, v in {'x': 1} | items %}{{ k }}{{ v }}{% endfor %}"), "x1");
  EXPECT_EQ(render("{{ [3, 1, 2] | sort | join }}{{ [1, 2] | reverse | join }}{{ [1, 1, 2] | unique | join }}"), "1232112");
}

TEST(Jinja, ToJsonLikeTransformers) {
  ordered_json ctx = {{"v", {{"b", 1}, {"a", {true, nullptr, 1.5, "é\"\n"}}}}};
  // json.dumps(ensure_ascii=False): insertion order, ", " and ": " separators, UTF-8 kept.
  EXPECT_EQ(render("{{ v | tojson }}", ctx), "{\"b\": 1, \"a\": [true, null, 1.5, \"é\\\"\\n\"]}");
  EXPECT_EQ(render("{{ v | tojson(indent=2) }}", ctx),
            "{\n  \"b\": 1,\n  \"a\": [\n    true,\n    null,\n    1.5,\n    \"é\\\"\\n\"\n  ]\n}");
  EXPECT_EQ(render("{{ v | tojson(sort_keys=true, separators=(',', ':')) }}", ctx),
            "{\"a\":[true,null,1.5,\"é\\\"\\n\"],\"b\":1}");
  EXPECT_EQ(render("{{ [1.0, 0.1, 1e-05, 1e16, 123456.789] | tojson }}"), "[1.0, 0.1, 1e-05, 1e+16, 123456.789]");
  EXPECT_EQ(render("{{ {} | tojson }}{{ [] | tojson(indent=4) }}"), "{}[]");
}

TEST(Jinja, Tests) {
  ordered_json ctx = {{"s", "x"}, {"n", nullptr}, {"d", {{"k", 1}}}, {"l", {1}}, {"i", 3}, {"f", false}};
  EXPECT_EQ(render("{{ s is defined }}{{ u is defined }}{{ u is undefined }}{{ n is none }}{{ s is not none }}", ctx),
            "TrueFalseTrueTrueTrue");
  EXPECT_EQ(render("{{ s is string }}{{ d is mapping }}{{ l is mapping }}{{ s is iterable }}{{ i is iterable }}", ctx),
            "TrueTrueFalseTrueFalse");
  EXPECT_EQ(render("{{ i is number }}{{ i is integer }}{{ f is false }}{{ f is true }}{{ f is boolean }}", ctx),
            "TrueTrueTrueFalseTrue");
  EXPECT_EQ(render("{{ i is divisibleby 3 }}{{ i is odd }}{{ i is even }}{{ s is equalto 'x' }}{{ 1 is in [1] }}", ctx),
            "TrueTrueFalseTrueTrue");
  EXPECT_EQ(render("{{ strftime_now is defined }}{{ raise_exception is callable }}"), "TrueTrue");
}

TEST(Jinja, StringMethodsAndSlicing) {
  ordered_json ctx = {{"c", "<think>\nreason\n</think>\n\nanswer"}};
  EXPECT_EQ(render("{{ c.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}|"
                   "{{ c.split('</think>')[-1].lstrip('\\n') }}",
                   ctx),
            "reason|answer");
  EXPECT_EQ(render("{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}{{ '  a  '.strip() }}{{ 'xxaxx'.strip('x') }}"),
            "TrueTrueaa");
  EXPECT_EQ(render("{{ 'a b  c'.split() | length }}{{ 'a,b'.split(',') }}{{ 'aaa'.replace('a', 'b', 2) }}"),
            "3['a', 'b']bba");
  EXPECT_EQ(render("{{ 'abc'.upper() }}{{ 'ABC'.lower() }}{{ '-'.join(['a', 'b']) }}{{ 'hello world'.title() }}"),
            "ABCabca-bHello World");
  EXPECT_EQ(render("{{ [1, 2, 3][::-1] }}{{ [1, 2, 3][1:] }}{{ 'héllo'[:-1] }}{{ 'héllo'[1] }}{{ [1, 2, 3][-1] }}"),
            "[3, 2, 1][2, 3]héllé3");
  EXPECT_EQ(render("{{ 'héllo' | length }}{{ {'a': 1}.get('a') }}{{ {'a': 1}.get('b', 'd') }}{{ {'a': 1}.keys() | list }}"),
            "51d['a']");
}

TEST(Jinja, SyntaxErrorsNameTheLine) {
  EXPECT_THAT(error_of("line1\n{{ x | nofilter }}"), testing::HasSubstr("t.jinja:2: unknown filter 'nofilter'"));
  EXPECT_THAT(error_of("{% if x is notatest %}{% endif %}"), testing::HasSubstr("t.jinja:1: unknown test 'notatest'"));
  EXPECT_THAT(error_of("\n\n{% macro m() %}{% endmacro %}"), testing::HasSubstr("t.jinja:3: {% macro %} is not supported"));
  EXPECT_THAT(error_of("{% frobnicate %}"), testing::HasSubstr("t.jinja:1: unknown tag 'frobnicate'"));
  EXPECT_THAT(error_of("{% if x %}\nno end"), testing::HasSubstr("t.jinja:1: {% if %} is not closed"));
  EXPECT_THAT(error_of("{{ 'abc }}"), testing::HasSubstr("unterminated string literal"));
  EXPECT_THAT(error_of("{{ x "), testing::HasSubstr("not closed by }}"));
  EXPECT_THAT(error_of("{{ 1 + }}"), testing::HasSubstr("t.jinja:1: expected an expression, got '}}'"));
  EXPECT_THAT(error_of("{{ (1 + }}"), testing::HasSubstr("t.jinja:1: unexpected '}'"));
  EXPECT_THAT(error_of("{% for x in y %}{% endif %}"), testing::HasSubstr("unknown tag 'endif'"));
  EXPECT_THAT(error_of("{% break %}"), testing::HasSubstr("outside a for loop"));
  EXPECT_THAT(error_of("{{ 1 < 2 < 3 }}"), testing::HasSubstr("chained comparisons"));
  EXPECT_THAT(error_of("{# open"), testing::HasSubstr("comment {# is not closed"));
  EXPECT_THAT(error_of("{{ a ? b }}"), testing::HasSubstr("unexpected character '?'"));
  // A hostile template is an error, not a stack overflow.
  EXPECT_THAT(error_of("{{ " + std::string(300, '(') + "1" + std::string(300, ')') + " }}"),
              testing::HasSubstr("nested more than 200 deep"));
  EXPECT_THAT(error_of(std::string(300 * 10, ' ').replace(0, 0, [] {
                std::string s;
                for (int i = 0; i < 300; ++i) s += "{% if 1 %}";
                return s;
              }())),
              testing::HasSubstr("nested more than 200 deep"));
}

TEST(Jinja, RenderErrorsNameTheLine) {
  EXPECT_THAT(error_of("a\nb\n{{ raise_exception('roles must alternate') }}"),
              testing::HasSubstr("t.jinja:3: the template raised an error: roles must alternate"));
  EXPECT_THAT(error_of("{{ m.content.x.y }}", {{"m", ordered_json::object()}}),
              testing::HasSubstr("t.jinja:1: 'm.content' is undefined (reading .x)"));
  EXPECT_THAT(error_of("{{ 'a' + 1 }}"), testing::HasSubstr("unsupported operand types for +: str and int"));
  EXPECT_THAT(error_of("{{ u + 'a' }}"), testing::HasSubstr("'u' is undefined"));
  EXPECT_THAT(error_of("{{ 'x'.nomethod() }}"), testing::HasSubstr("'x'.nomethod"));  // not a function
  EXPECT_THAT(error_of("{% set x = 1 %}{% set x.a = 2 %}"), testing::HasSubstr("only a namespace() takes attributes"));
  EXPECT_THAT(error_of("{% for a, b in [1] %}{% endfor %}"), testing::HasSubstr("cannot unpack int"));
  EXPECT_THAT(error_of("{% for x in 3 %}{% endfor %}"), testing::HasSubstr("cannot iterate"));
  EXPECT_THAT(error_of("{{ u | tojson }}"), testing::HasSubstr("not JSON serializable"));
  EXPECT_THAT(error_of("{{ 1 // 0 }}"), testing::HasSubstr("by zero"));
  EXPECT_THAT(error_of("{{ 'ab' * 100000000 }}"), testing::HasSubstr("exceed 64 MiB"));
  EXPECT_THAT(error_of("{{ range(10000000) | length }}"), testing::HasSubstr("more than 1000000 items"));
  EXPECT_THAT(error_of("{{ 1 }}", ordered_json::array()), testing::HasSubstr("must be a JSON object"));
}

}  // namespace
}  // namespace keel::models::jinja
