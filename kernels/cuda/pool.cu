// CUDA pooling: max (with indices) and average, forward and backward, and the backward of global average
// pooling. Geometry and per-element math shared with the CPU backend (kernels/nn_math.h).
#include <cfloat>
#include <cmath>
#include <cstdint>

#include "kernels/backend.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/nn_math.h"
#include "kernels/type_switch.h"

namespace livernet::kernels::cuda {

namespace {
// ---- pooling -------------------------------------------------------------------------------------------

// NHWC geometry of a 2-D pool: input [N, H, W, C], output [N, Ho, Wo, C].
struct PoolGeom {
  i64 c;
  int h, w, ho, wo;
  int kh, kw, sh, sw, ph, pw;
  bool include_pad;

  static PoolGeom make(const Tensor& x, i64 ho, i64 wo, const Pool2dParams& p) {
    return PoolGeom{x.size(3), static_cast<int>(x.size(1)), static_cast<int>(x.size(2)), static_cast<int>(ho),
                    static_cast<int>(wo), p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.pad_h, p.pad_w,
                    p.count_include_pad};
  }
  // The average pool's divisor for the window starting at (h0, w0).
  __device__ int divisor(int h0, int w0) const {
    return include_pad ? kh * kw : pool_window_count(h0, w0, kh, kw, h, w);
  }
  // Output rows (columns) whose window covers input row ih (column iw): [lo, hi], possibly empty.
  __device__ void out_range(int i, int pad, int k, int s, int out, int& lo, int& hi) const {
    const int first = i + pad - k + 1;
    lo = first <= 0 ? 0 : (first + s - 1) / s;
    hi = (i + pad) / s;
    if (hi > out - 1) hi = out - 1;
  }
};

// One thread per VEC consecutive channels of one output pixel: scans the in-bounds taps row-major,
// keeping the first maximum (a NaN wins and the first NaN stays). Reads are coalesced along C.
template <typename T>
struct MaxPoolForwardFn {
  const T* x;
  T* y;
  std::int32_t* indices;
  PoolGeom g;
  template <int VEC>
  __device__ void apply(i64 i0) const {
    const i64 c0 = i0 % g.c;
    i64 r = i0 / g.c;
    const int ow = static_cast<int>(r % g.wo);
    r /= g.wo;
    const int oh = static_cast<int>(r % g.ho);
    const i64 n = r / g.ho;
    const int h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
    const int hs = h0 > 0 ? h0 : 0, he = h0 + g.kh < g.h ? h0 + g.kh : g.h;
    const int ws = w0 > 0 ? w0 : 0, we = w0 + g.kw < g.w ? w0 + g.kw : g.w;
    float best[VEC];
    int arg[VEC];
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      best[k] = -INFINITY;
      arg[k] = -1;
    }
    for (int ih = hs; ih < he; ++ih) {
      for (int iw = ws; iw < we; ++iw) {
        float v[VEC];
        load_vec<T, VEC>(x, ((n * g.h + ih) * g.w + iw) * g.c + c0, v);
        const int pos = ih * g.w + iw;
#pragma unroll
        for (int k = 0; k < VEC; ++k) {
          if (arg[k] < 0 || (!isnan(best[k]) && (v[k] > best[k] || isnan(v[k])))) {
            best[k] = v[k];
            arg[k] = pos;
          }
        }
      }
    }
    store_vec<T, VEC>(y, i0, best);
#pragma unroll
    for (int k = 0; k < VEC; ++k)
      if (indices) indices[i0 + k] = arg[k];
  }
};

// Gather over input pixels: each thread visits the output windows covering its pixel (row-major) and
// adds dy where the window's recorded argmax is this pixel. No atomics, so the result is deterministic.
template <typename T>
struct MaxPoolBackwardFn {
  const T* dy;
  const std::int32_t* indices;
  T* dx;
  PoolGeom g;
  template <int VEC>
  __device__ void apply(i64 i0) const {
    const i64 c0 = i0 % g.c;
    i64 r = i0 / g.c;
    const int iw = static_cast<int>(r % g.w);
    r /= g.w;
    const int ih = static_cast<int>(r % g.h);
    const i64 n = r / g.h;
    int oh_lo, oh_hi, ow_lo, ow_hi;
    g.out_range(ih, g.ph, g.kh, g.sh, g.ho, oh_lo, oh_hi);
    g.out_range(iw, g.pw, g.kw, g.sw, g.wo, ow_lo, ow_hi);
    const int target = ih * g.w + iw;
    float acc[VEC];
#pragma unroll
    for (int k = 0; k < VEC; ++k) acc[k] = 0.f;
    for (int oh = oh_lo; oh <= oh_hi; ++oh) {
      for (int ow = ow_lo; ow <= ow_hi; ++ow) {
        const i64 o = ((n * g.ho + oh) * g.wo + ow) * g.c + c0;
        float d[VEC];
        load_vec<T, VEC>(dy, o, d);
#pragma unroll
        for (int k = 0; k < VEC; ++k)
          if (__ldg(indices + o + k) == target) acc[k] += d[k];
      }
    }
    store_vec<T, VEC>(dx, i0, acc);
  }
};

// Average of the in-bounds taps of each window over its divisor; layout as MaxPoolForwardFn.
template <typename T>
struct AvgPoolForwardFn {
  const T* x;
  T* y;
  PoolGeom g;
  template <int VEC>
  __device__ void apply(i64 i0) const {
    const i64 c0 = i0 % g.c;
    i64 r = i0 / g.c;
    const int ow = static_cast<int>(r % g.wo);
    r /= g.wo;
    const int oh = static_cast<int>(r % g.ho);
    const i64 n = r / g.ho;
    const int h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
    const int hs = h0 > 0 ? h0 : 0, he = h0 + g.kh < g.h ? h0 + g.kh : g.h;
    const int ws = w0 > 0 ? w0 : 0, we = w0 + g.kw < g.w ? w0 + g.kw : g.w;
    float acc[VEC];
#pragma unroll
    for (int k = 0; k < VEC; ++k) acc[k] = 0.f;
    for (int ih = hs; ih < he; ++ih) {
      for (int iw = ws; iw < we; ++iw) {
        float v[VEC];
        load_vec<T, VEC>(x, ((n * g.h + ih) * g.w + iw) * g.c + c0, v);
#pragma unroll
        for (int k = 0; k < VEC; ++k) acc[k] += v[k];
      }
    }
    const float div = static_cast<float>(g.divisor(h0, w0));
#pragma unroll
    for (int k = 0; k < VEC; ++k) acc[k] = acc[k] / div;
    store_vec<T, VEC>(y, i0, acc);
  }
};

// Gather over input pixels: the sum of dy / divisor over the output windows covering the pixel.
template <typename T>
struct AvgPoolBackwardFn {
  const T* dy;
  T* dx;
  PoolGeom g;
  template <int VEC>
  __device__ void apply(i64 i0) const {
    const i64 c0 = i0 % g.c;
    i64 r = i0 / g.c;
    const int iw = static_cast<int>(r % g.w);
    r /= g.w;
    const int ih = static_cast<int>(r % g.h);
    const i64 n = r / g.h;
    int oh_lo, oh_hi, ow_lo, ow_hi;
    g.out_range(ih, g.ph, g.kh, g.sh, g.ho, oh_lo, oh_hi);
    g.out_range(iw, g.pw, g.kw, g.sw, g.wo, ow_lo, ow_hi);
    float acc[VEC];
#pragma unroll
    for (int k = 0; k < VEC; ++k) acc[k] = 0.f;
    for (int oh = oh_lo; oh <= oh_hi; ++oh) {
      for (int ow = ow_lo; ow <= ow_hi; ++ow) {
        const float div = static_cast<float>(g.divisor(oh * g.sh - g.ph, ow * g.sw - g.pw));
        float d[VEC];
        load_vec<T, VEC>(dy, ((n * g.ho + oh) * g.wo + ow) * g.c + c0, d);
#pragma unroll
        for (int k = 0; k < VEC; ++k) acc[k] += d[k] / div;
      }
    }
    store_vec<T, VEC>(dx, i0, acc);
  }
};

// dx[n, h, w, c] = dy[n, c] / (H * W).
template <typename T>
struct GlobalAvgPoolBackwardFn {
  const T* dy;
  T* dx;
  i64 c, hwc;
  float hw;
  template <int VEC>
  __device__ void apply(i64 i0) const {
    const i64 c0 = i0 % c, n = i0 / hwc;
    float v[VEC];
    load_vec<T, VEC>(dy, n * c + c0, v);
#pragma unroll
    for (int k = 0; k < VEC; ++k) v[k] = v[k] / hw;
    store_vec<T, VEC>(dx, i0, v);
  }
};

}  // namespace

