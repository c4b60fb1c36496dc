// MultiRole-R1 diversity metrics (see diversity.h).
#include "rewards/schemes/diversity.h"

#include <cctype>
#include <cmath>
#include <map>
#include <set>

#include <torch/torch.h>

#include "base/error.h"
#include "base/reader.h"

namespace keel::rewards {

namespace {

const std::vector<std::string>& function_words() {
  static const std::vector<std::string> kWords{
      "the", "a", "an", "and", "or", "but", "if", "then", "of", "in", "on", "at", "to", "for", "with", "by",
      "from", "as", "is", "are", "was", "were", "be", "been", "it", "this", "that", "these", "those", "i",
      "you", "he", "she", "we", "they", "not", "no", "so", "because", "which", "who", "what", "when", "where",
      "how", "there", "here", "can", "will", "would"};
  return kWords;
}

// Shannon entropy (nats) of counts.
template <typename Map>
double entropy(const Map& counts) {
  double total = 0, h = 0;
  for (const auto& [k, c] : counts) total += c;
  if (total <= 0) return 0.0;
  for (const auto& [k, c] : counts)
    if (c > 0) h -= (c / total) * std::log(c / total);
  return h;
}

bool is_token_char(unsigned char c) { return std::isalnum(c) || c == '\''; }

}  // namespace

std::vector<std::string> diversity_tokens(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) out.push_back(cur);
    cur.clear();
  };
  for (unsigned char c : text) {
    if (is_token_char(c)) {
      if (c != '\'') cur.push_back(static_cast<char>(std::tolower(c)));
    } else {
      flush();
    }
  }
  flush();
  return out;
}

std::vector<DiversitySentence> diversity_sentences(const std::string& text) {
  std::vector<DiversitySentence> out;
  std::string cur;
  for (size_t i = 0; i <= text.size(); ++i) {
    const char c = i < text.size() ? text[i] : '\0';
    const bool end_of_text = i == text.size();
    const bool term = c == '.' || c == '!' || c == '?';
    if (!end_of_text) cur.push_back(c);
    if (term || end_of_text) {
      // Absorb a run of terminators ("?!", "...").
      while (term && i + 1 < text.size() && (text[i + 1] == '.' || text[i + 1] == '!' || text[i + 1] == '?'))
        cur.push_back(text[++i]);
      DiversitySentence s;
      s.tokens = diversity_tokens(cur);
      s.type = !term ? 3 : (c == '.' ? 0 : (c == '?' ? 1 : 2));
      if (!s.tokens.empty()) out.push_back(std::move(s));
      cur.clear();
    }
  }
  return out;
}

