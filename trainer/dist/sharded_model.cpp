// ZeRO-2 / ZeRO-3 over the learner ranks. See sharded_model.h.
#include "trainer/dist/sharded_model.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include <torch/torch.h>

#include "base/error.h"
#include "models/fused_cpu.h"
#include "trainer/dist/sharded_adamw.h"

namespace keel::dist {

using learner::adamw_state;
using learner::set_adamw_state;

namespace {
/// The decoder layer a parameter name belongs to ("model.layers.<i>.…"), or -1.
int64_t layer_of(const std::string& name) {
  static const std::string prefix = "model.layers.";
  if (name.rfind(prefix, 0) != 0) return -1;
  return std::stoll(name.substr(prefix.size(), name.find('.', prefix.size()) - prefix.size()));
}

// A flat buffer's memory freed and brought back, its tensor (and the parameters viewing it) kept:
// what FSDP does with storage resize_(0) / resize_(n).
void free_storage(const at::Tensor& flat) {
  auto st = flat.storage();
  st.set_data_ptr_noswap(at::DataPtr(nullptr, flat.device()));
  st.set_nbytes(0);
}
void alloc_storage(const at::Tensor& flat) {
  auto st = flat.storage();
  const size_t nbytes = static_cast<size_t>(flat.numel()) * flat.element_size();
  if (st.nbytes() > 0) return;  // holding memory (a huge-page buffer's is larger than the tensor)
  // A huge-page buffer (from_blob) has no allocator of its own: the device's takes over.
  at::Allocator* alloc = st.allocator() != nullptr ? st.allocator() : c10::GetAllocator(flat.device().type());
  st.set_data_ptr_noswap(alloc->allocate(nbytes));
  st.set_nbytes(nbytes);
}
bool materialized(const at::Tensor& flat) { return flat.storage().nbytes() > 0; }

int64_t bytes_of(const at::Tensor& t) { return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : 0; }

/// The parameters' trainable list grouped into units: [0] the root, [1 + i] decoder layer i.
std::vector<std::vector<size_t>> plan_units(const models::Transformer& model, const std::vector<at::Tensor>& params) {
  std::map<const void*, int64_t> layer;
  for (const auto& [name, p] : model.named_parameters()) layer[p.unsafeGetTensorImpl()] = layer_of(name);
  std::vector<std::vector<size_t>> units(static_cast<size_t>(model.config().num_hidden_layers + 1));
  for (size_t i = 0; i < params.size(); ++i) {
    const auto it = layer.find(params[i].unsafeGetTensorImpl());
    TORCH_CHECK(it != layer.end(), "ShardedModel: a trainable parameter the model does not name");
    units[static_cast<size_t>(it->second + 1)].push_back(i);
  }
  return units;
}
}  // namespace

/// The model's LayerResidency: forwards the layer hooks to the sharded model.
class ShardedModel::Residency final : public models::LayerResidency {
 public:
  explicit Residency(ShardedModel& owner) : owner_(owner) {}
  bool active() const override { return owner_.active_; }
  bool allows_graph_without_checkpointing() const override { return owner_.level_ == ShardLevel::kGradients; }
  void acquire(int64_t layer, int64_t next) override {
    if (owner_.level_ != ShardLevel::kFull) return;
    auto& u = owner_.layer_unit(layer);
    if (!whole(u)) owner_.gather(u, /*wait=*/true);
    owner_.finish_gather(u);
    if (next >= 0) {  // prefetch: the next layer's gather runs while this one computes
      auto& v = owner_.layer_unit(next);
      if (!whole(v)) owner_.gather(v, /*wait=*/false);
    }
    owner_.note_peak();
  }
  void release(int64_t layer) override {
    if (owner_.level_ == ShardLevel::kFull) owner_.release(owner_.layer_unit(layer));
  }
  void gradients_ready(int64_t layer) override { owner_.reduce_scatter_gradients(owner_.layer_unit(layer)); }

