// GPU GEMM through cuBLAS (cublasGemmEx), for row-major operands: C = alpha op(A) op(B) + beta C is
// computed as the column-major C^T = op(B)^T op(A)^T, which reads the same buffers without copies.
// f32 computes in strict f32 unless set_allow_tf32(true); bf16/f16 use tensor cores with f32 accumulation.
#include "core/cuda/cuda_context.h"
#include "kernels/cuda/handles.h"
#include "kernels/backend.h"

namespace livernet::kernels::cuda {

namespace {
cudaDataType_t cuda_dtype(DType t) {
  switch (t) {
    case DType::f32: return CUDA_R_32F;
    case DType::bf16: return CUDA_R_16BF;
    case DType::f16: return CUDA_R_16F;
    default: LN_FAIL("gemm on CUDA: unsupported dtype ", dtype_name(t));
  }
}
}  // namespace

void gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, float alpha, float beta, Tensor& c) {
  const int dev = c.device().index;
  livernet::cuda::DeviceGuard guard(dev);
  const std::int64_t m = c.size(0), n = c.size(1), k = trans_a ? a.size(0) : a.size(1);
  LN_CHECK(m <= 0x7fffffff && n <= 0x7fffffff && k <= 0x7fffffff, "gemm on CUDA: matrix too large");
  cublasHandle_t h = livernet::cuda::cublas_handle(dev);
  const cublasComputeType_t compute =
      (a.dtype() == DType::f32 && allow_tf32()) ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  LN_CUBLAS_CHECK(cublasGemmEx(h, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                               static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha, b.data_ptr(),
                               cuda_dtype(b.dtype()), static_cast<int>(b.size(1)), a.data_ptr(), cuda_dtype(a.dtype()),
                               static_cast<int>(a.size(1)), &beta, c.data_ptr(), cuda_dtype(c.dtype()),
                               static_cast<int>(n), compute, CUBLAS_GEMM_DEFAULT));
  count_launches();
}

}  // namespace livernet::kernels::cuda
