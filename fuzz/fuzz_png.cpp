// io/image.h: read_png on one file.
#include "fuzz/fuzz_common.h"
#include "io/image.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = lnfuzz::Scratch::get().write("input.png", data, size);
  int depth = 0;
  lnfuzz::expect_clean(path, [&] { (void)livernet::io::read_png(path, &depth); });
  return 0;
}