 private:
  ShardedModel& owner_;
};

ShardedModel::ShardedModel(Communicator& comm, models::Transformer model, ShardLevel level,
                           const torch::optim::AdamWOptions& options, const torch::optim::AdamW* full)
    : learner::FusedAdamW(std::vector<at::Tensor>{}, options),
      comm_(comm),
      model_(std::move(model)),
      level_(level),
      params_(model_.parameters()) {
  TORCH_CHECK(!options.amsgrad(), "ShardedModel: amsgrad is not supported");
  TORCH_CHECK(!params_.empty(), "ShardedModel: no trainable parameters");
  TORCH_CHECK(!model_.has_lora(), "ShardedModel: LoRA adapters are not sharded (use dist.sharding optimizer)");
  torch::NoGradGuard ng;
  const int64_t w = comm_.size(), r = comm_.rank();
  std::vector<at::Tensor> masters;
  for (auto& members : plan_units(model_, params_)) {
    Unit u;
    u.params = std::move(members);
    for (const size_t i : u.params) u.numel += params_[i].numel();
    u.shard = std::max<int64_t>(1, (u.numel + w - 1) / w);
    if (!u.params.empty()) {
      // The unit's parameters become views of one zero-padded flat buffer; on the CPU on 2 MiB
      // pages, as the model's own arena (models::pack_on_huge_pages: decode streams the weights).
      const auto opts = params_[u.params.front()].options().requires_grad(false);
      u.flat = opts.device().is_cpu() ? models::empty_on_huge_pages({w * u.shard}, opts.dtype().toScalarType()).zero_()
                                      : torch::zeros({w * u.shard}, opts);
      int64_t off = 0;
      for (const size_t i : u.params) {
        auto& p = params_[i];
        TORCH_CHECK(p.scalar_type() == u.flat.scalar_type() && p.device() == u.flat.device(),
                    "ShardedModel: the parameters of a unit must share one dtype and device, got ", p.scalar_type(),
                    " on ", p.device(), " beside ", u.flat.scalar_type(), " on ", u.flat.device());
        const int64_t n = p.numel();
        u.flat.narrow(0, off, n).copy_(p.detach().reshape(-1));
        p.set_data(u.flat.narrow(0, off, n).view(p.sizes()));
        off += n;
      }
      // gradients: the weights stay whole, so this rank's slice of them is the master (AdamW
      // updates it in place); full: a copy, since the flat buffer is freed.
      const auto slice = u.flat.narrow(0, r * u.shard, u.shard);
      u.master = level_ == ShardLevel::kFull ? slice.clone() : slice;
      masters.push_back(u.master);
    }
    units_.push_back(std::move(u));
  }
  // The optimizer's parameters are the masters: the LR schedule, zero_grad() (the shards'
  // gradients) and AdamW's step act on this rank's slices.
  param_groups().front().params() = masters;
  if (full != nullptr) {
    for (auto& u : units_) {
      if (u.params.empty()) continue;
      const auto* first = adamw_state(*full, params_[u.params.front()]);
      if (first == nullptr) continue;  // never stepped
      auto m = torch::zeros({u.shard}, u.master.options()), v = torch::zeros_like(m);
      for_each_piece(u, [&](size_t i, int64_t offset, int64_t length, int64_t pos) {
        if (const auto* st = adamw_state(*full, params_[i])) {
          m.narrow(0, pos, length).copy_(st->exp_avg().reshape(-1).narrow(0, offset, length));
          v.narrow(0, pos, length).copy_(st->exp_avg_sq().reshape(-1).narrow(0, offset, length));
        }
      });
      set_adamw_state(*this, u.master, first->step(), m, v);
    }
  }
  residency_ = std::make_shared<Residency>(*this);
  model_.set_layer_residency(residency_);
  peak_ = model_state_bytes();
}

ShardedModel::~ShardedModel() {
  if (model_.layer_residency() == residency_.get()) model_.set_layer_residency(nullptr);
  for (auto& u : units_)
    if (u.pending) try {
        u.pending->wait();
      } catch (...) {  // a failed collective was reported where it failed
      }
}

void ShardedModel::gather(Unit& u, bool wait) {
  if (u.params.empty()) return;
  alloc_storage(u.flat);
  u.pending = comm_.all_gather_into_async(u.master, u.flat);
  if (wait) finish_gather(u);
}

void ShardedModel::finish_gather(Unit& u) {
  if (!u.pending) return;
  u.pending->wait();
  u.pending.reset();
}

void ShardedModel::release(Unit& u) {
  if (u.params.empty() || !whole(u)) return;
  finish_gather(u);
  free_storage(u.flat);
}

void ShardedModel::reduce_scatter_gradients(Unit& u) {
  if (u.params.empty()) return;
  auto flat = torch::zeros({comm_.size() * u.shard}, u.master.options());
  note_peak(bytes_of(flat));  // the unit's gradients whole, and the buffer they are reduced in
  int64_t off = 0;
  for (const size_t i : u.params) {
    auto& p = params_[i];
    if (p.grad().defined()) flat.narrow(0, off, p.numel()).copy_(p.grad().reshape(-1));
    p.mutable_grad() = at::Tensor();
    off += p.numel();
  }
  const auto mine = comm_.reduce_scatter(flat);  // flat is scratch from here
  auto& g = u.master.mutable_grad();
  if (g.defined()) g.add_(mine);
  else g = mine;
}

void ShardedModel::begin_update() {
  torch::NoGradGuard ng;
  for (auto& p : params_) p.mutable_grad() = at::Tensor();
  for (size_t k = 0; k < units_.size(); ++k) {
    auto& u = units_[k];
    if (u.params.empty()) continue;
    if (level_ != ShardLevel::kFull) continue;  // the masters are views of the weights
    // The weights may have been replaced while whole (a checkpoint loaded, a rollback): the
    // masters are taken from them again before the layers are freed.
    u.master.copy_(u.flat.narrow(0, comm_.rank() * u.shard, u.shard));
    if (k > 0) release(u);
  }
  active_ = true;
  peak_ = model_state_bytes();
}

void ShardedModel::end_update() {
  active_ = false;
  for (auto& u : units_) {
    if (!u.params.empty() && !whole(u)) gather(u, /*wait=*/false);
  }
  for (auto& u : units_) finish_gather(u);
}

double ShardedModel::reduce_and_clip(double max_norm) {
  torch::NoGradGuard ng;
  // The units with a gradient still whole on some rank (the root's; every unit's when the
  // backward did not go through the checkpointed layers): every rank must take part.
  auto flags = torch::zeros({static_cast<int64_t>(units_.size())}, torch::kFloat);
  for (size_t k = 0; k < units_.size(); ++k)
    for (const size_t i : units_[k].params)
      if (params_[i].grad().defined()) flags[static_cast<int64_t>(k)] = 1.0F;
  auto has = flags.to(comm_.device());
  comm_.all_reduce(has, ReduceOp::kSum);
  const auto has_cpu = has.cpu();
  for (size_t k = 0; k < units_.size(); ++k)
    if (has_cpu[static_cast<int64_t>(k)].item<float>() > 0) reduce_scatter_gradients(units_[k]);
  // The global L2 norm over the shards (padding is zero), then clip_grad_norm_'s scaling.
  auto sq = torch::zeros({1}, torch::TensorOptions().dtype(torch::kDouble).device(comm_.device()));
  for (const auto& u : units_)
    if (u.master.defined() && u.master.grad().defined()) sq += u.master.grad().to(torch::kDouble).pow(2).sum();
  comm_.all_reduce(sq, ReduceOp::kSum);
  const double norm = std::sqrt(sq.item<double>());
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0)
    for (auto& u : units_)
      if (u.master.defined() && u.master.grad().defined()) u.master.mutable_grad().mul_(coef);
  return norm;
}

