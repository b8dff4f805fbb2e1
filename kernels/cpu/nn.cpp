// CPU implementations of the NN ops other than convolution and GEMM (kernels/cpu/onednn.cpp):
// batch norm, pooling, copies, bias, dropout and losses. OpenMP over independent outputs; reductions
// accumulate in double; no operation depends on the number of threads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/backend.h"
#include "kernels/convert.h"
#include "kernels/cpu/parallel.h"
#include "kernels/nn_math.h"
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

// ---- pooling: loops over (n, oh) rows in parallel; channels innermost (contiguous in NHWC) -------------

namespace {
// One output pixel's C channels: the maximum over the in-bounds taps [hs, he) x [ws, we), row-major, keeping
// the first maximum; a NaN wins and the first NaN stays. Branch-free per channel so the loop vectorises.
template <typename T, bool kIndices>
void max_pool_pixel(const T* xp, std::int64_t W, std::int64_t C, std::int64_t hs, std::int64_t he, std::int64_t ws,
                    std::int64_t we, float* best, std::int32_t* arg, T* yp, std::int32_t* ip) {
  {
    const T* px = xp + (hs * W + ws) * C;
    const auto flat = static_cast<std::int32_t>(hs * W + ws);
    for (std::int64_t c = 0; c < C; ++c) {
      best[c] = to_float(px[c]);
      if constexpr (kIndices) arg[c] = flat;
    }
  }
  for (std::int64_t h = hs; h < he; ++h) {
    for (std::int64_t w = (h == hs ? ws + 1 : ws); w < we; ++w) {
      const T* px = xp + (h * W + w) * C;
      const auto flat = static_cast<std::int32_t>(h * W + w);
      for (std::int64_t c = 0; c < C; ++c) {
        const float v = to_float(px[c]), b = best[c];
        const bool take = (b == b) & ((v > b) | (v != v));
        best[c] = take ? v : b;
        if constexpr (kIndices) arg[c] = take ? flat : arg[c];
      }
    }
  }
  for (std::int64_t c = 0; c < C; ++c) {
    yp[c] = from_float<T>(best[c]);
    if constexpr (kIndices) ip[c] = arg[c];
  }
}
}  // namespace

void max_pool2d_forward(const Tensor& x, const Pool2dParams& p, Tensor& y, Tensor& indices) {
  const std::int64_t N = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const std::int64_t Ho = y.size(1), Wo = y.size(2);
  std::int32_t* idx = indices.defined() ? indices.data<std::int32_t>() : nullptr;
  LN_SWITCH_FLOAT(x.dtype(), "max_pool2d", T, {
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    parallel_for(N * Ho, [&](std::int64_t b, std::int64_t e) {
      std::vector<float> best(static_cast<std::size_t>(C));
      std::vector<std::int32_t> arg(static_cast<std::size_t>(C));
      for (std::int64_t row = b; row < e; ++row) {
        const std::int64_t n = row / Ho, oh = row % Ho;
        const std::int64_t h0 = oh * p.stride_h - p.pad_h;
        const std::int64_t hs = std::max<std::int64_t>(h0, 0), he = std::min<std::int64_t>(h0 + p.kernel_h, H);
        for (std::int64_t ow = 0; ow < Wo; ++ow) {
          const std::int64_t w0 = ow * p.stride_w - p.pad_w;
          const std::int64_t ws = std::max<std::int64_t>(w0, 0), we = std::min<std::int64_t>(w0 + p.kernel_w, W);
          const std::int64_t o = ((n * Ho + oh) * Wo + ow) * C;
          const T* xn = xp + n * H * W * C;
          if (hs >= he || ws >= we) {  // a window entirely in the padding: -inf, index -1
            for (std::int64_t c = 0; c < C; ++c) {
              yp[o + c] = from_float<T>(-std::numeric_limits<float>::infinity());
              if (idx) idx[o + c] = -1;
            }
          } else if (idx) {
            max_pool_pixel<T, true>(xn, W, C, hs, he, ws, we, best.data(), arg.data(), yp + o, idx + o);
          } else {
            max_pool_pixel<T, false>(xn, W, C, hs, he, ws, we, best.data(), arg.data(), yp + o, nullptr);
          }
        }
      }
    }, 1);
  });
}

