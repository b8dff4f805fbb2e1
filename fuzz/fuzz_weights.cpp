// models/weights.h: read_model_config and load_weights (strict, non-strict, with prefixes) on one HDF5 file,
// into fuzz/fuzz_model.h's TinyNet.
#include "fuzz/fuzz_common.h"
#include "fuzz/fuzz_model.h"
#include "models/weights.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace livernet::io;
  const std::string path = lnfuzz::Scratch::get().write("input.h5", data, size);
  lnfuzz::expect_clean(path, [&] { (void)read_model_config(path); });
  static lnfuzz::TinyNet net;
  lnfuzz::expect_clean(path, [&] { (void)load_weights(net, path); });
  LoadOptions loose;
  loose.strict = false;
  loose.only_prefixes = {"backbone."};
  lnfuzz::expect_clean(path, [&] { (void)load_weights(net, path, loose).summary(); });
  return 0;
}
