// A prefetching batch loader: worker threads turn samples into model inputs (data/augment.h) ahead of the
// training loop, in a bounded queue, delivering batches in order. The time the loop waits for data is
// measured apart from compute. Each sample's input depends only on (seed, epoch, sample index), never on
// the number of threads.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "data/augment.h"
#include "data/dataset.h"

namespace livernet::data {

struct Batch {
  Tensor images;  // [B, size, size, 1] f32 on the target device
  Tensor labels;  // [B] i64 on the target device (the dataset checked their range when it was loaded)
  std::vector<std::int64_t> indices;  // dataset indices of the samples
  // For a CUDA target: the pinned host copy of the images and their upload, which the host does not wait
  // for; the next call of next() waits for it (long done by then) before the buffer is reused.
  Tensor host_images;
  PendingCopy upload;
};

class BatchLoader {
 public:
  // Iterates `order` (dataset indices, e.g. a shuffled or oversampled epoch) in batches of `batch`
  // (the last one may be smaller unless drop_last).
  BatchLoader(const Dataset& data, std::vector<std::int64_t> order, int batch, const InputConfig& input,
              const AugmentConfig& aug, std::uint64_t seed, std::uint64_t epoch, Device device, int threads = 1,
              int prefetch = 2, bool drop_last = false);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // The next batch; false at the end of the epoch.
  bool next(Batch& out);
  std::int64_t num_batches() const { return num_batches_; }
  // Seconds the caller spent waiting inside next().
  double wait_seconds() const { return wait_seconds_; }

 private:
  struct Host {
    Tensor images;  // pinned host buffer
    std::vector<std::int64_t> indices;
    std::string error;
  };
  void work();
  Host build(std::int64_t b) const;

  const Dataset& data_;
  std::vector<std::int64_t> order_;
  int batch_;
  InputConfig input_;
  AugmentConfig aug_;
  std::uint64_t seed_, epoch_;
  Device device_;
  int prefetch_;
  std::int64_t num_batches_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::int64_t, Host> ready_;
  std::int64_t next_to_build_ = 0, next_to_deliver_ = 0;
  bool stop_ = false;
  std::vector<std::thread> workers_;
  double wait_seconds_ = 0;
};

}  // namespace livernet::data
