// CPU block copies: strided blocks of rows between tensors (channel concatenation, its backward, crops).
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

}  // namespace livernet::kernels::cpu
