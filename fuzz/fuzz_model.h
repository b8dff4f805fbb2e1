// A tiny model for the weight-file target and its seeds: the loader's checks (names, shapes, OIHW
// layout, strict / non-strict, prefixes) without building InceptionV3 for every input.
#pragma once

#include <memory>

#include "layers/layers.h"
#include "models/config.h"

namespace lnfuzz {

class TinyNet : public livernet::Module {
 public:
  TinyNet() : Module("TinyNet") {
    stem = register_module("backbone", std::make_shared<livernet::ConvBnReLU>(1, 2, 3, 3));
    fc = register_module("fc", std::make_shared<livernet::Linear>(2, 3));
  }
  livernet::Tensor forward(const livernet::Tensor& x) override { return (*fc)((*stem)(x)); }
  livernet::ConvBnReLU* stem;
  livernet::Linear* fc;
};

}  // namespace lnfuzz