torch::Tensor ShardedModel::step(LossClosure closure) {
  TORCH_CHECK(closure == nullptr, "ShardedModel: closures are not supported");
  torch::NoGradGuard ng;
  learner::FusedAdamW::step();
  // The updated slices back into the units that are whole (gradients: every unit; full: the root;
  // a layer freed inside an update is gathered when next needed), all gathers in flight at once.
  for (auto& u : units_) {
    if (u.params.empty() || !whole(u)) continue;
    finish_gather(u);
    gather(u, /*wait=*/false);
  }
  for (auto& u : units_) finish_gather(u);
  note_peak();
  return {};
}

bool ShardedModel::whole(const Unit& u) { return materialized(u.flat); }

void ShardedModel::for_each_piece(const Unit& u,
                                  const std::function<void(size_t, int64_t, int64_t, int64_t)>& fn) const {
  const int64_t lo = comm_.rank() * u.shard, hi = std::min(lo + u.shard, u.numel);
  int64_t off = 0;  // the parameter's first element in the unit
  for (const size_t i : u.params) {
    const int64_t n = params_[i].numel(), a = std::max(lo, off), b = std::min(hi, off + n);
    if (a < b) fn(i, a - off, b - a, a - lo);
    off += n;
  }
}

std::vector<MomentSegment> ShardedModel::moment_segments(bool with_state) const {
  std::vector<MomentSegment> out;
  for (const auto& u : units_) {
    if (u.params.empty()) continue;
    const auto* st = with_state ? adamw_state(*this, u.master) : nullptr;
    for_each_piece(u, [&](size_t i, int64_t offset, int64_t length, int64_t pos) {
      MomentSegment s{i, offset, length, {}, {}, 0};
      if (st != nullptr) {
        s.exp_avg = st->exp_avg().narrow(0, pos, length);
        s.exp_avg_sq = st->exp_avg_sq().narrow(0, pos, length);
        s.step = st->step();
      }
      out.push_back(std::move(s));
    });
  }
  return out;
}

