// The backend interface: every op below exists as livernet::kernels::cpu::NAME and, in CUDA builds,
// livernet::kernels::cuda::NAME with identical signatures. Front-end functions (kernels/*.cpp) check
// their arguments and call LN_DISPATCH, the single point where the device picks the implementation.
// Backends may assume: arguments validated, tensors contiguous, all on the same device.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "kernels/math.h"
#include "kernels/nn.h"
#include "kernels/elementwise.h"
#include "kernels/optim_math.h"

#define LN_BACKEND_ELEMENTWISE_DECLS                                                                   \
  void fill(Tensor& t, double value);                                                                  \
  void cast(const Tensor& src, Tensor& dst);                                                           \
  void arange_fill(Tensor& t, double start, double step);                                              \
  void random_fill(Tensor& t, RandomDist dist, std::uint64_t seed, std::uint64_t stream, float a, float b); \
  void unary(UnaryOp op, const Tensor& x, Tensor& out);                                                \
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out);                             \
  void axpby(float alpha, const Tensor& x, float beta, Tensor& y);                                     \
  /* x viewed as [outer, r, inner] -> out [outer, inner] (f32) */                                      \
  void reduce(ReduceOp op, const Tensor& x, std::int64_t outer, std::int64_t r, std::int64_t inner, Tensor& out);

// Neural-network ops. Outputs are allocated by the front end; shapes/dtypes/devices are already checked.
// Layouts: activations NHWC, conv weights OHWI, 2-D GEMM operands row-major. All offsets and leading
// dimensions are in elements.
#define LN_BACKEND_NN_DECLS                                                                             \
  void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p, Tensor& y); \
  void conv2d_backward_data(const Tensor& dy, const Tensor& w, const Conv2dParams& p, Tensor& dx);      \
  void conv2d_backward_weights(const Tensor& dy, const Tensor& x, const Conv2dParams& p, Tensor& dw);   \
  /* batch norm over all but the last dimension; gamma may be undefined (= 1); running stats may be  \
     undefined in train mode (no update); save_mean / save_invstd are [C] f32 outputs */               \
  void batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean, \
                        Tensor& running_var, float momentum, float eps, bool relu, Tensor& y, Tensor& save_mean, \
                        Tensor& save_invstd);                                                           \
  void batch_norm_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean, \
                       const Tensor& running_var, float eps, bool relu, Tensor& y, Tensor& save_mean,   \
                       Tensor& save_invstd);                                                            \
  /* y only read when relu; dgamma and dbeta are [C] f32 outputs (always written) */                    \
  void batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& y, const Tensor& gamma,     \
                           const Tensor& save_mean, const Tensor& save_invstd, bool train, bool relu,   \
                           Tensor& dx, Tensor& dgamma, Tensor& dbeta);                                  \
  void max_pool2d_forward(const Tensor& x, const Pool2dParams& p, Tensor& y, Tensor& indices);         \
  void max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Pool2dParams& p, Tensor& dx);  \
  void avg_pool2d_forward(const Tensor& x, const Pool2dParams& p, Tensor& y);                          \
  void avg_pool2d_backward(const Tensor& dy, const Pool2dParams& p, Tensor& dx);                       \
  /* dx[n, h, w, c] = dy[n, c] / (H * W) */                                                            \
  void global_avg_pool_backward(const Tensor& dy, Tensor& dx);                                         \
  /* for b < batch, r < rows: dst[dst_off + b*dst_bs + r*dst_ld + j] = src[src_off + b*src_bs + r*src_ld + j], j < cols */ \
  void copy_blocks(const Tensor& src, std::int64_t src_off, std::int64_t src_ld, std::int64_t src_bs, Tensor& dst, \
                   std::int64_t dst_off, std::int64_t dst_ld, std::int64_t dst_bs, std::int64_t batch,       \
                   std::int64_t rows, std::int64_t cols);                                               \
  void gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, float alpha, float beta, Tensor& c); \
  void bias_add(Tensor& y, const Tensor& bias);                                                        \
  void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx);     \
  void scale_by(const Tensor& x, const Tensor& a, Tensor& y);                                          \
  void broadcast_scalar(const Tensor& s, float scale, Tensor& out);                                    \
  /* y = x * keep / (1 - p); also the backward (dx from dy) */                                          \
  void dropout(const Tensor& x, float p, std::uint64_t seed, std::uint64_t stream, Tensor& y);         \
  void softmax_cross_entropy_forward(const Tensor& logits, const Tensor& labels, const Tensor& class_weights, \
                                     float smoothing, Tensor& probs, Tensor& loss, Tensor& normalizer); \
  void softmax_cross_entropy_backward(const Tensor& dloss, const Tensor& labels, const Tensor& class_weights, \
                                      float smoothing, const Tensor& probs, const Tensor& normalizer,   \
                                      Tensor& dlogits);                                                 \
  void softmax(const Tensor& logits, Tensor& probs);                                                   \
  void bce_with_logits(const Tensor& logits, const Tensor& targets, const Tensor& weight, Tensor& loss); \
  void bce_with_logits_backward(const Tensor& dloss, const Tensor& logits, const Tensor& targets,      \
                                const Tensor& weight, Tensor& dlogits);                                 \
  void bce(const Tensor& probs, const Tensor& targets, Tensor& loss);                                   \
  void bce_backward(const Tensor& dloss, const Tensor& probs, const Tensor& targets, Tensor& dprobs);

