// CPU pooling: max (with indices) and average, forward and backward, and the backward of global average
// pooling. Loops over (n, oh) rows in parallel, channels innermost (contiguous in NHWC).
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
        std::int64_t hs, he;
        pool_taps(oh, p.kernel_h, p.stride_h, p.pad_h, H, hs, he);
        for (std::int64_t ow = 0; ow < Wo; ++ow) {
          std::int64_t ws, we;
          pool_taps(ow, p.kernel_w, p.stride_w, p.pad_w, W, ws, we);
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
        pool_covering(h, p.kernel_h, p.stride_h, p.pad_h, Ho, oh0, oh1);
        for (std::int64_t w = 0; w < W; ++w) {
          std::fill(acc.begin(), acc.end(), 0.f);
          std::int64_t ow0, ow1;
          pool_covering(w, p.kernel_w, p.stride_w, p.pad_w, Wo, ow0, ow1);
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
          std::int64_t hs, he, ws, we;
          pool_taps(oh, p.kernel_h, p.stride_h, p.pad_h, H, hs, he);
          pool_taps(ow, p.kernel_w, p.stride_w, p.pad_w, W, ws, we);
          for (std::int64_t h = hs; h < he; ++h)
            for (std::int64_t w = ws; w < we; ++w) {
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
        pool_covering(h, p.kernel_h, p.stride_h, p.pad_h, Ho, oh0, oh1);
        for (std::int64_t w = 0; w < W; ++w) {
          std::fill(acc.begin(), acc.end(), 0.f);
          std::int64_t ow0, ow1;
          pool_covering(w, p.kernel_w, p.stride_w, p.pad_w, Wo, ow0, ow1);
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

}  // namespace livernet::kernels::cpu
