#include "trainer/data/prompt_source.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "trainer/config/config.h"
#include "trainer/data/jsonl.h"

namespace keel::data {

std::vector<size_t> seeded_permutation(size_t n, uint64_t seed) {
  std::vector<size_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = i;
  SplitMix64 rng(seed);
  for (size_t i = n; i > 1; --i) std::swap(p[i - 1], p[static_cast<size_t>(rng.uniform(0, static_cast<int64_t>(i) - 1))]);
  return p;
}

PromptSource PromptSource::from_task(std::shared_ptr<const Task> task, uint64_t seed, int64_t eval_size) {
  PromptSource s;
  s.task_ = std::move(task);
  s.seed_ = seed;
  for (int64_t i = 0; i < eval_size; ++i) {
    s.eval_.push_back(s.task_->make(seed, Split::kEval, static_cast<uint64_t>(i)));
    s.eval_prompts_.insert(held_out_key(s.eval_.back()));
  }
  return s;
}

PromptSource PromptSource::from_records(std::vector<PromptRecord> train, std::vector<PromptRecord> eval, uint64_t seed,
                                        bool shuffle) {
  if (train.empty()) fail("data: no training prompts");
  PromptSource s;
  s.seed_ = seed;
  s.shuffle_ = shuffle;
  s.train_ = std::move(train);
  s.eval_ = std::move(eval);
  return s;
}

std::string meta_string(const PromptRecord& r, const std::string& key) {
  const auto it = r.meta.find(key);
  if (it == r.meta.end()) fail("{}: no \"{}\" field", r.id, key);
  try {
    const auto j = nlohmann::json::parse(it->second);
    if (j.is_string()) return j.get<std::string>();
  } catch (const nlohmann::json::parse_error&) {
  }
  fail("{}: \"{}\" must be a string", r.id, key);
}

namespace {

/// Preference / SFT records as PromptRecords (the source shuffles, splits and checkpoints only
/// PromptRecords); the extra texts travel in meta as JSON strings.
PromptRecord as_prompt(const PreferenceRecord& p) {
  PromptRecord r;
  r.id = p.id;
  r.prompt = p.prompt;
  r.messages = p.messages;
  r.meta = p.meta;
  r.meta["chosen"] = nlohmann::json(p.chosen).dump();
  r.meta["rejected"] = nlohmann::json(p.rejected).dump();
  return r;
}
PromptRecord as_prompt(const SftRecord& p) {
  PromptRecord r;
  r.id = p.id;
  r.prompt = p.prompt;
  r.messages = p.messages;
  r.meta["response"] = nlohmann::json(p.response).dump();
  return r;
}

Loaded<PromptRecord> load_as_prompts(const std::string& path, const JsonlOptions& o, const std::string& format) {
  if (format == "prompts") return load_prompts(path, o);
  Loaded<PromptRecord> out;
  const auto convert = [&](auto loaded) {
    for (const auto& rec : loaded.records) out.records.push_back(as_prompt(rec));
    out.skipped = loaded.skipped;
    out.skipped_reasons = std::move(loaded.skipped_reasons);
  };
  if (format == "preferences") convert(load_preferences(path, o));
  else if (format == "sft") convert(load_sft(path, o));
  else fail("data.format: unknown format '{}' (prompts | preferences | sft)", format);
  return out;
}

}  // namespace

PromptSource PromptSource::from_config(const config::DataSection& c, uint64_t seed, const TaskRegistry& tasks,
                                       const std::string& format) {
  if (c.train_file.empty()) {
    config::Diagnostics d;
    config::Reader r(&c.task_params, "data.task_params", d);
    std::shared_ptr<const Task> task = tasks.get(c.task).fn(r);
    r.finish();
    d.throw_if_any();
    return from_task(std::move(task), seed, c.eval_size);
  }
  JsonlOptions o;
  o.skip_bad_lines = c.skip_bad_lines;
  o.prompt_key = c.prompt_key;
  o.answer_key = c.answer_key;
  o.answer_extract = c.answer_extract;
  o.answer_regex = c.answer_regex;
  o.max_record_bytes = c.max_record_bytes;
  auto train = load_as_prompts(c.train_file, o, format);
  std::vector<PromptRecord> eval;
  int64_t skipped = train.skipped;
  if (!c.eval_file.empty()) {
    auto e = load_as_prompts(c.eval_file, o, format);
    eval = std::move(e.records);
    skipped += e.skipped;
  } else if (c.eval_fraction > 0 && train.records.size() > 1) {
    // Held-out split: a seeded permutation; the first ceil(fraction * n) records (at least one,
    // at most n - 1) are held out.
    const size_t n = train.records.size();
    const size_t k = std::min(n - 1, std::max<size_t>(1, static_cast<size_t>(std::ceil(c.eval_fraction * static_cast<double>(n)))));
    const auto perm = seeded_permutation(n, seed ^ 0xE7A1ull);
    std::vector<bool> held(n, false);
    for (size_t i = 0; i < k; ++i) held[perm[i]] = true;
    std::vector<PromptRecord> kept;
    for (size_t i = 0; i < n; ++i) (held[i] ? eval : kept).push_back(std::move(train.records[i]));
    train.records = std::move(kept);
  }
  auto s = from_records(std::move(train.records), std::move(eval), seed, c.shuffle);
  s.skipped_ = skipped;
  return s;
}

void PromptSource::reject_records(RecordCheck why_not, bool skip, const std::string& hint, int64_t task_probe) {
  int64_t failed = 0, checked = 0;
  std::string first;
  // Keeps the records that fit; the first reason and the count for the error.
  const auto keep_fitting = [&](std::vector<PromptRecord>& records) {
    std::vector<PromptRecord> kept;
    for (auto& r : records) {
      ++checked;
      std::string why = why_not(r);
      if (why.empty()) {
        kept.push_back(std::move(r));
        continue;
      }
      if (first.empty()) first = std::move(why);
      ++failed;
    }
    records = std::move(kept);
  };
  keep_fitting(eval_);
  std::vector<PromptRecord> probe;
  if (task_) {
    for (int64_t i = 0; i < task_probe; ++i) probe.push_back(task_->make(seed_, Split::kTrain, static_cast<uint64_t>(i)));
    keep_fitting(probe);
  } else {
    keep_fitting(train_);
  }
  if (failed > 0 && !skip)
    fail("{} ({} of the {} records checked do not fit){}", first, failed, checked, hint);
  if (task_ ? probe.empty() : train_.empty())
    fail("data: no training record fits ({} of {} checked do not; the first: {})", failed, checked, first);
  rejected_ += failed;
  if (first_rejection_.empty()) first_rejection_ = first;
  if (task_) check_ = std::move(why_not);
}

const std::vector<size_t>& PromptSource::order_for(int64_t epoch) {
  if (order_epoch_ != epoch) {
    if (shuffle_) {
      order_ = seeded_permutation(train_.size(), seed_ * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch));
    } else {
      order_.resize(train_.size());
      for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
    }
    order_epoch_ = epoch;
  }
  return order_;
}

