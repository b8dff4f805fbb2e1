#!/usr/bin/env python3
"""Writes PyTorch reference results for livernet's op tests (test-only oracle; never a runtime dependency).

usage: torch_reference.py OUT.h5

For each case, a group /<case> holds the inputs, the outputs and the gradients that torch autograd
gives for sum(out * seed). Image tensors are stored NHWC and conv weights OHWI, the engine's layouts.
If PyTorch or h5py is missing, writes OUT.h5.skip with the reason instead (the C++ test then skips).
"""
import sys

out = sys.argv[1]
try:
    import h5py
    import numpy as np
    import torch
    import torch.nn.functional as F
except Exception as e:  # pragma: no cover - depends on the machine
    with open(out + ".skip", "w") as f:
        f.write(f"PyTorch oracle unavailable ({type(e).__name__}: {e}); install python3-torch and python3-h5py")
    sys.exit(0)

torch.manual_seed(1234)
torch.set_num_threads(1)
torch.backends.mkldnn.enabled = False  # reference arithmetic, not oneDNN's own path
DT = torch.float32


def nhwc(t):
    return t.detach().permute(0, 2, 3, 1).contiguous().numpy() if t.dim() == 4 else t.detach().numpy()


def ohwi(w):
    return w.detach().permute(0, 2, 3, 1).contiguous().numpy()


def leaf(*shape):
    return torch.randn(*shape, dtype=DT, requires_grad=True)


cases = {}


def conv(name, x_shape, w_shape, stride, padding, bias):
    x, w = leaf(*x_shape), leaf(*w_shape)
    b = leaf(w_shape[0]) if bias else None
    y = F.conv2d(x, w, b, stride=stride, padding=padding)
    seed = torch.randn_like(y)
    (y * seed).sum().backward()
    d = {"x": nhwc(x), "w": ohwi(w), "y": nhwc(y), "seed": nhwc(seed), "dx": nhwc(x.grad), "dw": ohwi(w.grad),
         "stride": np.array(stride), "padding": np.array(padding)}
    if bias:
        d["b"], d["db"] = b.detach().numpy(), b.grad.numpy()
    cases[name] = d


conv("conv3x3_s2", (2, 3, 15, 13), (8, 3, 3, 3), 2, (0, 0), False)
conv("conv1x7", (2, 5, 9, 11), (6, 5, 1, 7), 1, (0, 3), False)
conv("conv7x1_bias", (1, 4, 10, 6), (5, 4, 7, 1), 1, (3, 0), True)
conv("conv5x5", (2, 3, 9, 9), (4, 3, 5, 5), 1, (2, 2), True)


def batch_norm(name, training):
    x = leaf(4, 6, 5, 7)
    g, b = leaf(6), leaf(6)
    rm, rv = torch.randn(6), torch.rand(6) + 0.5
    rm0, rv0 = rm.clone(), rv.clone()
    y = F.batch_norm(x, rm, rv, g, b, training=training, momentum=0.1, eps=1e-3)
    seed = torch.randn_like(y)
    (y * seed).sum().backward()
    cases[name] = {"x": nhwc(x), "gamma": g.detach().numpy(), "beta": b.detach().numpy(),
                   "running_mean_in": rm0.numpy(), "running_var_in": rv0.numpy(),
                   "running_mean_out": rm.numpy(), "running_var_out": rv.numpy(),
                   "y": nhwc(y), "seed": nhwc(seed), "dx": nhwc(x.grad), "dgamma": g.grad.numpy(),
                   "dbeta": b.grad.numpy()}


batch_norm("batch_norm_train", True)
batch_norm("batch_norm_eval", False)


def pool(name, fn):
    x = leaf(2, 5, 9, 8)
    y = fn(x)
    seed = torch.randn_like(y)
    (y * seed).sum().backward()
    cases[name] = {"x": nhwc(x), "y": nhwc(y), "seed": nhwc(seed), "dx": nhwc(x.grad)}


pool("avg_pool_include_pad", lambda x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=True))
pool("avg_pool_exclude_pad", lambda x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
pool("max_pool_3x3_s2", lambda x: F.max_pool2d(x, 3, 2))

x, w, b = leaf(6, 10), leaf(4, 10), leaf(4)
y = F.linear(x, w, b)
seed = torch.randn_like(y)
(y * seed).sum().backward()
cases["linear"] = {"x": x.detach().numpy(), "w": w.detach().numpy(), "b": b.detach().numpy(), "y": y.detach().numpy(),
                   "seed": seed.numpy(), "dx": x.grad.numpy(), "dw": w.grad.numpy(), "db": b.grad.numpy()}

for name, weighted, smoothing in [("cross_entropy", False, 0.0), ("cross_entropy_weighted_smoothed", True, 0.15)]:
    z = leaf(7, 3)
    labels = torch.tensor([0, 2, 1, 1, 0, 2, 2])
    cw = torch.tensor([0.3, 1.0, 2.5]) if weighted else None
    loss = F.cross_entropy(z, labels, weight=cw, label_smoothing=smoothing)
    loss.backward()
    d = {"logits": z.detach().numpy(), "labels": labels.numpy(), "loss": loss.detach().numpy(),
         "dlogits": z.grad.numpy(), "smoothing": np.array(smoothing, dtype=np.float32)}
    if weighted:
        d["weights"] = cw.numpy()
    cases[name] = d

with h5py.File(out, "w") as f:
    f.attrs["torch_version"] = str(torch.__version__)
    for name, d in cases.items():
        for k, v in d.items():
            f[f"{name}/{k}"] = v
