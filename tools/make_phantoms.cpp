// tools/make_phantoms: a synthetic dataset of liver-lesion CT patches (HU) in livernet's dataset format.
#include <cstdio>

#include "io/dataset.h"
#include "tools/common/phantoms.h"
#include "tools/common/tool.h"

using namespace livernet;

int main(int argc, char** argv) {
  CLI::App app("Generates synthetic liver-lesion CT patches in HU (cysts vs colorectal metastases, optionally\n"
               "haemangiomas) with per-patient contrast, noise and texture, and writes a dataset file.",
               "make_phantoms");
  tools::PhantomConfig c;
  std::string output;
  std::uint64_t seed = 1;
  app.add_option("--output,-o", output, "dataset file to write (.h5)")->required();
  app.add_option("--patients", c.patients, "number of patients")->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_option("--min-lesions", c.min_lesions, "lesions per patient, at least")->capture_default_str()->check(CLI::Range(1, 100));
  app.add_option("--max-lesions", c.max_lesions, "lesions per patient, at most")->capture_default_str()->check(CLI::Range(1, 100));
  app.add_option("--size", c.size, "patch size in pixels")->capture_default_str()->check(CLI::Range(16, 1024));
  app.add_option("--hard-fraction", c.hard_fraction, "share of hard cases")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  app.add_flag("--hemangioma", c.hemangioma, "add a third class, haemangioma");
  app.add_option("--seed", seed, "random seed")->capture_default_str();
  return tools::run(app, argc, argv, [&] {
    LN_CHECK(c.min_lesions <= c.max_lesions, "--min-lesions must not exceed --max-lesions");
    c.seed = seed;
    const io::Dataset d = tools::make_phantoms(c);
    io::save_dataset_h5(d, output);
    std::printf("wrote %s: %s\n", output.c_str(), d.summary().c_str());
    return 0;
  });
}
