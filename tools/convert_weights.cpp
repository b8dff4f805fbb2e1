// tools/convert_weights: ImageNet InceptionV3 weights from Keras or torchvision -> a livernet weight file.
#include <cstdio>

#include "core/error.h"
#include "io/hdf5.h"
#include "models/import_weights.h"
#include "models/onnx.h"
#include "models/weights.h"
#include "tools/cli.h"
#include "train/model_usage.h"

using namespace livernet;

int main(int argc, char** argv) {
  CLI::App app(
      "Converts ImageNet InceptionV3 weights to a livernet weight file.\n"
      "  Keras:       inception_v3_weights_tf_dim_ordering_tf_kernels[_notop].h5 (v0.5; the md5 is checked)\n"
      "  torchvision: a state_dict saved to HDF5 by tools/pth_to_h5.py (run it where PyTorch is installed)\n"
      "  onnx:        a model livernet exported (tools/export --format onnx), read back exactly",
      "convert_weights");
  std::string from, input, output;
  app.add_option("--from", from, "source format")->required()->check(CLI::IsMember({"keras", "torchvision", "onnx"}));
  app.add_option("input", input, "the source .h5 (or .onnx) file")->required();
  app.add_option("--output,-o", output, "the livernet weight file to write")->required();
  return tools::run(app, argc, argv, [&] {
    if (from == "onnx") {
      // The model and, when the export carried it, the usage of the model file it came from.
      io::OnnxFile f = io::read_onnx(input);
      const auto usage = f.metadata.find("livernet.usage");
      const std::optional<train::ModelUsage> u =
          usage == f.metadata.end() ? std::nullopt
                                    : std::optional<train::ModelUsage>(train::parse_model_usage(usage->second, input));
      const auto usage_attr = [&](io::H5File& h) {
        if (u) train::write_model_usage(h, *u);
      };
      std::size_t tensors = 0;
      for (const auto& m : f.members) tensors += m->named_state().size();
      if (f.members.size() == 1) {
        io::save_weights(*f.members[0], f.members[0]->config(), output, usage_attr);
      } else {
        std::vector<LesionClassifier*> members;
        for (const auto& m : f.members) members.push_back(m.get());
        io::save_ensemble(members, output, usage_attr);
      }
      std::printf("wrote %s: %s, %zu tensors read back from %s (ONNX opset %lld, written by livernet %s), %s\n",
                  output.c_str(),
                  f.members.size() == 1 ? "a model" : str_cat("an ensemble of ", f.members.size(), " models").c_str(),
                  tensors, input.c_str(), static_cast<long long>(f.opset), f.producer_version.c_str(),
                  u ? "with the model file's usage (window, temperature)" : "no usage recorded");
      return 0;
    }
    const io::ConvertReport r = from == "keras" ? io::convert_keras(input, output) : io::convert_torchvision(input, output);
    for (const auto& w : r.warnings) std::fprintf(stderr, "convert_weights: warning: %s\n", w.c_str());
    std::printf("wrote %s: %d tensors, InceptionV3 (%s flavour), %s\n", output.c_str(), r.tensors,
                choice_name(r.config.flavour),
                r.config.num_classes ? str_cat(r.config.num_classes, "-class classifier").c_str() : "backbone only");
    return 0;
  });
}
