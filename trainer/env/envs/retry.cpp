// Environment "retry": reflect-then-retry around any single-turn built-in task (R³L, Shi et al.,
// arXiv 2601.03715; spec/credit-assignment.md §5.1–5.3).
// INTERPRETATION (in-episode form): R³L samples a first rollout, has the policy write a reflection
// and replays a retry from the pivot in a separate rollout; here the retry is the same episode's
// next turn, and the environment's feedback stands in for the reflection:
//   turn 0           the policy's first answer to the task's prompt, graded by the task's verifier
//                    (param verifier, default task_arithmetic) exactly as the reward stage grades it
//   right            done; reward 1 on the first attempt, retry_success_reward on a retry; success 1
//   wrong, attempts  observation = feedback, and the next turn is a retry:
//     left           feedback wrong -> "wrong, try again"
//                    feedback hint  -> "wrong, too high, try again" / "wrong, too low, try again" when
//                                      the answer and the gold are both numbers (as the verifier reads
//                                      them: compare_to_gold below), else "wrong, try again"
//                    feedback none  -> "" (nothing is shown; the policy simply answers again)
//   wrong, the last  done; reward 0, success 0 (the observation is "")
//   attempt (max_attempts, default 2)
// Every turn is an attempt; an empty (whitespace-only) answer is a wrong one with invalid_action 1.
// A verifier judges: the response is correct when it scores the verifier's `correct` value (1 with
// default params), as VerifierReward::score decides RewardOutput::correct; empty or malformed text
// (invalid UTF-8, over the Scorer's 1 MiB) is wrong, as the Scorer gives it the fallback.
// info (every step): success (0/1), attempts (used so far), pivot_turn (the R³L pivot: the 0-based
// turn of the first retry, 1 once a retry has happened, 0 while the first attempt stands: nothing
// masked, see r3l_pivot_mask), first_correct (0/1 of attempt 0), invalid_action (this answer empty).
// The expert answers the record's gold answer (record.answer); with probability expert_first_wrong
// (deterministic from the reset seed) its first attempt is the gold with its last digit changed,
// so expert episodes show a retry — only when max_attempts >= 2 and the verifier grades that wrong.
// (Where the gold answer is not itself a right response — countdown's is the target, not an
// expression — the expert's episodes fail.)
// A record's verifier inputs are its meta (JSON text values parsed, as the reward stage reads them)
// plus "answer" = record.answer; a record lacking one the verifier reads fails at reset; a verifier
// that throws in step fails the episode (env_failed; the reward stage would count a scorer error).
// Deliberately not here: the policy-written reflection (JSON diagnosis, guidance, retry_from_step),
// replaying a retry from a later pivot, the distilled copy without guidance and the singleton
// reflection groups (§5.1 steps 2–5); the pivot mask and the positive-amplification advantage
// (the credit stage: r3l_pivot_mask, r3l_opmd); a companion task (any single-turn task's records do).
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/reader.h"
#include "rewards/reward.h"
#include "rewards/scorer.h"
#include "rewards/verifiers/arithmetic.h"
#include "rewards/verifiers/math_answer.h"
#include "rewards/verifiers/rational.h"
#include "rewards/verifiers/text.h"
#include "rewards/verifiers/verifier.h"
#include "trainer/env/environment.h"

