// Image and array files: NumPy .npy (read/write) and PNG (8/16-bit, grey/RGB, read), with one-line
// errors naming the file for anything malformed (bad magic, truncated data, absurd shapes, ...).
#pragma once

#include <string>

#include "core/tensor.h"

namespace livernet::io {

// Reads a little-endian, C-order .npy of float32/float64/int8/uint8/int16/uint16/int32/int64/bool.
// Floats load as f32, integers as i32 or i64 (uint8/bool as u8) unless `as` converts.
Tensor read_npy(const std::string& path, std::int64_t max_elements = std::int64_t{1} << 31);
// Writes f32/i32/i64/u8 tensors (bf16/f16 as float32).
void write_npy(const std::string& path, const Tensor& t);

// PNG -> [H, W, C] f32 tensor of the stored sample values (0..255 or 0..65535), C = 1 (grey) or 3
// (RGB; palettes expanded, alpha dropped). `bit_depth` receives 8 or 16.
Tensor read_png(const std::string& path, int* bit_depth = nullptr);
// Writes an 8-bit grey or RGB PNG from a [H, W, 1|3] tensor with values in 0..255 (clamped).
void write_png(const std::string& path, const Tensor& image);
// The same PNG as bytes in memory (e.g. for a data: URI in an HTML report).
std::string encode_png(const Tensor& image);
// Standard base64 (RFC 4648) of bytes.
std::string base64(const std::string& bytes);

}  // namespace livernet::io