void ShardedModel::load_moments(const std::vector<MomentSegment>& segments) {
  state().clear();
  size_t k = 0;
  for (auto& u : units_) {
    if (u.params.empty()) continue;
    auto m = torch::zeros({u.shard}, u.master.options()), v = torch::zeros_like(m);
    int64_t step = 0;
    for_each_piece(u, [&](size_t i, int64_t offset, int64_t length, int64_t pos) {
      TORCH_CHECK(k < segments.size() && segments[k].param == i && segments[k].offset == offset &&
                      segments[k].length == length,
                  "ShardedModel::load_moments: segment ", k, " is not this rank's");
      const auto& s = segments[k++];
      if (s.step == 0) return;
      m.narrow(0, pos, length).copy_(s.exp_avg);
      v.narrow(0, pos, length).copy_(s.exp_avg_sq);
      step = s.step;
    });
    if (step > 0) set_adamw_state(*this, u.master, step, m, v);
  }
  TORCH_CHECK(k == segments.size(), "ShardedModel::load_moments: ", segments.size(), " segments for ", k, " pieces");
}

void ShardedModel::save(torch::serialize::OutputArchive&) const {
  fail("ShardedModel: a sharded optimizer state is saved through moment_segments() (optimizer_shards.h)");
}

void ShardedModel::load(torch::serialize::InputArchive&) {
  fail("ShardedModel: load a whole AdamW state and pass it to the constructor");
}

int64_t ShardedModel::state_bytes() const {
  int64_t bytes = 0;
  for (const auto& [key, st] : state()) {
    const auto& a = static_cast<const torch::optim::AdamWParamState&>(*st);
    bytes += bytes_of(a.exp_avg()) + bytes_of(a.exp_avg_sq());
  }
  return bytes;
}

int64_t ShardedModel::model_state_bytes() const {
  int64_t bytes = state_bytes();
  for (const auto& u : units_) {
    if (u.params.empty()) continue;
    if (materialized(u.flat)) bytes += bytes_of(u.flat);
    if (level_ == ShardLevel::kFull) bytes += bytes_of(u.master);  // gradients: a view of flat
    bytes += bytes_of(u.master.grad());
    for (const size_t i : u.params) bytes += bytes_of(params_[i].grad());
  }
  return bytes;
}

void ShardedModel::note_peak(int64_t transient) { peak_ = std::max(peak_, model_state_bytes() + transient); }

int64_t take_peak_model_state_bytes(torch::optim::AdamW& opt, const std::vector<at::Tensor>& params) {
  if (auto* s = dynamic_cast<ShardedModel*>(&opt)) {
    const int64_t peak = s->peak_model_state_bytes();
    s->reset_peak();
    return peak;
  }
  int64_t bytes = adamw_state_bytes(opt);
  for (const auto& p : params) bytes += 2 * bytes_of(p);  // the weights and, at the step, their gradients
  return bytes;
}

}  // namespace keel::dist