DiversityMetrics diversity_metrics(const std::string& text, const DiversityOptions& o) {
  DiversityMetrics m;
  const auto toks = diversity_tokens(text);
  const double n = static_cast<double>(toks.size());
  if (toks.empty()) return m;
  std::map<std::string, double> freq;
  for (const auto& t : toks) freq[t] += 1;
  const double v = static_cast<double>(freq.size());
  m.lex = v / n;
  m.ent = v > 1 ? entropy(freq) / std::log(v) : 0.0;
  // Yule's K from the frequency spectrum V_r.
  double s2 = 0;
  for (const auto& [w, c] : freq) s2 += c * c;
  m.yule_k = 1e4 * (s2 - n) / (n * n);
  m.yule = o.yule_norm == "inverse" ? 1.0 / (1.0 + m.yule_k) : 1.0 / (1.0 + m.yule_k / 100.0);
  // distinct-n averaged over the configured n.
  double dist_sum = 0;
  for (int64_t k : o.dist_n) {
    if (static_cast<int64_t>(toks.size()) < k || k < 1) continue;
    std::set<std::vector<std::string>> grams;
    const size_t total = toks.size() - static_cast<size_t>(k) + 1;
    for (size_t i = 0; i < total; ++i) grams.insert(std::vector<std::string>(toks.begin() + i, toks.begin() + i + k));
    dist_sum += static_cast<double>(grams.size()) / static_cast<double>(total);
  }
  m.dist = o.dist_n.empty() ? 0.0 : dist_sum / static_cast<double>(o.dist_n.size());
  // Function words.
  std::map<std::string, double> fw;
  const auto& words = function_words();
  for (const auto& t : toks)
    if (std::find(words.begin(), words.end(), t) != words.end()) fw[t] += 1;
  m.func = entropy(fw) / std::log(static_cast<double>(words.size()));
  // Sentence-level metrics.
  const auto sents = diversity_sentences(text);
  if (!sents.empty()) {
    double mean = 0, var = 0;
    for (const auto& s : sents) mean += static_cast<double>(s.tokens.size());
    mean /= static_cast<double>(sents.size());
    for (const auto& s : sents) var += std::pow(static_cast<double>(s.tokens.size()) - mean, 2);
    var /= static_cast<double>(sents.size());
    m.len = mean > 0 ? std::sqrt(var) / mean : 0.0;
    std::map<int, double> types;
    for (const auto& s : sents) types[s.type] += 1;
    m.pat = entropy(types) / std::log(4.0);
  }
  if (sents.size() >= 2) {
    double sum = 0;
    for (size_t i = 0; i + 1 < sents.size(); ++i) {
      const std::set<std::string> a(sents[i].tokens.begin(), sents[i].tokens.end());
      const std::set<std::string> b(sents[i + 1].tokens.begin(), sents[i + 1].tokens.end());
      double inter = 0;
      for (const auto& w : a) inter += b.count(w);
      const double uni = static_cast<double>(a.size() + b.size()) - inter;
      sum += 1.0 - inter / uni;
    }
    m.adj = sum / static_cast<double>(sents.size() - 1);
  }
  return m;
}

double diversity_score(const DiversityMetrics& m, const DiversityOptions& o) {
  double total = 0, wsum = 0;
  for (size_t i = 0; i < o.metrics.size(); ++i) {
    const std::string& k = o.metrics[i];
    const double w = o.metric_weights.empty() ? 1.0 : o.metric_weights.at(i);
    double v;
    if (k == "lex") v = m.lex;
    else if (k == "ent") v = m.ent;
    else if (k == "len") v = m.len;
    else if (k == "pat") v = m.pat;
    else if (k == "adj") v = m.adj;
    else if (k == "yule") v = m.yule;
    else if (k == "dist") v = m.dist;
    else if (k == "func") v = m.func;
    else fail("unknown diversity metric '{}'", k);
    total += w * v;
    wsum += w;
  }
  return wsum > 0 ? total / wsum : 0.0;
}

at::Tensor diversity_reward(const at::Tensor& acc, const at::Tensor& div, const DiversityOptions& o) {
  TORCH_CHECK(acc.sizes() == div.sizes(), "diversity_reward: acc ", acc.sizes(), " != div ", div.sizes());
  return (1.0 - o.weight) * acc.to(torch::kFloat64) + o.weight * div.to(torch::kFloat64);
}

void read_diversity_options(config::Reader& r, DiversityOptions& o) {
  r.field("weight", o.weight, "weight of the diversity reward (1 - delta)").ge(0).le(1);
  r.field("metrics", o.metrics, "sub-metrics in the composite")
      .one_of({"lex", "ent", "len", "pat", "adj", "yule", "dist", "func"}, "diversity metric")
      .nonempty();
  r.field("metric_weights", o.metric_weights, "weights of the metrics (empty = equal)").ge(0);
  r.field("yule_norm", o.yule_norm, "how Yule's K becomes a higher-is-better score").one_of({"inverse_100", "inverse"}, "yule_norm");
  r.field("dist_n", o.dist_n, "n-gram orders averaged in distinct-n").ge(1);
  if (!o.metric_weights.empty() && o.metric_weights.size() != o.metrics.size())
    r.error("metric_weights", fmt::format("expected {} weights (one per metric), got {}", o.metrics.size(),
                                          o.metric_weights.size()));
}

}  // namespace keel::rewards
