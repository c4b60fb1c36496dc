// register_builtin_rewards: the rule-based verifiers, each a VerifyFn wrapped in VerifierReward,
// with its YAML params read through config::Reader (unknown keys / bad values -> file:line errors).
#include <regex>

#include "rewards/reward.h"
#include "rewards/verifiers/arithmetic.h"
#include "rewards/verifiers/countdown.h"
#include "rewards/verifiers/format.h"
#include "rewards/verifiers/math_answer.h"
#include "rewards/verifiers/string_match.h"
#include "rewards/verifiers/text.h"
#include "rewards/verifiers/verifier.h"
#include "base/error.h"
#include "base/reader.h"

namespace keel::rewards {

namespace {

/// The reward values every verifier shares.
struct Outcome {
  double correct = 1.0;
  double wrong = 0.0;
  void read(config::Reader& r) {
    r.field("correct", correct, "reward when the check passes");
    r.field("wrong", wrong, "reward when the check fails (or no answer is found)");
    if (correct == wrong) r.error("wrong", fmt::format("must differ from correct ({}): the reward tells correctness", correct));
  }
  double of(bool ok) const { return ok ? correct : wrong; }
};

/// `correct_value`: the score of a correct response, for the verifiers that judge correctness
/// (RewardOutput::correct); the format checks pass none.
std::unique_ptr<RewardScheme> make(const std::string& name, VerifyFn fn,
                                   std::optional<double> correct_value = std::nullopt) {
  return std::make_unique<VerifierReward>(name, std::move(fn), correct_value);
}

std::string read_answer_key(config::Reader& r) {
  std::string key = "answer";
  r.field("answer_key", key, "metadata field holding the gold answer (string, number or list of them)").nonempty();
  require_input(r, "meta." + key, "answer_key");
  return key;
}

AnswerRegion read_region(config::Reader& r, const std::string& def) {
  std::string name = def;
  r.field("region", name, "where the answer is: auto|whole|boxed|answer_tag|last_line")
      .one_of({"auto", "whole", "boxed", "answer_tag", "last_line"}, "answer region");
  return parse_answer_region(name).value_or(AnswerRegion::kAuto);
}

std::unique_ptr<RewardScheme> make_math_answer(config::Reader& r) {
  const std::string key = read_answer_key(r);
  Outcome o;
  o.read(r);
  return make("math_answer", [key, o](std::string_view resp, const nlohmann::json& meta) {
    const auto golds = text::gold_answers(meta, key);
    const auto pred = extract_math_answer(resp);
    if (!pred) return o.wrong;
    for (const auto& g : golds)
      if (math_answers_equal(*pred, g)) return o.correct;
    return o.wrong;
  }, o.correct);
}

std::unique_ptr<RewardScheme> make_match_exact(config::Reader& r) {
  const std::string key = read_answer_key(r);
  const AnswerRegion region = read_region(r, "auto");
  bool case_sensitive = true;
  r.field("case_sensitive", case_sensitive, "false: compare ASCII lower-case");
  Outcome o;
  o.read(r);
  return make("match_exact", [key, region, case_sensitive, o](std::string_view resp, const nlohmann::json& meta) {
    const auto golds = text::gold_answers(meta, key);
    const auto pred = answer_region(resp, region);
    if (!pred) return o.wrong;
    for (const auto& g : golds) {
      const std::string gt(text::trim(g));
      if (case_sensitive ? *pred == gt : text::lower(*pred) == text::lower(gt)) return o.correct;
    }
    return o.wrong;
  }, o.correct);
}

std::unique_ptr<RewardScheme> make_match_normalized(config::Reader& r) {
  const std::string key = read_answer_key(r);
  const AnswerRegion region = read_region(r, "auto");
  Outcome o;
  o.read(r);
  return make("match_normalized", [key, region, o](std::string_view resp, const nlohmann::json& meta) {
    const auto golds = text::gold_answers(meta, key);
    const auto pred = answer_region(resp, region);
    if (!pred) return o.wrong;
    const std::string p = normalize_text_answer(*pred);
    if (p.empty()) return o.wrong;
    for (const auto& g : golds)
      if (p == normalize_text_answer(g)) return o.correct;
    return o.wrong;
  }, o.correct);
}

/// The gold letter: "B", "(B)", or a 0-based index. [interp] integer gold = 0-based index (MMLU style).
char gold_letter(const nlohmann::json& meta, const std::string& key, const std::string& letters) {
  if (!meta.is_object() || !meta.contains(key)) fail("sample metadata has no '{}' field (the verifier's answer_key)", key);
  const auto& v = meta.at(key);
  if (v.is_number_integer()) {
    const auto idx = v.get<int64_t>();
    if (idx < 0 || idx >= static_cast<int64_t>(letters.size()))
      fail("metadata '{}' = {} is not a choice index in [0, {})", key, idx, letters.size());
    return letters[static_cast<size_t>(idx)];
  }
  if (v.is_string()) {
    std::string s;
    for (char c : v.get<std::string>())
      if (c != '(' && c != ')' && c != ' ' && c != '.') s.push_back(c);
    if (s.size() == 1 && letters.find(static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])))) != std::string::npos)
      return static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  }
  fail("metadata '{}' must be a choice letter among {} or a 0-based index, got {}", key, letters, v.dump());
}

