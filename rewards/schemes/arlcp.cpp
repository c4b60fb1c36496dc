// ARLCP reward (see arlcp.h).
#include "rewards/schemes/arlcp.h"

#include <cctype>

#include <torch/torch.h>

#include "rewards/schemes/group_ops.h"
#include "base/reader.h"

namespace keel::rewards {

namespace {

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

std::string lower(const std::string& s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

int64_t arlcp_reflection_count(const std::string& text, const std::vector<std::string>& keywords) {
  const std::string t = lower(text);
  int64_t count = 0;
  for (const auto& kw_raw : keywords) {
    const std::string kw = lower(kw_raw);
    if (kw.empty()) continue;
    // \b semantics: a boundary exists between a word and a non-word char (or the text edge).
    for (size_t pos = t.find(kw); pos != std::string::npos; pos = t.find(kw, pos + 1)) {
      const size_t end = pos + kw.size();
      const bool left = pos == 0 || is_word_char(t[pos - 1]) != is_word_char(kw.front());
      const bool right = end == t.size() || is_word_char(t[end]) != is_word_char(kw.back());
      if (left && right) {
        ++count;
        pos = end - 1;  // non-overlapping, like re.findall
      }
    }
  }
  return count;
}

bool arlcp_format_ok(const std::string& text) {
  if (text.find("<think>") != std::string::npos) return false;
  size_t n = 0;
  for (size_t p = text.find("</think>"); p != std::string::npos; p = text.find("</think>", p + 1)) ++n;
  return n == 1;
}

at::Tensor arlcp_w1(const at::Tensor& n_ref, const ArlcpOptions& o) {
  TORCH_CHECK(o.w1_levels.size() == o.thresholds.size() + 1, "arlcp: w1_levels needs thresholds + 1 entries");
  const at::Tensor n = n_ref.to(torch::kFloat64);
  at::Tensor level = torch::zeros(n.sizes(), n.options().dtype(torch::kLong));
  for (double t : o.thresholds) level = level + (n > t).to(torch::kLong);
  return torch::tensor(o.w1_levels, torch::kFloat64).index_select(0, level);
}

at::Tensor arlcp_reward(const at::Tensor& n_ref, const at::Tensor& length, const at::Tensor& acc,
                        const at::Tensor& group_ids, const ArlcpOptions& o) {
  TORCH_CHECK(n_ref.dim() == 1 && length.sizes() == n_ref.sizes() && acc.sizes() == n_ref.sizes() &&
                  group_ids.sizes() == n_ref.sizes(),
              "arlcp_reward: n_ref ", n_ref.sizes(), ", length ", length.sizes(), ", acc ", acc.sizes(),
              ", group_ids ", group_ids.sizes(), " must all be [N]");
  const GroupIndex g = make_group_index(group_ids);
  const at::Tensor correct = acc.to(torch::kFloat64) > 0.5;
  const at::Tensor w = correct.to(torch::kFloat64);
  const at::Tensor cnt = group_sum(w, g);  // [G] correct responses per prompt

  // Mean (0 when no correct) and sample std (1 when fewer than two correct) over correct rows.
  auto zscore = [&](const at::Tensor& x_in) {
    const at::Tensor x = x_in.to(torch::kFloat64);
    const at::Tensor mean = group_sum(x * w, g) / cnt.clamp_min(1.0);
    const at::Tensor dev = (x - group_gather(mean, g)) * w;
    const at::Tensor var = group_sum(dev * dev, g) / (cnt - 1.0).clamp_min(1.0);
    const at::Tensor sd = torch::where(cnt >= 2, var.sqrt(), torch::ones_like(var));
    return (x - group_gather(mean, g)) / (group_gather(sd, g) + o.std_eps);
  };
  const at::Tensor s_ref = torch::sigmoid(zscore(n_ref));
  const at::Tensor s_len = torch::sigmoid(zscore(length));
  const at::Tensor w1 = arlcp_w1(n_ref, o);
  const at::Tensor r = 1.0 - w1 * s_ref - (o.w_total - w1) * s_len;
  return torch::where(correct, r, torch::zeros_like(r));
}

void read_arlcp_options(config::Reader& r, ArlcpOptions& o) {
  r.field("keywords", o.keywords, "reflection words, counted as case-insensitive whole words").nonempty();
  r.field("thresholds", o.thresholds, "reflection-count boundaries between w1 levels").ge(0);
  r.field("w1_levels", o.w1_levels, "w1 for each level (one more than thresholds)").ge(0);
  r.field("w_total", o.w_total, "w1 + w2").ge(0);
  r.field("std_eps", o.std_eps, "added to the std in both z-scores").ge(0);
  if (o.w1_levels.size() != o.thresholds.size() + 1)
    r.error("w1_levels", fmt::format("expected {} levels (thresholds + 1), got {}", o.thresholds.size() + 1,
                                     o.w1_levels.size()));
  for (size_t i = 1; i < o.thresholds.size(); ++i)
    if (!(o.thresholds[i] > o.thresholds[i - 1])) {
      r.error("thresholds", "must be strictly increasing");
      break;
    }
  for (double w1 : o.w1_levels)
    if (w1 > o.w_total) {
      r.error("w1_levels", fmt::format("every level must be <= w_total {}", o.w_total));
      break;
    }
}

}  // namespace keel::rewards
