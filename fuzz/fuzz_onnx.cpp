// models/onnx.h: read_onnx on one file (the protobuf reader under it, the metadata, the model configuration
// and the initializers). A file that gets as far as a valid livernet configuration builds the InceptionV3 it
// describes, so those inputs run slowly; the structure before that is where most of the parsing is.
#include "fuzz/fuzz_common.h"
#include "models/onnx.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = lnfuzz::Scratch::get().write("input.onnx", data, size);
  lnfuzz::expect_clean(path, [&] { (void)livernet::io::read_onnx(path); });
  return 0;
}
