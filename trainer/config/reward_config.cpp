// Reader of the reward section (see reward_config.h).
#include "trainer/config/reward_config.h"

#include <set>

#include "base/reader.h"
#include "trainer/config/config.h"

namespace keel::config {

void read_reward(Reader& r, RewardSection& c, const KnownNames& known) {
  std::set<std::string> judge_names;  // a judge's name keys its metrics
  r.list("judges", "learned judges run before the components, writing the signals they read (keel list judges)",
         [&](Reader& item, size_t) {
           RewardJudge j;
           auto t = item.required("type", j.type, "registered judge type");
           const bool type_ok = t.present() && (known.judge_types.empty() ||
                                                check_choice(j.type, known.judge_types, "").empty());
           if (t.present() && !known.judge_types.empty()) t.one_of(known.judge_types, "judge type");
           auto nm = item.required("name", j.name, "the judge's name (its metrics: judge/<name>/...)");
           if (nm.present() && !judge_names.insert(j.name).second)
             item.error("name", fmt::format("duplicate judge name '{}'", j.name));
           const Node* p = item.take("params");
           j.params_path = item.path_of("params");
           if (p) j.params = *p;
           if (type_ok && known.judge_params) {
             item.section("params", "judge parameters", [&](Reader& pr) { known.judge_params(pr, j.type, j.name); });
           }
           c.judges.push_back(std::move(j));
         });
  std::set<std::string> names;  // a component's name keys its metrics, its state and prior.<name>
  r.list("components", "weighted reward components; empty = the task's verifier (keel list rewards)",
         [&](Reader& item, size_t) {
           RewardComponent comp;
           auto s = item.required("scheme", comp.scheme, "registered reward scheme");
           const bool scheme_ok = s.present() && (known.reward_schemes.empty() ||
                                                  check_choice(comp.scheme, known.reward_schemes, "").empty());
           if (s.present() && !known.reward_schemes.empty()) s.one_of(known.reward_schemes, "reward scheme");
           item.field("name", comp.name, "metric name (default: the scheme)");
           const std::string name = comp.name.empty() ? comp.scheme : comp.name;
           if (s.present() && !names.insert(name).second)
             item.error("name", fmt::format("duplicate reward component name '{}' (set a distinct name:)", name));
           item.field("weight", comp.weight, "weight in the sum");
           const Node* p = item.take("params");
           comp.params_path = item.path_of("params");
           if (p) comp.params = *p;
           if (scheme_ok && known.reward_params) {
             item.section("params", "scheme parameters", [&](Reader& pr) { known.reward_params(pr, comp.scheme); });
           }
           c.components.push_back(std::move(comp));
         });
  r.field("fallback", c.fallback, "reward when a verifier times out, throws or meets malformed text");
  r.field("timeout_ms", c.timeout_ms, "per-sample deadline of rule-based scoring").gt(0);
  r.field("threads", c.threads, "scorer thread pool size; 0 = all cores").ge(0).le(kMaxThreads);
  r.field("max_bytes", c.max_bytes, "responses longer than this many bytes are malformed (get the fallback)").ge(1);
  r.field("max_stuck_workers", c.max_stuck_workers,
          "verifier threads retired past the deadline before the scorer stops running verifiers").ge(1);
  r.field("warn_error_share", c.warn_error_share,
          "warn when a component's verifier fails (throws, or runs past timeout_ms) on more than this share of a "
          "step's samples; each kind of failure's first message is logged once either way").ge(0).le(1);
  r.field("max_all_error_steps", c.max_all_error_steps,
          "stop the run with an error after this many steps in a row where a component's verifier failed on every "
          "sample it scored; 0 = never stop").ge(0);
}

}  // namespace keel::config
