// ONI's hashing / classification / ranking intrinsic reward models (see oni_models.h).
#include "rewards/schemes/oni_models.h"

#include <cmath>
#include <set>

#include <torch/torch.h>

#include "base/error.h"
#include "base/reader.h"

namespace keel::rewards {

namespace {

/// Messages scored per forward pass (bounds the activation memory of a large batch).
constexpr size_t kForwardChunk = 512;

/// Unique messages in first-seen order and, per input, its index among them.
std::pair<std::vector<std::string>, std::vector<int64_t>> dedupe(const std::vector<std::string>& messages) {
  std::map<std::string, int64_t> at;
  std::vector<std::string> unique;
  std::vector<int64_t> inverse;
  inverse.reserve(messages.size());
  for (const auto& m : messages) {
    auto [it, added] = at.emplace(m, static_cast<int64_t>(unique.size()));
    if (added) unique.push_back(m);
    inverse.push_back(it->second);
  }
  return {unique, inverse};
}

/// net(codes of messages) [B, n_out], no grad, in chunks.
at::Tensor forward_no_grad(const OniNet& net, const std::vector<std::string>& messages, int64_t max_chars) {
  torch::NoGradGuard ng;
  std::vector<at::Tensor> parts;
  for (size_t s = 0; s < messages.size(); s += kForwardChunk) {
    const std::vector<std::string> chunk(messages.begin() + static_cast<std::ptrdiff_t>(s),
                                         messages.begin() + static_cast<std::ptrdiff_t>(std::min(messages.size(), s + kForwardChunk)));
    parts.push_back(net.forward(oni_encode_messages(chunk, max_chars)));
  }
  if (parts.empty()) return torch::zeros({0, net.n_out()}, torch::kFloat32);
  return torch::cat(parts, 0);
}

/// The minibatch sampler's seed: decorrelated from the weight-initialisation seed.
uint64_t sampler_seed(int64_t seed) { return static_cast<uint64_t>(seed) ^ 0x6F6E692D6F6E6C69ULL; }

void backward_and_step(const at::Tensor& loss, OniAdam& adam, const OniNet& net, double clip) {
  adam.zero_grad();
  loss.backward();
  if (clip > 0.0) torch::nn::utils::clip_grad_norm_(net.parameters(), clip);
  adam.step();
}

void put_strings(StateDict& out, const std::string& prefix, const std::vector<std::string>& v) {
  state_put_double(out, prefix + "n", static_cast<double>(v.size()));
  for (size_t i = 0; i < v.size(); ++i) out[prefix + std::to_string(i)] = string_to_tensor(v[i]);
}

std::vector<std::string> get_strings(const StateDict& in, const std::string& prefix) {
  const auto n = static_cast<int64_t>(state_get_double(in, prefix + "n"));
  std::vector<std::string> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(tensor_to_string(state_get(in, prefix + std::to_string(i))));
  return v;
}

}  // namespace

// ---- pure functions -------------------------------------------------------------------------------

at::Tensor oni_classifier_reward(const at::Tensor& p1, double threshold) {
  TORCH_CHECK(p1.dim() == 1, "oni_classifier_reward: p1 must be [B], got ", p1.sizes());
  return (p1.to(torch::kFloat64) > threshold).to(torch::kFloat64);
}

at::Tensor oni_pair_loss(const at::Tensor& r1, const at::Tensor& r2, const at::Tensor& q) {
  TORCH_CHECK(r1.dim() == 1 && r2.sizes() == r1.sizes() && q.sizes() == r1.sizes(), "oni_pair_loss: r1 ", r1.sizes(),
              ", r2 ", r2.sizes(), " and q ", q.sizes(), " must all be [P]");
  const at::Tensor lp = torch::log_softmax(torch::stack({r1, r2}, 1), 1);  // [P, 2]
  return -((1.0 - q) * lp.select(1, 0) + q * lp.select(1, 1));
}

at::Tensor oni_pair_target(const at::Tensor& s1, const at::Tensor& s2, double tie_margin) {
  TORCH_CHECK(s1.dim() == 1 && s2.sizes() == s1.sizes(), "oni_pair_target: s1 ", s1.sizes(), " and s2 ", s2.sizes(),
              " must both be [P]");
  const at::Tensor a = s1.to(torch::kFloat64), b = s2.to(torch::kFloat64);
  const at::Tensor d = b - a;
  at::Tensor q = (d > 0).to(torch::kFloat64);
  const at::Tensor half = torch::full_like(q, 0.5);
  q = torch::where(d.abs() <= tie_margin, half, q);
  return torch::where(torch::isfinite(a).logical_and(torch::isfinite(b)), q, half);
}

at::Tensor oni_ranking_reward(const at::Tensor& raw, const RunningMeanStd& stats, const OniRankingRewardOptions& o) {
  TORCH_CHECK(raw.dim() == 1, "oni_ranking_reward: raw must be [B], got ", raw.sizes());
  const at::Tensor r = raw.to(torch::kFloat64);
  if (o.use_raw_reward) return r;
  const at::Tensor z = (r - stats.mean()) / std::sqrt(std::max(stats.var(), o.var_floor));
  return torch::where(z > o.eps_threshold_quantile, z, torch::zeros_like(z));
}

// ---- the annotator ----------------------------------------------------------------------------------

OniAnnotator::OniAnnotator(std::unique_ptr<RewardScheme> judge, OniAnnotatorOptions o)
    : judge_(std::move(judge)), o_(std::move(o)) {
  TORCH_CHECK(judge_, "OniAnnotator: no annotator scheme");
}

void OniAnnotator::bind(const RewardContext& ctx) { judge_->bind(ctx); }

at::Tensor OniAnnotator::scores(const std::vector<std::string>& messages) {
  const auto b = static_cast<int64_t>(messages.size());
  if (b == 0) return torch::zeros({0}, torch::kFloat64);
  RewardInput in;
  in.prompts.assign(messages.size(), o_.prompt);
  in.responses = messages;
  in.group_ids = torch::arange(b, torch::kLong);
  const RewardOutput out = judge_->score(in);
  TORCH_CHECK(out.rewards.defined() && out.rewards.dim() == 1 && out.rewards.size(0) == b, "ONI annotator '", o_.scheme,
              "' must return rewards of shape [", b, "]");
  return out.rewards.detach().cpu().to(torch::kFloat64);
}

at::Tensor OniAnnotator::labels(const std::vector<std::string>& messages) {
  return (scores(messages) > o_.threshold).to(torch::kFloat64);  // NaN compares false: label 0
}

at::Tensor OniAnnotator::compare(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::vector<std::string> flat;
  for (const auto& [a, b] : pairs) {
    flat.push_back(a);
    flat.push_back(b);
  }
  const at::Tensor s = scores(flat).view({-1, 2});  // [P, 2]
  return oni_pair_target(s.select(1, 0).contiguous(), s.select(1, 1).contiguous(), o_.tie_margin);
}

// ---- classification ---------------------------------------------------------------------------------

OniTrainable::OniTrainable(const OniNetOptions& net_opts, int64_t n_out, double lr)
    : net(net_opts, n_out), adam(net.parameters(), OniAdamOptions{lr}), rng(sampler_seed(net_opts.seed)) {}

void OniTrainable::save_state(StateDict& out, const std::string& prefix) const {
  net.save_state(out, prefix + "net/");
  adam.save_state(out, prefix + "adam/");
  rng.save_state(out, prefix + "rng");
}

void OniTrainable::load_state(const StateDict& in, const std::string& prefix) {
  net.load_state(in, prefix + "net/");
  adam.load_state(in, prefix + "adam/");
  rng.load_state(in, prefix + "rng");
}

OniClassifier::OniClassifier(const OniNetOptions& net, const OniTrainOptions& train, double threshold)
    : net_opts_(net),
      train_(train),
      threshold_(threshold),
      model_(net, /*n_out=*/2, train.lr) {}

at::Tensor OniClassifier::probability(const std::vector<std::string>& messages) const {
  return torch::softmax(forward_no_grad(model_.net, messages, net_opts_.max_chars), 1).select(1, 1).contiguous();
}

at::Tensor OniClassifier::reward(const std::vector<std::string>& messages) const {
  return oni_classifier_reward(probability(messages), threshold_);
}

double OniClassifier::update(const std::map<std::string, double>& labels) {
  if (labels.empty() || train_.grad_steps == 0) return 0.0;
  torch::AutoGradMode grad(true);  // the caller may score under a NoGradGuard (rollout, evaluation)
  std::vector<std::string> msgs;
  std::vector<int64_t> ys;
  for (const auto& [m, y] : labels) {
    msgs.push_back(m);
    ys.push_back(y >= 0.5 ? 1 : 0);
  }
  const at::Tensor codes = oni_encode_messages(msgs, net_opts_.max_chars);  // [D, L]
  const at::Tensor target = torch::tensor(ys, torch::kLong);               // [D]
  double total = 0.0;
  for (int64_t s = 0; s < train_.grad_steps; ++s) {
    const at::Tensor idx = torch::tensor(model_.rng.sample(static_cast<int64_t>(msgs.size()), train_.batch_size), torch::kLong);
    const at::Tensor loss = torch::nn::functional::cross_entropy(model_.net.forward(codes.index_select(0, idx)), target.index_select(0, idx));
    backward_and_step(loss, model_.adam, model_.net, train_.grad_clip);
    total += loss.item<double>();
  }
  return total / static_cast<double>(train_.grad_steps);
}

void OniClassifier::save_state(StateDict& out, const std::string& prefix) const {
  model_.save_state(out, prefix);
}

void OniClassifier::load_state(const StateDict& in, const std::string& prefix) {
  model_.load_state(in, prefix);
}

// ---- ranking ----------------------------------------------------------------------------------------------

OniRanker::OniRanker(const OniNetOptions& net, const OniTrainOptions& train, const OniRankingRewardOptions& reward)
    : net_opts_(net),
      train_(train),
      reward_(reward),
      model_(net, /*n_out=*/1, train.lr) {}

at::Tensor OniRanker::raw(const std::vector<std::string>& messages) const {
  return forward_no_grad(model_.net, messages, net_opts_.max_chars).select(1, 0).contiguous();
}

at::Tensor OniRanker::reward(const std::vector<std::string>& messages) {
  if (messages.empty()) return torch::zeros({0}, torch::kFloat64);
  const auto [unique, inverse] = dedupe(messages);
  const at::Tensor r = raw(unique).index_select(0, torch::tensor(inverse, torch::kLong)).to(torch::kFloat64);  // [B]
  stats_.update(r);
  return oni_ranking_reward(r, stats_, reward_);
}

void OniRanker::observe(const std::vector<std::string>& messages) {
  for (const auto& m : messages)
    if (pool_index_.emplace(m, static_cast<int64_t>(pool_.size())).second) pool_.push_back(m);
}

std::vector<std::pair<int64_t, int64_t>> OniRanker::sample_pairs(int64_t k) {
  std::vector<std::pair<int64_t, int64_t>> out;
  const auto n = static_cast<int64_t>(pool_.size());
  if (n < 2) return out;
  for (int64_t i = 0; i < k; ++i) {
    const int64_t a = model_.rng.below(n);
    int64_t b = model_.rng.below(n - 1);
    if (b >= a) ++b;  // uniform over the n − 1 others
    out.emplace_back(a, b);
  }
  return out;
}

void OniRanker::add_pairs(const std::vector<std::pair<int64_t, int64_t>>& pairs, const at::Tensor& q) {
  TORCH_CHECK(q.dim() == 1 && q.size(0) == static_cast<int64_t>(pairs.size()), "OniRanker::add_pairs: q must be [P = ",
              pairs.size(), "], got ", q.sizes());
  const at::Tensor qc = q.to(torch::kFloat64).contiguous();
  for (size_t i = 0; i < pairs.size(); ++i) {
    TORCH_CHECK(pairs[i].first >= 0 && pairs[i].first < static_cast<int64_t>(pool_.size()) && pairs[i].second >= 0 &&
                    pairs[i].second < static_cast<int64_t>(pool_.size()),
                "OniRanker::add_pairs: pair ", i, " is outside the pool of ", pool_.size(), " messages");
    first_.push_back(pairs[i].first);
    second_.push_back(pairs[i].second);
    q_.push_back(qc[static_cast<int64_t>(i)].item<double>());
  }
}

double OniRanker::update() {
  const auto p = static_cast<int64_t>(q_.size());
  if (p == 0 || train_.grad_steps == 0) return 0.0;
  torch::AutoGradMode grad(true);  // the caller may score under a NoGradGuard (rollout, evaluation)
  double total = 0.0;
  for (int64_t s = 0; s < train_.grad_steps; ++s) {
    const std::vector<int64_t> idx = model_.rng.sample(p, train_.batch_size);
    std::vector<std::string> msgs(2 * idx.size());  // firsts, then seconds
    std::vector<double> q;
    for (size_t j = 0; j < idx.size(); ++j) {
      const auto i = static_cast<size_t>(idx[j]);
      msgs[j] = pool_[static_cast<size_t>(first_[i])];
      msgs[idx.size() + j] = pool_[static_cast<size_t>(second_[i])];
      q.push_back(q_[i]);
    }
    const at::Tensor r = model_.net.forward(oni_encode_messages(msgs, net_opts_.max_chars)).select(1, 0);  // [2B]
    const auto b = static_cast<int64_t>(idx.size());
    const at::Tensor loss = oni_pair_loss(r.slice(0, 0, b), r.slice(0, b), torch::tensor(q, torch::kFloat32)).mean();
    backward_and_step(loss, model_.adam, model_.net, train_.grad_clip);
    total += loss.item<double>();
  }
  return total / static_cast<double>(train_.grad_steps);
}

void OniRanker::save_state(StateDict& out, const std::string& prefix) const {
  model_.save_state(out, prefix);
  stats_.save_state(out, prefix + "stats/");
  put_strings(out, prefix + "pool/", pool_);
  out[prefix + "pair_first"] = torch::tensor(first_, torch::kLong);
  out[prefix + "pair_second"] = torch::tensor(second_, torch::kLong);
  out[prefix + "pair_q"] = torch::tensor(q_, torch::kFloat64);
}

void OniRanker::load_state(const StateDict& in, const std::string& prefix) {
  model_.load_state(in, prefix);
  stats_.load_state(in, prefix + "stats/");
  pool_ = get_strings(in, prefix + "pool/");
  pool_index_.clear();
  for (size_t i = 0; i < pool_.size(); ++i) pool_index_[pool_[i]] = static_cast<int64_t>(i);
  const at::Tensor f = state_get(in, prefix + "pair_first").contiguous(), s = state_get(in, prefix + "pair_second").contiguous(),
                   q = state_get(in, prefix + "pair_q").contiguous();
  if (f.numel() != s.numel() || f.numel() != q.numel())
    fail("reward state: '{}pair_first', 'pair_second' and 'pair_q' differ in length", prefix);
  first_.assign(f.data_ptr<int64_t>(), f.data_ptr<int64_t>() + f.numel());
  second_.assign(s.data_ptr<int64_t>(), s.data_ptr<int64_t>() + s.numel());
  q_.assign(q.data_ptr<double>(), q.data_ptr<double>() + q.numel());
  for (size_t i = 0; i < first_.size(); ++i)
    if (first_[i] < 0 || second_[i] < 0 || first_[i] >= static_cast<int64_t>(pool_.size()) ||
        second_[i] >= static_cast<int64_t>(pool_.size()))
      fail("reward state: '{}' pair {} points outside the pool of {} messages", prefix, i, pool_.size());
}

// ---- the per-scheme state machine -------------------------------------------------------------------

OniModel oni_model_of(const std::string& name) {
  if (name == "signal") return OniModel::kSignal;
  if (name == "hashing") return OniModel::kHashing;
  if (name == "classification") return OniModel::kClassification;
  if (name == "ranking") return OniModel::kRanking;
  fail("unknown ONI intrinsic model '{}' (known: signal, hashing, classification, ranking)", name);
}

OniIntrinsic::OniIntrinsic(const OniIntrinsicOptions& o, std::unique_ptr<RewardScheme> annotator)
    : o_(o), model_(oni_model_of(o.model)), annotator_(std::move(annotator), o.annotator) {
  TORCH_CHECK(model_ != OniModel::kSignal, "OniIntrinsic: model 'signal' has no learned intrinsic reward");
  if (model_ == OniModel::kClassification)
    classifier_ = std::make_unique<OniClassifier>(o.net, o.classification, o.classification_threshold);
  if (model_ == OniModel::kRanking) ranker_ = std::make_unique<OniRanker>(o.net, o.ranking, o.ranking_reward);
}

void OniIntrinsic::bind(const RewardContext& ctx) { annotator_.bind(ctx); }

at::Tensor OniIntrinsic::step(const std::vector<std::string>& messages, std::map<std::string, double>& metrics) {
  // 1. Rewards under the current model.
  at::Tensor r;
  if (model_ == OniModel::kRanking) {
    r = ranker_->reward(messages);
  } else {
    std::vector<double> cached;
    for (const auto& m : messages) cached.push_back(cache_.reward(m));  // queues unseen messages
    if (model_ == OniModel::kHashing) {
      r = torch::tensor(cached, torch::kFloat64);
    } else {
      const auto [unique, inverse] = dedupe(messages);
      r = unique.empty() ? torch::zeros({0}, torch::kFloat64)
                         : classifier_->reward(unique).index_select(0, torch::tensor(inverse, torch::kLong));
    }
  }
  // 2. Annotation of new messages (pairs), 3. one model update.
  double loss = 0.0;
  int64_t annotated = 0;
  if (model_ == OniModel::kRanking) {
    ranker_->observe(messages);
    const auto pairs = ranker_->sample_pairs(o_.annotate_per_step);
    std::vector<std::pair<std::string, std::string>> text;
    for (const auto& [a, b] : pairs) text.emplace_back(ranker_->pool()[static_cast<size_t>(a)], ranker_->pool()[static_cast<size_t>(b)]);
    if (!pairs.empty()) ranker_->add_pairs(pairs, annotator_.compare(text));
    annotated = static_cast<int64_t>(pairs.size());
    loss = ranker_->update();
    metrics["oni/pairs"] = static_cast<double>(ranker_->num_pairs());
    metrics["oni/pool"] = static_cast<double>(ranker_->pool().size());
    metrics["oni/raw_mean"] = ranker_->stats().mean();
    metrics["oni/raw_std"] = std::sqrt(ranker_->stats().var());
  } else {
    const std::vector<std::string> todo = cache_.take_pending(static_cast<size_t>(o_.annotate_per_step));
    if (!todo.empty()) {
      const at::Tensor y = annotator_.labels(todo);
      for (size_t i = 0; i < todo.size(); ++i) cache_.set_label(todo[i], y[static_cast<int64_t>(i)].item<double>());
    }
    annotated = static_cast<int64_t>(todo.size());
    if (model_ == OniModel::kClassification) loss = classifier_->update(cache_.labels());
    metrics["oni/labels"] = static_cast<double>(cache_.labels().size());
    metrics["oni/pending"] = static_cast<double>(cache_.num_pending());
  }
  metrics["oni/annotated"] = static_cast<double>(annotated);
  if (model_ != OniModel::kHashing) metrics["oni/rm_loss"] = loss;
  return r;
}

void OniIntrinsic::save_state(StateDict& out) const {
  state_put_double(out, "model", static_cast<double>(model_));
  if (model_ == OniModel::kRanking) {
    ranker_->save_state(out, "rank/");
    return;
  }
  cache_.save_state(out, "cache/");
  if (classifier_) classifier_->save_state(out, "cls/");
}

void OniIntrinsic::load_state(const StateDict& in) {
  const auto saved = static_cast<int64_t>(state_get_double(in, "model"));
  if (saved != static_cast<int64_t>(model_))
    fail("reward state: the checkpoint holds ONI intrinsic model #{}, the config asks for '{}' (#{}); "
         "resume with the model the run was trained with",
         saved, o_.model, static_cast<int64_t>(model_));
  if (model_ == OniModel::kRanking) {
    ranker_->load_state(in, "rank/");
    return;
  }
  cache_.load_state(in, "cache/");
  if (classifier_) classifier_->load_state(in, "cls/");
}

// ---- config ------------------------------------------------------------------------------------------

namespace {

/// What may annotate: the rule-based verifiers and the learned rewards (not the shaping schemes).
const RewardRegistry& annotator_registry() {
  static const RewardRegistry reg = [] {
    RewardRegistry r("annotator scheme");
    register_builtin_rewards(r);
    register_builtin_reward_models(r);
    return r;
  }();
  return reg;
}

void read_train(config::Reader& s, OniTrainOptions& t) {
  s.field("batch_size", t.batch_size, "messages (pairs) per gradient step").ge(1);
  s.field("lr", t.lr, "Adam learning rate").gt(0);
  s.field("grad_steps", t.grad_steps, "gradient steps per update (one update per scored batch)").ge(0);
  s.field("grad_clip", t.grad_clip, "max global gradient norm (0 = off)").ge(0);
}

}  // namespace

std::unique_ptr<RewardScheme> read_oni_intrinsic_options(config::Reader& r, OniIntrinsicOptions& o) {
  r.field("model", o.model, "intrinsic reward: signal (given per step) | hashing | classification | ranking")
      .one_of({"signal", "hashing", "classification", "ranking"}, "ONI intrinsic model");
  r.field("annotate_per_step", o.annotate_per_step, "new messages (ranking: pairs) annotated per scored batch").ge(1);
  r.section("net", "char-CNN of the classification / ranking models", [&](config::Reader& s) {
    s.field("max_chars", o.net.max_chars, "message bytes read (truncated / zero-padded)").ge(static_cast<double>(kOniMinChars));
    s.field("embed_dim", o.net.embed_dim, "character embedding width").ge(1);
    s.field("hidden_dim", o.net.hidden_dim, "convolution channels").ge(1);
    s.field("mlp_hidden", o.net.mlp_hidden, "hidden widths of the MLP head").ge(1);
    s.field("seed", o.net.seed, "initialisation and minibatch sampling seed").ge(0);
  });
  r.section("classification", "online_cls_reward_model training", [&](config::Reader& s) {
    read_train(s, o.classification);
    s.field("threshold", o.classification_threshold, "r_int = 1[p(class 1) > threshold]").ge(0).le(1);
  });
  r.section("ranking", "online_motif training and reward", [&](config::Reader& s) {
    read_train(s, o.ranking);
    s.field("eps_threshold_quantile", o.ranking_reward.eps_threshold_quantile,
            "keep the standardised r_phi only above this, else 0");
    s.field("var_floor", o.ranking_reward.var_floor, "variance floor of the standardisation").gt(0);
    s.field("use_raw_reward", o.ranking_reward.use_raw_reward,
            "feed the raw r_phi as the released learner does (spec open question 2) instead of the thresholded z");
  });
  std::unique_ptr<RewardScheme> judge;
  const bool learned = o.model != "signal";
  r.section("annotator", "labels / compares messages (a verifier or learned reward scoring the message)", [&](config::Reader& a) {
    a.field("scheme", o.annotator.scheme, "registered verifier or learned reward (required unless model: signal)");
    a.field("prompt", o.annotator.prompt, "prompt text the annotator sees beside each message");
    a.field("threshold", o.annotator.threshold, "label = 1[score > threshold]");
    a.field("tie_margin", o.annotator.tie_margin, "pairs whose scores differ by at most this are ties").ge(0);
    const RewardRegistry& reg = annotator_registry();
    if (o.annotator.scheme.empty()) {
      if (learned) a.error("scheme", fmt::format("model '{}' needs an annotator (known: {})", o.model, reg.known()));
      return;
    }
    if (!reg.contains(o.annotator.scheme)) {
      a.error("scheme", fmt::format("unknown {} '{}' (known: {})", reg.kind(), o.annotator.scheme, reg.known()));
      return;
    }
    a.section("params", "the annotator's own parameters", [&](config::Reader& p) {
      // Built apart (its contract is its own, not the ONI component's): the annotator scores bare
      // messages (prompt text + message, no metadata or other inputs), so it may require nothing.
      BuiltScheme b = build_scheme(reg, p, o.annotator.scheme);
      judge = std::move(b.impl);
      for (const auto& need : b.contract)
        a.error("scheme", fmt::format("annotator '{}' needs input {} (from {}), but an ONI annotator sees only the "
                                      "prompt and the message",
                                      o.annotator.scheme, need.input, need.key));
    });
  });
  return judge;
}

}  // namespace keel::rewards
