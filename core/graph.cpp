#include "core/graph.h"

#include "core/device_backend.h"
#include "core/error.h"

namespace livernet {

std::unique_ptr<DeviceGraph> DeviceGraph::capture(Device device, const std::function<void()>& fn) {
  LN_CHECK(device.is_cuda(), "graph capture needs a CUDA device, got ", device.str());
  require_device(device);  // so a backend exists and has this device
  return device_backend(device.type)->capture_graph(device.index, fn);
}

}  // namespace livernet
