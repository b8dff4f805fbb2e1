// io/image.h: read_npy on one file, with the default element limit and with the manifest's.
#include "fuzz/fuzz_common.h"
#include "io/image.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = lnfuzz::Scratch::get().write("input.npy", data, size);
  lnfuzz::expect_clean(path, [&] { (void)livernet::io::read_npy(path); });
  lnfuzz::expect_clean(path, [&] { (void)livernet::io::read_npy(path, std::int64_t{1} << 26); });
  return 0;
}
