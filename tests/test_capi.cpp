// The C API in-process (capi/livernet.h, linked from liblivernet.so): a CT volume handed over as arrays and
// a grid gives the lesions and probabilities tools/predict --ct gives for the same volume read from its
// NIfTI file (in a permuted orientation, so the grid's axes matter); errors come back as strings.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "ct/nifti.h"
#include "data/lesions.h"
#include "data/phantom_volumes.h"
#include "layers/init.h"
#include "livernet.h"
#include "models/weights.h"
#include "test_util.h"
#include "train/model_usage.h"

using namespace livernet;
namespace fs = std::filesystem;
namespace lt = livernet::testing;

TEST(CApi, ClassifiesAVolumeAsPredictCtDoes) {
  lt::TempDir dir;
  const ModelConfig cfg = lt::two_class_config(75);
  init::set_seed(5);
  LesionClassifier net(cfg);
  io::save_weights(net, cfg, dir.str("w.h5"));
  data::VolumePhantomConfig pc = lt::small_phantoms("nifti", 1);
  pc.orientation = "permuted";
  pc.seed = 11;
  const auto truth = data::write_phantom_volumes(pc, dir.str("data"));
  const fs::path p = fs::path(dir.str("data")) / truth[0].folder;
  const std::string cmd = std::string(LIVERNET_TOOLS_DIR) + "/predict -w " + dir.str("w.h5") + " --ct " +
                          (p / "ct.nii.gz").string() + " --mask " + (p / "labels.nii.gz").string() +
                          " --lesions '2|3' --patch-size 32 --device cpu -o " + dir.str("ct.csv") + " 2> " + dir.str("err");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << lt::slurp(dir.str("err"));
  const auto rows = lt::read_csv_text(lt::slurp(dir.str("ct.csv")));

  const io::Volume ct = io::read_nifti_volume((p / "ct.nii.gz").string());
  const io::LabelVolume labels = io::read_nifti_labels((p / "labels.nii.gz").string());
  std::vector<unsigned char> mask(labels.v.size());
  for (std::size_t i = 0; i < mask.size(); ++i) mask[i] = labels.v[i] == 2 || labels.v[i] == 3;
  double axes[9];
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) axes[3 * a + b] = ct.grid.axes[a][b];
  livernet_model* m = livernet_model_load(dir.str("w.h5").c_str(), "cpu");
  ASSERT_NE(m, nullptr) << livernet_last_error();
  EXPECT_EQ(livernet_model_num_classes(m), 2);
  EXPECT_STREQ(livernet_model_class_name(m, 1), "metastasis");
  EXPECT_EQ(livernet_model_class_name(m, 2), nullptr);
  EXPECT_NE(std::string(livernet_last_error()).find("class 2 of 2"), std::string::npos) << livernet_last_error();
  livernet_patch_options o = livernet_patch_options_default();
  EXPECT_EQ(o.size, 96);
  o.size = 32;
  livernet_lesion* lesions = nullptr;
  float* probs = nullptr;
  const int n = livernet_classify_volume(m, ct.v.data(), mask.data(), static_cast<int>(ct.grid.size[0]),
                                         static_cast<int>(ct.grid.size[1]), static_cast<int>(ct.grid.size[2]),
                                         ct.grid.spacing.data(), ct.grid.origin.data(), axes, &o, &lesions, &probs);
  ASSERT_EQ(n, static_cast<int>(truth[0].lesions.size())) << livernet_last_error();
  ASSERT_EQ(rows.size(), static_cast<std::size_t>(n) + 1);
  for (int i = 0; i < n; ++i) {
    const auto& row = rows[static_cast<std::size_t>(i) + 1];
    EXPECT_EQ(row[0], "L" + std::to_string(lesions[i].lesion));
    for (int a = 0; a < 3; ++a) {
      EXPECT_NEAR(lesions[i].voxel[a], std::stod(row[1 + a]), 0.051) << i;
      EXPECT_NEAR(lesions[i].lps_mm[a], std::stod(row[4 + a]), 0.051) << i;
    }
    EXPECT_NEAR(probs[2 * i], std::stod(row[10]), 1e-5) << i;
    EXPECT_NEAR(probs[2 * i + 1], std::stod(row[11]), 1e-5) << i;
  }
  livernet_free(lesions);
  livernet_free(probs);

  // An empty mask: no lesion, nothing allocated. A bad grid: -1 and the reason.
  std::vector<unsigned char> none(mask.size(), 0);
  EXPECT_EQ(livernet_classify_volume(m, ct.v.data(), none.data(), static_cast<int>(ct.grid.size[0]),
                                     static_cast<int>(ct.grid.size[1]), static_cast<int>(ct.grid.size[2]),
                                     ct.grid.spacing.data(), ct.grid.origin.data(), axes, nullptr, &lesions, &probs),
            0) << livernet_last_error();
  EXPECT_EQ(lesions, nullptr);
  const double bad_spacing[3] = {0.8, -1, 2.5};
  EXPECT_EQ(livernet_classify_volume(m, ct.v.data(), mask.data(), static_cast<int>(ct.grid.size[0]),
                                     static_cast<int>(ct.grid.size[1]), static_cast<int>(ct.grid.size[2]), bad_spacing,
                                     ct.grid.origin.data(), axes, nullptr, &lesions, &probs),
            -1);
  EXPECT_NE(std::string(livernet_last_error()).find("livernet_classify_volume"), std::string::npos) << livernet_last_error();
  EXPECT_EQ(livernet_model_patch_options(m).size, 96);  // the file records no geometry: extract_lesions' defaults
  livernet_model_free(m);

  // A model file that records its training patches' geometry: options NULL cuts lesions that way.
  data::ExtractOptions cut;
  cut.size = 32;
  train::ModelUsage usage;
  usage.extraction = data::extraction_json(cut);
  train::rewrite_model_usage(dir.str("w.h5"), usage);
  m = livernet_model_load(dir.str("w.h5").c_str(), "cpu");
  ASSERT_NE(m, nullptr) << livernet_last_error();
  EXPECT_EQ(livernet_model_patch_options(m).size, 32);
  EXPECT_EQ(livernet_classify_volume(m, ct.v.data(), mask.data(), static_cast<int>(ct.grid.size[0]),
                                     static_cast<int>(ct.grid.size[1]), static_cast<int>(ct.grid.size[2]),
                                     ct.grid.spacing.data(), ct.grid.origin.data(), axes, nullptr, &lesions, &probs),
            n)
      << livernet_last_error();
  for (int i = 0; i < n; ++i)
    EXPECT_NEAR(probs[2 * i + 1], std::stod(rows[static_cast<std::size_t>(i) + 1][11]), 1e-5) << i;
  livernet_free(lesions);
  livernet_free(probs);
  livernet_model_free(m);
  EXPECT_EQ(livernet_model_load(dir.str("missing.h5").c_str(), "cpu"), nullptr);
  EXPECT_NE(std::string(livernet_last_error()).find("missing.h5"), std::string::npos);
}
