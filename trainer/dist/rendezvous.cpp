// Environment -> RendezvousInfo, and the Slurm host-list / tasks-per-node parsers.
#include "trainer/dist/rendezvous.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "base/error.h"

namespace keel::dist {

namespace {

// Parses a whole string as a base-10 integer; nullopt on anything else (sign allowed).
std::optional<long long> to_int(const std::string& s) {
  if (s.empty()) return std::nullopt;
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == s.size()) return std::nullopt;
  long long v = 0;
  for (; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
    v = v * 10 + (s[i] - '0');
    if (v > (1LL << 40)) return std::nullopt;
  }
  return s[0] == '-' ? -v : v;
}

// An integer variable: `fallback` when unset (nullopt fallback = required).
int int_var(const EnvLookup& env, const std::string& name, std::optional<int> fallback, const char* source,
            long long lo, long long hi) {
  const auto raw = env(name);
  if (!raw) {
    if (fallback) return *fallback;
    fail("{} rendezvous: environment variable {} is not set", source, name);
  }
  const auto v = to_int(*raw);
  if (!v) fail("{} rendezvous: {}='{}' is not an integer", source, name, *raw);
  if (*v < lo || *v > hi) fail("{} rendezvous: {}={} is out of range [{}, {}]", source, name, *v, lo, hi);
  return static_cast<int>(*v);
}

void check_coordinates(const RendezvousInfo& info, const char* rank_var, const char* world_var) {
  if (info.rank >= info.world_size)
    fail("{} rendezvous: {}={} must be less than {}={}", info.source, rank_var, info.rank, world_var, info.world_size);
  if (info.local_rank >= info.local_world_size)
    fail("{} rendezvous: local rank {} must be less than the local world size {}", info.source, info.local_rank,
         info.local_world_size);
}

// Splits at commas that are not inside brackets.
std::vector<std::string> split_top_level(const std::string& s, const std::string& whole) {
  std::vector<std::string> parts;
  std::string cur;
  int depth = 0;
  for (char c : s) {
    if (c == '[') ++depth;
    if (c == ']') {
      if (--depth < 0) fail("slurm node list '{}': unmatched ']'", whole);
    }
    if (c == ',' && depth == 0) {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (depth != 0) fail("slurm node list '{}': unmatched '['", whole);
  parts.push_back(cur);
  return parts;
}

// "01-04,07" -> 01 02 03 04 07 (padding from each range's first bound).
std::vector<std::string> expand_ranges(const std::string& body, const std::string& whole) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= body.size()) {
    const size_t comma = body.find(',', start);
    const std::string item = body.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const size_t dash = item.find('-');
    const std::string a = item.substr(0, dash);
    const std::string b = dash == std::string::npos ? a : item.substr(dash + 1);
    const auto is_digits = [](const std::string& x) {
      return !x.empty() && std::all_of(x.begin(), x.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    };
    if (!is_digits(a) || !is_digits(b)) fail("slurm node list '{}': bad range '{}' (expected N or N-M)", whole, item);
    const long long lo = std::stoll(a), hi = std::stoll(b);
    if (hi < lo) fail("slurm node list '{}': range '{}' runs backwards", whole, item);
    if (hi - lo > 100000) fail("slurm node list '{}': range '{}' is too large", whole, item);
    for (long long v = lo; v <= hi; ++v) {
      std::string num = std::to_string(v);
      if (num.size() < a.size()) num.insert(0, a.size() - num.size(), '0');
      out.push_back(num);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// One host expression, possibly with several bracket groups: a product of the expansions.
std::vector<std::string> expand_host(const std::string& expr, const std::string& whole) {
  std::vector<std::string> names{""};
  size_t i = 0;
  while (i < expr.size()) {
    if (expr[i] == '[') {
      const size_t close = expr.find(']', i);
      if (close == std::string::npos) fail("slurm node list '{}': unmatched '['", whole);
      const auto nums = expand_ranges(expr.substr(i + 1, close - i - 1), whole);
      std::vector<std::string> next;
      next.reserve(names.size() * nums.size());
      for (const auto& n : names)
        for (const auto& x : nums) next.push_back(n + x);
      names = std::move(next);
      i = close + 1;
    } else {
      const size_t open = expr.find('[', i);
      const std::string lit = expr.substr(i, open == std::string::npos ? std::string::npos : open - i);
      for (auto& n : names) n += lit;
      i = open == std::string::npos ? expr.size() : open;
    }
  }
  return names;
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

std::vector<std::string> parse_slurm_nodelist(const std::string& list) {
  std::vector<std::string> out;
  for (const auto& part : split_top_level(list, list)) {
    if (part.empty()) fail("slurm node list '{}': empty host name", list);
    if (part.find(' ') != std::string::npos) fail("slurm node list '{}': spaces are not allowed", list);
    for (auto& h : expand_host(part, list)) out.push_back(std::move(h));
  }
  return out;
}

std::vector<int> parse_slurm_tasks_per_node(const std::string& s) {
  std::vector<int> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    const std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const size_t paren = item.find("(x");
    const auto count = to_int(item.substr(0, paren));
    long long repeat = 1;
    if (paren != std::string::npos) {
      if (item.back() != ')') fail("SLURM_TASKS_PER_NODE='{}': bad item '{}'", s, item);
      const auto r = to_int(item.substr(paren + 2, item.size() - paren - 3));
      if (!r || *r < 1) fail("SLURM_TASKS_PER_NODE='{}': bad repeat in '{}'", s, item);
      repeat = *r;
    }
    if (!count || *count < 1) fail("SLURM_TASKS_PER_NODE='{}': bad item '{}'", s, item);
    for (long long k = 0; k < repeat; ++k) out.push_back(static_cast<int>(*count));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

RendezvousInfo read_rendezvous_env(const EnvLookup& env) {
  RendezvousInfo info;
  constexpr long long kMaxRanks = 1 << 20;
  if (env("RANK")) {
    info.source = "torchrun";
    info.rank = int_var(env, "RANK", std::nullopt, "torchrun", 0, kMaxRanks);
    info.world_size = int_var(env, "WORLD_SIZE", std::nullopt, "torchrun", 1, kMaxRanks);
    // torchrun always sets these; a hand-rolled environment may not: assume one node.
    info.local_rank = int_var(env, "LOCAL_RANK", info.rank, "torchrun", 0, kMaxRanks);
    info.local_world_size = int_var(env, "LOCAL_WORLD_SIZE", info.world_size, "torchrun", 1, kMaxRanks);
    info.node_rank = int_var(env, "GROUP_RANK", 0, "torchrun", 0, kMaxRanks);
    check_coordinates(info, "RANK", "WORLD_SIZE");
    const auto addr = env("MASTER_ADDR");
    if (!addr && info.world_size > 1)
      fail("torchrun rendezvous: MASTER_ADDR is not set (WORLD_SIZE={}); set it to rank 0's host", info.world_size);
    if (addr) info.master_addr = *addr;
    if (info.world_size > 1 || env("MASTER_PORT"))
      info.master_port = int_var(env, "MASTER_PORT", std::nullopt, "torchrun", 1, 65535);
    return info;
  }
  if (env("SLURM_PROCID")) {
    info.source = "slurm";
    info.rank = int_var(env, "SLURM_PROCID", std::nullopt, "slurm", 0, kMaxRanks);
    info.world_size = int_var(env, "SLURM_NTASKS", std::nullopt, "slurm", 1, kMaxRanks);
    info.local_rank = int_var(env, "SLURM_LOCALID", 0, "slurm", 0, kMaxRanks);
    info.node_rank = int_var(env, "SLURM_NODEID", 0, "slurm", 0, kMaxRanks);
    info.local_world_size = info.world_size;
    if (const auto tpn = env("SLURM_TASKS_PER_NODE")) {
      const auto per_node = parse_slurm_tasks_per_node(*tpn);
      if (info.node_rank >= static_cast<int>(per_node.size()))
        fail("slurm rendezvous: SLURM_NODEID={} but SLURM_TASKS_PER_NODE='{}' lists {} nodes", info.node_rank, *tpn,
             per_node.size());
      info.local_world_size = per_node[info.node_rank];
    }
    check_coordinates(info, "SLURM_PROCID", "SLURM_NTASKS");
    if (const auto addr = env("MASTER_ADDR")) {
      info.master_addr = *addr;
    } else {
      auto list = env("SLURM_JOB_NODELIST");
      if (!list) list = env("SLURM_NODELIST");
      if (!list) {
        if (info.world_size > 1)
          fail("slurm rendezvous: neither MASTER_ADDR nor SLURM_JOB_NODELIST / SLURM_NODELIST is set");
      } else {
        const auto hosts = parse_slurm_nodelist(*list);
        info.master_addr = hosts.front();
      }
    }
    if (env("MASTER_PORT")) {
      info.master_port = int_var(env, "MASTER_PORT", std::nullopt, "slurm", 1, 65535);
    } else if (env("SLURM_JOB_ID")) {
      // INTERPRETATION: Slurm names no port. Derive one from the job id (20000 + id % 10000) so
      // that two jobs sharing a first node do not fight over 29500; MASTER_PORT overrides.
      const int job = int_var(env, "SLURM_JOB_ID", std::nullopt, "slurm", 0, 2147483647LL);
      info.master_port = 20000 + job % 10000;
    }
    return info;
  }
  return info;  // single process
}

}  // namespace keel::dist