std::unique_ptr<RewardScheme> make_match_choice(config::Reader& r) {
  const std::string key = read_answer_key(r);
  std::string letters = "ABCDEFGHIJ";
  r.field("letters", letters, "the choice letters, in order").nonempty();
  std::string choices_key = "choices";
  r.field("choices_key", choices_key, "metadata field with the choice texts (optional per sample)");
  Outcome o;
  o.read(r);
  return make("match_choice", [key, letters, choices_key, o](std::string_view resp, const nlohmann::json& meta) {
    std::string valid = letters;
    std::vector<std::string> texts;
    if (meta.is_object() && meta.contains(choices_key) && meta.at(choices_key).is_array()) {
      for (const auto& c : meta.at(choices_key)) texts.push_back(c.is_string() ? c.get<std::string>() : c.dump());
      if (texts.size() < valid.size()) valid.resize(texts.size());
    }
    const char gold = gold_letter(meta, key, valid);
    const auto pred = extract_choice_letter(resp, valid, texts);
    return o.of(pred && *pred == gold);
  }, o.correct);
}

std::unique_ptr<RewardScheme> make_format_regex(config::Reader& r) {
  std::string pattern;
  r.required("pattern", pattern, "ECMAScript regex (no back-references)");
  std::string mode = "search";
  r.field("mode", mode, "full: the whole response must match; search: any part").one_of({"full", "search"}, "mode");
  int64_t max_chars = 100000;
  r.field("max_chars", max_chars, "longer responses count as a verifier error (fallback reward)").gt(0);
  Outcome o;
  o.read(r);
  std::shared_ptr<FormatRegex> re;
  try {
    re = std::make_shared<FormatRegex>(pattern, mode == "full");
  } catch (const std::regex_error& e) {
    r.error("pattern", fmt::format("invalid regex '{}': {}", pattern, e.what()));
    re = std::make_shared<FormatRegex>("$^", true);
  }
  return make("format_regex", [re, max_chars, o](std::string_view resp, const nlohmann::json&) {
    if (static_cast<int64_t>(resp.size()) > max_chars)
      fail("format_regex: response of {} characters exceeds max_chars {}", resp.size(), max_chars);
    return o.of(re->matches(resp));
  });
}

std::unique_ptr<RewardScheme> make_format_tags(config::Reader& r) {
  TagFormatOptions t;
  r.field("think_tag", t.think_tag, "reasoning tag name").nonempty();
  r.field("answer_tag", t.answer_tag, "answer tag name").nonempty();
  r.field("require_think", t.require_think, "the reasoning block must be present");
  r.field("allow_outside", t.allow_outside, "text before/after the tagged blocks is allowed");
  Outcome o;
  o.read(r);
  return make("format_tags",
              [t, o](std::string_view resp, const nlohmann::json&) { return o.of(check_tag_format(resp, t)); });
}

