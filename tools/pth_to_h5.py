#!/usr/bin/env python3
"""Saves a torchvision InceptionV3 state_dict (.pth) as HDF5, one dataset per key, for
tools/convert_weights --from torchvision. Needs PyTorch and h5py (run it where they are installed).

usage: pth_to_h5.py inception_v3_google-0cc3c7bd.pth OUT.h5
"""
import sys

import h5py
import torch


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    obj = torch.load(sys.argv[1], map_location="cpu")
    state = obj.state_dict() if hasattr(obj, "state_dict") else obj
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    with h5py.File(sys.argv[2], "w") as f:
        for key, value in state.items():
            if torch.is_tensor(value):
                f.create_dataset(key, data=value.detach().cpu().numpy())
    print(f"wrote {len(state)} tensors to {sys.argv[2]}")


if __name__ == "__main__":
    main()