namespace keel::env {

namespace {

constexpr double kCorrect = 1.0;                 // a verifier's `correct` reward with default params
constexpr size_t kMaxAnswerBytes = size_t{1} << 20;  // the Scorer's default max_bytes
constexpr uint64_t kExpertSalt = 0x2E7242ull;    // separates the expert's draws from other seed uses

struct RetryParams {
  std::string verifier = "task_arithmetic";
  int max_attempts = 2;
  std::string feedback = "wrong";  ///< wrong | hint | none
  double retry_success_reward = 1.0;
  double expert_first_wrong = 0.0;
};

/// A built verifier: its function and the meta keys it reads (from its factory's contract).
struct Verifier {
  std::string name;
  rewards::VerifyFn fn;
  std::vector<std::string> meta_keys;
};

/// The rule-based verifiers that judge correctness (rewards/verifiers/), by name.
rewards::RewardRegistry verifier_registry() {
  rewards::RewardRegistry reg("verifier");
  rewards::register_builtin_rewards(reg);
  return reg;
}

std::vector<std::string> judging_verifiers(const rewards::RewardRegistry& reg) {
  std::vector<std::string> out;
  for (const auto& n : reg.names())
    if (reg.get(n).traits.judges_correctness) out.push_back(n);
  return out;
}

/// Builds verifier `name` with its default params; nullopt (after an error on `r`'s key
/// "verifier") when it is not a rule-based verifier.
std::optional<Verifier> build_verifier(config::Reader& r, const rewards::RewardRegistry& reg, const std::string& name) {
  config::Diagnostics d;
  config::Reader params(nullptr, "", d);
  auto built = rewards::build_scheme(reg, params, name);
  auto* v = dynamic_cast<rewards::VerifierReward*>(built.impl.get());
  if (!v || !d.ok()) {
    r.error("verifier", fmt::format("'{}' cannot be built as a rule-based verifier with default params", name));
    return std::nullopt;
  }
  Verifier out{name, v->fn(), {}};
  for (const auto& req : built.contract)
    if (req.input.rfind("meta.", 0) == 0) out.meta_keys.push_back(req.input.substr(5));
  return out;
}

std::string_view trim(std::string_view s) { return rewards::text::trim(s); }

/// Compares canonical integers (rewards::canonical_integer form): -1, 0 or 1 as a <, ==, > b.
int compare_integers(const std::string& a, const std::string& b) {
  const bool na = a[0] == '-', nb = b[0] == '-';
  if (na != nb) return na ? -1 : 1;
  const int cmp = a.size() != b.size() ? (a.size() < b.size() ? -1 : 1) : a.compare(b);
  const int c = cmp < 0 ? -1 : cmp > 0 ? 1 : 0;
  return na ? -c : c;
}

/// -1, 0 or 1 as a <, ==, > b (nullopt when the difference overflows).
std::optional<int> compare_rationals(const rewards::Rational& a, const rewards::Rational& b) {
  const auto d = a.sub(b);
  if (!d) return std::nullopt;
  return d->num() < 0 ? -1 : d->num() > 0 ? 1 : 0;
}

/// A whole text as a number: an integer (any length) or a decimal / fraction ("3.5", "-3/4").
std::optional<int> compare_plain(std::string_view a, std::string_view b) {
  const auto ai = rewards::canonical_integer(trim(a)), bi = rewards::canonical_integer(trim(b));
  if (ai && bi) return compare_integers(*ai, *bi);
  const auto ar = rewards::Rational::parse(std::string(trim(a))), br = rewards::Rational::parse(std::string(trim(b)));
  if (!ar || !br) return std::nullopt;
  return compare_rationals(*ar, *br);
}

/// Whether `answer` is above (1), equal to (0) or below (-1) `gold` when both are numbers as
/// `verifier` reads them: task_arithmetic the integer the answer commits to (its answer region, else
/// its last number); math_answer its extracted final answer (a percentage is no number here); any
/// other verifier the whole answer. nullopt when either is no number.
std::optional<int> compare_to_gold(const std::string& verifier, std::string_view answer, const std::string& gold) {
  if (verifier == "task_arithmetic") {
    const auto ai = rewards::extract_integer_answer(answer);
    const auto gi = rewards::canonical_integer(trim(gold));
    if (!ai || !gi) return std::nullopt;
    return compare_integers(*ai, *gi);
  }
  if (verifier == "math_answer") {
    const auto number = [](std::string_view s) -> std::optional<rewards::Rational> {
      const auto n = rewards::parse_math_number(rewards::normalize_math_answer(s));
      if (!n || n->percent) return std::nullopt;
      return n->value;
    };
    const auto region = rewards::extract_math_answer(answer);
    const auto a = region ? number(*region) : std::nullopt;
    const auto g = number(gold);
    if (!a || !g) return std::nullopt;
    return compare_rationals(*a, *g);
  }
  return compare_plain(answer, gold);
}

/// `gold` with its last digit changed by `delta` (1..9, mod 10); nullopt when it has no digit.
std::optional<std::string> change_last_digit(std::string gold, int delta) {
  for (size_t i = gold.size(); i-- > 0;) {
    if (gold[i] >= '0' && gold[i] <= '9') {
      gold[i] = static_cast<char>('0' + (gold[i] - '0' + delta) % 10);
      return gold;
    }
  }
  return std::nullopt;
}

class RetryEnv : public Environment {
 public:
  RetryEnv(const RetryParams& p, std::shared_ptr<const Verifier> v) : p_(p), v_(std::move(v)) {}

  std::string reset(const data::PromptRecord& record, uint64_t seed) override {
    id_ = record.id;
    gold_ = record.answer;
    meta_ = nlohmann::json::object();
    for (const auto& [k, val] : record.meta) {
      try {
        meta_[k] = nlohmann::json::parse(val);
      } catch (const nlohmann::json::parse_error&) {
        meta_[k] = val;
      }
    }
    if (!record.answer.empty()) meta_["answer"] = record.answer;
    for (const auto& k : v_->meta_keys)
      if (!meta_.contains(k))
        fail("retry: record '{}' has no {} (verifier '{}' reads it)", record.id,
             k == "answer" ? std::string("answer") : "meta." + k, v_->name);
    attempts_ = 0;
    done_ = success_ = first_correct_ = false;
    expert_wrong_.reset();
    data::SplitMix64 rng(seed ^ kExpertSalt);
    const double u = static_cast<double>(rng.next() >> 11) * 0x1.0p-53;
    if (u < p_.expert_first_wrong && p_.max_attempts >= 2 && !gold_.empty()) {
      auto wrong = change_last_digit(gold_, static_cast<int>(rng.uniform(1, 9)));
      if (wrong && !correct(*wrong)) expert_wrong_ = std::move(wrong);
    }
    return "";
  }

