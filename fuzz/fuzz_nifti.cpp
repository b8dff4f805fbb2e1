// ct/nifti.h: read_nifti_volume and read_nifti_labels on one file (NIfTI-1/2, either byte order, gzip by
// its magic bytes).
#include "fuzz/fuzz_common.h"
#include "ct/nifti.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = lnfuzz::Scratch::get().write("input.nii", data, size);
  livernet::io::NiftiInfo info;
  lnfuzz::expect_clean(path, [&] { (void)livernet::io::read_nifti_volume(path, &info); });
  lnfuzz::expect_clean(path, [&] { (void)livernet::io::read_nifti_labels(path, &info); });
  return 0;
}
