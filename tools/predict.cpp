// tools/predict: class probabilities (or logits) of a trained model for images in .npy, .png or a
// dataset .h5, written as CSV: a header, then one row per image (its id, then one value per class).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "io/csv.h"
#include "autograd/autograd.h"
#include "io/hdf5.h"
#include "io/image.h"
#include "data/preprocess.h"
#include "kernels/tensor_ops.h"
#include "models/weights.h"
#include "kernels/nn.h"
#include "tools/cli.h"
#include "data/lesions.h"
#include "train/classifier.h"

using namespace livernet;

namespace {

struct Batch {
  Tensor images;  // [N, H, W, C]: in HU when `hu`, else already scaled for the model
  bool hu = false;
  std::vector<std::string> ids;
};

std::string extension(const std::string& path) {
  std::string e = std::filesystem::path(path).extension().string();
  for (char& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

Batch load(const std::string& path, bool preprocess, float png_offset) {
  const std::string ext = extension(path);
  Batch b;
  if (ext == ".npy") {
    Tensor x = to_dtype(io::read_npy(path), DType::f32);
    if (x.dim() == 2) x = x.reshape({1, x.size(0), x.size(1), 1});
    else if (x.dim() == 3) x = x.reshape({x.size(0), x.size(1), x.size(2), 1});
    LN_CHECK(x.dim() == 4, path, ": expected an array of shape (N, H, W, C), (N, H, W) or (H, W), got ", x.shape().str());
    LN_CHECK(x.size(0) > 0, path, ": the array holds no image");
    LN_CHECK(x.size(3) == 1 || x.size(3) == 3, path, ": images must have 1 (grey) or 3 channels, got ", x.size(3),
             " (shape ", x.shape().str(), ")");
    for (float v : x.to_vector<float>())
      LN_CHECK(std::isfinite(v), path, ": the array contains NaN or infinity");
    b.images = x;
    b.hu = preprocess;
    for (std::int64_t i = 0; i < x.size(0); ++i) b.ids.push_back(std::to_string(i));
  } else if (ext == ".png") {
    int depth = 8;
    Tensor img = io::read_png(path, &depth);
    if (depth == 16) {
      Tensor hu = Tensor::empty(img.shape());
      const float* s = img.data<float>();
      float* d = hu.data<float>();
      for (std::int64_t i = 0; i < img.numel(); ++i) d[i] = s[i] - png_offset;
      img = hu;
      b.hu = true;
    } else {
      img = data::scale_8bit(img);
    }
    b.images = img.reshape({1, img.size(0), img.size(1), img.size(2)});
    b.ids.push_back(std::filesystem::path(path).filename().string());
  } else if (ext == ".h5" || ext == ".hdf5") {
    io::H5File f = io::H5File::open(path);
    LN_CHECK(f.is_dataset("images"), path, ": no 'images' dataset (not a livernet dataset file?)");
    Tensor hu = f.read("images", DType::f32);
    LN_CHECK(hu.dim() == 3, path, ": 'images' must be (N, H, W) in HU, got ", hu.shape().str());
    for (std::int64_t i = 0; i < hu.numel(); ++i)
      LN_CHECK(std::isfinite(hu.data<float>()[i]), path, ": 'images' contains NaN or infinity (image ", i / (hu.size(1) * hu.size(2)), ")");
    b.images = hu.reshape({hu.size(0), hu.size(1), hu.size(2), 1});
    b.hu = true;
    if (f.is_dataset("lesion_id")) {
      b.ids = f.read_strings("lesion_id");
      LN_CHECK(static_cast<std::int64_t>(b.ids.size()) == hu.size(0), path, ": ", b.ids.size(), " lesion ids for ",
               hu.size(0), " images");
    } else {
      for (std::int64_t i = 0; i < hu.size(0); ++i) b.ids.push_back(std::to_string(i));
    }
  } else {
    LN_FAIL(path, ": unsupported input type '", ext, "' (expected .npy, .png or a dataset .h5)");
  }
  return b;
}

// The smallest patch side tools/extract_lesions writes: anything smaller is not a lesion patch.
constexpr std::int64_t kMinPatch = 16;
// InceptionV3's smallest input.
constexpr std::int64_t kMinNetwork = 75;

// What is done to the images of one input, checked before anything is done: with resize = "model" the
// images must be square patches of at least kMinPatch pixels (as training saw them: resized, never
// stretched); with "none" at least the network's 75x75. Returns the description printed on stderr.
std::string plan(const std::string& path, const Batch& b, const ModelConfig& cfg, const std::string& resize,
                 const data::HuWindow& window, const std::string& window_from) {
  const std::int64_t h = b.images.size(1), w = b.images.size(2);
  std::string what = str_cat(b.images.size(0), " image(s) ", h, "x", w);
  if (resize == "model" && cfg.input_size > 0) {
    LN_CHECK(h >= kMinPatch && w >= kMinPatch, path, ": images are ", h, "x", w, ", too small to be lesion patches (at least ",
             kMinPatch, "x", kMinPatch, "; tools/extract_lesions writes 16 to 1024)");
    LN_CHECK(h == w, path, ": images are ", h, "x", w, "; the model was trained on square patches resized to ", cfg.input_size,
             "x", cfg.input_size, ", so a non-square image would be stretched: crop it square, or --resize none to run the "
             "network at the image's own size");
    what += h == cfg.input_size ? str_cat(" at the model's input size") : str_cat(", resized to ", cfg.input_size, "x", cfg.input_size,
                                                                               " (bilinear", b.hu ? ", in HU" : "", ")");
  } else {
    LN_CHECK(h >= kMinNetwork && w >= kMinNetwork, path, ": images are ", h, "x", w, ", smaller than the network's minimum ",
             kMinNetwork, "x", kMinNetwork, resize == "none" ? " (--resize none runs them at their own size)" : "");
    what += " at their own size";
  }
  if (b.hu) what += str_cat(", HU window level ", window.level, " width ", window.width, " (", window_from, ") -> [-1, 1]");
  else what += ", values used as the model's input (no window)";
  if (!b.hu) {  // the network saw [-1, 1] in training: values far outside are HU given without --preprocess
    const std::vector<float> v = b.images.to_vector<float>();
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    if (*lo < -3.f || *hi > 3.f)
      what += str_cat("; warning: values span ", *lo, " to ", *hi, " but training fed the network [-1, 1]: if they are HU, "
                      "add --preprocess");
  }
  return what;
}

// A probability or logit as a CSV cell (6 significant digits).
std::string value_cell(float v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

// --ct / --mask: where the CT and its lesion mask are, in the layouts data::load_patient reads.
data::PatientSource ct_source(const std::string& ct, const std::string& mask, std::string* layout) {
  namespace fs = std::filesystem;
  LN_CHECK(fs::exists(ct), ct, ": no such file or folder");
  LN_CHECK(fs::exists(mask), mask, ": no such file or folder");
  data::PatientSource src;
  src.name = "ct";
  src.ct = ct;
  const std::string ext = extension(ct);
  if (fs::is_regular_file(ct) && (ext == ".nii" || ext == ".gz")) {
    LN_CHECK(fs::is_regular_file(mask), mask, ": with a NIfTI volume the mask must be a NIfTI label map");
    *layout = "nifti";
    src.masks = {mask};
    return src;
  }
  LN_CHECK(fs::is_directory(ct), ct, ": expected a DICOM series folder or a NIfTI file (.nii, .nii.gz)");
  if (fs::is_regular_file(mask)) {  // a DICOM-SEG
    *layout = "dicom-seg";
    src.masks = {mask};
    return src;
  }
  // A binary mask series (3D-IRCADb style), or a folder of them, one per structure.
  *layout = "ircadb";
  for (const auto& e : fs::directory_iterator(mask))
    if (e.is_directory()) src.masks.push_back(e.path().string());
  std::sort(src.masks.begin(), src.masks.end());
  if (src.masks.empty()) src.masks.push_back(mask);
  return src;
}

// tools/predict --ct: every lesion of the mask, extracted as tools/extract_lesions does, classified; one
// row per lesion with its centroid in the CT's own voxel indices and in patient coordinates.
int predict_ct(train::Classifier& clf, const std::string& ct, const std::string& mask, const std::string& lesions,
               bool lesions_given, const data::ExtractOptions& o, const std::string& output, int batch) {
  const data::ClassMap map = data::ClassMap::single(lesions, "lesion", "--lesions");
  std::string layout;
  const data::PatientSource src = ct_source(ct, mask, &layout);
  data::PatientScan scan = data::load_patient(src, layout, map);
  scan.patient = "ct";
  if (scan.structures.empty()) {
    std::string held;
    for (std::size_t i = 0; i < scan.ignored.size() && i < 8; ++i) held += (i ? ", " : "") + printable(scan.ignored[i], 40);
    LN_FAIL(mask, ": no structure matches --lesions '", lesions, "' (",
            held.empty() ? std::string("the mask holds none") : "it holds " + held, ")");
  }
  if (!lesions_given && scan.structures.size() > 1) {  // e.g. a label map with the liver as well as its lesions
    std::string names;
    for (const auto& [name, m] : scan.structures) names += (names.empty() ? "" : ", ") + printable(name, 40);
    LN_FAIL(mask, ": holds several structures (", names, "); say which are lesions with --lesions, e.g. --lesions '",
            printable(scan.structures.back().first, 40), "'");
  }
  const train::CtLesions r = train::classify_ct_lesions(clf, scan, map, o, batch);
  for (const std::string& n : r.notes) std::fprintf(stderr, "predict: note: %s\n", n.c_str());
  std::fprintf(stderr, "predict: %s: %s, %zu lesion(s) in the mask (%lld smaller than %g mm^3 left out); patches %dx%d at "
               "%g mm, HU window level %g width %g -> [-1, 1], resized to %lldx%lld\n", ct.c_str(), scan.ct.grid.str().c_str(),
               r.lesions.size(), static_cast<long long>(r.below_min_volume), o.min_volume_mm3, o.size, o.size,
               o.spacing_mm, clf.window.level, clf.window.width, static_cast<long long>(clf.config().input_size),
               static_cast<long long>(clf.config().input_size));
  const std::vector<std::string> names = clf.class_names();
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header{"lesion", "voxel_i", "voxel_j", "voxel_k", "x_mm", "y_mm", "z_mm", "volume_ml",
                                  "max_diameter_mm", "patch_spacing_mm"};
  for (const std::string& n : names) header.push_back("prob_" + n);
  rows.push_back(header);
  for (const train::LesionPrediction& l : r.lesions) {
    std::vector<std::string> row{str_cat("L", l.lesion),          str_fixed(l.voxel[0], 1),
                                 str_fixed(l.voxel[1], 1),        str_fixed(l.voxel[2], 1),
                                 str_fixed(l.lps_mm[0], 1),       str_fixed(l.lps_mm[1], 1),
                                 str_fixed(l.lps_mm[2], 1),       str_fixed(l.volume_ml, 3),
                                 str_fixed(l.max_diameter_mm, 1), str_fixed(l.patch_spacing_mm, 3)};
    for (float p : l.probs) row.push_back(value_cell(p));
    rows.push_back(row);
  }
  io::write_csv(output, rows);
  if (output != "-") std::fprintf(stderr, "predict: %zu lesion(s) -> %s\n", rows.size() - 1, output.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Runs a trained model on images and writes one CSV row per image: its id, then the probability\n"
               "(or, with --logits, the logit) of each class.",
               "predict");
  std::string weights, output = "-", device = "auto";
  std::vector<std::string> inputs;
  bool logits = false, preprocess = false, uncalibrated = false;
  std::string resize = "model";
  int batch = 16;
  data::HuWindow window;
  float png_offset = 32768.f;
  app.add_option("--weights,-w", weights, "livernet weight file (from tools/train or tools/convert_weights)")->required();
  auto* input_opt = app.add_option("--input,-i", inputs,
                 ".npy (N,H,W,C), (N,H,W) or (H,W): model input values (HU with --preprocess); .png (8-bit: 0..255; 16-bit: "
                 "HU + offset); or a dataset .h5 (HU). Images are resized to the model's input size (--resize)");
  std::string ct, mask, lesions = ".*";
  data::ExtractOptions extract;
  auto* ct_opt = app.add_option("--ct", ct, "instead of --input: a CT volume (a DICOM series folder or a NIfTI file) whose "
                                "lesions --mask outlines; one row per lesion with its centroid, no patient identifier");
  app.add_option("--mask", mask, "with --ct: a NIfTI label map (NIfTI CT), a DICOM-SEG file, or a binary mask series "
                 "folder (or a folder of them, one per structure)");
  app.add_option("--lesions", lesions, "with --ct: the structures of the mask that are lesions (full-match, case-insensitive "
                 "regular expression on label values, segment labels or mask folder names); needed when the mask holds "
                 "several")->capture_default_str();
  app.add_option("--patch-spacing", extract.spacing_mm,
                 "with --ct: in-plane spacing of the patches, mm (default: as "
                 "extract_lesions cut the training data, when the model file records it)")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 10.0));
  app.add_option("--patch-size", extract.size, "with --ct: patch side, pixels")->capture_default_str()->check(CLI::Range(16, 1024));
  app.add_option("--margin", extract.margin_mm, "with --ct: context around the lesion, mm")->capture_default_str()
      ->check(CLI::Range(0.0, 200.0));
  app.add_option("--min-volume", extract.min_volume_mm3, "with --ct: smallest lesion kept, mm^3")->capture_default_str()
      ->check(CLI::Range(0.0, 1e7));
  input_opt->excludes(ct_opt);
  app.add_option("--output,-o", output, "CSV file ('-' = standard output)");
  app.add_flag("--logits", logits, "write logits instead of probabilities (the network's own: no temperature)");
  app.add_flag("--uncalibrated", uncalibrated, "softmax of the logits as they are, without the temperature the model file "
               "records (tools/train fits one on the run's out-of-fold predictions)");
  app.add_flag("--preprocess", preprocess, "treat .npy values as HU: apply the window and scale to [-1, 1]");
  app.add_option("--window-level", window.level, "HU window level (default: the one the model was trained with, when its "
                 "file records it, else 40)");
  app.add_option("--window-width", window.width, "HU window width (default: the model's, else 400)")->check(CLI::PositiveNumber);
  app.add_option("--png-hu-offset", png_offset, "16-bit PNG sample = HU + offset")->capture_default_str();
  app.add_option("--device", device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--batch", batch, "images per forward pass")->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--resize", resize,
                 "model: square patches resized to the model file's input size, as in training (non-square images are "
                 "refused); none: the network at each image's own size (at least 75x75)")
      ->capture_default_str()
      ->check(CLI::IsMember({"model", "none"}));
  return tools::run(app, argc, argv, [&] {
    train::Classifier clf(weights, resolve_device(device));
    const ModelConfig& cfg = clf.config();
    // The HU window the model was trained with, when its file records it (tools/train's best.h5); the
    // flags still override it, with a warning.
    std::string window_from = "the default; the model file records none";
    const bool level_given = app.count("--window-level") > 0, width_given = app.count("--window-width") > 0;
    if (const auto& usage = clf.usage()) {
      window_from = "as the model was trained";
      if (level_given) clf.window.level = window.level;
      if (width_given) clf.window.width = window.width;
      if (clf.window.level != usage->window.level || clf.window.width != usage->window.width) {
        window_from = str_cat("from the flags; the model was trained with level ", usage->window.level, " width ", usage->window.width);
        std::fprintf(stderr, "predict: warning: --window-level/--window-width (%g, %g) differ from the window %s was trained "
                     "with (%g, %g)\n", clf.window.level, clf.window.width, weights.c_str(), usage->window.level,
                     usage->window.width);
      }
    } else if (level_given || width_given) {
      clf.window = window;
      window_from = "from the flags";
    }
    // Probabilities are softmax(logits / T) with the temperature the file records (1: none).
    if (clf.temperature != 1 && !logits) {
      if (uncalibrated)
        std::fprintf(stderr, "predict: uncalibrated probabilities (--uncalibrated; the model records temperature %g)\n",
                     clf.temperature);
      else
        std::fprintf(stderr, "predict: probabilities calibrated with temperature %g (%s)\n", clf.temperature,
                     clf.usage()->calibration.c_str());
    }
    if (uncalibrated) clf.temperature = 1;
    LN_CHECK(inputs.empty() != ct.empty(), "give --input (patches) or --ct with --mask (a CT volume)");
    if (!ct.empty()) {
      LN_CHECK(!mask.empty(), "--ct needs --mask (the lesions' outlines)");
      LN_CHECK(!logits && resize == "model" && !preprocess, "--ct takes neither --logits, --resize none nor --preprocess");
      // The patch geometry the model's training data was cut with, when its file records it; the flags still
      // override it, with a warning.
      if (clf.extraction_recorded) {
        const data::ExtractOptions& m = clf.extraction;
        struct Field {
          const char* flag;
          double* value;
          double model;
        };
        double size = extract.size;
        for (const Field& f : {Field{"--patch-spacing", &extract.spacing_mm, m.spacing_mm},
                               Field{"--patch-size", &size, static_cast<double>(m.size)},
                               Field{"--margin", &extract.margin_mm, m.margin_mm},
                               Field{"--min-volume", &extract.min_volume_mm3, m.min_volume_mm3}}) {
          if (!app.count(f.flag))
            *f.value = f.model;
          else if (*f.value != f.model)
            std::fprintf(stderr,
                         "predict: warning: %s %g differs from the %g the training patches of %s were cut with\n",
                         f.flag, *f.value, f.model, weights.c_str());
        }
        extract.size = static_cast<int>(size);
      }
      return predict_ct(clf, ct, mask, lesions, app.count("--lesions") > 0, extract, output, batch);
    }
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> header{"id"};
    for (const std::string& name : clf.class_names()) header.push_back((logits ? "logit_" : "prob_") + name);
    rows.push_back(header);
    for (const std::string& in : inputs) {
      Batch b = load(in, preprocess, png_offset);
      const std::string applied = plan(in, b, cfg, resize, clf.window, window_from);
      std::fprintf(stderr, "predict: %s: %s\n", in.c_str(), applied.c_str());
      const Tensor out = clf.run(clf.prepare(b.images, b.hu, resize == "model"), !logits, batch);
      const float* v = out.data<float>();
      for (std::int64_t i = 0; i < out.size(0); ++i) {
        std::vector<std::string> row{b.ids[static_cast<std::size_t>(i)]};
        for (int k = 0; k < cfg.num_classes; ++k) row.push_back(value_cell(v[i * cfg.num_classes + k]));
        rows.push_back(row);
      }
    }
    io::write_csv(output, rows);
    if (output != "-") std::fprintf(stderr, "predict: %zu images -> %s\n", rows.size() - 1, output.c_str());
    return 0;
  });
}
