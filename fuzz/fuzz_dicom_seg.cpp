// ct/dicom.h: read_dicom_seg on one file, placed on fuzz/fuzz_grid.h's CT grid.
#include "fuzz/fuzz_common.h"
#include "fuzz/fuzz_grid.h"
#include "ct/dicom.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = lnfuzz::Scratch::get().write("input.dcm", data, size);
  lnfuzz::expect_clean(path, [&] { (void)livernet::io::read_dicom_seg(path, lnfuzz::ct_grid()); });
  return 0;
}