// ---- pooling ---------------------------------------------------------------------------------------------

void max_pool2d_forward(const Tensor& x, const Pool2dParams& p, Tensor& y, Tensor& indices) {
  LaunchContext ctx(x);
  const PoolGeom g = PoolGeom::make(x, y.size(1), y.size(2), p);
  std::int32_t* ip = indices.defined() ? indices.data<std::int32_t>() : nullptr;
  LN_SWITCH_FLOAT(x.dtype(), "max_pool2d_forward", T, {
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    const int vec = pick_vec(max_vec_of<T>(), g.c, {{xp, sizeof(T)}, {yp, sizeof(T)}});
    launch_vec<max_vec_of<T>()>(ctx, y.numel(), vec, MaxPoolForwardFn<T>{xp, yp, ip, g});
  });
}

void max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Pool2dParams& p, Tensor& dx) {
  LaunchContext ctx(dy);
  const PoolGeom g = PoolGeom::make(dx, dy.size(1), dy.size(2), p);
  const std::int32_t* ip = indices.data<std::int32_t>();
  LN_SWITCH_FLOAT(dy.dtype(), "max_pool2d_backward", T, {
    const T* dyp = dy.data<T>();
    T* dxp = dx.data<T>();
    const int vec = pick_vec(max_vec_of<T>(), g.c, {{dyp, sizeof(T)}, {dxp, sizeof(T)}});
    launch_vec<max_vec_of<T>()>(ctx, dx.numel(), vec, MaxPoolBackwardFn<T>{dyp, ip, dxp, g});
  });
}

