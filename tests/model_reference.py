#!/usr/bin/env python3
"""Reference data for livernet's whole-model parity tests (PyTorch + torchvision as a test-only oracle).

usage: model_reference.py OUT_DIR

Writes to OUT_DIR:
  tv_state.h5       a torchvision inception_v3 (random init, random BN statistics, gamma != 1) as a flat
                    state_dict, as tools/pth_to_h5.py would write it
  keras_layout.h5   the same network with gamma = 1, as a Keras v0.5-layout weight file
  paper.h5          a residual + head variant written directly in livernet's weight format
  io.h5             inputs (NHWC), logits and gradients from torch for all of the above
If PyTorch/torchvision/h5py are missing, writes OUT_DIR/SKIP with the reason.
"""
import json
import os
import sys

out_dir = sys.argv[1]
os.makedirs(out_dir, exist_ok=True)
try:
    import h5py
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torchvision
except Exception as e:  # pragma: no cover
    open(os.path.join(out_dir, "SKIP"), "w").write(f"PyTorch oracle unavailable ({type(e).__name__}: {e})")
    sys.exit(0)

torch.manual_seed(0)
torch.set_num_threads(max(1, os.cpu_count() or 1))
io = {}


def nhwc(t):
    return t.detach().permute(0, 2, 3, 1).contiguous().numpy()


def nchw(a):
    return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()


def build_tv():
    m = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True)
    g = torch.Generator().manual_seed(1)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) * 0.5 + 0.75)
            with torch.no_grad():
                mod.weight.copy_(torch.rand(mod.num_features, generator=g) * 0.5 + 0.75)
                mod.bias.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
    return m


# ---- 1. torchvision flavour: 299x299 batch 2 and a non-square size --------------------------------------
tv = build_tv().eval()
x299 = torch.randn(2, 3, 299, 299)
xns = torch.randn(1, 3, 107, 131)
with torch.no_grad():
    io["tv/x299"], io["tv/logits299"] = nhwc(x299), tv(x299).numpy()
    io["tv/xns"], io["tv/logitsns"] = nhwc(xns), tv(xns).numpy()
with h5py.File(os.path.join(out_dir, "tv_state.h5"), "w") as f:
    for k, v in tv.state_dict().items():
        f.create_dataset(k, data=v.numpy())

# ---- 3. gradients at 107x107 batch 2, no dropout -------------------------------------------------------------
# Train mode (batch statistics) through 94 BN layers is ill-conditioned: torch's own float32 gradients
# differ from float64 ones by about 1e-2 here. So the train-mode reference is float64, with torch's f32
# error stored beside it; eval mode (running statistics) is well-conditioned and compared directly.
GRAD_PARAMS = ["Conv2d_1a_3x3.conv.weight", "Mixed_6b.branch7x7_2.bn.weight", "Mixed_6c.branch7x7dbl_3.conv.weight",
               "Mixed_7c.branch3x3dbl_3b.bn.bias", "fc.weight"]
xg = torch.randn(2, 3, 107, 107)
labels = torch.tensor([3, 998])
io["grad/x"], io["grad/labels"] = nhwc(xg), labels.numpy()


def grads(model, dtype, train, x=None):
    m = build_tv()
    m.load_state_dict(model.state_dict())
    m = m.to(dtype).train(train)
    m.dropout = nn.Identity()
    loss = F.cross_entropy(m((xg if x is None else x).to(dtype)), labels)
    loss.backward()
    out = {n: p.grad.double() for n, p in m.named_parameters() if n in GRAD_PARAMS}
    return loss.detach().double(), out


def ohwi_np(t):
    return t.permute(0, 2, 3, 1).contiguous().numpy() if t.dim() == 4 else t.numpy()


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


