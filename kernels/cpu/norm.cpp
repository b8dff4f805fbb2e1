// CPU batch norm (training statistics, evaluation, backward; ReLU fused). OpenMP over rows; the
// statistics accumulate in double per thread and are combined in thread order, so no result depends on
// the number of threads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/backend.h"
#include "kernels/convert_math.h"
#include "kernels/cpu/parallel.h"
#include "kernels/nn_math.h"
#include "kernels/tensor_ops.h"
#include "kernels/type_switch.h"

namespace livernet::kernels::cpu {

namespace {

// Channel sums over the rows of a [M, C] view, accumulated in double per thread and combined in thread
// order. fn(row_index, c, acc) adds row `row_index` into acc[c] (acc has `width` doubles per channel).
template <typename RowFn>
std::vector<double> channel_sums(std::int64_t m, std::int64_t c, int width, RowFn&& fn) {
  const int threads = (m * c <= kParallelGrain || omp_in_parallel()) ? 1 : omp_get_max_threads();
  std::vector<double> partial(static_cast<std::size_t>(threads) * c * width, 0.0);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    double* acc = partial.data() + static_cast<std::size_t>(t) * c * width;
    const std::int64_t r0 = m * t / nt, r1 = m * (t + 1) / nt;
    for (std::int64_t r = r0; r < r1; ++r) fn(r, acc);
  }
  std::vector<double> total(static_cast<std::size_t>(c) * width, 0.0);
  for (int t = 0; t < threads; ++t)
    for (std::size_t i = 0; i < total.size(); ++i) total[i] += partial[static_cast<std::size_t>(t) * c * width + i];
  return total;
}

float gamma_at(const float* g, std::int64_t c) { return g ? g[c] : 1.f; }

// For f32 tensors: W per-channel sums over the rows of a [M, C] view. Rows are added in float within
// aligned blocks of kBlock rows (vectorised across the channels), the blocks in double per thread, the
// threads in order. fn(r, blk) adds row r into blk[w * C + c].
constexpr std::int64_t kSumBlock = 32;
template <int W, typename RowFn>
std::vector<double> channel_sums_f32(std::int64_t m, std::int64_t c, RowFn&& fn) {
  const std::int64_t blocks = (m + kSumBlock - 1) / kSumBlock;
  const int threads = (m * c <= kParallelGrain || omp_in_parallel()) ? 1 : static_cast<int>(std::min<std::int64_t>(omp_get_max_threads(), blocks));
  std::vector<double> partial(static_cast<std::size_t>(threads) * c * W, 0.0);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    double* acc = partial.data() + static_cast<std::size_t>(t) * c * W;
    std::vector<float> blk(static_cast<std::size_t>(c) * W);
    for (std::int64_t b = blocks * t / nt; b < blocks * (t + 1) / nt; ++b) {
      std::fill(blk.begin(), blk.end(), 0.f);
      for (std::int64_t r = b * kSumBlock; r < std::min(m, (b + 1) * kSumBlock); ++r) fn(r, blk.data());
      for (std::size_t i = 0; i < blk.size(); ++i) acc[i] += blk[i];
    }
  }
  std::vector<double> total(static_cast<std::size_t>(c) * W, 0.0);
  for (int t = 0; t < threads; ++t)
    for (std::size_t i = 0; i < total.size(); ++i) total[i] += partial[static_cast<std::size_t>(t) * c * W + i];
  return total;
}

// y = bn(x) (+ ReLU) for f32, the ReLU fixed at compile time and gamma resolved per channel, so it vectorises.
template <bool RELU>
void bn_apply_f32(const float* xp, float* yp, const float* mean, const float* invstd, const float* g, const float* b,
                  std::int64_t M, std::int64_t C) {
  std::vector<float> gam(static_cast<std::size_t>(C));
  for (std::int64_t c = 0; c < C; ++c) gam[c] = gamma_at(g, c);
  parallel_for(M, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const float* xr = xp + r * C;
      float* yr = yp + r * C;
      for (std::int64_t c = 0; c < C; ++c) yr[c] = bn_apply(xr[c], mean[c], invstd[c], gam[c], b[c], RELU);
    }
  }, std::max<std::int64_t>(1, kParallelGrain / C));
}

