// The backend interface: every op below exists as livernet::kernels::cpu::NAME and, in CUDA builds,
// livernet::kernels::cuda::NAME with identical signatures. Front-end functions (kernels/*.cpp) check
// their arguments and call LN_DISPATCH, the single point where the device picks the implementation.
// Backends may assume: arguments validated, tensors contiguous, all on the same device.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "kernels/math.h"
#include "kernels/ops.h"

#define LN_BACKEND_ELEMENTWISE_DECLS                                                                   \
  void fill(Tensor& t, double value);                                                                  \
  void cast(const Tensor& src, Tensor& dst);                                                           \
  void arange_fill(Tensor& t, double start, double step);                                              \
  void random_fill(Tensor& t, RandomDist dist, std::uint64_t seed, std::uint64_t stream, float a, float b); \
  void unary(UnaryOp op, const Tensor& x, Tensor& out);                                                \
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out);                             \
  void axpby(float alpha, const Tensor& x, float beta, Tensor& y);                                     \
  void relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx);                                   \
  /* x viewed as [outer, r, inner] -> out [outer, inner] (f32) */                                      \
  void reduce(ReduceOp op, const Tensor& x, std::int64_t outer, std::int64_t r, std::int64_t inner, Tensor& out);

namespace livernet::kernels {
namespace cpu {
LN_BACKEND_ELEMENTWISE_DECLS
}
#if defined(LIVERNET_WITH_CUDA)
namespace cuda {
LN_BACKEND_ELEMENTWISE_DECLS
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
