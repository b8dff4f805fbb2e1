// CPU GEMM through oneDNN's dnnl_sgemm (bf16/f16 operands computed in f32).
#include <oneapi/dnnl/dnnl.h>

#include "kernels/backend.h"
#include "kernels/tensor_ops.h"

namespace livernet::kernels::cpu {

void gemm(const Tensor& a_in, bool trans_a, const Tensor& b_in, bool trans_b, float alpha, float beta, Tensor& c) {
  const Tensor a = to_dtype(a_in, DType::f32), b = to_dtype(b_in, DType::f32);
  Tensor out = to_dtype(c, DType::f32);
  const std::int64_t m = out.size(0), n = out.size(1);
  const std::int64_t k = trans_a ? a.size(0) : a.size(1);
  const dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a.data<float>(),
                                      a.size(1), b.data<float>(), b.size(1), beta, out.data<float>(), n);
  LN_CHECK(st == dnnl_success, "gemm: oneDNN dnnl_sgemm failed with status ", static_cast<int>(st));
  if (!out.is_same(c)) copy_(c, out);
}

}  // namespace livernet::kernels::cpu
