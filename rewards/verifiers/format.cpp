// Format verifiers (see format.h).
#include "rewards/verifiers/format.h"

#include <regex>
#include <vector>

#include "rewards/verifiers/text.h"

namespace keel::rewards {

namespace {

/// Every position of `needle` in `s`.
std::vector<size_t> find_all(std::string_view s, std::string_view needle) {
  std::vector<size_t> at;
  for (size_t p = s.find(needle); p != std::string_view::npos; p = s.find(needle, p + 1)) at.push_back(p);
  return at;
}

}  // namespace

bool check_tag_format(std::string_view response, const TagFormatOptions& opt) {
  const std::string to = "<" + opt.think_tag + ">", tc = "</" + opt.think_tag + ">";
  const std::string ao = "<" + opt.answer_tag + ">", ac = "</" + opt.answer_tag + ">";
  const auto think_open = find_all(response, to), think_close = find_all(response, tc);
  const auto ans_open = find_all(response, ao), ans_close = find_all(response, ac);
  if (ans_open.size() != 1 || ans_close.size() != 1) return false;
  const size_t a0 = ans_open[0], a1 = ans_close[0];
  if (a1 < a0) return false;
  const std::string_view answer = response.substr(a0 + ao.size(), a1 - a0 - ao.size());
  if (text::trim(answer).empty()) return false;
  size_t start = a0;  // where the structured part begins
  if (think_open.empty() && think_close.empty()) {
    if (opt.require_think) return false;
  } else {
    if (think_open.size() != 1 || think_close.size() != 1) return false;
    const size_t t0 = think_open[0], t1 = think_close[0];
    if (!(t0 < t1 && t1 < a0)) return false;
    const std::string_view think = response.substr(t0 + to.size(), t1 - t0 - to.size());
    if (text::trim(think).empty()) return false;
    // Only whitespace between </think> and <answer>.
    if (!text::trim(response.substr(t1 + tc.size(), a0 - t1 - tc.size())).empty()) return false;
    start = t0;
  }
  if (opt.allow_outside) return true;
  return text::trim(response.substr(0, start)).empty() && text::trim(response.substr(a1 + ac.size())).empty();
}

struct FormatRegex::Impl {
  std::regex re;
};

FormatRegex::FormatRegex(const std::string& pattern, bool full_match) : full_(full_match) {
  auto impl = std::make_shared<Impl>();
  // __polynomial selects libstdc++'s BFS executor: stack depth bounded by the pattern, not the input.
  impl->re = std::regex(pattern, std::regex::ECMAScript | std::regex_constants::__polynomial);
  impl_ = std::move(impl);
}

FormatRegex::~FormatRegex() = default;

bool FormatRegex::matches(std::string_view t) const {
  if (full_) return std::regex_match(t.begin(), t.end(), impl_->re);
  return std::regex_search(t.begin(), t.end(), impl_->re);
}

}  // namespace keel::rewards
