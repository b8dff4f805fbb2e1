#include "core/graph.h"

#include "core/error.h"

#if defined(LIVERNET_WITH_CUDA)
#include "core/cuda/cuda_context.h"
#endif

namespace livernet {

#if defined(LIVERNET_WITH_CUDA)
namespace {
class CudaDeviceGraph final : public DeviceGraph {
 public:
  explicit CudaDeviceGraph(int device) : graph_(device) {}
  cuda::StepGraph& graph() { return graph_; }
  void replay() override { graph_.replay(); }

 private:
  cuda::StepGraph graph_;
};
}  // namespace
#endif

std::unique_ptr<DeviceGraph> DeviceGraph::capture(Device device, const std::function<void()>& fn) {
  LN_CHECK(device.is_cuda(), "graph capture needs a CUDA device, got ", device.str());
  require_device(device);
#if defined(LIVERNET_WITH_CUDA)
  auto g = std::make_unique<CudaDeviceGraph>(device.index);
  g->graph().begin_capture();
  try {
    fn();
  } catch (...) {
    g->graph().abort_capture();
    throw;
  }
  g->graph().end_capture();
  return g;
#else
  (void)fn;
  LN_FAIL("unreachable: require_device accepted ", device.str());
#endif
}

}  // namespace livernet