# How far the float64 truth itself moves when the input moves by what one float32 rounding does to it
# (each value times 1 + 1e-6 n, n ~ N(0, 1); a few draws): a ReLU whose input lies within float32 noise
# of 0 can fall on either side in any float32 computation, and then a gradient jumps by a whole term
# (2026-11-29: this data's first-layer weight gradient jumps by 3.4e-3 depending on the summation order,
# on AVX2 and AVX-512 alike). The tests allow a float32 result what this measures, plus their floor.
perturb = torch.Generator().manual_seed(7)
x_draws = [xg.double() * (1 + 1e-6 * torch.randn(xg.shape, generator=perturb, dtype=torch.float64)) for _ in range(3)]
for mode, train in [("train", True), ("eval", False)]:
    l32, g32 = grads(tv, torch.float32, train)
    l64, g64 = grads(tv, torch.float64, train)
    io[f"grad_{mode}/loss"] = l64.numpy()
    spread_loss, spread = 0.0, {n: 0.0 for n in GRAD_PARAMS}
    for xd in x_draws:
        ld, gd = grads(tv, torch.float64, train, xd)
        spread_loss = max(spread_loss, abs(ld.item() - l64.item()) / abs(l64.item()))
        for n in GRAD_PARAMS:
            spread[n] = max(spread[n], rel(gd[n], g64[n]))
    io[f"grad_{mode}/f64_spread/loss"] = np.array(spread_loss)
    for n in GRAD_PARAMS:
        io[f"grad_{mode}/{n}"] = ohwi_np(g64[n])
        io[f"grad_{mode}/torch_f32_error/{n}"] = np.array(rel(g32[n], g64[n]))
        io[f"grad_{mode}/f64_spread/{n}"] = np.array(spread[n])
        print(f"grad_{mode} {n}: torch f32 error {rel(g32[n], g64[n]):.3e}, float64 spread {spread[n]:.3e}")
    print(f"grad_{mode} loss: torch f32 error {abs(l32.item() - l64.item()) / abs(l64.item()):.3e}, float64 spread {spread_loss:.3e}")

# ---- 2. keras flavour: gamma = 1, average pools exclude padding, written in Keras' file layout ---------------
# Keras creation order k = 1..94 -> torchvision prefix (docs/inception_v3.md, "The 94 conv units, Keras creation order").
KERAS_ORDER = (["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"]
               + [f"{b}.{n}" for b in ["Mixed_5b", "Mixed_5c", "Mixed_5d"]
                  for n in ["branch1x1", "branch5x5_1", "branch5x5_2", "branch3x3dbl_1", "branch3x3dbl_2",
                            "branch3x3dbl_3", "branch_pool"]]
               + ["Mixed_6a.branch3x3", "Mixed_6a.branch3x3dbl_1", "Mixed_6a.branch3x3dbl_2", "Mixed_6a.branch3x3dbl_3"]
               + [f"{b}.{n}" for b in ["Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"]
                  for n in ["branch1x1", "branch7x7_1", "branch7x7_2", "branch7x7_3", "branch7x7dbl_1",
                            "branch7x7dbl_2", "branch7x7dbl_3", "branch7x7dbl_4", "branch7x7dbl_5", "branch_pool"]]
               + ["Mixed_7a.branch3x3_1", "Mixed_7a.branch3x3_2", "Mixed_7a.branch7x7x3_1", "Mixed_7a.branch7x7x3_2",
                  "Mixed_7a.branch7x7x3_3", "Mixed_7a.branch7x7x3_4"]
               + [f"{b}.{n}" for b in ["Mixed_7b", "Mixed_7c"]
                  for n in ["branch1x1", "branch3x3_1", "branch3x3_2a", "branch3x3_2b", "branch3x3dbl_1",
                            "branch3x3dbl_2", "branch3x3dbl_3a", "branch3x3dbl_3b", "branch_pool"]])
assert len(KERAS_ORDER) == 94
keras = build_tv().eval()
keras.load_state_dict(tv.state_dict())
for mod in keras.modules():
    if isinstance(mod, nn.BatchNorm2d):
        with torch.no_grad():
            mod.weight.fill_(1.0)
avg_pool2d = F.avg_pool2d
torchvision.models.inception.F.avg_pool2d = lambda *a, **k: avg_pool2d(*a, **{**k, "count_include_pad": False})
with torch.no_grad():
    io["keras/x"] = nhwc(x299[:1])
    io["keras/logits"] = keras(x299[:1]).numpy()