namespace {
// Output windows [lo, hi] along one axis that contain input coordinate i.
inline void covering(std::int64_t i, int k, int s, int pad, std::int64_t out, std::int64_t& lo, std::int64_t& hi) {
  const std::int64_t ip = i + pad;
  lo = ip < k ? 0 : (ip - k) / s + 1;
  hi = std::min<std::int64_t>(ip / s, out - 1);
}
}  // namespace

void max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Pool2dParams& p, Tensor& dx) {
  const std::int64_t N = dx.size(0), H = dx.size(1), W = dx.size(2), C = dx.size(3);
  const std::int64_t Ho = dy.size(1), Wo = dy.size(2);
  const std::int32_t* idx = indices.data<std::int32_t>();
  LN_SWITCH_FLOAT(dx.dtype(), "max_pool2d_backward", T, {
    const T* gp = dy.data<T>();
    T* dp = dx.data<T>();
    parallel_for(N * H, [&](std::int64_t b, std::int64_t e) {
      std::vector<float> acc(static_cast<std::size_t>(C));
      for (std::int64_t row = b; row < e; ++row) {
        const std::int64_t n = row / H, h = row % H;
        std::int64_t oh0, oh1;
        covering(h, p.kernel_h, p.stride_h, p.pad_h, Ho, oh0, oh1);
        for (std::int64_t w = 0; w < W; ++w) {
          std::fill(acc.begin(), acc.end(), 0.f);
          std::int64_t ow0, ow1;
          covering(w, p.kernel_w, p.stride_w, p.pad_w, Wo, ow0, ow1);
          const auto flat = static_cast<std::int32_t>(h * W + w);
          for (std::int64_t oh = oh0; oh <= oh1; ++oh)
            for (std::int64_t ow = ow0; ow <= ow1; ++ow) {
              const std::int64_t o = ((n * Ho + oh) * Wo + ow) * C;
              for (std::int64_t c = 0; c < C; ++c)
                if (idx[o + c] == flat) acc[c] += to_float(gp[o + c]);
            }
          T* out = dp + ((n * H + h) * W + w) * C;
          for (std::int64_t c = 0; c < C; ++c) out[c] = from_float<T>(acc[c]);
        }
      }
    }, 1);
  });
}

namespace {
inline float avg_divisor(const Pool2dParams& p, std::int64_t oh, std::int64_t ow, std::int64_t H, std::int64_t W) {
  if (p.count_include_pad) return static_cast<float>(p.kernel_h * p.kernel_w);
  return static_cast<float>(pool_window_count(static_cast<int>(oh * p.stride_h - p.pad_h), static_cast<int>(ow * p.stride_w - p.pad_w),
                                              p.kernel_h, p.kernel_w, static_cast<int>(H), static_cast<int>(W)));
}
}  // namespace

void avg_pool2d_forward(const Tensor& x, const Pool2dParams& p, Tensor& y) {
  const std::int64_t N = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const std::int64_t Ho = y.size(1), Wo = y.size(2);
  LN_SWITCH_FLOAT(x.dtype(), "avg_pool2d", T, {
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    parallel_for(N * Ho, [&](std::int64_t b, std::int64_t e) {
      std::vector<float> acc(static_cast<std::size_t>(C));
      for (std::int64_t row = b; row < e; ++row) {
        const std::int64_t n = row / Ho, oh = row % Ho;
        for (std::int64_t ow = 0; ow < Wo; ++ow) {
          std::fill(acc.begin(), acc.end(), 0.f);
          const std::int64_t h0 = oh * p.stride_h - p.pad_h, w0 = ow * p.stride_w - p.pad_w;
          for (std::int64_t h = std::max<std::int64_t>(h0, 0); h < std::min<std::int64_t>(h0 + p.kernel_h, H); ++h)
            for (std::int64_t w = std::max<std::int64_t>(w0, 0); w < std::min<std::int64_t>(w0 + p.kernel_w, W); ++w) {
              const T* px = xp + ((n * H + h) * W + w) * C;
              for (std::int64_t c = 0; c < C; ++c) acc[c] += to_float(px[c]);
            }
          const float inv = 1.f / avg_divisor(p, oh, ow, H, W);
          T* out = yp + ((n * Ho + oh) * Wo + ow) * C;
          for (std::int64_t c = 0; c < C; ++c) out[c] = from_float<T>(acc[c] * inv);
        }
      }
    }, 1);
  });
}

