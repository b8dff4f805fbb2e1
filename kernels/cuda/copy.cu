// CUDA block copies: strided blocks of rows between tensors (channel concatenation, its backward, crops).
#include <cfloat>
#include <cmath>
#include <cstdint>

#include "kernels/backend.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/nn_math.h"
#include "kernels/type_switch.h"

namespace livernet::kernels::cuda {

namespace {
// ---- block copies ---------------------------------------------------------------------------------------

// Copies batch x rows x units words W (a word = 1..16 bytes, as wide as the offsets allow); the flat
// word index is split with index type I (32-bit when it fits: the divisions dominate otherwise).
template <typename W, typename I>
__global__ void copy_blocks_kernel(const W* __restrict__ src, W* __restrict__ dst, I total, I units, I rows,
                                   i64 src_ld, i64 src_bs, i64 dst_ld, i64 dst_bs) {
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I t = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
    const I j = t % units, q = t / units;
    const I r = q % rows, b = q / rows;
    dst[static_cast<i64>(b) * dst_bs + static_cast<i64>(r) * dst_ld + static_cast<i64>(j)] =
        src[static_cast<i64>(b) * src_bs + static_cast<i64>(r) * src_ld + static_cast<i64>(j)];
  }
}

template <typename W>
void launch_copy_blocks(const LaunchContext& ctx, const char* src, char* dst, i64 src_ld, i64 src_bs, i64 dst_ld,
                        i64 dst_bs, i64 batch, i64 rows, i64 col_bytes) {
  constexpr i64 w = sizeof(W);
  const i64 units = col_bytes / w, total = batch * rows * units;
  const W* s = reinterpret_cast<const W*>(src);
  W* d = reinterpret_cast<W*>(dst);
  const unsigned grid = grid_for(total, ctx.device);
  if (total <= (i64{1} << 31)) {
    copy_blocks_kernel<W, std::uint32_t><<<grid, kBlock, 0, ctx.stream>>>(
        s, d, static_cast<std::uint32_t>(total), static_cast<std::uint32_t>(units), static_cast<std::uint32_t>(rows),
        src_ld / w, src_bs / w, dst_ld / w, dst_bs / w);
  } else {
    copy_blocks_kernel<W, i64><<<grid, kBlock, 0, ctx.stream>>>(s, d, total, units, rows, src_ld / w, src_bs / w,
                                                                 dst_ld / w, dst_bs / w);
  }
  LN_CUDA_CHECK_LAUNCH();
}

}  // namespace

// ---- block copies ----------------------------------------------------------------------------------------

void copy_blocks(const Tensor& src, std::int64_t src_off, std::int64_t src_ld, std::int64_t src_bs, Tensor& dst,
                 std::int64_t dst_off, std::int64_t dst_ld, std::int64_t dst_bs, std::int64_t batch,
                 std::int64_t rows, std::int64_t cols) {
  LaunchContext ctx(src);
  if (batch <= 0 || rows <= 0 || cols <= 0) return;
  const i64 es = static_cast<i64>(src.element_size());
  // Strides that never matter are zeroed so that they do not block the wide path.
  if (rows == 1) src_ld = dst_ld = 0;
  if (batch == 1) src_bs = dst_bs = 0;
  const char* s = static_cast<const char*>(src.data_ptr()) + src_off * es;
  char* d = static_cast<char*>(dst.data_ptr()) + dst_off * es;
  const i64 s_ld = src_ld * es, s_bs = src_bs * es, d_ld = dst_ld * es, d_bs = dst_bs * es, col_bytes = cols * es;
  // The widest word (16 bytes down to 1) that divides every byte offset and stride.
  const auto fits = [&](i64 w) {
    return reinterpret_cast<std::uintptr_t>(s) % w == 0 && reinterpret_cast<std::uintptr_t>(d) % w == 0 &&
           s_ld % w == 0 && s_bs % w == 0 && d_ld % w == 0 && d_bs % w == 0 && col_bytes % w == 0;
  };
  if (fits(16)) launch_copy_blocks<uint4>(ctx, s, d, s_ld, s_bs, d_ld, d_bs, batch, rows, col_bytes);
  else if (fits(8)) launch_copy_blocks<uint2>(ctx, s, d, s_ld, s_bs, d_ld, d_bs, batch, rows, col_bytes);
  else if (fits(4)) launch_copy_blocks<std::uint32_t>(ctx, s, d, s_ld, s_bs, d_ld, d_bs, batch, rows, col_bytes);
  else if (fits(2)) launch_copy_blocks<std::uint16_t>(ctx, s, d, s_ld, s_bs, d_ld, d_bs, batch, rows, col_bytes);
  else launch_copy_blocks<std::uint8_t>(ctx, s, d, s_ld, s_bs, d_ld, d_bs, batch, rows, col_bytes);
}

}  // namespace livernet::kernels::cuda