// y = bn(x) (+ ReLU) over the rows of [M, C], in train and eval mode: the vectorised f32 path, else per element.
template <typename T>
void bn_apply_rows(const T* xp, T* yp, const float* mean, const float* invstd, const float* g, const float* b,
                   std::int64_t M, std::int64_t C, bool relu) {
  if constexpr (std::is_same_v<T, float>) {
    (relu ? bn_apply_f32<true> : bn_apply_f32<false>)(xp, yp, mean, invstd, g, b, M, C);
  } else {
    parallel_for(M, [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r)
        for (std::int64_t c = 0; c < C; ++c)
          yp[r * C + c] = from_float<T>(bn_apply(to_float(xp[r * C + c]), mean[c], invstd[c], gamma_at(g, c), b[c], relu));
    }, std::max<std::int64_t>(1, kParallelGrain / C));
  }
}

// f32 batch-norm backward, RELU and TRAIN fixed at compile time so the loops vectorise.
template <bool RELU, bool TRAIN>
void batch_norm_backward_f32(const float* gp, const float* xp, const float* yp, const float* mean, const float* invstd,
                             const float* g, std::int64_t M, std::int64_t C, float* dxp, float* dg, float* db) {
  const std::vector<double> sums = channel_sums_f32<2>(M, C, [&](std::int64_t r, float* blk) {
    const float* gr = gp + r * C;
    const float* xr = xp + r * C;
    const float* yr = RELU ? yp + r * C : nullptr;
    float* s_dy = blk;
    float* s_dyx = blk + C;
    for (std::int64_t c = 0; c < C; ++c) {
      const float d = RELU ? relu_backward_f(yr[c], gr[c]) : gr[c];
      s_dy[c] += d;
      s_dyx[c] += d * ((xr[c] - mean[c]) * invstd[c]);
    }
  });
  std::vector<float> gam(static_cast<std::size_t>(C));
  for (std::int64_t c = 0; c < C; ++c) {
    db[c] = static_cast<float>(sums[c]);
    dg[c] = static_cast<float>(sums[C + c]);
    gam[c] = gamma_at(g, c);
  }
  const float inv_m = 1.f / static_cast<float>(M);
  parallel_for(M, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const float* gr = gp + r * C;
      const float* xr = xp + r * C;
      const float* yr = RELU ? yp + r * C : nullptr;
      float* dr = dxp + r * C;
      for (std::int64_t c = 0; c < C; ++c) {
        const float d = RELU ? relu_backward_f(yr[c], gr[c]) : gr[c];
        dr[c] = TRAIN ? bn_backward_train(d, xr[c], mean[c], invstd[c], gam[c], db[c], dg[c], inv_m)
                      : d * gam[c] * invstd[c];
      }
    }
  }, std::max<std::int64_t>(1, kParallelGrain / C));
}

}  // namespace

void batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                      Tensor& running_var, float momentum, float eps, bool relu, Tensor& y, Tensor& save_mean,
                      Tensor& save_invstd) {
  const std::int64_t C = x.size(-1), M = x.numel() / C;
  float* mean = save_mean.data<float>();
  float* invstd = save_invstd.data<float>();
  const float* g = gamma.defined() ? gamma.data<float>() : nullptr;
  const float* b = beta.data<float>();
  LN_SWITCH_FLOAT(x.dtype(), "batch_norm", T, {
    const T* xp = x.data<T>();
    // Two passes: the mean, then the centred sum of squares (no cancellation); f32 rows are summed in
    // float blocks of 32 rows, everything else in double.
    std::vector<double> sum, sq, mu(static_cast<std::size_t>(C));
    if constexpr (std::is_same_v<T, float>) {
      sum = channel_sums_f32<1>(M, C, [&](std::int64_t r, float* blk) {
        const T* row = xp + r * C;
        for (std::int64_t c = 0; c < C; ++c) blk[c] += to_float(row[c]);
      });
    } else {
      sum = channel_sums(M, C, 1, [&](std::int64_t r, double* acc) {
        const T* row = xp + r * C;
        for (std::int64_t c = 0; c < C; ++c) acc[c] += to_double(row[c]);
      });
    }
    for (std::int64_t c = 0; c < C; ++c) mu[c] = sum[c] / static_cast<double>(M);
    if constexpr (std::is_same_v<T, float>) {
      std::vector<float> muf(mu.begin(), mu.end());
      sq = channel_sums_f32<1>(M, C, [&](std::int64_t r, float* blk) {
        const T* row = xp + r * C;
        for (std::int64_t c = 0; c < C; ++c) {
          const float d = to_float(row[c]) - muf[c];
          blk[c] += d * d;
        }
      });
    } else {
      sq = channel_sums(M, C, 1, [&](std::int64_t r, double* acc) {
        const T* row = xp + r * C;
        for (std::int64_t c = 0; c < C; ++c) {
          const double d = to_double(row[c]) - mu[c];
          acc[c] += d * d;
        }
      });
    }
    for (std::int64_t c = 0; c < C; ++c) {
      const double var = sq[c] / static_cast<double>(M);
      mean[c] = static_cast<float>(mu[c]);
      invstd[c] = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
      if (running_mean.defined()) {
        float* rm = running_mean.data<float>();
        float* rv = running_var.data<float>();
        const double unbiased = M > 1 ? var * static_cast<double>(M) / static_cast<double>(M - 1) : var;
        rm[c] = static_cast<float>((1.0 - momentum) * rm[c] + momentum * mu[c]);
        rv[c] = static_cast<float>((1.0 - momentum) * rv[c] + momentum * unbiased);
      }
    }
    T* yp = y.data<T>();
    bn_apply_rows(xp, yp, mean, invstd, g, b, M, C, relu);
  });
}

