// Gated reward channels and G-RA (see gated.h).
#include "rewards/schemes/gated.h"

#include <torch/torch.h>

#include "base/error.h"
#include "base/reader.h"

namespace keel::rewards {

std::vector<std::vector<int64_t>> gated_dependencies(const GatedOptions& o) {
  const int64_t c = static_cast<int64_t>(o.channels.size());
  std::vector<std::vector<int64_t>> deps(c);
  for (int64_t i = 0; i < c; ++i) {
    const auto& ch = o.channels[i];
    for (const auto& name : ch.depends_on) {
      int64_t j = -1;
      for (int64_t k = 0; k < c; ++k)
        if (o.channels[k].name == name) j = k;
      if (j < 0) fail("gated channel '{}' depends on unknown channel '{}'", ch.name, name);
      if (j == i) fail("gated channel '{}' depends on itself", ch.name);
      deps[i].push_back(j);
    }
    if (ch.priority >= 0)
      for (int64_t k = 0; k < c; ++k)
        if (o.channels[k].priority >= 0 && o.channels[k].priority < ch.priority) deps[i].push_back(k);
  }
  // Cycle check by depth-first search (0 = new, 1 = on stack, 2 = done).
  std::vector<int> state(c, 0);
  std::function<void(int64_t)> visit = [&](int64_t i) {
    state[i] = 1;
    for (int64_t j : deps[i]) {
      if (state[j] == 1) fail("gated channels form a cycle through '{}'", o.channels[j].name);
      if (state[j] == 0) visit(j);
    }
    state[i] = 2;
  };
  for (int64_t i = 0; i < c; ++i)
    if (state[i] == 0) visit(i);
  return deps;
}

at::Tensor gated_counted(const at::Tensor& values, const GatedOptions& o) {
  const int64_t c = static_cast<int64_t>(o.channels.size());
  TORCH_CHECK(values.dim() == 2 && values.size(1) == c, "gated: values must be [N, C] with C = ", c,
              " channels, got ", values.sizes());
  const auto deps = gated_dependencies(o);
  std::vector<at::Tensor> counted(c);
  // Memoised resolution in dependency order (the DAG is acyclic).
  std::function<at::Tensor(int64_t)> resolve = [&](int64_t i) -> at::Tensor {
    if (counted[i].defined()) return counted[i];
    at::Tensor g = torch::ones({values.size(0)}, values.options().dtype(torch::kBool));
    for (int64_t j : deps[i])
      g = g.logical_and(resolve(j)).logical_and(values.select(1, j) >= o.channels[j].threshold);
    counted[i] = g;
    return g;
  };
  for (int64_t i = 0; i < c; ++i) resolve(i);
  return torch::stack(counted, 1);
}

at::Tensor gated_reward(const at::Tensor& values, const GatedOptions& o) {
  std::vector<double> w;
  for (const auto& ch : o.channels) w.push_back(ch.weight);
  const at::Tensor weights = torch::tensor(w, torch::kFloat64).to(values.scalar_type());
  const at::Tensor counted = gated_counted(values, o);
  return (values * weights * counted.to(values.scalar_type())).sum(1);
}

GatedOptions hierarchical_default_options() {
  GatedOptions o;
  o.channels = {
      {"format", 0.0, 1.0, -1, {}},            // g1: well-formed response and valid tool calls
      {"correct", 0.5, 1.0, -1, {"format"}},   // w_c; τ_c = 1.0 gates quality
      {"quality", 0.3, 0.0, -1, {"correct"}},  // w_q, only when g1·g2
      {"process", 0.2, 0.0, -1, {}},           // w_p, ungated
  };
  return o;
}

double gra_outcome_value(const std::string& level, const GraOptions& o) {
  if (level == "no_submit") return o.no_submit;
  if (level == "empty_patch") return o.empty_patch;
  if (level == "fail") return o.fail;
  if (level == "pass") return o.pass;
  fail("unknown G-RA outcome level '{}' (known: no_submit, empty_patch, fail, pass)", level);
}

namespace {

at::Tensor turn_mask_or_all(const at::Tensor& r_low, const at::Tensor& turn_mask) {
  TORCH_CHECK(r_low.dim() == 2, "gra: r_low must be [N, T], got ", r_low.sizes());
  if (!turn_mask.defined()) return torch::ones(r_low.sizes(), r_low.options().dtype(torch::kBool));
  TORCH_CHECK(turn_mask.sizes() == r_low.sizes(), "gra: turn_mask ", turn_mask.sizes(), " != r_low ", r_low.sizes());
  return turn_mask.to(torch::kBool);
}

}  // namespace

at::Tensor gra_reward(const at::Tensor& r_high, const at::Tensor& r_low, const at::Tensor& turn_mask,
                      const GraOptions& o) {
  const at::Tensor mask = turn_mask_or_all(r_low, turn_mask);
  TORCH_CHECK(r_high.dim() == 1 && r_high.size(0) == r_low.size(0), "gra: r_high must be [N], got ", r_high.sizes());
  const at::Tensor low = r_low.masked_fill(mask.logical_not(), 0.0).sum(1);
  if (!o.gated) return r_high + low;
  return r_high + torch::where(r_high >= o.threshold, low, torch::zeros_like(low));
}

at::Tensor gra_turn_rewards(const at::Tensor& r_high, const at::Tensor& r_low, const at::Tensor& turn_mask,
                            const GraOptions& o) {
  const at::Tensor mask = turn_mask_or_all(r_low, turn_mask);
  TORCH_CHECK(r_high.dim() == 1 && r_high.size(0) == r_low.size(0), "gra: r_high must be [N], got ", r_high.sizes());
  at::Tensor open = mask;
  if (o.gated) open = open.logical_and((r_high >= o.threshold).unsqueeze(1));
  at::Tensor out = r_low.masked_fill(open.logical_not(), 0.0);
  // Last valid turn: the largest index with mask true.
  const int64_t t = r_low.size(1);
  const at::Tensor idx = torch::arange(t, mask.options().dtype(torch::kLong)).expand_as(mask);
  const at::Tensor last = idx.masked_fill(mask.logical_not(), -1).amax(1);  // [N], −1 = no turn
  const at::Tensor has = last >= 0;
  const at::Tensor onehot = torch::zeros_like(out).scatter_(1, last.clamp_min(0).unsqueeze(1),
                                                            (r_high * has.to(r_high.scalar_type())).unsqueeze(1));
  return out + onehot;
}

void read_gated_options(config::Reader& r, GatedOptions& o) {
  const bool given = r.has("channels");
  if (given) o.channels.clear();
  r.list("channels", "reward channels; a channel counts only if its gates are open", [&](config::Reader& item, size_t) {
    GatedChannel ch;
    item.required("name", ch.name, "channel name (the scorer's value column)").nonempty();
    item.field("weight", ch.weight, "weight of the channel in the sum");
    item.field("threshold", ch.threshold, "dependents count only when this channel's value reaches it");
    item.field("priority", ch.priority, "0 = highest; gated on every channel of higher priority (-1 = none)").ge(-1);
    item.field("depends_on", ch.depends_on, "channels that must be counted and meet their thresholds");
    item.field("input", ch.input, "signal spec of the channel's value (empty = prior.<name>, the earlier component "
                                  "named like the channel)");
    o.channels.push_back(std::move(ch));
  });
  if (o.channels.empty()) r.error("channels", "expected at least one channel");
  try {
    gated_dependencies(o);
  } catch (const Error& e) {
    r.error("channels", e.what());
  }
}

void read_gra_options(config::Reader& r, GraOptions& o) {
  r.field("gated", o.gated, "gate the step rewards on the outcome (false = D-RA plain sum)");
  r.field("threshold", o.threshold, "outcome value delta that opens the gate");
  r.section("outcome_levels", "values of the ordered SWE outcome levels", [&](config::Reader& s) {
    s.field("no_submit", o.no_submit, "the agent never submitted");
    s.field("empty_patch", o.empty_patch, "submitted an empty patch");
    s.field("fail", o.fail, "patch fails the tests");
    s.field("pass", o.pass, "patch passes the tests");
  });
  if (!(o.no_submit <= o.empty_patch && o.empty_patch <= o.fail && o.fail <= o.pass))
    r.error("outcome_levels", "levels must be ordered no_submit <= empty_patch <= fail <= pass");
}

}  // namespace keel::rewards
