#include "trainer/metrics/tensorboard_event.h"

#include <stdexcept>

#include "trainer/metrics/tensorboard_event.pb.h"  // generated into the build tree by protoc

namespace keel::metrics {

namespace {

std::string serialize(const tensorboard::Event& e) {
  std::string out;
  // Fails only for messages over 2 GiB or with missing required fields (proto3 has none).
  if (!e.SerializeToString(&out)) throw std::runtime_error("cannot serialize a TensorBoard event");
  return out;
}

}  // namespace

std::string tensorboard_file_version_event(double wall_time, const std::string& file_version) {
  tensorboard::Event e;
  e.set_wall_time(wall_time);
  e.set_file_version(file_version);
  return serialize(e);
}

std::string tensorboard_scalars_event(double wall_time, int64_t step, const Metrics& m) {
  tensorboard::Event e;
  e.set_wall_time(wall_time);
  e.set_step(step);
  auto* summary = e.mutable_summary();
  for (const auto& [key, value] : m) {
    auto* v = summary->add_value();
    v->set_tag(key);
    v->set_simple_value(static_cast<float>(value));
  }
  return serialize(e);
}

}  // namespace keel::metrics
