#include "data/loader.h"

#include <chrono>

#include "core/allocator.h"

namespace livernet::data {

BatchLoader::BatchLoader(const Dataset& data, std::vector<std::int64_t> order, int batch, const InputConfig& input,
                         const AugmentConfig& aug, std::uint64_t seed, std::uint64_t epoch, Device device, int threads,
                         int prefetch, bool drop_last)
    : data_(data), order_(std::move(order)), batch_(batch), input_(input), aug_(aug), seed_(seed), epoch_(epoch),
      device_(device), prefetch_(std::max(1, prefetch)) {
  LN_CHECK(batch >= 1, "loader: batch size must be >= 1");
  for (std::int64_t i : order_) LN_CHECK(i >= 0 && i < data.size(), "loader: sample index ", i, " out of range");
  const std::int64_t n = static_cast<std::int64_t>(order_.size());
  num_batches_ = drop_last ? n / batch : (n + batch - 1) / batch;
  for (int t = 0; t < std::max(1, threads); ++t) workers_.emplace_back([this] { work(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& w : workers_) w.join();
}

BatchLoader::Host BatchLoader::build(std::int64_t b) const {
  Host h;
  const std::int64_t start = b * batch_;
  const std::int64_t end = std::min<std::int64_t>(start + batch_, static_cast<std::int64_t>(order_.size()));
  const std::int64_t s = input_.size;
  h.images = Tensor::from_blob(pinned_host_allocator().allocate(static_cast<std::size_t>((end - start) * s * s) * 4),
                               Shape{end - start, s, s, 1}, DType::f32, Device::cpu(),
                               [](void* p) { pinned_host_allocator().deallocate(p); });
  try {
    for (std::int64_t k = start; k < end; ++k) {
      const std::int64_t idx = order_[k];
      h.indices.push_back(idx);
      make_input(data_.images[idx], input_, aug_, seed_, epoch_, static_cast<std::uint64_t>(idx),
                 h.images.data<float>() + (k - start) * s * s);
    }
  } catch (const std::exception& e) {
    h.error = e.what();
  }
  return h;
}

void BatchLoader::work() {
  while (true) {
    std::int64_t b;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || (next_to_build_ < num_batches_ && next_to_build_ < next_to_deliver_ + prefetch_); });
      if (stop_ || next_to_build_ >= num_batches_) return;
      b = next_to_build_++;
    }
    Host h = build(b);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_.emplace(b, std::move(h));
    }
    cv_.notify_all();
  }
}

bool BatchLoader::next(Batch& out) {
  if (next_to_deliver_ >= num_batches_) return false;
  Host h;
  {
    const auto t0 = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return ready_.count(next_to_deliver_) > 0; });
    wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    h = std::move(ready_[next_to_deliver_]);
    ready_.erase(next_to_deliver_);
    ++next_to_deliver_;
  }
  cv_.notify_all();
  LN_CHECK(h.error.empty(), "loader: ", h.error);
  std::vector<std::int64_t> labels;
  for (std::int64_t i : h.indices) labels.push_back(data_.labels[i]);
  // The previous batch's upload has run (its step was queued after it) before its buffer goes back.
  out.upload.wait();
  out.host_images = Tensor();
  if (device_.is_cpu()) {
    out.images = h.images;
  } else {
    out.images = Tensor::empty(h.images.shape(), DType::f32, device_);
    out.upload = copy_from_pinned(out.images, h.images);
    out.host_images = h.images;
  }
  out.labels = Tensor::from_vector(labels, Shape{static_cast<std::int64_t>(labels.size())}, device_);
  out.indices = std::move(h.indices);
  return true;
}

}  // namespace livernet::data
