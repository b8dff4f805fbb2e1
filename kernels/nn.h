// The raw neural-network ops (no autograd), one header per family: convolution (conv.h), batch norm
// (norm.h), pooling (pool.h), concat/split/pad/crop (copy.h), GEMM and linear (linear.h), losses
// (loss.h); the element-wise ones, activation backward and dropout included, are in elementwise.h.
// Tensors are NHWC; convolution weights are OHWI ([Cout, kh, kw, Cin/groups]). The autograd wrappers
// are in layers/functional.h.
#pragma once

#include "kernels/conv.h"
#include "kernels/copy.h"
#include "kernels/elementwise.h"
#include "kernels/linear.h"
#include "kernels/loss.h"
#include "kernels/norm.h"
#include "kernels/pool.h"
