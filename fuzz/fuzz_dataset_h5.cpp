// data/dataset.h: load_dataset_h5 on one HDF5 file.
#include "fuzz/fuzz_common.h"
#include "data/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = lnfuzz::Scratch::get().write("input.h5", data, size);
  lnfuzz::expect_clean(path, [&] { (void)livernet::data::load_dataset_h5(path); });
  return 0;
}
