// Collectives on device memory (inside dist: DataParallel's backend for CUDA tensors). Built with NCCL
// (found at configure time: the CUDA toolkit's or a wheel's nccl.h and libnccl), in dist/cuda/nccl.cpp.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "dist/comm.h"

namespace livernet::dist {

class DeviceCollective {
 public:
  virtual ~DeviceCollective() = default;
  // Queues the sum over the processes of n floats of device memory, in place, after the work queued so far on
  // the device's stream (livernet's current stream), on a stream of its own; it does not wait.
  virtual void all_reduce_sum(float* data, std::size_t n) = 0;
  // Queues `bytes` of device memory of rank `root` to every rank, like all_reduce_sum.
  virtual void broadcast(void* data, std::size_t bytes, int root) = 0;
  // Work queued on the device's stream from now on waits for every collective queued so far.
  virtual void join() = 0;
  virtual std::string describe() const = 0;
};

// NCCL over `comm`'s processes on CUDA device `device` (one per process; the unique id travels over `comm`).
// nullptr when livernet was built without NCCL.
std::unique_ptr<DeviceCollective> make_nccl(Comm& comm, int device);
// "NCCL 2.28.9", or why there is none.
std::string nccl_library();
bool nccl_built();

}  // namespace livernet::dist