void avg_pool2d_backward(const Tensor& dy, const Pool2dParams& p, Tensor& dx) {
  const std::int64_t N = dx.size(0), H = dx.size(1), W = dx.size(2), C = dx.size(3);
  const std::int64_t Ho = dy.size(1), Wo = dy.size(2);
  LN_SWITCH_FLOAT(dx.dtype(), "avg_pool2d_backward", T, {
    const T* gp = dy.data<T>();
    T* dp = dx.data<T>();
    parallel_for(N * H, [&](std::int64_t b, std::int64_t e) {
      std::vector<float> acc(static_cast<std::size_t>(C));
      for (std::int64_t row = b; row < e; ++row) {
        const std::int64_t n = row / H, h = row % H;
        std::int64_t oh0, oh1;
        covering(h, p.kernel_h, p.stride_h, p.pad_h, Ho, oh0, oh1);
        for (std::int64_t w = 0; w < W; ++w) {
          std::fill(acc.begin(), acc.end(), 0.f);
          std::int64_t ow0, ow1;
          covering(w, p.kernel_w, p.stride_w, p.pad_w, Wo, ow0, ow1);
          for (std::int64_t oh = oh0; oh <= oh1; ++oh)
            for (std::int64_t ow = ow0; ow <= ow1; ++ow) {
              const float inv = 1.f / avg_divisor(p, oh, ow, H, W);
              const T* g = gp + ((n * Ho + oh) * Wo + ow) * C;
              for (std::int64_t c = 0; c < C; ++c) acc[c] += to_float(g[c]) * inv;
            }
          T* out = dp + ((n * H + h) * W + w) * C;
          for (std::int64_t c = 0; c < C; ++c) out[c] = from_float<T>(acc[c]);
        }
      }
    }, 1);
  });
}

void global_avg_pool_backward(const Tensor& dy, Tensor& dx) {
  const std::int64_t N = dx.size(0), HW = dx.size(1) * dx.size(2), C = dx.size(3);
  const float inv = 1.f / static_cast<float>(HW);
  LN_SWITCH_FLOAT(dx.dtype(), "global_avg_pool_backward", T, {
    const T* gp = dy.data<T>();
    T* dp = dx.data<T>();
    parallel_for(N * HW, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t r = b; r < e; ++r) {
        const T* g = gp + (r / HW) * C;
        for (std::int64_t c = 0; c < C; ++c) dp[r * C + c] = from_float<T>(to_float(g[c]) * inv);
      }
    }, std::max<std::int64_t>(1, kParallelGrain / C));
  });
}

void copy_blocks(const Tensor& src, std::int64_t src_off, std::int64_t src_ld, std::int64_t src_bs, Tensor& dst,
                 std::int64_t dst_off, std::int64_t dst_ld, std::int64_t dst_bs, std::int64_t batch, std::int64_t rows,
                 std::int64_t cols) {
  const std::size_t es = src.element_size();
  const char* s = static_cast<const char*>(src.data_ptr());
  char* d = static_cast<char*>(dst.data_ptr());
  parallel_for(batch * rows, [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t br = b0; br < b1; ++br) {
      const std::int64_t bi = br / rows, r = br % rows;
      std::memcpy(d + (dst_off + bi * dst_bs + r * dst_ld) * es, s + (src_off + bi * src_bs + r * src_ld) * es,
                  static_cast<std::size_t>(cols) * es);
    }
  }, std::max<std::int64_t>(1, kParallelGrain / std::max<std::int64_t>(cols, 1)));
}

