#!/usr/bin/env python3
"""torch.optim trajectories for livernet's optimizer tests (test-only oracle).

usage: optim_reference.py OUT.h5   (writes OUT.h5.skip with the reason when PyTorch is missing)
"""
import sys

out = sys.argv[1]
try:
    import h5py
    import numpy as np
    import torch
except Exception as e:  # pragma: no cover
    open(out + ".skip", "w").write(f"PyTorch oracle unavailable ({type(e).__name__}: {e})")
    sys.exit(0)

torch.manual_seed(7)
w0, b0 = torch.randn(5, 4), torch.randn(4)
grads = [(torch.randn(5, 4), torch.randn(4)) for _ in range(6)]
data = {"w0": w0.numpy(), "b0": b0.numpy()}
for i, (gw, gb) in enumerate(grads):
    data[f"grad{i}/w"], data[f"grad{i}/b"] = gw.numpy(), gb.numpy()


def trajectory(name, make, groups=False):
    w, b = w0.clone().requires_grad_(), b0.clone().requires_grad_()
    opt = make([{"params": [w]}, {"params": [b], "weight_decay": 0.0}] if groups else [w, b])
    for i, (gw, gb) in enumerate(grads):
        w.grad, b.grad = gw.clone(), gb.clone()
        opt.step()
        data[f"{name}/step{i}/w"], data[f"{name}/step{i}/b"] = w.detach().numpy().copy(), b.detach().numpy().copy()


trajectory("sgd", lambda p: torch.optim.SGD(p, lr=0.1))
trajectory("sgd_momentum_wd", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01))
trajectory("sgd_nesterov", lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True))
trajectory("adam_wd", lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.01))
trajectory("adamw", lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1))
trajectory("adamw_no_decay_on_bias", lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1), groups=True)

# ReduceLROnPlateau on a metric sequence (mode min, factor 0.5, patience 2).
p = torch.zeros(1, requires_grad=True)
opt = torch.optim.SGD([p], lr=1.0)
sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2, min_lr=0.1)
metrics = [1.0, 0.9, 0.95, 0.91, 0.9, 0.92, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2]
lrs = []
for m in metrics:
    sched.step(m)
    lrs.append(opt.param_groups[0]["lr"])
data["plateau/metrics"], data["plateau/lrs"] = np.array(metrics), np.array(lrs)

# clip_grad_norm_
w, b = w0.clone().requires_grad_(), b0.clone().requires_grad_()
w.grad, b.grad = grads[0][0] * 3, grads[0][1] * 3
norm = torch.nn.utils.clip_grad_norm_([w, b], max_norm=2.0)
data["clip/norm"], data["clip/w"], data["clip/b"] = np.array(norm.item()), w.grad.numpy(), b.grad.numpy()

with h5py.File(out, "w") as f:
    for k, v in data.items():
        f[k] = v
