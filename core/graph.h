// Whole-step replay on a GPU: the device work of one call of a function is recorded once as a CUDA graph
// (cuda::StepGraph) and then replayed with a single launch, without the host doing the step's work again
// (no op dispatch, no autograd bookkeeping, no per-kernel launches). tools/bench --graph uses it.
//
// The contract, as with torch.cuda.CUDAGraph: tensors created during the capture live in memory private
// to the graph and are rewritten by every replay (read results from them after a replay); inputs must be
// tensors made before the capture, refreshed in place between replays; host-side values the step uses
// (learning rate, dropout seeds) are frozen at capture time. Run the step once before capturing, so that
// cuDNN algorithms are chosen and no search happens inside the graph.
#pragma once

#include <functional>
#include <memory>

#include "core/device.h"

namespace livernet {

class DeviceGraph {
 public:
  // Records the device work of fn() on `device` (a CUDA device; throws for the CPU or without CUDA).
  static std::unique_ptr<DeviceGraph> capture(Device device, const std::function<void()>& fn);
  virtual ~DeviceGraph() = default;
  // Queues the recorded work on the device's current stream (returns without waiting for it).
  virtual void replay() = 0;
};

}  // namespace livernet
