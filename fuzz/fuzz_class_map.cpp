// data/lesions.h: ClassMap::parse_yaml and ClassMap::parse_csv on the same text, then match() on a
// few structure names as extract_lesions does.
#include "fuzz/fuzz_common.h"
#include "data/lesions.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using livernet::data::ClassMap;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto use = [](const ClassMap& m) {
    for (const char* s : {"livertumor01", "Liver_Cyst", "portalvein", ""}) {
      const int c = m.match(s);
      if (c < -1 || c >= static_cast<int>(m.classes.size())) lnfuzz::bug("ClassMap::match returned a bad class");
    }
  };
  lnfuzz::expect_clean("classes.yaml", [&] { use(ClassMap::parse_yaml(text, "classes.yaml")); });
  lnfuzz::expect_clean("classes.csv", [&] { use(ClassMap::parse_csv(text, "classes.csv")); });
  return 0;
}
