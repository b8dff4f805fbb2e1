// Data-parallel training of one model over the processes of a job (docs/distributed.md): every process holds
// the whole model and takes a share of every batch; after the backward pass each parameter's gradient is the
// sum over the processes of theirs, so every process takes the same optimizer step.
//
// The gradients travel in flat buckets of about `bucket_bytes`, filled in the order the backward pass finishes
// the parameters (the reverse of the forward order, as PyTorch's DistributedDataParallel does), and each
// bucket's all-reduce starts as soon as its last gradient is there, while the pass goes on with the layers
// below. Backends:
//   CUDA tensors, livernet built with NCCL: NCCL on a stream of its own, ordered after the gradients with CUDA
//     events; no host synchronisation.
//   CPU tensors: MPI's non-blocking all-reduce (MPI_Iallreduce), moved on between the layers' backward steps.
//   CUDA tensors without NCCL: MPI through host memory, after the pass (correct, not overlapped).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "dist/comm.h"

namespace livernet::F {
struct BatchShard;
}

namespace livernet::dist {

struct DataParallelOptions {
  std::size_t bucket_bytes = std::size_t{25} << 20;  // PyTorch DDP's default bucket_cap_mb
  bool overlap = true;                               // false: every bucket after the pass (for measurements)
  bool even_alone = false;  // use the backend with one process too (its sums are then copies: for tests)
};

class DeviceCollective;  // dist/nccl.h

class DataParallel {
 public:
  // `params`: the model's parameters, on one device, in the order the model creates them (Module::
  // named_parameters). Every process must give the same list (names and shapes are compared).
  DataParallel(Comm& comm, std::vector<NamedTensor> params, DataParallelOptions options = {});
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  // Makes `tensors` (any dtype, any device) on every process equal to process `root`'s, in place.
  void broadcast(const std::vector<Tensor>& tensors, int root = 0);
  // backward(loss) on this process's share of the batch; when it returns, the gradient of every parameter that
  // requires grad is the sum over the processes of theirs (on the device: queued, not waited for). To average
  // over a global batch, scale each process's loss by its share first.
  void backward(const Tensor& loss);
  // The sum over the processes of `t` (f32, on the parameters' device or the host), in place.
  void all_reduce(Tensor& t);

  int rank() const { return comm_.rank(); }
  // One process and no backend to exercise: backward is plain backward, the sums are no-ops.
  bool alone() const;
  int size() const { return comm_.size(); }
  // "NCCL 2.28.9", "MPI (Open MPI v4.1.4)", "MPI through host memory (no NCCL)", "one process".
  std::string backend() const;

  struct Stats {
    std::int64_t steps = 0, buckets = 0, bytes = 0;  // bytes summed (per process)
    std::int64_t started_in_pass = 0;                // buckets whose all-reduce started before the pass ended
    double wait_seconds = 0;  // host time waiting for all-reduces after the pass (the part not hidden)
    double host_seconds = 0;  // host time in gradient reduction in all: copies in and out, starts, waits
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Bucket;
  void build_buckets();
  void leaf_ready(TensorImpl& leaf);
  void start(std::size_t b);
  void finish();

  Comm& comm_;
  std::vector<NamedTensor> params_;
  DataParallelOptions options_;
  Device device_;
  std::unique_ptr<DeviceCollective> nccl_;  // CUDA tensors with NCCL
  std::vector<Bucket> buckets_;
  std::vector<std::pair<std::size_t, std::size_t>> where_;    // per parameter: bucket, index in it (npos: none)
  std::unordered_map<const TensorImpl*, std::size_t> index_;  // parameter by its tensor
  std::string layout_;                                        // which parameters the buckets hold
  std::size_t next_start_ = 0;                                // buckets are started in order
  Stats stats_;
};

// One process's share of a data-parallel batch, for the thread's layers while alive (F::set_batch_shard): rows
// [row0, row0 + rows) of a batch of total_rows rows. Dropout draws each row's mask as one process would for the
// whole batch; with sync_batch_norm, training-mode batch norms take their statistics over the whole batch
// (synchronised batch norm: the step then equals one process's step on the whole batch). Keep it alive over the
// forward and the backward pass; `dp` must outlive both.
class ShardScope {
 public:
  ShardScope(DataParallel& dp, std::int64_t row0, std::int64_t rows, std::int64_t total_rows, bool sync_batch_norm);
  ~ShardScope();
  ShardScope(const ShardScope&) = delete;
  ShardScope& operator=(const ShardScope&) = delete;

 private:
  std::unique_ptr<F::BatchShard> shard_;
  const F::BatchShard* previous_ = nullptr;
};

}  // namespace livernet::dist