void bias_add(Tensor& y, const Tensor& bias) {
  const std::int64_t C = y.size(-1), M = y.numel() / C;
  const Tensor bf = bias.to(DType::f32);
  const float* bp = bf.data<float>();
  LN_SWITCH_FLOAT(y.dtype(), "bias_add", T, {
    T* yp = y.data<T>();
    parallel_for(M, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t r = b; r < e; ++r)
        for (std::int64_t c = 0; c < C; ++c) yp[r * C + c] = from_float<T>(to_float(yp[r * C + c]) + bp[c]);
    }, std::max<std::int64_t>(1, kParallelGrain / C));
  });
}

namespace {
template <UnaryOp OP, typename T>
void unary_backward_loop(const T* x, const T* y, const T* dy, T* dx, std::int64_t n) {
  parallel_for(n, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i)
      dx[i] = from_float<T>(unary_grad<OP>(to_float(x[i]), to_float(y[i]), to_float(dy[i])));
  });
}
}  // namespace

void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx) {
  const std::int64_t n = x.numel();
  LN_SWITCH_FLOAT(x.dtype(), "unary_backward", T, {
    const T* xp = x.data<T>();
    const T* yp = y.data<T>();
    const T* gp = dy.data<T>();
    T* dp = dx.data<T>();
    switch (op) {
      case UnaryOp::neg: unary_backward_loop<UnaryOp::neg>(xp, yp, gp, dp, n); break;
      case UnaryOp::abs: unary_backward_loop<UnaryOp::abs>(xp, yp, gp, dp, n); break;
      case UnaryOp::relu: unary_backward_loop<UnaryOp::relu>(xp, yp, gp, dp, n); break;
      case UnaryOp::exp: unary_backward_loop<UnaryOp::exp>(xp, yp, gp, dp, n); break;
      case UnaryOp::log: unary_backward_loop<UnaryOp::log>(xp, yp, gp, dp, n); break;
      case UnaryOp::sqrt: unary_backward_loop<UnaryOp::sqrt>(xp, yp, gp, dp, n); break;
      case UnaryOp::rsqrt: unary_backward_loop<UnaryOp::rsqrt>(xp, yp, gp, dp, n); break;
      case UnaryOp::sigmoid: unary_backward_loop<UnaryOp::sigmoid>(xp, yp, gp, dp, n); break;
      case UnaryOp::tanh: unary_backward_loop<UnaryOp::tanh>(xp, yp, gp, dp, n); break;
      case UnaryOp::square: unary_backward_loop<UnaryOp::square>(xp, yp, gp, dp, n); break;
      case UnaryOp::reciprocal: unary_backward_loop<UnaryOp::reciprocal>(xp, yp, gp, dp, n); break;
    }
  });
}

void scale_by(const Tensor& x, const Tensor& a, Tensor& y) {
  const float s = a.data<float>()[0];
  axpby(s, x, 0.f, y);
}

void broadcast_scalar(const Tensor& s, float scale, Tensor& out) {
  double v = 0;
  LN_SWITCH_FLOAT(s.dtype(), "broadcast_scalar", T, { v = to_double(s.data<T>()[0]); });
  fill(out, static_cast<double>(static_cast<float>(v) * scale));
}

void dropout(const Tensor& x, float p, std::uint64_t seed, std::uint64_t stream, Tensor& y) {
  const std::int64_t n = x.numel();
  const float scale = p < 1.f ? 1.f / (1.f - p) : 0.f;
  LN_SWITCH_FLOAT(x.dtype(), "dropout", T, {
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    parallel_for(n, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) {
        const bool keep = p <= 0.f || (p < 1.f && dropout_keep(seed, stream, static_cast<std::uint64_t>(i), p));
        yp[i] = from_float<T>(keep ? to_float(xp[i]) * (p <= 0.f ? 1.f : scale) : 0.f);
      }
    });
  });
}

