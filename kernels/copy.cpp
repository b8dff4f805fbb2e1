// Front end of concat, split, pad and crop.
#include "kernels/copy.h"

#include <numeric>

#include "kernels/backend.h"
#include "kernels/checks.h"
#include "kernels/tensor_ops.h"

namespace livernet::kernels {

// ---- concat / split / pad ------------------------------------------------------------------------------------

Tensor concat(const std::vector<Tensor>& xs, int axis) {
  LN_CHECK(!xs.empty(), "concat: no inputs");
  const Tensor& first = xs[0];
  LN_CHECK(first.defined(), "concat: input 0 is undefined");
  const int nd = first.dim();
  const int ax = axis < 0 ? axis + nd : axis;
  LN_CHECK(ax >= 0 && ax < nd, "concat: axis ", axis, " out of range for shape ", first.shape().str());
  Shape out = first.shape();
  std::int64_t total = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Tensor& t = xs[i];
    LN_CHECK(t.defined(), "concat: input ", i, " is undefined");
    LN_CHECK(t.dim() == nd, "concat: input ", i, " has shape ", t.shape().str(), ", input 0 has ", first.shape().str());
    for (int d = 0; d < nd; ++d)
      LN_CHECK(d == ax || t.size(d) == first.size(d), "concat along axis ", ax, ": input ", i, " has shape ",
               t.shape().str(), ", input 0 has ", first.shape().str());
    check_same_dtype("concat", first, t);
    check_same_device("concat", first, t);
    total += t.size(ax);
  }
  out[ax] = total;
  Tensor y = Tensor::empty(out, first.dtype(), first.device());
  if (y.numel() == 0) return y;
  std::int64_t outer = 1, inner = 1;
  for (int d = 0; d < ax; ++d) outer *= out[d];
  for (int d = ax + 1; d < nd; ++d) inner *= out[d];
  std::int64_t offset = 0;
  for (const Tensor& t : xs) {
    const std::int64_t cols = t.size(ax) * inner;
    if (cols > 0) LN_DISPATCH(y.device(), copy_blocks, t, 0, cols, 0, y, offset, total * inner, 0, 1, outer, cols);
    offset += cols;
  }
  return y;
}

std::vector<Tensor> split(const Tensor& y, int axis, const std::vector<std::int64_t>& sizes) {
  LN_CHECK(y.defined(), "split: input is undefined");
  const int nd = y.dim();
  const int ax = axis < 0 ? axis + nd : axis;
  LN_CHECK(ax >= 0 && ax < nd, "split: axis ", axis, " out of range for shape ", y.shape().str());
  const std::int64_t total = std::accumulate(sizes.begin(), sizes.end(), std::int64_t{0});
  LN_CHECK(total == y.size(ax), "split: sizes add up to ", total, " but axis ", ax, " of ", y.shape().str(), " has ",
           y.size(ax));
  std::int64_t outer = 1, inner = 1;
  for (int d = 0; d < ax; ++d) outer *= y.size(d);
  for (int d = ax + 1; d < nd; ++d) inner *= y.size(d);
  std::vector<Tensor> out;
  std::int64_t offset = 0;
  for (std::int64_t s : sizes) {
    Shape ps = y.shape();
    ps[ax] = s;
    Tensor piece = Tensor::empty(ps, y.dtype(), y.device());
    const std::int64_t cols = s * inner;
    if (piece.numel() > 0)
      LN_DISPATCH(y.device(), copy_blocks, y, offset, total * inner, 0, piece, 0, cols, 0, 1, outer, cols);
    offset += cols;
    out.push_back(piece);
  }
  return out;
}

Tensor pad2d(const Tensor& x, int top, int bottom, int left, int right) {
  LN_CHECK(x.defined() && x.dim() == 4, "pad2d: input must be [N, H, W, C]");
  LN_CHECK(top >= 0 && bottom >= 0 && left >= 0 && right >= 0, "pad2d: negative padding");
  const std::int64_t N = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const std::int64_t Hp = H + top + bottom, Wp = W + left + right;
  Tensor y = zeros(Shape{N, Hp, Wp, C}, x.dtype(), x.device());
  if (x.numel() == 0) return y;
  LN_DISPATCH(x.device(), copy_blocks, x, 0, W * C, H * W * C, y, (top * Wp + left) * C, Wp * C, Hp * Wp * C, N, H,
              W * C);
  return y;
}

Tensor crop2d(const Tensor& x, int top, int bottom, int left, int right) {
  LN_CHECK(x.defined() && x.dim() == 4, "crop2d: input must be [N, H, W, C]");
  const std::int64_t N = x.size(0), Hp = x.size(1), Wp = x.size(2), C = x.size(3);
  const std::int64_t H = Hp - top - bottom, W = Wp - left - right;
  LN_CHECK(top >= 0 && bottom >= 0 && left >= 0 && right >= 0 && H >= 0 && W >= 0, "crop2d: bad crop of ",
           x.shape().str());
  Tensor y = Tensor::empty(Shape{N, H, W, C}, x.dtype(), x.device());
  if (y.numel() == 0) return y;
  LN_DISPATCH(x.device(), copy_blocks, x, (top * Wp + left) * C, Wp * C, Hp * Wp * C, y, 0, W * C, H * W * C, N, H,
              W * C);
  return y;
}

}  // namespace livernet::kernels