// Optimizer updates (f32 parameters, gradients and state, in place). The *_multi forms update lists in
// few launches: entry i of every list belongs to parameter i (momentum buffers are undefined when
// momentum == 0; empty tensors are skipped); found_inf and grad_mul are one-element f32 tensors or
// undefined (found_inf != 0: nothing is written; gradients are multiplied by grad_mul before use).
#define LN_BACKEND_OPTIM_DECLS                                                                          \
  void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buf, const SgdHyper& h, const SgdParamHyper& ph); \
  void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamHyper& h, float weight_decay); \
  void sgd_update_multi(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,               \
                        const std::vector<Tensor>& momentum_bufs, const std::vector<SgdParamHyper>& per_param, \
                        const SgdHyper& h, const Tensor& found_inf, const Tensor& grad_mul);            \
  void adam_update_multi(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,              \
                         const std::vector<Tensor>& m, const std::vector<Tensor>& v,                    \
                         const std::vector<float>& weight_decays, const AdamHyper& h, const Tensor& found_inf, \
                         const Tensor& grad_mul);                                                        \
  /* out[0] = sum of squares of x (f32), out[1] = 1 if any element is not finite else 0 */             \
  void grad_stats(const Tensor& x, Tensor& out);                                                        \
  /* the same over every tensor of the list (float dtypes, which may differ between the tensors) */    \
  void grad_stats_multi(const std::vector<Tensor>& xs, Tensor& out);

namespace livernet::kernels {
namespace cpu {
LN_BACKEND_ELEMENTWISE_DECLS
LN_BACKEND_NN_DECLS
LN_BACKEND_OPTIM_DECLS
}
#if defined(LIVERNET_WITH_CUDA)
namespace cuda {
LN_BACKEND_ELEMENTWISE_DECLS
LN_BACKEND_NN_DECLS
LN_BACKEND_OPTIM_DECLS
}
#endif

namespace detail {
[[noreturn]] void no_cuda_backend(const char* op);
}
}  // namespace livernet::kernels

#if defined(LIVERNET_WITH_CUDA)
#define LN_DISPATCH(device, fn, ...)                                                                    \
  ((device).is_cuda() ? ::livernet::kernels::cuda::fn(__VA_ARGS__) : ::livernet::kernels::cpu::fn(__VA_ARGS__))
#else
#define LN_DISPATCH(device, fn, ...)                                                                    \
  ((device).is_cuda() ? ::livernet::kernels::detail::no_cuda_backend(#fn) : ::livernet::kernels::cpu::fn(__VA_ARGS__))
#endif
