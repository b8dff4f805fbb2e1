// tools/make_phantoms: a synthetic dataset of liver-lesion CT patches (HU) in livernet's dataset format.
#include <algorithm>
#include <cstdio>

#include "data/dataset.h"
#include "data/phantom_volumes.h"
#include "data/phantoms.h"
#include "tools/cli.h"

using namespace livernet;

int main(int argc, char** argv) {
  CLI::App app("Generates synthetic liver-lesion CT patches in HU (cysts vs colorectal metastases, optionally\n"
               "haemangiomas) with per-patient contrast, noise and texture, and writes a dataset file.",
               "make_phantoms");
  data::PhantomConfig c;
  std::string output;
  std::uint64_t seed = 1;
  std::string volumes, layout = "nifti", orientation = "axial", volume_size;
  app.add_option("--output,-o", output, "dataset file of patches to write (.h5)");
  app.add_option("--volumes", volumes, "instead: write CT volumes with lesion masks under this folder (for tools/extract_lesions)");
  app.add_option("--layout", layout, "with --volumes: nifti, ircadb or dicom-seg")->capture_default_str()
      ->check(CLI::IsMember({"nifti", "ircadb", "dicom-seg"}));
  app.add_option("--orientation", orientation, "with --volumes: axial, flipped, permuted or oblique")->capture_default_str()
      ->check(CLI::IsMember({"axial", "flipped", "permuted", "oblique"}));
  app.add_option("--volume-size", volume_size, "with --volumes: voxels, e.g. 128x112x36");
  app.add_option("--patients", c.patients, "number of patients")->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_option("--min-lesions", c.min_lesions, "lesions per patient, at least")->capture_default_str()->check(CLI::Range(1, 100));
  app.add_option("--max-lesions", c.max_lesions, "lesions per patient, at most")->capture_default_str()->check(CLI::Range(1, 100));
  app.add_option("--size", c.size, "patch size in pixels")->capture_default_str()->check(CLI::Range(16, 1024));
  app.add_option("--hard-fraction", c.hard_fraction, "share of hard cases")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  app.add_flag("--hemangioma", c.hemangioma, "add a third class, haemangioma");
  app.add_option("--seed", seed, "random seed")->capture_default_str();
  return tools::run(app, argc, argv, [&] {
    LN_CHECK(c.min_lesions <= c.max_lesions, "--min-lesions must not exceed --max-lesions");
    LN_CHECK(output.empty() != volumes.empty(), "give either --output (patches) or --volumes (CT volumes)");
    if (!volumes.empty()) {
      data::VolumePhantomConfig v;
      v.patients = c.patients;
      v.min_lesions = c.min_lesions;
      v.max_lesions = std::min(c.max_lesions, 6);
      v.layout = layout;
      v.orientation = orientation;
      v.seed = seed;
      if (!volume_size.empty()) {
        long long a = 0, b = 0, k = 0;
        char x1 = 0, x2 = 0;
        LN_CHECK(std::sscanf(volume_size.c_str(), "%lld%c%lld%c%lld", &a, &x1, &b, &x2, &k) == 5 && x1 == 'x' && x2 == 'x' &&
                     a >= 32 && b >= 32 && k >= 8 && a <= 1024 && b <= 1024 && k <= 1024,
                 "--volume-size must be like 128x112x36 (32..1024 in-plane, 8..1024 slices), got '", volume_size, "'");
        v.size = {a, b, k};
      }
      const auto pv = data::write_phantom_volumes(v, volumes);
      std::size_t lesions = 0;
      for (const auto& p : pv) lesions += p.lesions.size();
      std::printf("wrote %zu %s patient(s) with %zu lesion(s) under %s\n", pv.size(), layout.c_str(), lesions, volumes.c_str());
      return 0;
    }
    c.seed = seed;
    const data::Dataset d = data::make_phantoms(c);
    data::save_dataset_h5(d, output);
    std::printf("wrote %s: %s\n", output.c_str(), d.summary().c_str());
    return 0;
  });
}
