// train/train_config.h: parse_train_config on YAML text. A configuration that parses and validates
// must also survive its own round trip (to_yaml -> parse -> validate).
#include "fuzz/fuzz_common.h"
#include "train/train_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace livernet::data;
using namespace livernet::train;
  const std::string text(reinterpret_cast<const char*>(data), size), source = "fuzz-config.yaml";
  TrainConfig c;
  bool parsed = false;
  lnfuzz::expect_clean(source, [&] {
    c = parse_train_config(text, source);
    parsed = true;
  });
  if (!parsed) return 0;
  bool valid = false;
  lnfuzz::expect_clean("", [&] {  // validate() speaks of keys ("config: train.lr ..."), not of the file
    c.validate();
    valid = true;
  });
  if (!valid) return 0;
  const std::string again = c.to_yaml();
  try {
    const TrainConfig back = parse_train_config(again, "round-trip.yaml");
    back.validate();
    if (back.to_yaml() != again) lnfuzz::bug("to_yaml -> parse -> to_yaml changed the configuration:\n" + again +
                                              "\n---- became ----\n" + back.to_yaml());
  } catch (const livernet::Error& e) {
    lnfuzz::bug(std::string("a valid configuration does not survive its round trip: ") + e.what() + "\n" + again);
  }
  return 0;
}