// ---- losses ------------------------------------------------------------------------------------------

namespace {
std::int64_t label_at(const Tensor& labels, std::int64_t i) {
  return labels.dtype() == DType::i64 ? labels.data<std::int64_t>()[i] : labels.data<std::int32_t>()[i];
}

// Stable softmax of one row into out (f32); returns log(sum(exp(z - max))) and the max.
template <typename T>
void softmax_row(const T* z, std::int64_t K, float* out, float& row_max, float& log_sum) {
  float m = -std::numeric_limits<float>::infinity();
  for (std::int64_t k = 0; k < K; ++k) m = std::max(m, to_float(z[k]));
  double s = 0;
  for (std::int64_t k = 0; k < K; ++k) s += std::exp(static_cast<double>(to_float(z[k]) - m));
  const float ls = static_cast<float>(std::log(s));
  for (std::int64_t k = 0; k < K; ++k) out[k] = std::exp(to_float(z[k]) - m - ls);
  row_max = m;
  log_sum = ls;
}
}  // namespace

void softmax_cross_entropy_forward(const Tensor& logits, const Tensor& labels, const Tensor& class_weights,
                                   float smoothing, Tensor& probs, Tensor& loss, Tensor& normalizer) {
  const std::int64_t N = logits.size(0), K = logits.size(1);
  const float* w = class_weights.defined() ? class_weights.data<float>() : nullptr;
  float* pp = probs.data<float>();
  std::vector<double> row_loss(static_cast<std::size_t>(N)), row_w(static_cast<std::size_t>(N));
  LN_SWITCH_FLOAT(logits.dtype(), "cross_entropy", T, {
    const T* zp = logits.data<T>();
    parallel_for(N, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) {
        float m, ls;
        softmax_row(zp + i * K, K, pp + i * K, m, ls);
        const std::int64_t y = label_at(labels, i);
        const double wy = w ? w[y] : 1.0;
        const double nll_y = -(static_cast<double>(to_float(zp[i * K + y])) - m - ls);
        double smooth = 0;  // skipped without smoothing, so a -inf logit cannot turn 0 * inf into NaN
        if (smoothing > 0.f)
          for (std::int64_t k = 0; k < K; ++k)
            smooth += (w ? w[k] : 1.0) * -(static_cast<double>(to_float(zp[i * K + k])) - m - ls);
        row_loss[i] = (1.0 - smoothing) * wy * nll_y + smoothing / static_cast<double>(K) * smooth;
        row_w[i] = wy;
      }
    }, std::max<std::int64_t>(1, kParallelGrain / K));
  });
  double total = 0, norm = 0;
  for (std::int64_t i = 0; i < N; ++i) {
    total += row_loss[i];
    norm += row_w[i];
  }
  loss.data<float>()[0] = static_cast<float>(total / norm);
  normalizer.data<float>()[0] = static_cast<float>(norm);
}

void softmax_cross_entropy_backward(const Tensor& dloss, const Tensor& labels, const Tensor& class_weights,
                                    float smoothing, const Tensor& probs, const Tensor& normalizer, Tensor& dlogits) {
  const std::int64_t N = probs.size(0), K = probs.size(1);
  const float* w = class_weights.defined() ? class_weights.data<float>() : nullptr;
  float S = static_cast<float>(K);
  if (w) {
    S = 0;
    for (std::int64_t k = 0; k < K; ++k) S += w[k];
  }
  const float scale = dloss.data<float>()[0] / normalizer.data<float>()[0];
  const float inv_k = 1.f / static_cast<float>(K);
  const float* pp = probs.data<float>();
  LN_SWITCH_FLOAT(dlogits.dtype(), "cross_entropy_backward", T, {
    T* dp = dlogits.data<T>();
    parallel_for(N, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) {
        const std::int64_t y = label_at(labels, i);
        const float wy = w ? w[y] : 1.f;
        for (std::int64_t k = 0; k < K; ++k)
          dp[i * K + k] = from_float<T>(scale * cross_entropy_grad(pp[i * K + k], k == y, wy, w ? w[k] : 1.f, S, smoothing, inv_k));
      }
    }, std::max<std::int64_t>(1, kParallelGrain / K));
  });
}

