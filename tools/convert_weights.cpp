// tools/convert_weights: ImageNet InceptionV3 weights from Keras or torchvision -> a livernet weight file.
#include <cstdio>

#include "core/error.h"
#include "models/import_weights.h"
#include "tools/cli.h"

using namespace livernet;

int main(int argc, char** argv) {
  CLI::App app("Converts ImageNet InceptionV3 weights to a livernet weight file.\n"
               "  Keras:       inception_v3_weights_tf_dim_ordering_tf_kernels[_notop].h5 (v0.5; the md5 is checked)\n"
               "  torchvision: a state_dict saved to HDF5 by tools/pth_to_h5.py (run it where PyTorch is installed)",
               "convert_weights");
  std::string from, input, output;
  app.add_option("--from", from, "source format")->required()->check(CLI::IsMember({"keras", "torchvision"}));
  app.add_option("input", input, "the source .h5 file")->required();
  app.add_option("--output,-o", output, "the livernet weight file to write")->required();
  return tools::run(app, argc, argv, [&] {
    const io::ConvertReport r = from == "keras" ? io::convert_keras(input, output) : io::convert_torchvision(input, output);
    for (const auto& w : r.warnings) std::fprintf(stderr, "convert_weights: warning: %s\n", w.c_str());
    std::printf("wrote %s: %d tensors, InceptionV3 (%s flavour), %s\n", output.c_str(), r.tensors,
                choice_name(r.config.flavour),
                r.config.num_classes ? str_cat(r.config.num_classes, "-class classifier").c_str() : "backbone only");
    return 0;
  });
}