torchvision.models.inception.F.avg_pool2d = avg_pool2d
sd = keras.state_dict()
with h5py.File(os.path.join(out_dir, "keras_layout.h5"), "w") as f:
    names = ["input_1"]
    for k, prefix in enumerate(KERAS_ORDER, start=1):
        conv, bn = f"conv2d_{k}", f"batch_normalization_{k}"
        names += [conv, bn, f"activation_{k}"]
        f.create_group(conv).attrs["weight_names"] = np.array([f"{conv}/kernel:0".encode()])
        f[f"{conv}/{conv}/kernel:0"] = sd[prefix + ".conv.weight"].permute(2, 3, 1, 0).numpy()  # OIHW -> HWIO
        g = f.create_group(bn)
        g.attrs["weight_names"] = np.array([f"{bn}/{w}:0".encode() for w in ["beta", "moving_mean", "moving_variance"]])
        f[f"{bn}/{bn}/beta:0"] = sd[prefix + ".bn.bias"].numpy()
        f[f"{bn}/{bn}/moving_mean:0"] = sd[prefix + ".bn.running_mean"].numpy()
        f[f"{bn}/{bn}/moving_variance:0"] = sd[prefix + ".bn.running_var"].numpy()
        f.create_group(f"activation_{k}").attrs["weight_names"] = np.zeros(0)  # weightless, as h5py stores it
    names += ["avg_pool", "predictions"]
    f.create_group("avg_pool").attrs["weight_names"] = np.zeros(0)
    f.create_group("predictions").attrs["weight_names"] = np.array([b"predictions/kernel:0", b"predictions/bias:0"])
    f["predictions/predictions/kernel:0"] = sd["fc.weight"].t().numpy()
    f["predictions/predictions/bias:0"] = sd["fc.bias"].numpy()
    f.attrs["layer_names"] = np.array([n.encode() for n in names])
    f.attrs["backend"] = b"tensorflow"
    f.attrs["keras_version"] = b"2.0.8"

