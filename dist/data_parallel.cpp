#include "dist/data_parallel.h"

#include <chrono>
#include <unordered_map>

#include "autograd/autograd.h"
#include "core/error.h"
#include "dist/nccl.h"
#include "kernels/elementwise.h"
#include "kernels/tensor_ops.h"
#include "layers/functional.h"

namespace livernet::dist {

namespace {
constexpr std::size_t kNone = static_cast<std::size_t>(-1);
}

// Parameters `params` (indices into params_) laid out one after the other in `flat` (f32, on the parameters'
// device; on the host for CUDA tensors without NCCL, `staged`).
struct DataParallel::Bucket {
  std::vector<std::size_t> params;
  std::vector<std::int64_t> offset;  // of each parameter in flat
  Tensor flat;
  std::size_t ready = 0;  // parameters copied in this pass
  std::vector<bool> filled;
  std::unique_ptr<Request> request;  // MPI's, while it runs
};

DataParallel::DataParallel(Comm& comm, std::vector<NamedTensor> params, DataParallelOptions options)
    : comm_(comm), params_(std::move(params)), options_(options) {
  LN_CHECK(!params_.empty(), "data-parallel training: the model has no parameters");
  device_ = params_.front().tensor->device();
  std::string mine;
  for (const NamedTensor& p : params_) {
    LN_CHECK(p.tensor->device() == device_, "data-parallel training: parameter ", p.name, " is on ",
             p.tensor->device().str(), ", the others on ", device_.str());
    LN_CHECK(p.tensor->dtype() == DType::f32, "data-parallel training: parameter ", p.name, " is ",
             dtype_name(p.tensor->dtype()), "; gradients are summed in f32");
    mine += p.name + p.tensor->shape().str() + ";";
    const std::size_t k = index_.size();
    index_[p.tensor->impl()] = k;
  }
  // Every process must hold the same model: the sums pair the processes' buckets value by value.
  const std::vector<std::string> all = comm_.all_gather(mine);
  for (int r = 0; r < comm_.size(); ++r)
    LN_CHECK(all[static_cast<std::size_t>(r)] == all[0], "data-parallel training: process ", r,
             " has another model than process 0 (its parameters' names or shapes differ)");
  if (device_.is_cuda() && (comm_.size() > 1 || options_.even_alone)) nccl_ = make_nccl(comm_, device_.index);
}

DataParallel::~DataParallel() = default;

bool DataParallel::alone() const { return comm_.size() == 1 && !options_.even_alone; }

std::string DataParallel::backend() const {
  if (alone()) return "one process";
  if (nccl_) return nccl_->describe();
  const std::string mpi = mpi_library();
  return device_.is_cuda() ? str_cat("MPI through host memory (", mpi, "; no NCCL)") : str_cat("MPI (", mpi, ")");
}

void DataParallel::broadcast(const std::vector<Tensor>& tensors, int root) {
  if (alone()) return;
  for (const Tensor& t : tensors) {
    if (!t.defined() || t.numel() == 0) continue;
    Tensor dst = t;
    if (nccl_ && t.device() == device_) {
      nccl_->broadcast(dst.data_ptr(), t.nbytes(), root);
      nccl_->join();
      continue;
    }
    const Tensor host = t.to(Device::cpu());
    const std::string bytes = comm_.broadcast(
        std::string(static_cast<const char*>(host.data_ptr()), static_cast<std::size_t>(host.nbytes())), root);
    detail::copy_bytes(dst.data_ptr(), dst.device(), bytes.data(), Device::cpu(), bytes.size());
  }
}

void DataParallel::all_reduce(Tensor& t) {
  LN_CHECK(t.dtype() == DType::f32, "data-parallel all-reduce of a ", dtype_name(t.dtype()), " tensor (f32 only)");
  if (alone() || t.numel() == 0) return;
  if (nccl_ && t.device() == device_) {
    nccl_->all_reduce_sum(t.data<float>(), static_cast<std::size_t>(t.numel()));
    nccl_->join();
    return;
  }
  if (t.device().is_cpu()) {
    comm_.all_reduce_sum(t.data<float>(), static_cast<std::size_t>(t.numel()));
    return;
  }
  Tensor host = t.to(Device::cpu());
  comm_.all_reduce_sum(host.data<float>(), static_cast<std::size_t>(host.numel()));
  detail::copy_bytes(t.data_ptr(), t.device(), host.data_ptr(), Device::cpu(), static_cast<std::size_t>(t.nbytes()));
}

// Buckets over the parameters that require grad, last parameter first (the backward pass finishes the layers
// nearest the loss first), each up to bucket_bytes (a larger parameter gets a bucket of its own). Rebuilt when
// the set changes (a backbone frozen for the first epochs).
void DataParallel::build_buckets() {
  std::string layout;
  for (const NamedTensor& p : params_) layout += p.tensor->requires_grad() ? '1' : '0';
  if (layout == layout_ && !buckets_.empty()) return;
  layout_ = layout;
  buckets_.clear();
  where_.assign(params_.size(), {kNone, kNone});
  const bool staged = device_.is_cuda() && !nccl_;
  std::int64_t used = 0;
  for (std::size_t i = params_.size(); i-- > 0;) {
    if (!params_[i].tensor->requires_grad()) continue;
    const std::int64_t n = params_[i].tensor->numel();
    if (buckets_.empty() || (used > 0 && static_cast<std::size_t>(used + n) * sizeof(float) > options_.bucket_bytes)) {
      buckets_.emplace_back();
      used = 0;
    }
    Bucket& b = buckets_.back();
    where_[i] = {buckets_.size() - 1, b.params.size()};
    b.params.push_back(i);
    b.offset.push_back(used);
    used += n;
  }
  for (Bucket& b : buckets_) {
    const std::int64_t n = b.offset.back() + params_[b.params.back()].tensor->numel();
    b.flat = Tensor::empty(Shape{n}, DType::f32, staged ? Device::cpu() : device_);
    b.filled.assign(b.params.size(), false);
  }
}

void DataParallel::leaf_ready(TensorImpl& leaf) {
  const auto t0 = std::chrono::steady_clock::now();
  struct Timed {
    std::chrono::steady_clock::time_point t0;
    double& total;
    ~Timed() { total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }
  } timed{t0, stats_.host_seconds};
  const auto found = index_.find(&leaf);
  const std::size_t i = found == index_.end() ? kNone : found->second;
  if (i == kNone || where_[i].first == kNone) return;  // not a parameter of this model, or frozen
  Bucket& b = buckets_[where_[i].first];
  const std::size_t j = where_[i].second;
  if (b.filled[j]) return;
  const bool staged = device_.is_cuda() && !nccl_;
  if (!staged) {  // staged buckets (host memory for CUDA gradients) are filled after the pass
    Tensor slot = b.flat.slice0(b.offset[j], b.offset[j] + params_[i].tensor->numel());
    kernels::cast(params_[i].tensor->grad().reshape({-1}), slot);
  }
  b.filled[j] = true;
  ++b.ready;
  // Start every bucket that is complete, in order (every process starts the same collectives in the same order).
  while (next_start_ < buckets_.size() && buckets_[next_start_].ready == buckets_[next_start_].params.size() &&
         options_.overlap && !staged) {
    start(next_start_++);
    ++stats_.started_in_pass;
  }
  for (Bucket& s : buckets_)  // let MPI move the running ones on
    if (s.request) s.request->test();
}

void DataParallel::start(std::size_t bi) {
  Bucket& b = buckets_[bi];
  if (nccl_) {
    nccl_->all_reduce_sum(b.flat.data<float>(), static_cast<std::size_t>(b.flat.numel()));
  } else if (b.flat.device().is_cpu()) {
    b.request = comm_.all_reduce_sum_start(b.flat.data<float>(), static_cast<std::size_t>(b.flat.numel()));
  }
  ++stats_.buckets;
  stats_.bytes += b.flat.nbytes();
}

void DataParallel::backward(const Tensor& loss) {
  if (alone()) {
    livernet::backward(loss);
    ++stats_.steps;
    return;
  }
  build_buckets();
  for (Bucket& b : buckets_) {
    b.ready = 0;
    b.filled.assign(b.params.size(), false);
  }
  next_start_ = 0;
  livernet::backward(loss, Tensor(), false, [this](TensorImpl& leaf) { leaf_ready(leaf); });
  finish();
  ++stats_.steps;
}

// After the pass: parameters the pass gave no gradient count as zeros (and keep no gradient), the buckets not
// started yet start (staged ones through the host), every sum is waited for (MPI) or ordered before the next work
// on the device (NCCL), and the sums go back into the gradients.
void DataParallel::finish() {
  const auto started = std::chrono::steady_clock::now();
  const bool staged = device_.is_cuda() && !nccl_;
  for (Bucket& b : buckets_) {
    for (std::size_t j = 0; j < b.params.size(); ++j) {
      Tensor& p = *params_[b.params[j]].tensor;
      const std::int64_t n = p.numel();
      Tensor slot = b.flat.slice0(b.offset[j], b.offset[j] + n);
      if (staged && p.grad().defined() && b.filled[j]) {
        const Tensor g = p.grad().reshape({-1});
        detail::copy_bytes(slot.data_ptr(), Device::cpu(), g.data_ptr(), g.device(),
                           static_cast<std::size_t>(g.nbytes()));
      } else if (!b.filled[j]) {
        kernels::fill(slot, 0.0);
      }
    }
  }
  while (next_start_ < buckets_.size()) start(next_start_++);
  const auto t0 = std::chrono::steady_clock::now();
  for (Bucket& b : buckets_)
    if (b.request) {
      b.request->wait();
      b.request.reset();
    }
  stats_.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (nccl_) nccl_->join();
  for (Bucket& b : buckets_)
    for (std::size_t j = 0; j < b.params.size(); ++j) {
      if (!b.filled[j]) continue;
      Tensor& p = *params_[b.params[j]].tensor;
      Tensor g = p.grad().reshape({-1});
      const Tensor slot = b.flat.slice0(b.offset[j], b.offset[j] + p.numel());
      if (staged)
        detail::copy_bytes(g.data_ptr(), g.device(), slot.data_ptr(), Device::cpu(),
                           static_cast<std::size_t>(g.nbytes()));
      else
        kernels::cast(slot, g);
    }
  stats_.host_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

// ---- shards of a batch -------------------------------------------------------------------------------

ShardScope::ShardScope(DataParallel& dp, std::int64_t row0, std::int64_t rows, std::int64_t total_rows,
                       bool sync_batch_norm)
    : shard_(std::make_unique<F::BatchShard>()) {
  shard_->row0 = row0;
  shard_->rows = rows;
  shard_->total_rows = total_rows;
  if (sync_batch_norm && !dp.alone()) shard_->all_reduce_sum = [&dp](Tensor& t) { dp.all_reduce(t); };
  previous_ = F::batch_shard();
  F::set_batch_shard(shard_.get());
}

ShardScope::~ShardScope() { F::set_batch_shard(previous_); }

}  // namespace livernet::dist
