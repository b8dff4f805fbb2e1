// data/dataset.h: load_manifest. The input is the CSV manifest, optionally followed (lnfuzz::kNextFile) by up
// to three image files written beside it as img1.*, img2.*, img3.* (.npy when the bytes start with the
// NumPy magic, else .png), so that rows can refer to them.
#include "fuzz/fuzz_common.h"
#include "data/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto files = lnfuzz::split_files(data, size, 4);
  const auto dir = lnfuzz::Scratch::get().fresh_dir("manifest");
  for (std::size_t i = 1; i < files.size(); ++i) {
    const bool npy = files[i].substr(0, 6) == "\x93NUMPY";
    lnfuzz::Scratch::write(dir, "img" + std::to_string(i) + (npy ? ".npy" : ".png"), files[i]);
  }
  const std::string path = lnfuzz::Scratch::write(dir, "manifest.csv", files[0]);
  lnfuzz::expect_clean(path, [&] { (void)livernet::data::load_manifest(path); });
  livernet::data::ManifestOptions o;
  o.class_names = {"cyst", "metastasis"};
  lnfuzz::expect_clean(path, [&] { (void)livernet::data::load_manifest(path, o); });
  return 0;
}
