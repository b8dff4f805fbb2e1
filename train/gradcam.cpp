#include "train/gradcam.h"

#include <algorithm>

#include "autograd/autograd.h"
#include "data/preprocess.h"
#include "kernels/tensor_ops.h"

namespace livernet::train {

GradCam grad_cam(LesionClassifier& model, const Tensor& input, int target_class, const std::string& block_name) {
  LN_CHECK(input.dim() == 4 && input.size(0) == 1, "grad_cam: expects one input [1, S, S, C]");
  model.eval();
  const auto& blocks = model.backbone->blocks();
  std::vector<Tensor> outs;
  Tensor x;
  {
    NoGradGuard ng;
    Tensor h = model.backbone->stem(model.prepare_input(input));
    for (const auto& [name, b] : blocks) {
      h = (*b)(h);
      outs.push_back(h);
    }
  }
  int target = -1;
  if (block_name.empty()) {
    for (int i = static_cast<int>(blocks.size()) - 1; i >= 0 && target < 0; --i)
      if (outs[i].size(1) >= 4 && outs[i].size(2) >= 4) target = i;
    if (target < 0) target = 0;
  } else {
    for (std::size_t i = 0; i < blocks.size(); ++i)
      if (blocks[i].first == block_name) target = static_cast<int>(i);
    LN_CHECK(target >= 0, "grad_cam: no block named '", block_name, "'");
  }
  // Gradient of the class logit with respect to the chosen block's output (a leaf here).
  Tensor a = to_dtype(outs[target].detach(), DType::f32);
  a.requires_grad_();
  Tensor h = F::cast(a, model.compute_dtype());
  for (std::size_t i = static_cast<std::size_t>(target) + 1; i < blocks.size(); ++i) h = (*blocks[i].second)(h);
  const Tensor logits = model.classify(F::global_avg_pool(h));
  LN_CHECK(target_class >= 0 && target_class < logits.size(1), "grad_cam: class ", target_class, " out of range");
  std::vector<float> onehot(static_cast<std::size_t>(logits.size(1)), 0.f);
  onehot[target_class] = 1.f;
  backward(F::sum(F::mul(logits, Tensor::from_vector(onehot, logits.shape(), logits.device()))));
  const Tensor act = a.detach().to(Device::cpu()), grad = a.grad().to(Device::cpu());
  model.zero_grad();  // the parameters' gradients from this pass are not wanted
  const std::int64_t H = act.size(1), W = act.size(2), C = act.size(3);
  const float* A = act.data<float>();
  const float* G = grad.data<float>();
  std::vector<double> alpha(static_cast<std::size_t>(C), 0.0);
  for (std::int64_t p = 0; p < H * W; ++p)
    for (std::int64_t c = 0; c < C; ++c) alpha[c] += G[p * C + c] / static_cast<double>(H * W);
  Tensor cam = Tensor::empty(Shape{H, W, 1});
  float* cp = cam.data<float>();
  float hi = 0;
  for (std::int64_t p = 0; p < H * W; ++p) {
    double v = 0;
    for (std::int64_t c = 0; c < C; ++c) v += alpha[c] * A[p * C + c];
    cp[p] = static_cast<float>(std::max(0.0, v));
    hi = std::max(hi, cp[p]);
  }
  for (std::int64_t p = 0; p < H * W; ++p) cp[p] = hi > 0 ? cp[p] / hi : 0.f;
  GradCam out;
  out.block = blocks[target].first;
  out.heat = data::resize_bilinear(cam, input.size(1), input.size(2)).reshape({input.size(1), input.size(2)});
  return out;
}

}  // namespace livernet::train