void batch_norm_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                     const Tensor& running_var, float eps, bool relu, Tensor& y, Tensor& save_mean,
                     Tensor& save_invstd) {
  const std::int64_t C = x.size(-1), M = x.numel() / C;
  float* mean = save_mean.data<float>();
  float* invstd = save_invstd.data<float>();
  const float* rm = running_mean.data<float>();
  const float* rv = running_var.data<float>();
  for (std::int64_t c = 0; c < C; ++c) {
    mean[c] = rm[c];
    invstd[c] = 1.f / std::sqrt(rv[c] + eps);
  }
  const float* g = gamma.defined() ? gamma.data<float>() : nullptr;
  const float* b = beta.data<float>();
  LN_SWITCH_FLOAT(x.dtype(), "batch_norm", T, {
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    bn_apply_rows(xp, yp, mean, invstd, g, b, M, C, relu);
  });
}

void batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& y, const Tensor& gamma,
                         const Tensor& save_mean, const Tensor& save_invstd, bool train, bool relu, Tensor& dx,
                         Tensor& dgamma, Tensor& dbeta) {
  const std::int64_t C = x.size(-1), M = x.numel() / C;
  const float* mean = save_mean.data<float>();
  const float* invstd = save_invstd.data<float>();
  const float* g = gamma.defined() ? gamma.data<float>() : nullptr;
  float* dg = dgamma.data<float>();
  float* db = dbeta.data<float>();
  if (x.dtype() == DType::f32) {
    const float* yp = relu ? y.data<float>() : nullptr;
    float* dxp = dx.data<float>();
    if (relu && train) batch_norm_backward_f32<true, true>(dy.data<float>(), x.data<float>(), yp, mean, invstd, g, M, C, dxp, dg, db);
    else if (relu) batch_norm_backward_f32<true, false>(dy.data<float>(), x.data<float>(), yp, mean, invstd, g, M, C, dxp, dg, db);
    else if (train) batch_norm_backward_f32<false, true>(dy.data<float>(), x.data<float>(), yp, mean, invstd, g, M, C, dxp, dg, db);
    else batch_norm_backward_f32<false, false>(dy.data<float>(), x.data<float>(), yp, mean, invstd, g, M, C, dxp, dg, db);
    return;
  }
  LN_SWITCH_FLOAT(x.dtype(), "batch_norm_backward", T, {
    const T* xp = x.data<T>();
    const T* gp = dy.data<T>();
    const T* yp = relu ? y.data<T>() : nullptr;
    auto grad_at = [&](std::int64_t i) {
      const float d = to_float(gp[i]);
      return relu ? relu_backward_f(to_float(yp[i]), d) : d;
    };
    const std::vector<double> sums = channel_sums(M, C, 2, [&](std::int64_t r, double* acc) {
      for (std::int64_t c = 0; c < C; ++c) {
        const std::int64_t i = r * C + c;
        const double d = grad_at(i);
        acc[2 * c] += d;
        acc[2 * c + 1] += d * (static_cast<double>(to_float(xp[i])) - mean[c]) * invstd[c];
      }
    });
    for (std::int64_t c = 0; c < C; ++c) {
      db[c] = static_cast<float>(sums[2 * c]);
      dg[c] = static_cast<float>(sums[2 * c + 1]);
    }
    T* dxp = dx.data<T>();
    const float inv_m = 1.f / static_cast<float>(M);
    parallel_for(M, [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r)
        for (std::int64_t c = 0; c < C; ++c) {
          const std::int64_t i = r * C + c;
          const float d = grad_at(i);
          const float v = train ? bn_backward_train(d, to_float(xp[i]), mean[c], invstd[c], gamma_at(g, c), db[c], dg[c], inv_m)
                                : d * gamma_at(g, c) * invstd[c];
          dxp[i] = from_float<T>(v);
        }
    }, std::max<std::int64_t>(1, kParallelGrain / C));
  });
}

}  // namespace livernet::kernels::cpu
