// CPU softmax, softmax cross-entropy and binary cross-entropy, forward and backward: per-row sums in
// double, combined in a fixed order.
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