  StepResult step(const std::string& action) override {
    StepResult out;
    const bool invalid = trim(action).empty();
    if (!done_) {
      const bool ok = correct(action);
      ++attempts_;
      if (attempts_ == 1) first_correct_ = ok;
      if (ok) {
        done_ = success_ = true;
        out.reward = attempts_ == 1 ? 1.0 : p_.retry_success_reward;
      } else if (attempts_ >= p_.max_attempts) {
        done_ = true;
      } else {
        out.observation = feedback(action, invalid);
      }
    }
    out.done = done_;
    out.info = {{"success", success_ ? 1.0 : 0.0},
                {"attempts", static_cast<double>(attempts_)},
                {"pivot_turn", attempts_ >= 2 ? 1.0 : 0.0},  // the first retry is turn 1
                {"first_correct", first_correct_ ? 1.0 : 0.0},
                {"invalid_action", invalid ? 1.0 : 0.0}};
    return out;
  }

  std::optional<std::string> expert_action() const override {
    if (done_ || gold_.empty()) return std::nullopt;
    if (attempts_ == 0 && expert_wrong_) return *expert_wrong_;
    return gold_;
  }

 private:
  /// The verifier's verdict on `answer`, as the reward stage reaches it (see the file comment).
  bool correct(const std::string& answer) const {
    if (answer.empty() || answer.size() > kMaxAnswerBytes || !rewards::valid_utf8(answer)) return false;
    double v = 0;
    try {
      v = v_->fn(answer, meta_);
    } catch (const std::exception& e) {
      fail("retry: record '{}': verifier '{}' failed: {}", id_, v_->name, e.what());
    }
    if (!std::isfinite(v)) fail("retry: record '{}': verifier '{}' returned {}", id_, v_->name, v);
    return v == kCorrect;
  }

  std::string feedback(const std::string& answer, bool invalid) const {
    if (p_.feedback == "none") return "";
    if (p_.feedback == "hint" && !invalid) {
      const auto c = compare_to_gold(v_->name, answer, gold_);
      if (c && *c > 0) return "wrong, too high, try again";
      if (c && *c < 0) return "wrong, too low, try again";
    }
    return "wrong, try again";
  }

  RetryParams p_;
  std::shared_ptr<const Verifier> v_;
  std::string id_, gold_;
  nlohmann::json meta_;
  std::optional<std::string> expert_wrong_;  // the expert's wrong first attempt, when drawn
  int attempts_ = 0;
  bool done_ = false, success_ = false, first_correct_ = false;
};

class RetryFactory : public EnvFactory {
 public:
  RetryFactory(RetryParams p, std::shared_ptr<const Verifier> v) : p_(std::move(p)), v_(std::move(v)) {}
  std::unique_ptr<Environment> make() const override { return std::make_unique<RetryEnv>(p_, v_); }
  std::vector<std::string> info_keys() const override {
    return {"success", "attempts", "pivot_turn", "first_correct", "invalid_action"};
  }

 private:
  RetryParams p_;
  std::shared_ptr<const Verifier> v_;
};

std::unique_ptr<EnvFactory> make_retry_env(config::Reader& r) {
  RetryParams p;
  const auto reg = verifier_registry();
  r.field("verifier", p.verifier, "the wrapped task's reward verifier, with default params (the task's verifier())")
      .one_of(judging_verifiers(reg), "verifier");
  r.field("max_attempts", p.max_attempts, "attempts per episode: the first answer and the retries").ge(1);
  r.field("feedback", p.feedback, "observation after a wrong attempt: wrong ('wrong, try again'), hint (+ too high / "
                                  "too low for numbers) or none")
      .one_of({"wrong", "hint", "none"}, "feedback");
  r.field("retry_success_reward", p.retry_success_reward,
          "reward of a right answer on a retry (the first attempt's is 1; r3l_opmd counts >= 1 as success)")
      .ge(0);
  r.field("expert_first_wrong", p.expert_first_wrong,
          "probability that the expert's first attempt is wrong (the gold, last digit changed), then right")
      .ge(0)
      .le(1);
  std::shared_ptr<const Verifier> v;
  if (reg.contains(p.verifier) && reg.get(p.verifier).traits.judges_correctness) {
    if (auto built = build_verifier(r, reg, p.verifier)) v = std::make_shared<const Verifier>(std::move(*built));
  }
  if (!v) v = std::make_shared<const Verifier>();  // config errors are recorded; never used
  return std::make_unique<RetryFactory>(p, std::move(v));
}

}  // namespace

// Adds the environment "retry" (no companion task: it wraps any single-turn task's records).
// Declared where the built-ins are registered; there is no header.
void register_retry(EnvRegistry& envs) {
  envs.add("retry",
           "reflect-then-retry (R³L) around any single-turn task: a wrong answer gets feedback and another attempt; "
           "reward 1 when right, info pivot_turn for r3l_opmd (params: verifier, max_attempts, feedback, "
           "retry_success_reward, expert_first_wrong)",
           make_retry_env);
}

}  // namespace keel::env
