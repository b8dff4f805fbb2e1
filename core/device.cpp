#include "core/device.h"

#include <charconv>

#include "core/error.h"

#include <atomic>

#include "core/device_backend.h"

namespace livernet {

std::string Device::str() const { return is_cpu() ? std::string("cpu") : str_cat("cuda:", index); }

Device Device::parse(std::string_view s) {
  if (s == "cpu") return cpu();
  if (s == "cuda" || s == "gpu") return cuda(0);
  if (s.substr(0, 5) == "cuda:" && s.size() > 5) {
    int idx = -1;
    const auto* first = s.data() + 5;
    const auto* last = s.data() + s.size();
    const auto res = std::from_chars(first, last, idx);
    if (res.ec == std::errc() && res.ptr == last && idx >= 0) return cuda(idx);
  }
  LN_FAIL("unknown device '", s, "' (expected cpu, cuda or cuda:N)");
}

namespace {
// Constant-initialised, so a backend may register from a static initialiser of any library.
std::atomic<DeviceBackend*> g_backends[2] = {};

std::atomic<DeviceBackend*>& backend_slot(DeviceType type) {
  LN_CHECK(type == DeviceType::CUDA, "the CPU is core's own device and takes no backend");
  return g_backends[static_cast<int>(type)];
}
}  // namespace

DeviceBackend* register_device_backend(DeviceType type, DeviceBackend* backend) {
  return backend_slot(type).exchange(backend);
}

DeviceBackend* device_backend(DeviceType type) {
  if (type == DeviceType::CPU) return nullptr;
  return backend_slot(type).load();
}

int cuda_device_count() {
  DeviceBackend* b = device_backend(DeviceType::CUDA);
  std::string why;
  return b ? b->device_count(&why) : 0;
}

std::string cuda_unavailable_reason() {
  DeviceBackend* b = device_backend(DeviceType::CUDA);
  if (!b) return "this livernet was built without CUDA (LIVERNET_CUDA=OFF or no nvcc at build time)";
  std::string why;
  return b->device_count(&why) > 0 ? std::string() : why;
}

void require_device(Device d) {
  if (d.is_cpu()) return;
  const int n = cuda_device_count();
  if (n == 0) LN_FAIL("device ", d.str(), " was requested but ", cuda_unavailable_reason(), "; use --device cpu");
  LN_CHECK(d.index < n, "device ", d.str(), " was requested but only ", n, " CUDA device(s) exist");
}

Device resolve_device(const std::string& spec) {
  if (spec == "auto") return cuda_device_count() > 0 ? Device::cuda(0) : Device::cpu();
  const Device d = Device::parse(spec);
  require_device(d);
  return d;
}

}  // namespace livernet