std::string PromptSource::held_out_key(const PromptRecord& r) {
  // The prompt and its answer: a task whose hidden state is not in the prompt (an environment's
  // hidden item) has several problems per prompt text.
  return r.prompt + '\x1f' + r.answer;
}

std::vector<PromptRecord> PromptSource::next_batch(size_t n) {
  std::vector<PromptRecord> out;
  out.reserve(n);
  if (task_) {
    int64_t collisions = 0;
    int64_t misfits = 0;
    while (out.size() < n) {
      auto r = task_->make(seed_, Split::kTrain, static_cast<uint64_t>(cursor_.position++));
      if (check_) {
        if (std::string why = check_(r); !why.empty()) {
          if (first_rejection_.empty()) first_rejection_ = std::move(why);
          ++rejected_;
          if (++misfits == 10000)
            fail("data: 10000 training problems in a row do not fit; the first: {}", first_rejection_);
          continue;
        }
        misfits = 0;
      }
      if (!eval_prompts_.count(held_out_key(r))) {
        out.push_back(std::move(r));
        collisions = 0;
      } else if (++collisions == 10000) {
        fail("data: 10000 training problems in a row are held-out ones: the task has too few distinct problems "
             "for data.eval_size {} (lower it, or widen the task's knobs)", eval_.size());
      }
    }
    return out;
  }
  while (out.size() < n) {
    if (cursor_.position >= static_cast<int64_t>(train_.size())) {
      ++cursor_.epoch;
      cursor_.position = 0;
    }
    const auto& order = order_for(cursor_.epoch);
    out.push_back(train_[order[static_cast<size_t>(cursor_.position++)]]);
  }
  return out;
}

}  // namespace keel::data
