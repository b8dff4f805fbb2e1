// NCCL collectives for DataParallel (dist/nccl.h), compiled when CMake found CUDA and NCCL
// (LIVERNET_WITH_NCCL); otherwise make_nccl says there is none.
#include "dist/nccl.h"

#include "core/error.h"

#ifdef LIVERNET_WITH_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>

#include "core/cuda/cuda_check.h"
#include "core/cuda/cuda_context.h"
#endif

namespace livernet::dist {

#ifdef LIVERNET_WITH_NCCL
namespace {

void check_nccl(ncclResult_t r, const char* what) {
  if (r == ncclSuccess) return;
  LN_FAIL("NCCL ", what, " failed: ", ncclGetErrorString(r),
          r == ncclSystemError || r == ncclRemoteError ? " (a process of the job may have ended: see its log)" : "");
}

class Nccl final : public DeviceCollective {
 public:
  Nccl(Comm& comm, int device) : device_(device) {
    cuda::DeviceGuard guard(device_);
    ncclUniqueId id;
    std::memset(&id, 0, sizeof id);
    if (comm.rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    const std::string bytes =
        comm.broadcast(std::string(reinterpret_cast<const char*>(&id), sizeof id), 0);  // over MPI, once
    std::memcpy(&id, bytes.data(), sizeof id);
    check_nccl(ncclCommInitRank(&comm_, comm.size(), id, comm.rank()), "ncclCommInitRank");
    LN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    LN_CUDA_CHECK(cudaEventCreateWithFlags(&compute_done_, cudaEventDisableTiming));
    LN_CUDA_CHECK(cudaEventCreateWithFlags(&comm_done_, cudaEventDisableTiming));
    int v = 0;
    ncclGetVersion(&v);
    version_ = str_cat("NCCL ", v / 10000, ".", v / 100 % 100, ".", v % 100);
  }
  ~Nccl() override {
    cuda::DeviceGuard guard(device_);
    cudaStreamSynchronize(stream_);
    ncclCommDestroy(comm_);
    cudaEventDestroy(compute_done_);
    cudaEventDestroy(comm_done_);
    cudaStreamDestroy(stream_);
  }
  void all_reduce_sum(float* data, std::size_t n) override {
    after_compute();
    check_nccl(ncclAllReduce(data, data, n, ncclFloat, ncclSum, comm_, stream_), "ncclAllReduce");
  }
  void broadcast(void* data, std::size_t bytes, int root) override {
    after_compute();
    check_nccl(ncclBroadcast(data, data, bytes, ncclUint8, root, comm_, stream_), "ncclBroadcast");
  }
  void join() override {
    cuda::DeviceGuard guard(device_);
    LN_CUDA_CHECK(cudaEventRecord(comm_done_, stream_));
    LN_CUDA_CHECK(cudaStreamWaitEvent(cuda::current_stream(device_), comm_done_, 0));
  }
  std::string describe() const override { return version_; }

 private:
  // The collective stream waits for what the compute stream has queued (the gradients it copied in).
  void after_compute() {
    cuda::DeviceGuard guard(device_);
    LN_CUDA_CHECK(cudaEventRecord(compute_done_, cuda::current_stream(device_)));
    LN_CUDA_CHECK(cudaStreamWaitEvent(stream_, compute_done_, 0));
  }
  int device_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t compute_done_ = nullptr, comm_done_ = nullptr;
  std::string version_;
};

}  // namespace

std::unique_ptr<DeviceCollective> make_nccl(Comm& comm, int device) { return std::make_unique<Nccl>(comm, device); }

std::string nccl_library() {
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "NCCL (its library did not say its version)";
  return str_cat("NCCL ", v / 10000, ".", v / 100 % 100, ".", v % 100);
}

bool nccl_built() { return true; }

#else

std::unique_ptr<DeviceCollective> make_nccl(Comm&, int) { return nullptr; }
std::string nccl_library() {
  return "not built (no nccl.h and libnccl at configure time: CUDA toolkit's or NCCL_ROOT; see docs/distributed.md)";
}
bool nccl_built() { return false; }

#endif

}  // namespace livernet::dist
