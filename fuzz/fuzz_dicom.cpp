// ct/dicom.h: read_dicom_series, read_dicom_mask_series (on fuzz/fuzz_grid.h's CT grid) and scan_dicom_tree
// on one folder. The input is up to four DICOM files joined by lnfuzz::kNextFile (the seeds are whole
// series); each becomes a file of the folder.
#include "fuzz/fuzz_common.h"
#include "fuzz/fuzz_grid.h"
#include "ct/dicom.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto files = lnfuzz::split_files(data, size, 4);
  const auto dir = lnfuzz::Scratch::get().fresh_dir("series");
  for (std::size_t i = 0; i < files.size(); ++i) lnfuzz::Scratch::write(dir, "slice" + std::to_string(i) + ".dcm", files[i]);
  const std::string d = dir.string();
  livernet::io::DicomSeriesInfo info;
  lnfuzz::expect_clean(d, [&] { (void)livernet::io::read_dicom_series(d, &info); });
  lnfuzz::expect_clean(d, [&] { (void)livernet::io::read_dicom_mask_series(d, lnfuzz::ct_grid()); });
  lnfuzz::expect_clean(d, [&] { (void)livernet::io::scan_dicom_tree(d); });
  return 0;
}