void avg_pool2d_forward(const Tensor& x, const Pool2dParams& p, Tensor& y) {
  LaunchContext ctx(x);
  const PoolGeom g = PoolGeom::make(x, y.size(1), y.size(2), p);
  LN_SWITCH_FLOAT(x.dtype(), "avg_pool2d_forward", T, {
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    const int vec = pick_vec(max_vec_of<T>(), g.c, {{xp, sizeof(T)}, {yp, sizeof(T)}});
    launch_vec<max_vec_of<T>()>(ctx, y.numel(), vec, AvgPoolForwardFn<T>{xp, yp, g});
  });
}

void avg_pool2d_backward(const Tensor& dy, const Pool2dParams& p, Tensor& dx) {
  LaunchContext ctx(dy);
  const PoolGeom g = PoolGeom::make(dx, dy.size(1), dy.size(2), p);
  LN_SWITCH_FLOAT(dy.dtype(), "avg_pool2d_backward", T, {
    const T* dyp = dy.data<T>();
    T* dxp = dx.data<T>();
    const int vec = pick_vec(max_vec_of<T>(), g.c, {{dyp, sizeof(T)}, {dxp, sizeof(T)}});
    launch_vec<max_vec_of<T>()>(ctx, dx.numel(), vec, AvgPoolBackwardFn<T>{dyp, dxp, g});
  });
}

void global_avg_pool_backward(const Tensor& dy, Tensor& dx) {
  LaunchContext ctx(dy);
  const i64 c = dx.size(3);
  const i64 hw = dx.size(1) * dx.size(2);
  if (c == 0 || hw == 0) return;
  LN_SWITCH_FLOAT(dy.dtype(), "global_avg_pool_backward", T, {
    const T* dyp = dy.data<T>();
    T* dxp = dx.data<T>();
    const int vec = pick_vec(max_vec_of<T>(), c, {{dyp, sizeof(T)}, {dxp, sizeof(T)}});
    launch_vec<max_vec_of<T>()>(ctx, dx.numel(), vec,
                                GlobalAvgPoolBackwardFn<T>{dyp, dxp, c, hw * c, static_cast<float>(hw)});
  });
}

}  // namespace livernet::kernels::cuda
