// The machine side of the memory check (see resources.h).
#include "trainer/loop/resources.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>

#include "base/error.h"
#include "models/compat.h"
#include "models/model_config.h"
#include "rewards/models/reward_model.h"
#include "trainer/config/config.h"
#include "trainer/loop/contracts.h"
#include "trainer/loop/registries.h"

namespace keel::loop {

namespace {

/// A positive integer environment variable, or `fallback`.
int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v) return fallback;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return (*end == '\0' && n > 0) ? static_cast<int>(n) : fallback;
}

/// The first number in `file` after `key` ("MemAvailable:" in /proc/meminfo), or -1.
double number_after(const char* file, const std::string& key) {
  std::ifstream in(file);
  std::string word;
  while (in >> word)
    if (key.empty() || word == key) {
      double v = -1;
      return (in >> v) ? v : -1;
    }
  return -1;
}

/// Available RAM: MemAvailable, or what a cgroup v2 limit leaves when that is less (a container's
/// /proc/meminfo shows the host's).
double available_ram() {
  double avail = number_after("/proc/meminfo", "MemAvailable:") * 1024;
  if (avail <= 0) avail = static_cast<double>(::sysconf(_SC_AVPHYS_PAGES)) * static_cast<double>(::sysconf(_SC_PAGESIZE));
  const double limit = number_after("/sys/fs/cgroup/memory.max", "");  // "max" (no limit) reads as -1
  const double used = number_after("/sys/fs/cgroup/memory.current", "");
  if (limit > 0 && used >= 0) avail = std::min(avail, std::max(0.0, limit - used));
  return avail;
}

/// Total memory of CUDA device `ordinal` through the driver API (no context is created, so no
/// rank's memory lands on a device it will not use); 0 when the driver is not loaded. Looked up at
/// run time: keel builds against CPU-only LibTorch too, and the driver is what LibTorch loaded.
double cuda_device_memory(int ordinal) {
  void* lib = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (!lib) return 0;
  using InitFn = int (*)(unsigned);
  using DeviceGetFn = int (*)(int*, int);
  using TotalMemFn = int (*)(size_t*, int);
  const auto init = reinterpret_cast<InitFn>(::dlsym(lib, "cuInit"));
  const auto device_get = reinterpret_cast<DeviceGetFn>(::dlsym(lib, "cuDeviceGet"));
  const auto total_mem = reinterpret_cast<TotalMemFn>(::dlsym(lib, "cuDeviceTotalMem_v2"));
  int dev = 0;
  size_t bytes = 0;
  const bool ok = init && device_get && total_mem && init(0) == 0 && device_get(&dev, ordinal) == 0 &&
                  total_mem(&bytes, dev) == 0;
  ::dlclose(lib);
  return ok ? static_cast<double>(bytes) : 0;
}

/// Whether the run computes on a CUDA device (run.device cuda, or auto with one usable).
bool computes_on_cuda(const config::RunConfig& cfg) {
  return cfg.run.device == "cuda" || (cfg.run.device == "auto" && compat::cuda_available());
}

}  // namespace

config::ModelShape shape_of(const models::ModelConfig& m) {
  return config::ModelShape{m.vocab_size, m.hidden_size, m.num_hidden_layers, m.num_attention_heads,
                            m.num_key_value_heads, m.head_dim, m.intermediate_size, m.tie_word_embeddings};
}

std::optional<config::ModelShape> model_shape(const config::RunConfig& cfg) {
  // A random-init model's vocabulary is the run tokenizer's, trained later: the estimate's floor.
  if (cfg.model.path.empty()) return config::init_model_shape(cfg.model.init, 0);
  const std::string dir = rewards::resolve_model_dir(cfg.model.path);
  if (dir.empty()) return std::nullopt;
  try {
    return shape_of(models::load_model_config(dir, registries().models));
  } catch (const Error&) {
    return std::nullopt;  // the model loader names what is wrong with it when the run starts
  }
}

config::MemoryBudget memory_budget(const config::RunConfig& cfg, bool cuda) {
  config::MemoryBudget b;
  if (cuda) {
    const int count = std::max(1, compat::cuda_device_count());
    const int device = env_int("LOCAL_RANK", 0) % count;
    b.bytes = cuda_device_memory(device);
    b.what = fmt::format("memory of CUDA device {}", device);
  } else {
    b.bytes = available_ram();
    b.ranks = env_int("LOCAL_WORLD_SIZE", cfg.derived.world_size);
    b.what = "RAM available on this machine";
  }
  return b;
}

std::string memory_summary(const config::RunConfig& cfg) {
  const bool cuda = computes_on_cuda(cfg);
  const auto estimate = config::estimate_memory(cfg, model_shape(cfg), uses_reference(cfg), cuda);
  const auto budget = memory_budget(cfg, cuda);
  std::string s = fmt::format("an estimated {} per rank (at least", config::format_bytes(estimate.total()));
  if (estimate.parameters == 0) s += "; the model's size is unknown until model.path has a config.json";
  s += ")";
  if (budget.bytes > 0) s += fmt::format(" of the {} {}", config::format_bytes(budget.bytes), budget.what);
  if (budget.ranks > 1) s += fmt::format(" for {} ranks", budget.ranks);
  return s;
}

void report_resources(const config::RunConfig& cfg, const config::Node& root, config::Diagnostics& diag) {
  if (cfg.run.skip_memory_check) return;
  const bool cuda = computes_on_cuda(cfg);
  const auto estimate = config::estimate_memory(cfg, model_shape(cfg), uses_reference(cfg), cuda);
  config::check_memory(cfg, estimate, memory_budget(cfg, cuda), root, diag);
}

}  // namespace keel::loop