std::unique_ptr<RewardScheme> make_task_arithmetic(config::Reader& r) {
  const std::string key = read_answer_key(r);
  Outcome o;
  o.read(r);
  return make("task_arithmetic", [key, o](std::string_view resp, const nlohmann::json& meta) {
    const auto golds = text::gold_answers(meta, key);
    const auto pred = extract_integer_answer(resp);
    if (!pred) return o.wrong;
    for (const auto& g : golds) {
      const auto gc = canonical_integer(g);
      if (!gc) fail("metadata '{}' = '{}' is not an integer", key, g);
      if (*gc == *pred) return o.correct;
    }
    return o.wrong;
  }, o.correct);
}

std::unique_ptr<RewardScheme> make_task_countdown(config::Reader& r) {
  std::string numbers_key = "numbers", target_key = "target";
  r.field("numbers_key", numbers_key, "metadata field with the given numbers (list of integers)").nonempty();
  r.field("target_key", target_key, "metadata field with the target (integer)").nonempty();
  require_input(r, "meta." + numbers_key, "numbers_key");
  require_input(r, "meta." + target_key, "target_key");
  bool use_all = true;
  r.field("use_all", use_all, "each number exactly once (true) or at most once (false); a sample's metadata "
                              "'use_all' overrides");
  Outcome o;
  o.read(r);
  double format_score = 0.0;
  r.field("format_score", format_score, "reward for a valid expression over the allowed numbers with the wrong value");
  if (format_score == o.correct)
    r.error("format_score", fmt::format("must differ from correct ({}): the reward tells correctness", o.correct));
  return make("task_countdown", [numbers_key, target_key, use_all, o, format_score](std::string_view resp,
                                                                                    const nlohmann::json& meta) {
    if (!meta.is_object() || !meta.contains(numbers_key) || !meta.contains(target_key))
      fail("countdown sample metadata needs '{}' and '{}'", numbers_key, target_key);
    const auto& nj = meta.at(numbers_key);
    const auto& tj = meta.at(target_key);
    if (!nj.is_array() || !tj.is_number_integer())
      fail("countdown metadata: '{}' must be a list of integers and '{}' an integer", numbers_key, target_key);
    std::vector<int64_t> numbers;
    for (const auto& x : nj) {
      if (!x.is_number_integer()) fail("countdown metadata '{}' holds a non-integer {}", numbers_key, x.dump());
      numbers.push_back(x.get<int64_t>());
    }
    bool all = use_all;
    if (meta.contains("use_all") && meta.at("use_all").is_boolean()) all = meta.at("use_all").get<bool>();
    const auto res = check_countdown(resp, numbers, tj.get<int64_t>(), all);
    switch (res.verdict) {
      case CountdownVerdict::kCorrect: return o.correct;
      case CountdownVerdict::kWrongValue: return format_score;
      default: return o.wrong;
    }
  }, o.correct);
}

}  // namespace

void register_builtin_rewards(RewardRegistry& reg) {
  const RewardTraits judges{/*judges_correctness=*/true};
  reg.add("math_answer", "final math answer (\\boxed{}, 'answer is', last number) equal to metadata.answer, exactly",
          make_math_answer, judges);
  reg.add("match_exact", "answer text equal to metadata.answer (optionally case-insensitive)", make_match_exact, judges);
  reg.add("match_normalized", "answer equal to metadata.answer after SQuAD normalisation", make_match_normalized,
          judges);
  reg.add("match_choice", "multiple-choice letter equal to metadata.answer", make_match_choice, judges);
  reg.add("format_regex", "response matches a regex", make_format_regex);
  reg.add("format_tags", "response is <think>...</think><answer>...</answer>", make_format_tags);
  reg.add("task_arithmetic", "integer answer of the built-in arithmetic task", make_task_arithmetic, judges);
  reg.add("task_countdown", "countdown: expression over the given numbers evaluates exactly to the target",
          make_task_countdown, judges);
}

}  // namespace keel::rewards
