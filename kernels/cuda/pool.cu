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
  // The average pool's divisor for the window of output pixel (oh, ow).
  __device__ int divisor(int oh, int ow) const {
    return include_pad ? kh * kw : pool_window_count(oh * sh - ph, ow * sw - pw, kh, kw, h, w);
  }
  // Where element i0 of an NHWC tensor of rows x cols pixels lies: image n, pixel (row, col), channel c0.
  struct Pixel {
    i64 n;
    int row, col;
    i64 c0;
  };
  __device__ Pixel pixel(i64 i0, int rows, int cols) const {
    Pixel p;
    p.c0 = i0 % c;
    i64 r = i0 / c;
    p.col = static_cast<int>(r % cols);
    r /= cols;
    p.row = static_cast<int>(r % rows);
    p.n = r / rows;
    return p;
  }
  // The in-bounds taps of output pixel (oh, ow)'s window: rows [hs, he), columns [ws, we).
  __device__ void taps(int oh, int ow, int& hs, int& he, int& ws, int& we) const {
    pool_taps(oh, kh, sh, ph, h, hs, he);
    pool_taps(ow, kw, sw, pw, w, ws, we);
  }
  // The output pixels whose windows cover input pixel (ih, iw): rows [oh_lo, oh_hi], columns [ow_lo, ow_hi].
  __device__ void covering(int ih, int iw, int& oh_lo, int& oh_hi, int& ow_lo, int& ow_hi) const {
    pool_covering(ih, kh, sh, ph, ho, oh_lo, oh_hi);
    pool_covering(iw, kw, sw, pw, wo, ow_lo, ow_hi);
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
    const PoolGeom::Pixel o = g.pixel(i0, g.ho, g.wo);
    const i64 n = o.n, c0 = o.c0;
    int hs, he, ws, we;
    g.taps(o.row, o.col, hs, he, ws, we);
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
    const PoolGeom::Pixel in = g.pixel(i0, g.h, g.w);
    const i64 n = in.n, c0 = in.c0;
    const int ih = in.row, iw = in.col;
    int oh_lo, oh_hi, ow_lo, ow_hi;
    g.covering(ih, iw, oh_lo, oh_hi, ow_lo, ow_hi);
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
    const PoolGeom::Pixel o = g.pixel(i0, g.ho, g.wo);
    const i64 n = o.n, c0 = o.c0;
    int hs, he, ws, we;
    g.taps(o.row, o.col, hs, he, ws, we);
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
    const float div = static_cast<float>(g.divisor(o.row, o.col));
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
    const PoolGeom::Pixel in = g.pixel(i0, g.h, g.w);
    const i64 n = in.n, c0 = in.c0;
    int oh_lo, oh_hi, ow_lo, ow_hi;
    g.covering(in.row, in.col, oh_lo, oh_hi, ow_lo, ow_hi);
    float acc[VEC];
#pragma unroll
    for (int k = 0; k < VEC; ++k) acc[k] = 0.f;
    for (int oh = oh_lo; oh <= oh_hi; ++oh) {
      for (int ow = ow_lo; ow <= ow_hi; ++ow) {
        const float div = static_cast<float>(g.divisor(oh, ow));
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
