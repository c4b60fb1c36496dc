#include "trainer/dist/batch_transport.h"

#include <torch/torch.h>

#include "base/error.h"
#include "trainer/dist/string_blob.h"

namespace keel::dist {

namespace {

std::vector<std::string> keys_of(const std::map<std::string, double>& m) {
  std::vector<std::string> k;
  for (const auto& [key, v] : m) k.push_back(key);
  return k;
}

}  // namespace

void send_batch(Communicator& comm, const BatchMessage& msg, int dst) {
  const auto& b = msg.batch;
  const auto& fields = rollout::tensor_fields();
  std::vector<int64_t> head{msg.step, b.policy_version, static_cast<int64_t>(msg.reward_metrics.size()),
                            static_cast<int64_t>(msg.role_metrics.size())};
  for (const auto& f : fields) head.push_back(static_cast<int64_t>((b.*f.member).defined()));
  comm.send(torch::tensor(head, torch::kLong), dst);
  std::string blob;
  put_strings(blob, b.prompt_texts);
  put_strings(blob, b.response_texts);
  put_strings(blob, b.finish_reasons);
  put_strings(blob, keys_of(msg.reward_metrics));
  put_strings(blob, keys_of(msg.role_metrics));
  put_strings(blob, msg.reward_state.empty() ? std::vector<std::string>{} : std::vector<std::string>{msg.reward_state});
  put_strings(blob, b.env_keys);
  comm.send(bytes_tensor(blob), dst);
  std::vector<double> vals;
  for (const auto* m : {&msg.reward_metrics, &msg.role_metrics})
    for (const auto& [k, v] : *m) vals.push_back(v);
  comm.send(torch::tensor(vals, torch::kDouble), dst);
  TORCH_CHECK(b.group_ids.defined(), "send_batch: the batch has no group ids");
  comm.send(b.group_ids.contiguous(), dst);
  for (const auto& f : fields)
    if ((b.*f.member).defined()) comm.send((b.*f.member).contiguous(), dst);
}

void send_stop_marker(Communicator& comm, int sig, int dst) {
  TORCH_CHECK(sig > 0, "send_stop_marker: signal ", sig);
  comm.send(torch::tensor({static_cast<int64_t>(sig)}, torch::kLong), dst);
}

BatchMessage recv_batch(Communicator& comm, int src) {
  const auto& fields = rollout::tensor_fields();
  const auto head = comm.recv(src);
  if (head.numel() == 1) {  // a stop marker (send_stop_marker)
    BatchMessage stop;
    stop.stop_signal = static_cast<int>(head.to(torch::kCPU).item<int64_t>());
    if (stop.stop_signal <= 0) fail("recv_batch: a stop marker with signal {} from rank {}", stop.stop_signal, src);
    return stop;
  }
  constexpr int64_t kHead = 4;  // step, version, reward / role metric counts; then the fields
  if (head.numel() != kHead + static_cast<int64_t>(fields.size()))
    fail("recv_batch: a header of {} entries from rank {}, expected {} (mismatched keel builds?)", head.numel(), src,
         kHead + static_cast<int64_t>(fields.size()));
  const auto h = head.accessor<int64_t, 1>();
  BatchMessage msg;
  msg.step = h[0];
  msg.batch.policy_version = h[1];
  const auto blob = tensor_bytes(comm.recv(src));
  StringBlobReader rd(blob, "recv_batch from rank " + std::to_string(src));
  msg.batch.prompt_texts = rd.strings();
  msg.batch.response_texts = rd.strings();
  msg.batch.finish_reasons = rd.strings();
  const auto reward_keys = rd.strings();
  const auto role_keys = rd.strings();
  const auto state = rd.strings();
  if (state.size() > 1) fail("recv_batch: {} reward states from rank {}, expected at most one", state.size(), src);
  if (!state.empty()) msg.reward_state = state.front();
  msg.batch.env_keys = rd.strings();
  if (static_cast<int64_t>(reward_keys.size()) != h[2] || static_cast<int64_t>(role_keys.size()) != h[3])
    fail("recv_batch: metric counts from rank {} disagree with its header", src);
  const auto vals = comm.recv(src);
  if (vals.numel() != h[2] + h[3]) fail("recv_batch: {} metric values from rank {}, expected {}", vals.numel(), src, h[2] + h[3]);
  const auto v = vals.accessor<double, 1>();
  int64_t i = 0;
  for (const auto& k : reward_keys) msg.reward_metrics[k] = v[i++];
  for (const auto& k : role_keys) msg.role_metrics[k] = v[i++];
  msg.batch.group_ids = comm.recv(src);
  for (size_t f = 0; f < fields.size(); ++f)
    if (h[kHead + static_cast<int64_t>(f)] != 0) msg.batch.*fields[f].member = comm.recv(src);
  return msg;
}

}  // namespace keel::dist