# ---- 4. the paper's model: residual shortcuts (projection mode) + FC head ------------------------------------
class Paper(nn.Module):
    IDENTITY = {"Mixed_5d", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7c"}
    CHANNELS = {"Mixed_5b": (192, 256, False), "Mixed_5c": (256, 288, False), "Mixed_6a": (288, 768, True),
                "Mixed_7a": (768, 1280, True), "Mixed_7b": (1280, 2048, False)}

    def __init__(self):
        super().__init__()
        self.backbone = build_tv()
        self.backbone.fc = nn.Identity()
        self.alpha = nn.ParameterDict()
        self.proj = nn.ModuleDict()
        for i, b in enumerate(["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                               "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"]):
            self.alpha[b] = nn.Parameter(torch.tensor([0.1 + 0.02 * i]))
            if b in self.CHANNELS:
                cin, cout, _ = self.CHANNELS[b]
                bn = nn.BatchNorm2d(cout, eps=1e-3)
                with torch.no_grad():
                    bn.weight.uniform_(0.5, 1.5)
                    bn.bias.normal_(0, 0.1)
                    bn.running_mean.normal_(0, 0.1)
                    bn.running_var.uniform_(0.5, 1.5)
                self.proj[b] = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), bn)
        self.head = nn.Sequential(nn.Linear(2048, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x):
        m = self.backbone
        x = m.maxpool1(m.Conv2d_2b_3x3(m.Conv2d_2a_3x3(m.Conv2d_1a_3x3(x))))
        x = m.maxpool2(m.Conv2d_4a_3x3(m.Conv2d_3b_1x1(x)))
        for b in self.alpha.keys():
            y = getattr(m, b)(x)
            if b in self.IDENTITY:
                s = x
            else:
                s = self.proj[b](F.max_pool2d(x, 3, 2) if self.CHANNELS[b][2] else x)
            x = y + self.alpha[b] * s
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


paper = Paper().eval()
xp = torch.randn(2, 1, 107, 107)
with torch.no_grad():
    io["paper/x"], io["paper/logits_eval"] = nhwc(xp), paper(xp.repeat(1, 3, 1, 1)).numpy()

config = {"arch": "paper", "flavour": "torchvision", "residual": "projection", "residual_learnable": True,
          "residual_init": 0.0, "head_hidden": [16, 16], "head_dropout": 0.0, "num_classes": 3,
          "bn_momentum": 0.1, "bn_eps": 0.001, "input_size": 107}
# Written before any train-mode pass, which would move the running statistics.
with h5py.File(os.path.join(out_dir, "paper.h5"), "w") as f:
    f.attrs["format"] = "livernet-weights"
    f.attrs["format_version"] = np.int64(1)
    f.attrs["model"] = json.dumps(config)

    def put(name, t):
        f["/".join(name.split("."))] = t.detach().numpy()

    for k, v in paper.backbone.state_dict().items():
        if k.startswith("fc.") or k.endswith("num_batches_tracked"):
            continue
        put("backbone." + k, v)
    for b, a in paper.alpha.items():
        put(f"backbone.{b}.shortcut.alpha", a)
    for b, p in paper.proj.items():
        put(f"backbone.{b}.shortcut.conv.weight", p[0].weight)
        for n in ["weight", "bias", "running_mean", "running_var"]:
            put(f"backbone.{b}.shortcut.bn.{n}", getattr(p[1], n))
    for i, idx in [("fc1", 0), ("fc2", 2), ("fc", 4)]:
        put(f"head.{i}.weight", paper.head[idx].weight)
        put(f"head.{i}.bias", paper.head[idx].bias)

PAPER_GRADS = {"alpha_Mixed_6c": lambda p: p.alpha["Mixed_6c"], "alpha_Mixed_7a": lambda p: p.alpha["Mixed_7a"],
               "proj_Mixed_6a_conv": lambda p: p.proj["Mixed_6a"][0].weight, "head_fc1": lambda p: p.head[0].weight,
               "Mixed_6e_branch1x1_conv": lambda p: p.backbone.Mixed_6e.branch1x1.conv.weight}
plabels = torch.tensor([0, 2])
state = {k: v.clone() for k, v in paper.state_dict().items()}
def paper_grads(dtype, x):
    p = Paper()
    p.load_state_dict(state)
    p = p.to(dtype).train()
    loss = F.cross_entropy(p(x.repeat(1, 3, 1, 1).to(dtype)), plabels)
    loss.backward()
    return loss.detach().double(), {k: fn(p).grad.double() for k, fn in PAPER_GRADS.items()}


results = {dtype: paper_grads(dtype, xp) for dtype in [torch.float32, torch.float64]}
io["paper/labels"], io["paper/loss"] = plabels.numpy(), results[torch.float64][0].numpy()
# The float64 spread under a 1e-6 relative input perturbation, as for the torchvision gradients above.
paper_spread = {k: 0.0 for k in PAPER_GRADS}
for _ in range(3):
    _, gd = paper_grads(torch.float64, xp.double() * (1 + 1e-6 * torch.randn(xp.shape, generator=perturb, dtype=torch.float64)))
    for k in PAPER_GRADS:
        paper_spread[k] = max(paper_spread[k], rel(gd[k], results[torch.float64][1][k]))
for k in PAPER_GRADS:
    g32, g64 = results[torch.float32][1][k], results[torch.float64][1][k]
    io[f"paper/grad/{k}"] = ohwi_np(g64)
    io[f"paper/torch_f32_error/{k}"] = np.array(rel(g32, g64))
    io[f"paper/f64_spread/{k}"] = np.array(paper_spread[k])
    print(f"paper {k}: torch f32 error {rel(g32, g64):.3e}, float64 spread {paper_spread[k]:.3e}")

with h5py.File(os.path.join(out_dir, "io.h5"), "w") as f:
    for k, v in io.items():
        f[k] = v
print("model reference data written to", out_dir)