void softmax(const Tensor& logits, Tensor& probs) {
  const std::int64_t K = logits.size(-1), N = logits.numel() / K;
  float* pp = probs.data<float>();
  LN_SWITCH_FLOAT(logits.dtype(), "softmax", T, {
    const T* zp = logits.data<T>();
    parallel_for(N, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) {
        float m, ls;
        softmax_row(zp + i * K, K, pp + i * K, m, ls);
      }
    }, std::max<std::int64_t>(1, kParallelGrain / K));
  });
}

namespace {
// Mean over elements of f(i), summed in double in a fixed order.
template <typename Fn>
float mean_of(std::int64_t n, Fn&& fn) {
  const int threads = (n <= kParallelGrain || omp_in_parallel()) ? 1 : omp_get_max_threads();
  std::vector<double> partial(static_cast<std::size_t>(threads), 0.0);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    double s = 0;
    for (std::int64_t i = n * t / nt; i < n * (t + 1) / nt; ++i) s += fn(i);
    partial[t] = s;
  }
  double s = 0;
  for (double v : partial) s += v;
  return static_cast<float>(s / static_cast<double>(n));
}
}  // namespace

void bce_with_logits(const Tensor& logits, const Tensor& targets, const Tensor& weight, Tensor& loss) {
  LN_SWITCH_FLOAT(logits.dtype(), "bce_with_logits", T, {
    const T* z = logits.data<T>();
    const T* t = targets.data<T>();
    const T* w = weight.defined() ? weight.data<T>() : nullptr;
    loss.data<float>()[0] = mean_of(logits.numel(), [&](std::int64_t i) {
      return static_cast<double>((w ? to_float(w[i]) : 1.f) * bce_with_logits_elem(to_float(z[i]), to_float(t[i])));
    });
  });
}

void bce_with_logits_backward(const Tensor& dloss, const Tensor& logits, const Tensor& targets, const Tensor& weight,
                              Tensor& dlogits) {
  const std::int64_t n = logits.numel();
  const float scale = dloss.data<float>()[0] / static_cast<float>(n);
  LN_SWITCH_FLOAT(logits.dtype(), "bce_with_logits_backward", T, {
    const T* z = logits.data<T>();
    const T* t = targets.data<T>();
    const T* w = weight.defined() ? weight.data<T>() : nullptr;
    T* d = dlogits.data<T>();
    parallel_for(n, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i)
        d[i] = from_float<T>(scale * (w ? to_float(w[i]) : 1.f) * bce_with_logits_grad(to_float(z[i]), to_float(t[i])));
    });
  });
}

void bce(const Tensor& probs, const Tensor& targets, Tensor& loss) {
  LN_SWITCH_FLOAT(probs.dtype(), "binary_cross_entropy", T, {
    const T* p = probs.data<T>();
    const T* t = targets.data<T>();
    loss.data<float>()[0] = mean_of(probs.numel(), [&](std::int64_t i) {
      return static_cast<double>(bce_elem(to_float(p[i]), to_float(t[i])));
    });
  });
}

void bce_backward(const Tensor& dloss, const Tensor& probs, const Tensor& targets, Tensor& dprobs) {
  const std::int64_t n = probs.numel();
  const float scale = dloss.data<float>()[0] / static_cast<float>(n);
  LN_SWITCH_FLOAT(probs.dtype(), "binary_cross_entropy_backward", T, {
    const T* p = probs.data<T>();
    const T* t = targets.data<T>();
    T* d = dprobs.data<T>();
    parallel_for(n, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) d[i] = from_float<T>(scale * bce_grad(to_float(p[i]), to_float(t[i])));
    });
  });
}

}  // namespace livernet::kernels::cpu
