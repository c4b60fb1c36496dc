// ZeRO-1 AdamW over the learner ranks. See sharded_adamw.h.
#include "trainer/dist/sharded_adamw.h"

#include <algorithm>

#include <torch/torch.h>

#include "base/error.h"
#include "trainer/dist/sharded_model.h"

namespace keel::dist {

using learner::adamw_state;
using learner::set_adamw_state;

ShardedAdamW::ShardedAdamW(Communicator& comm, const std::vector<at::Tensor>& params,
                           const torch::optim::AdamWOptions& options, const torch::optim::AdamW* full)
    : torch::optim::AdamW(params, options), comm_(comm), params_(params) {
  TORCH_CHECK(!options.amsgrad(), "ShardedAdamW: amsgrad is not supported");
  TORCH_CHECK(!params.empty(), "ShardedAdamW: no parameters");
  for (const auto& p : params_) {
    TORCH_CHECK(p.is_contiguous(), "ShardedAdamW: parameters must be contiguous");
    total_ += p.numel();
  }
  const int64_t w = comm_.size(), r = comm_.rank();
  slice_ = (total_ + w - 1) / w;
  const int64_t lo = std::min(total_, r * slice_), hi = std::min(total_, lo + slice_);
  std::vector<at::Tensor> views;
  int64_t off = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    const int64_t n = params_[i].numel();
    const int64_t a = std::max(lo, off), b = std::min(hi, off + n);
    if (a < b) {
      // A view of the parameter's storage: the inner optimizer updates it in place.
      auto view = params_[i].detach().view(-1).narrow(0, a - off, b - a);
      pieces_.push_back({i, a - off, b - a, view});
      views.push_back(view);
    }
    off += n;
  }
  inner_ = std::make_unique<learner::FusedAdamW>(views, options);
  if (full == nullptr) return;
  for (const auto& pc : pieces_) {  // this rank's slice of a whole state
    const auto* st = adamw_state(*full, params_[pc.param]);
    if (st == nullptr) continue;  // never stepped
    set_adamw_state(*inner_, pc.view, st->step(), st->exp_avg().reshape(-1).narrow(0, pc.offset, pc.length).clone(),
                    st->exp_avg_sq().reshape(-1).narrow(0, pc.offset, pc.length).clone());
  }
}

int64_t ShardedAdamW::shard_elements() const {
  int64_t n = 0;
  for (const auto& pc : pieces_) n += pc.length;
  return n;
}

torch::Tensor ShardedAdamW::step(LossClosure closure) {
  TORCH_CHECK(closure == nullptr, "ShardedAdamW: closures are not supported");
  torch::NoGradGuard ng;
  // The schedule sets the outer group's options; the inner optimizer follows them.
  const auto& o = static_cast<const torch::optim::AdamWOptions&>(param_groups()[0].options());
  auto& io = static_cast<torch::optim::AdamWOptions&>(inner_->param_groups()[0].options());
  io.lr(o.lr()).betas(o.betas()).eps(o.eps()).weight_decay(o.weight_decay());
  for (auto& pc : pieces_) {
    const auto& g = params_[pc.param].grad();
    pc.view.mutable_grad() = g.defined() ? g.reshape(-1).narrow(0, pc.offset, pc.length) : at::Tensor();
  }
  inner_->step();
  for (auto& pc : pieces_) pc.view.mutable_grad() = at::Tensor();
  const auto flat = all_gather_slices([](const Piece& pc) { return pc.view; });
  int64_t off = 0;
  for (auto& p : params_) {
    p.detach().view(-1).copy_(flat.narrow(0, off, p.numel()));
    off += p.numel();
  }
  return {};
}

at::Tensor ShardedAdamW::all_gather_slices(const std::function<at::Tensor(const Piece&)>& of) const {
  // Slices of equal size, the last one padded.
  auto local = torch::zeros({slice_}, params_.front().options());
  int64_t pos = 0;
  for (const auto& pc : pieces_) {
    if (const auto t = of(pc); t.defined()) local.narrow(0, pos, pc.length).copy_(t);
    pos += pc.length;
  }
  return torch::cat(comm_.all_gather(local)).narrow(0, 0, total_);
}

std::vector<MomentSegment> ShardedAdamW::moment_segments(bool with_state) const {
  std::vector<MomentSegment> out;
  for (const auto& pc : pieces_) {
    MomentSegment s{pc.param, pc.offset, pc.length, {}, {}, 0};
    if (const auto* st = with_state ? adamw_state(*inner_, pc.view) : nullptr) {
      s.exp_avg = st->exp_avg();
      s.exp_avg_sq = st->exp_avg_sq();
      s.step = st->step();
    }
    out.push_back(std::move(s));
  }
  return out;
}

void ShardedAdamW::load_moments(const std::vector<MomentSegment>& segments) {
  TORCH_CHECK(segments.size() == pieces_.size(), "ShardedAdamW::load_moments: ", segments.size(), " segments for ",
              pieces_.size(), " pieces");
  inner_->state().clear();
  for (size_t i = 0; i < pieces_.size(); ++i) {
    const auto& s = segments[i];
    TORCH_CHECK(s.param == pieces_[i].param && s.offset == pieces_[i].offset && s.length == pieces_[i].length,
                "ShardedAdamW::load_moments: segment ", i, " is not this rank's piece");
    if (s.step == 0) continue;
    const auto& view = pieces_[i].view;
    set_adamw_state(*inner_, view, s.step, s.exp_avg.to(view.options()).clone(), s.exp_avg_sq.to(view.options()).clone());
  }
}

int64_t ShardedAdamW::state_bytes() const { return adamw_state_bytes(*inner_); }

int64_t adamw_state_bytes(const torch::optim::AdamW& opt) {
  if (const auto* s = dynamic_cast<const ShardedAdamW*>(&opt)) return s->state_bytes();
  if (const auto* s = dynamic_cast<const ShardedModel*>(&opt)) return s->state_bytes();
  int64_t bytes = 0;
  for (const auto& [key, st] : opt.state()) {
    const auto& a = static_cast<const torch::optim::AdamWParamState&>(*st);
    for (const auto* t : {&a.exp_avg(), &a.exp_avg_sq()})
      if (t->defined()) bytes += t->numel() * static_cast<int64_t>(t->element_size());
  }
  return bytes;
}

void ShardedAdamW::save(torch::serialize::OutputArchive&) const {
  fail("ShardedAdamW: a sharded optimizer state is saved through moment_segments() (optimizer_shards.h)");
}

void ShardedAdamW::load(torch::serialize::InputArchive&) {
  fail("ShardedAdamW: load a whole AdamW state and pass it to the constructor");
}

}  // namespace keel::dist
