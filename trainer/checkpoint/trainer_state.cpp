#include "trainer/checkpoint/trainer_state.h"

#include <array>
#include <cstdint>
#include <string_view>

#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>

#include "base/error.h"
#include "base/fs.h"

namespace keel::checkpoint {

namespace {

namespace stdfs = std::filesystem;

constexpr std::array<std::string_view, 4> kCommonKeys = {"step", "opt_step", "data_cursor", "skipped_steps"};

bool common_key(std::string_view key) {
  for (const auto k : kCommonKeys)
    if (k == key) return true;
  return false;
}

/// `obj`[key] as an int64; `where` names the object in errors ("data_cursor." for nested keys).
int64_t read_int(const nlohmann::json& obj, const std::string& key, const stdfs::path& file, std::string_view where) {
  const auto it = obj.find(key);
  if (it == obj.end())
    fail("{}: missing key '{}{}' (not a keel checkpoint's trainer state, or a truncated one)", file.string(), where,
         key);
  if (!it->is_number_integer())
    fail("{}: key '{}{}' must be an integer, got {}", file.string(), where, key, it->dump());
  // Every counter counts up from 0: a negative one (or one past int64, which get<int64_t> would
  // wrap to a negative) would resume the loop before its start.
  if (it->is_number_unsigned() ? it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX) : it->get<int64_t>() < 0)
    fail("{}: key '{}{}' must be an integer >= 0 (a counter), got {} (a corrupt or hand-edited trainer state)",
         file.string(), where, key, it->dump());
  return it->get<int64_t>();
}

}  // namespace

void write_trainer_state(const stdfs::path& staging_dir, const TrainerState& state) {
  const auto file = staging_dir / kTrainerStateFile;
  if (!state.extras.is_object() && !state.extras.is_null())
    fail("{}: trainer-state extras must be a JSON object, got {}", file.string(), state.extras.type_name());
  nlohmann::json st = nlohmann::json::object();
  st["step"] = state.step;
  st["opt_step"] = state.opt_step;
  st["data_cursor"] = {{"epoch", state.data_cursor.epoch}, {"position", state.data_cursor.position}};
  st["skipped_steps"] = state.skipped_steps;
  if (state.extras.is_object()) {
    for (const auto& [k, v] : state.extras.items()) {
      if (common_key(k)) fail("{}: trainer-state extra '{}' would overwrite the common key of that name", file.string(), k);
      st[k] = v;
    }
  }
  // nlohmann::json objects keep their keys sorted, so the layout is the same whatever the order above.
  fs::write_file_atomic(file, st.dump(2) + "\n");
}

TrainerState read_trainer_state(const stdfs::path& dir, const std::vector<std::string>& required_extras) {
  const auto file = dir / kTrainerStateFile;
  const auto text = fs::read_file(file, "trainer state");
  nlohmann::json st;
  try {
    st = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: not valid JSON: {}", file.string(), e.what());
  }
  if (!st.is_object()) fail("{}: expected a JSON object, got {}", file.string(), st.type_name());
  TrainerState out;
  out.step = read_int(st, "step", file, "");
  out.opt_step = read_int(st, "opt_step", file, "");
  const auto cur = st.find("data_cursor");
  if (cur == st.end()) fail("{}: missing key 'data_cursor' (not a keel checkpoint's trainer state, or a truncated one)", file.string());
  if (!cur->is_object()) fail("{}: key 'data_cursor' must be an object {{epoch, position}}, got {}", file.string(), cur->dump());
  out.data_cursor.epoch = read_int(*cur, "epoch", file, "data_cursor.");
  out.data_cursor.position = read_int(*cur, "position", file, "data_cursor.");
  out.skipped_steps = read_int(st, "skipped_steps", file, "");
  for (const auto& [k, v] : st.items())
    if (!common_key(k)) out.extras[k] = v;
  for (const auto& k : required_extras)
    if (!out.extras.contains(k))
      fail("{}: missing key '{}' (not a keel checkpoint's trainer state, or a truncated one)", file.string(), k);
  return out;
}

void save_optimizer(const torch::optim::Optimizer& opt, const stdfs::path& file) {
  torch::serialize::OutputArchive a;
  opt.save(a);
  a.save_to(file.string());
}

}  // namespace keel::checkpoint
