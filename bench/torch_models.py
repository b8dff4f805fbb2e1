"""PyTorch versions of livernet's models, for side-by-side benchmarks (test/bench-only; never a runtime
dependency): torchvision's InceptionV3, and the paper's model = the same backbone + identity residual
shortcuts y = block(x) + a * x around Mixed_5d, 6b..6e, 7c + GAP -> FC 512 -> ReLU -> Dropout 0.4 ->
FC 512 -> ReLU -> Dropout 0.4 -> FC classes."""
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

IDENTITY = ["Mixed_5d", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7c"]
BLOCKS = ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
          "Mixed_7a", "Mixed_7b", "Mixed_7c"]


class PaperModel(nn.Module):
    def __init__(self, classes, hidden=(512, 512), dropout=0.4):
        super().__init__()
        self.backbone = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
        self.backbone.fc = nn.Identity()
        self.alpha = nn.ParameterDict({b: nn.Parameter(torch.zeros(1)) for b in IDENTITY})
        layers, width = [], 2048
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        self.head = nn.Sequential(*layers, nn.Linear(width, classes))

    def forward(self, x):
        m = self.backbone
        x = m.maxpool1(m.Conv2d_2b_3x3(m.Conv2d_2a_3x3(m.Conv2d_1a_3x3(x))))
        x = m.maxpool2(m.Conv2d_4a_3x3(m.Conv2d_3b_1x1(x)))
        for b in BLOCKS:
            y = getattr(m, b)(x)
            x = y + self.alpha[b] * x if b in IDENTITY else y
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def build(name, classes):
    if name == "paper":
        return PaperModel(classes)
    return torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=classes)


def benchmark_step(name, batch, size, train, compiled=False, device="cuda", amp=True):
    """The step both bench/compare_pytorch_gpu.py and bench/torch_profile.py time: the model in channels_last,
    random input, labels 0/1, and either a training step (bf16 autocast, cross-entropy, backward, SGD lr 1e-3)
    or a forward pass without gradients. Returns the step function."""
    import contextlib
    m = build(name, 2).to(device).to(memory_format=torch.channels_last)
    m.train(train)
    if compiled:
        m = torch.compile(m)
    x = torch.randn(batch, 3, size, size, device=device).to(memory_format=torch.channels_last)
    y = torch.arange(batch, device=device) % 2
    opt = torch.optim.SGD(m.parameters(), lr=1e-3)

    def step():
        with torch.autocast(device, dtype=torch.bfloat16) if amp else contextlib.nullcontext():
            if train:
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(m(x).float(), y)
            else:
                with torch.no_grad():
                    m(x)
        if train:
            loss.backward()
            opt.step()

    return step
