// Bad inputs for every reader, through the command-line tools end to end (what users hit): one table of
// cases, each a bad file (or files), the tool's command line and the words its error must contain. For
// every case: the process exits normally (no signal, no core dump) with exit code 1 (2 for bad
// arguments), standard error is exactly one line that names the offending file and the problem, and no
// output is left where the tool would have written one. docs/errors.md lists the same errors for users.
//   ctest -R 'BadInput\.'      or      test_bad_inputs --gtest_filter='*BadInput*'
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "ct/nifti.h"
#include "data/dataset.h"
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"
#include "io/hdf5.h"
#include "io/image.h"
#include "io/protobuf.h"
#include "kernels/tensor_ops.h"
#include "models/inception_v3.h"
#include "models/onnx.h"
#include "models/weights.h"
#include "test_util.h"
#include "train/train_config.h"

using namespace livernet;
namespace fs = std::filesystem;

namespace {

// ---- Files -------------------------------------------------------------------------------------------

using livernet::testing::slurp;

void spit(const std::string& p, const std::string& bytes) {
  fs::create_directories(fs::path(p).parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

// A copy of `src` cut to `keep` bytes (a fraction of its size when keep < 1).
void truncated_copy(const std::string& src, const std::string& dst, double keep) {
  fs::create_directories(fs::path(dst).parent_path());
  fs::copy_file(src, dst, fs::copy_options::overwrite_existing);
  const auto size = fs::file_size(dst);
  fs::resize_file(dst, keep < 1 ? static_cast<std::uintmax_t>(static_cast<double>(size) * keep) : static_cast<std::uintmax_t>(keep));
}

struct ToolRun {
  bool exited = false;  // normally, not by a signal
  int rc = -1;
  std::string out, err;
};

ToolRun run_tool(const std::string& dir, const std::string& tool, const std::string& args) {
  const std::string out = dir + "/.stdout", err = dir + "/.stderr";
  const std::string cmd = std::string(LIVERNET_TOOLS_DIR) + "/" + tool + " " + args + " > " + out + " 2> " + err;
  const int status = std::system(cmd.c_str());
  ToolRun r;
  r.exited = WIFEXITED(status);
  r.rc = r.exited ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  fs::remove(out);
  fs::remove(err);
  return r;
}

// Everything this process makes lives under one folder, removed at the end.
const fs::path& root() {
  static const fs::path r = fs::temp_directory_path() / ("livernet_bad_inputs_" + std::to_string(::getpid()));
  return r;
}

// ---- Inputs that cases copy or damage, made once per process when a case first asks ------------------

std::string shared(const std::string& name) { return (root() / "shared" / name).string(); }

void must(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("fixture: " + what);
}

// A valid 2-class weight file of the paper's model (input 75). Writing one takes seconds and ctest runs
// every case in its own process, so it is kept beside the test binary and remade when the binary is newer.
const std::string& weights() {
  static const std::string p = [] {
    const fs::path exe = fs::read_symlink("/proc/self/exe");
    const fs::path cache = exe.parent_path() / "bad_inputs_data" / "w.h5";
    std::error_code ec;
    if (fs::exists(cache, ec) && fs::last_write_time(cache) >= fs::last_write_time(exe)) return cache.string();
    ModelConfig cfg;
    cfg.head_hidden = {};
    cfg.num_classes = 2;
    cfg.class_names = {"cyst", "metastasis"};
    cfg.input_size = 75;
    fs::create_directories(cache.parent_path());
    init::set_seed(1);
    LesionClassifier model(cfg);
    io::save_weights(model, cfg, cache.string());  // atomic: concurrent cases may race to write it
    return cache.string();
  }();
  return p;
}

// A valid phantom dataset: 6 patients, 32x32 patches, both classes.
const std::string& phantoms() {
  static const std::string p = [] {
    fs::create_directories(shared(""));
    const ToolRun r = run_tool(shared(""), "make_phantoms", "-o " + shared("p.h5") + " --patients 6 --size 32 --seed 3");
    must(r.rc == 0, "make_phantoms: " + r.err);
    return shared("p.h5");
  }();
  return p;
}

// One phantom patient as CT volumes with lesion masks in `layout` (nifti or ircadb).
const std::string& volumes(const std::string& layout) {
  static std::map<std::string, std::string> made;
  if (!made.count(layout)) {
    fs::create_directories(shared(""));
    const ToolRun r = run_tool(shared(""), "make_phantoms",
                               "--volumes " + shared(layout) + " --layout " + layout + " --volume-size 64x64x12 --patients 1");
    must(r.rc == 0, "make_phantoms --volumes: " + r.err);
    made[layout] = shared(layout);
  }
  return made[layout];
}

// The pseudonymisation key extract_lesions reads (made here, so that it prints no "created" line).
const std::string& id_key() {
  static const std::string p = [] {
    spit(shared("id.key"), std::string(32, 'k'));
    return shared("id.key");
  }();
  return p;
}

// The single patient folder of a volumes() copy.
fs::path only_patient(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir)) return e.path();
  throw std::runtime_error("no patient folder in " + dir);
}

// ---- Makers of bad files -----------------------------------------------------------------------------

// A .npy file whose header declares `shape` (no data follows unless `data` says so).
void npy_with_header(const std::string& path, const std::string& shape, const std::string& data = "") {
  std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + h.size() + 1) % 64) h += ' ';
  h += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(h.size() & 0xff);
  bytes += static_cast<char>(h.size() >> 8);
  spit(path, bytes + h + data);
}

// A PNG whose IHDR declares width x height (8-bit grey) and which ends right after it.
void png_with_ihdr(const std::string& path, std::uint32_t width, std::uint32_t height) {
  auto be32 = [](std::uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
  };
  std::string chunk = "IHDR" + be32(width) + be32(height) + std::string("\x08\x00\x00\x00\x00", 5);
  const auto crc = crc32(0, reinterpret_cast<const Bytef*>(chunk.data()), static_cast<uInt>(chunk.size()));
  spit(path, std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + chunk + be32(static_cast<std::uint32_t>(crc)));
}

// An HDF5 dataset `name` of float32 declared with `dims`, chunked, with no data written: a tiny file that
// claims a huge array.
void declare_huge_dataset(const std::string& path, const std::string& name, std::vector<hsize_t> dims) {
  fs::create_directories(fs::path(path).parent_path());
  io::H5File::create(path).close();
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  must(file >= 0, "H5Fopen " + path);
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  std::vector<hsize_t> chunk(dims.size(), 1);
  chunk.back() = 64;
  H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data());
  const hid_t d = H5Dcreate2(file, name.c_str(), H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  must(d >= 0, "H5Dcreate2 " + name);
  H5Dclose(d);
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Fclose(file);
}

// A copy of the phantom dataset with one part replaced by `edit`.
void edited_phantoms(const std::string& dst, const std::function<void(io::H5File&, const data::Dataset&)>& edit) {
  const data::Dataset d = data::load_dataset_h5(phantoms());
  fs::create_directories(fs::path(dst).parent_path());
  fs::copy_file(phantoms(), dst, fs::copy_options::overwrite_existing);
  io::H5File f = io::H5File::open(dst, true);
  edit(f, d);
}

std::vector<std::int64_t> labels_of(const data::Dataset& d) { return {d.labels.begin(), d.labels.end()}; }

// A small dataset file: `patients` patients with two 8x8 lesions each (labels alternate unless one_class).
void small_dataset(const std::string& path, int patients, std::vector<std::string> classes = {"cyst", "metastasis"},
                   bool one_class = false) {
  data::Dataset d;
  d.path = path;
  d.class_names = std::move(classes);
  for (int i = 0; i < 2 * patients; ++i) {
    d.images.push_back(full(Shape{8, 8}, 10.0 * i));
    d.labels.push_back(one_class ? 0 : i % static_cast<int>(d.class_names.size()));
    d.patient_ids.push_back(str_cat("P", i / 2));
    d.lesion_ids.push_back(str_cat("L", i));
  }
  fs::create_directories(fs::path(path).parent_path());
  data::save_dataset_h5(d, path);
}

// A Keras-style weight file (layer_names, one group per layer with weight_names). `layers` are the names
// listed; conv2d_1 and batch_normalization_1 get weights (kernel of kernel_shape, BN of 32) unless
// `with_weights` is false.
struct KerasFile {
  std::vector<std::string> layers;
  bool with_weights = true;
  Shape kernel_shape{3, 3, 3, 32};
  bool conv_bias = false, bn_gamma = false, kernel_as_strings = false;
};

std::vector<std::string> keras_v05_layer_names() {
  std::vector<std::string> n{"input_1"};
  for (int k = 1; k <= 94; ++k) n.push_back("conv2d_" + std::to_string(k));
  for (int k = 1; k <= 94; ++k) n.push_back("batch_normalization_" + std::to_string(k));
  return n;
}

void keras_file(const std::string& path, const KerasFile& k) {
  fs::create_directories(fs::path(path).parent_path());
  io::H5File f = io::H5File::create(path);
  f.write_string_list_attr("/", "layer_names", k.layers);
  if (!k.with_weights) return;
  if (k.kernel_as_strings) {
    f.write_strings("conv2d_1/conv2d_1/kernel:0", {"not", "a", "kernel"});
  } else {
    f.write("conv2d_1/conv2d_1/kernel:0", zeros(k.kernel_shape));
  }
  std::vector<std::string> conv_w{"conv2d_1/kernel:0"};
  if (k.conv_bias) {
    f.write("conv2d_1/conv2d_1/bias:0", zeros(Shape{32}));
    conv_w.push_back("conv2d_1/bias:0");
  }
  f.write_string_list_attr("conv2d_1", "weight_names", conv_w);
  std::vector<std::string> bn_w;
  for (const char* w : {"beta:0", "moving_mean:0", "moving_variance:0"}) {
    f.write(std::string("batch_normalization_1/batch_normalization_1/") + w, ones(Shape{32}));
    bn_w.push_back(std::string("batch_normalization_1/") + w);
  }
  if (k.bn_gamma) {
    f.write("batch_normalization_1/batch_normalization_1/gamma:0", ones(Shape{32}));
    bn_w.insert(bn_w.begin(), "batch_normalization_1/gamma:0");
  }
  f.write_string_list_attr("batch_normalization_1", "weight_names", bn_w);
}

// A float32 .nii copy of a NIfTI patient's CT with a NaN at voxel 0 (the writer refuses to write one).
void nifti_with_nan(const fs::path& patient) {
  io::Volume v = io::read_nifti_volume((patient / "ct.nii.gz").string());
  fs::remove(patient / "ct.nii.gz");
  io::NiftiWriteOptions o;
  o.datatype = "float32";
  const std::string nii = (patient / "ct.nii").string();
  io::write_nifti(nii, v, o);
  std::string bytes = slurp(nii);
  float offset = 0;
  std::memcpy(&offset, bytes.data() + 108, 4);  // vox_offset
  const float nan = NAN;
  std::memcpy(bytes.data() + static_cast<std::size_t>(offset), &nan, 4);
  spit(nii, bytes);
}

// A NIfTI-1 CT whose header declares 30000^3 voxels (dim[1..3] at byte 42).
void nifti_with_huge_dims(const fs::path& patient) {
  io::Volume v = io::read_nifti_volume((patient / "ct.nii.gz").string());
  fs::remove(patient / "ct.nii.gz");
  const std::string nii = (patient / "ct.nii").string();
  io::write_nifti(nii, v);
  std::string bytes = slurp(nii);
  const std::int16_t big = 30000;
  for (int a = 0; a < 3; ++a) std::memcpy(bytes.data() + 42 + 2 * a, &big, 2);
  spit(nii, bytes.substr(0, 352));
}

// A CT slice file from the middle of an ircadb patient's series, renamed to slice_x (the names are
// shuffled anyway, the order comes from the positions).
std::string victim_slice(const fs::path& patient) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(patient / "PATIENT_DICOM")) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  const fs::path to = patient / "PATIENT_DICOM" / "slice_x";
  fs::rename(files.at(files.size() / 2), to);
  return to.string();
}

void dicom_set(const std::string& file, const DcmTagKey& tag, const char* value) {
  DcmFileFormat ff;
  must(ff.loadFile(file.c_str()).good(), "DCMTK load " + file);
  must(ff.getDataset()->putAndInsertString(tag, value).good(), "DCMTK put");
  must(ff.saveFile(file.c_str(), EXS_LittleEndianExplicit).good(), "DCMTK save " + file);
}

// ---- The table ---------------------------------------------------------------------------------------

// The folder of one case: d("x") is a path in it.
struct Dir {
  fs::path path;
  std::string operator()(const std::string& name) const { return (path / name).string(); }
};

struct Case {
  std::string name;                         // the test's name
  std::function<void(const Dir&)> make;     // writes the bad file(s) into the case's folder
  std::string tool, args;                   // {d} = the case's folder; {w} = a valid weight file; {key} = an id key
  std::vector<std::string> expect;          // the error line contains each
  std::string names;                        // ... and names this file (a basename, or the option for rc 2)
  std::vector<std::string> absent = {};     // outputs (in the case's folder) that must not exist afterwards
  int rc = 1;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

// The protobuf of an ONNX model (onnx.proto field numbers) from `producer` with one initializer (none when
// empty) and, when given, livernet's configuration metadata.
std::string onnx_file(const std::string& producer, const io::pb::Writer& initializer, const std::string& config_json) {
  io::pb::Writer graph, m;
  if (!initializer.data().empty()) graph.message(5, initializer);
  graph.string(2, "main");
  m.int64(1, 8);  // IR version
  m.string(2, producer);
  m.message(7, graph);
  if (!config_json.empty()) {
    io::pb::Writer meta;
    meta.string(1, io::kOnnxConfigKey);
    meta.string(2, config_json);
    m.message(14, meta);
  }
  return m.data();
}

// A small valid configuration (training would take seconds; every case fails before it starts).
std::string tiny_yaml(int folds = 2, const std::string& data_extra = "") {
  return "data:\n  input_size: 75\n" + data_extra + "model:\n  head_hidden: [8]\ntrain:\n  batch_size: 4\n  epochs: 1\n" +
         "cv:\n  folds: " + std::to_string(folds) + "\nruntime:\n  device: cpu\n";
}

// A configuration file c.yaml in the case's folder.
std::function<void(const Dir&)> config(const std::string& text) {
  return [text](const Dir& d) { spit(d("c.yaml"), text); };
}

// Combines makers.
std::function<void(const Dir&)> all(std::vector<std::function<void(const Dir&)>> makers) {
  return [makers](const Dir& d) {
    for (const auto& m : makers) m(d);
  };
}

const std::string kTrain = "-c {d}/c.yaml --data {d}/x.h5 -o {d}/run";
const std::string kManifest = "-c {d}/c.yaml --data {d}/m.csv -o {d}/run";
const std::string kPredict = "--weights {w} --device cpu -o {d}/out.csv --input ";
const std::string kConvert = "--from keras {d}/k.h5 -o {d}/out.h5";
const std::string kExtractNifti = "--input {d}/in --layout nifti --classes {d}/classes.yaml -o {d}/out.h5 --id-key {key}";
const std::string kExtractIrcadb = "--input {d}/in --layout ircadb --classes {d}/classes.yaml -o {d}/out.h5 --id-key {key}";
const std::string kEvaluate = "--run {d}/run --data {d}/test.h5 --device cpu";

// A manifest with its images: m.csv = `csv`, img/a.npy (HU), img/b.png (8-bit).
std::function<void(const Dir&)> manifest(const std::string& csv) {
  return [csv](const Dir& d) {
    fs::create_directories(d("img"));
    io::write_npy(d("img/a.npy"), full(Shape{8, 8}, 30.0));
    io::write_png(d("img/b.png"), full(Shape{8, 8, 1}, 200.0));
    spit(d("m.csv"), csv);
  };
}

// A run directory: config.yaml (2 folds on {d}/x.h5 = the phantoms) with `append` added at its end and
// `from` replaced by `to`.
std::function<void(const Dir&)> run_dir(const std::string& append = "", const std::string& from = "", const std::string& to = "") {
  return [append, from, to](const Dir& d) {
    fs::create_directories(d("run"));
    fs::copy_file(phantoms(), d("x.h5"));
    train::TrainConfig c;
    c.data = d("x.h5");
    c.folds = 2;
    c.batch_size = 4;
    c.epochs = 1;
    c.device = "cpu";
    c.model.input_size = 75;
    c.model.head_hidden = {8};
    std::string yaml = c.to_yaml() + append;
    if (!from.empty()) {
      const auto at = yaml.find(from);
      must(at != std::string::npos, "no '" + from + "' in the run's config.yaml");
      yaml.replace(at, from.size(), to);
    }
    spit(d("run/config.yaml"), yaml);
  };
}

// An HDF5 file with a `format` attribute and some data (a stand-in for a checkpoint or weight file).
void formatted_h5(const std::string& path, const std::string& format) {
  fs::create_directories(fs::path(path).parent_path());
  io::H5File f = io::H5File::create(path);
  f.write_string_attr("/", "format", format);
  f.write("x", zeros(Shape{20000}));
}

std::vector<Case> cases() {
  std::vector<Case> t;
  // ---- predict: .npy, .png, dataset .h5 and weight files --------------------------------------------
  t.push_back({"PredictNpyTruncated", [](const Dir& d) {
                 io::write_npy(d("full.npy"), zeros(Shape{1, 80, 80, 1}));
                 truncated_copy(d("full.npy"), d("x.npy"), 0.5);
               }, "predict", kPredict + "{d}/x.npy", {"truncated .npy data"}, "x.npy", {"out.csv"}});
  t.push_back({"PredictNpyZeroSized", [](const Dir& d) { spit(d("x.npy"), ""); }, "predict", kPredict + "{d}/x.npy",
               {"not a .npy file"}, "x.npy", {"out.csv"}});
  t.push_back({"PredictNpyInfinity", [](const Dir& d) { io::write_npy(d("x.npy"), full(Shape{1, 80, 80, 1}, INFINITY)); },
               "predict", kPredict + "{d}/x.npy", {"contains NaN or infinity"}, "x.npy", {"out.csv"}});
  t.push_back({"PredictNpyInfinityWithPreprocess",
               [](const Dir& d) { io::write_npy(d("x.npy"), full(Shape{1, 80, 80, 1}, NAN)); }, "predict",
               kPredict + "{d}/x.npy --preprocess", {"contains NaN or infinity"}, "x.npy", {"out.csv"}});
  t.push_back({"PredictNpyHugeShape", [](const Dir& d) { npy_with_header(d("x.npy"), "(1000000, 1000000)"); }, "predict",
               kPredict + "{d}/x.npy", {"shape is too large"}, "x.npy", {"out.csv"}});
  t.push_back({"PredictPngTruncated", [](const Dir& d) {
                 io::write_png(d("full.png"), full(Shape{90, 100, 1}, 7.0));
                 truncated_copy(d("full.png"), d("x.png"), 60);
               }, "predict", kPredict + "{d}/x.png", {"corrupt PNG"}, "x.png", {"out.csv"}});
  t.push_back({"PredictPngZeroSized", [](const Dir& d) { spit(d("x.png"), ""); }, "predict", kPredict + "{d}/x.png",
               {"not a PNG file"}, "x.png", {"out.csv"}});
  t.push_back({"PredictPngHugeDimensions", [](const Dir& d) { png_with_ihdr(d("x.png"), 40000, 40000); }, "predict",
               kPredict + "{d}/x.png", {"corrupt PNG (Invalid IHDR data)"}, "x.png", {"out.csv"}});
  t.push_back({"PredictDatasetMissingImages", [](const Dir& d) {
                 io::H5File f = io::H5File::create(d("x.h5"));
                 f.write("labels", zeros(Shape{2}, DType::i64));
               }, "predict", kPredict + "{d}/x.h5", {"no 'images' dataset"}, "x.h5", {"out.csv"}});
  t.push_back({"PredictImageTooSmall", [](const Dir& d) { io::write_npy(d("x.npy"), zeros(Shape{10, 10})); }, "predict",
               kPredict + "{d}/x.npy", {"images are 10x10, too small to be lesion patches"}, "x.npy", {"out.csv"}});
  t.push_back({"PredictImageNotSquare", [](const Dir& d) { io::write_npy(d("x.npy"), zeros(Shape{1, 301, 283, 1})); },
               "predict", kPredict + "{d}/x.npy", {"images are 301x283", "--resize none"}, "x.npy", {"out.csv"}});
  t.push_back({"PredictImageTooSmallForTheNetwork", [](const Dir& d) { io::write_npy(d("x.npy"), zeros(Shape{1, 40, 40, 1})); },
               "predict", kPredict + "{d}/x.npy --resize none", {"smaller than the network's minimum 75x75"}, "x.npy",
               {"out.csv"}});
  t.push_back({"PredictTwoChannels", [](const Dir& d) { io::write_npy(d("x.npy"), zeros(Shape{1, 80, 80, 2})); }, "predict",
               kPredict + "{d}/x.npy", {"1 (grey) or 3 channels, got 2"}, "x.npy", {"out.csv"}});
  t.push_back({"PredictDatasetWrongShape", [](const Dir& d) {
                 io::H5File f = io::H5File::create(d("x.h5"));
                 f.write("images", zeros(Shape{4, 80}));
               }, "predict", kPredict + "{d}/x.h5", {"'images' must be (N, H, W)", "[4, 80]"}, "x.h5", {"out.csv"}});
  t.push_back({"PredictDatasetWrongDtype", [](const Dir& d) {
                 io::H5File f = io::H5File::create(d("x.h5"));
                 f.write_strings("images", {"a", "b"});
               }, "predict", kPredict + "{d}/x.h5", {"'images' is string, not numeric"}, "x.h5", {"out.csv"}});
  t.push_back({"PredictDatasetNonFinite", [](const Dir& d) {
                 io::H5File f = io::H5File::create(d("x.h5"));
                 Tensor im = zeros(Shape{2, 80, 80});
                 im.data<float>()[80 * 80 + 5] = NAN;
                 f.write("images", im);
               }, "predict", kPredict + "{d}/x.h5", {"'images' contains NaN or infinity (image 1)"}, "x.h5", {"out.csv"}});
  t.push_back({"PredictDatasetHugeDimensions", [](const Dir& d) { declare_huge_dataset(d("x.h5"), "images", {100000, 4096, 4096}); },
               "predict", kPredict + "{d}/x.h5", {"'images' declares 1677721600000 elements", "more than the 2147483648 allowed"},
               "x.h5", {"out.csv"}});
  t.push_back({"PredictWeightsTruncated", [](const Dir& d) { truncated_copy(weights(), d("w.h5"), 0.5); }, "predict",
               "--weights {d}/w.h5 --input {d}/x.npy -o {d}/out.csv --device cpu", {"truncated"}, "w.h5", {"out.csv"}});
  t.push_back({"PredictWeightsZeroSized", [](const Dir& d) { spit(d("w.h5"), ""); }, "predict",
               "--weights {d}/w.h5 --input {d}/x.npy -o {d}/out.csv --device cpu", {"not an HDF5 file"}, "w.h5", {"out.csv"}});
  t.push_back({"PredictWeightsWrongDtype", [](const Dir& d) {
                 fs::copy_file(weights(), d("w.h5"));
                 io::H5File::open(d("w.h5"), true).write("head/fc/bias", zeros(Shape{2}, DType::i32));
               }, "predict", "--weights {d}/w.h5 --input {d}/x.npy -o {d}/out.csv --device cpu",
               {"'head/fc/bias' is int32, expected float32"}, "w.h5", {"out.csv"}});
  t.push_back({"PredictWeightsWrongShape", [](const Dir& d) {
                 fs::copy_file(weights(), d("w.h5"));
                 io::H5File::open(d("w.h5"), true).write("head/fc/weight", zeros(Shape{3, 2048}));
               }, "predict", "--weights {d}/w.h5 --input {d}/x.npy -o {d}/out.csv --device cpu",
               {"'head/fc/weight' has shape [3, 2048] but the model expects [2, 2048]"}, "w.h5", {"out.csv"}});
  t.push_back({"PredictWeightsMissingDataset", [](const Dir& d) {
                 fs::copy_file(weights(), d("w.h5"));
                 ModelConfig other = io::read_model_config(weights());
                 other.head_hidden = {8};  // the file has no head/fc1
                 io::H5File::open(d("w.h5"), true).write_string_attr("/", "model", other.to_json());
               }, "predict", "--weights {d}/w.h5 --input {d}/x.npy -o {d}/out.csv --device cpu",
               {"missing 'head/fc1/weight'"}, "w.h5", {"out.csv"}});
  t.push_back({"PredictWeightsNewerFormat", [](const Dir& d) {
                 formatted_h5(d("w.h5"), "livernet-weights");
                 io::H5File::open(d("w.h5"), true).write_int_attr("/", "format_version", 99);
               }, "predict", "--weights {d}/w.h5 --input {d}/x.npy -o {d}/out.csv --device cpu",
               {"weight format version 99"}, "w.h5", {"out.csv"}});
  t.push_back({"PredictWeightsAreKeras", [](const Dir& d) { keras_file(d("w.h5"), {keras_v05_layer_names(), false}); },
               "predict", "--weights {d}/w.h5 --input {d}/x.npy -o {d}/out.csv --device cpu",
               {"Keras weight file", "convert_weights --from keras"}, "w.h5", {"out.csv"}});
  t.push_back({"PredictWeightsNotLivernet", [](const Dir& d) { formatted_h5(d("w.h5"), "something-else"); }, "predict",
               "--weights {d}/w.h5 --input {d}/x.npy -o {d}/out.csv --device cpu", {"not livernet weights"}, "w.h5",
               {"out.csv"}});

  // Crafted HDF5 files that crash, or make allocate gigabytes, libhdf5 1.10 itself (found by fuzz/fuzz_weights
  // and fuzz/fuzz_dataset_h5): the file is first read by a child process (io/hdf5.cpp check_untrusted).
  auto crafted = [](const std::string& target, const std::string& file, const std::string& as) {
    return [=](const Dir& d) { fs::copy_file(fs::path(LIVERNET_SOURCE_DIR) / "fuzz/regressions" / target / file, d(as)); };
  };
  t.push_back({"PredictWeightsCrashTheHdf5Library", crafted("weights", "libhdf5-segv-H5HG_read.h5", "w.h5"), "predict",
               "--weights {d}/w.h5 --input {d}/x.npy -o {d}/out.csv --device cpu",
               {"damaged HDF5 file (the HDF5 library crashed reading it: SIGSEGV)"}, "w.h5", {"out.csv"}});
  t.push_back({"PredictWeightsMakeTheHdf5LibraryAllocateGigabytes", crafted("weights", "libhdf5-oom-vlen.h5", "w.h5"),
               "predict", "--weights {d}/w.h5 --input {d}/x.npy -o {d}/out.csv --device cpu",
               {"damaged HDF5 file (reading its structure needs more than 1 GiB of memory"}, "w.h5", {"out.csv"}});
  t.push_back({"PredictDatasetCrashesTheHdf5Library", crafted("dataset_h5", "libhdf5-segv-H5HG_read.h5", "x.h5"), "predict",
               kPredict + "{d}/x.h5", {"damaged HDF5 file (the HDF5 library crashed reading it: SIGSEGV)"}, "x.h5",
               {"out.csv"}});
  t.push_back({"PredictDatasetMakesTheHdf5LibraryAllocateGigabytes",
               crafted("dataset_h5", "libhdf5-oom-metadata-cache.h5", "x.h5"), "predict", kPredict + "{d}/x.h5",
               {"damaged HDF5 file (reading its structure needs more than 1 GiB of memory"}, "x.h5", {"out.csv"}});
  t.push_back({"TrainDatasetCrashesTheHdf5Library",
               all({config(tiny_yaml()), crafted("dataset_h5", "libhdf5-segv-H5HG_read.h5", "x.h5")}), "train", kTrain,
               {"damaged HDF5 file (the HDF5 library crashed reading it: SIGSEGV)"}, "x.h5", {"run"}});

  // ---- train: configurations (refused before the data is read) ---------------------------------------
  const std::function<void(const Dir&)> data = [](const Dir& d) { fs::copy_file(phantoms(), d("x.h5")); };
  t.push_back({"ConfigUnknownKey", all({data, config("train:\n  batch_sise: 4\n")}), "train", kTrain,
               {"unknown key 'batch_sise' (did you mean 'batch_size'?)"}, "c.yaml", {"run"}});
  t.push_back({"ConfigUnknownSection", all({data, config("trian:\n  epochs: 3\n")}), "train", kTrain,
               {"unknown key 'trian' (did you mean 'train'?)"}, "c.yaml", {"run"}});
  t.push_back({"ConfigWrongTypeNumber", all({data, config("train:\n  epochs: many\n")}), "train", kTrain,
               {"train.epochs: expected an integer, got 'many'"}, "c.yaml", {"run"}});
  t.push_back({"ConfigWrongTypeList", all({data, config("model:\n  head_hidden: wide\n")}), "train", kTrain,
               {"model.head_hidden: expected a list, got 'wide'"}, "c.yaml", {"run"}});
  t.push_back({"ConfigOutOfRangeFolds", all({data, config("cv:\n  folds: 1\n")}), "train", kTrain,
               {"cv.folds must be in [2, 50], got 1"}, "c.yaml", {"run"}});
  t.push_back({"ConfigOutOfRangeLearningRate", all({data, config("train:\n  lr: -1\n")}), "train", kTrain,
               {"train.lr must be > 0"}, "c.yaml", {"run"}});
  t.push_back({"ConfigOutOfRangeInputSize", all({data, config("data:\n  input_size: 64\n")}), "train", kTrain,
               {"data.input_size must be >= 75"}, "c.yaml", {"run"}});
  t.push_back({"ConfigOutOfRangeModelValue", all({data, config("model:\n  head_dropout: 1.5\n")}), "train", kTrain,
               {"head_dropout must be in [0, 1)"}, "c.yaml", {"run"}});
  // A value with a line break and a terminal escape is quoted escaped: the error stays one line.
  t.push_back({"ConfigControlCharactersInValue", all({data, config("model:\n  arch: \"pape\\n \\e[2J\"\n")}), "train",
               kTrain, {"unknown arch 'pape\\x0a \\x1b[2J'"}, "c.yaml", {"run"}});
  t.push_back({"ConfigNotOneOfTheChoices", all({data, config("train:\n  optimizer: rmsprop\n")}), "train", kTrain,
               {"train.optimizer: 'rmsprop' is not one of sgd, adam, adamw"}, "c.yaml", {"run"}});
  t.push_back({"ConfigOutOfRangeRepeats", all({data, config("cv:\n  repeats: 0\n")}), "train", kTrain,
               {"cv.repeats must be in [1, 100]"}, "c.yaml", {"run"}});
  t.push_back({"ConfigParallelNotOneOfTheChoices", all({data, config("runtime:\n  parallel: model\n")}), "train", kTrain,
               {"runtime.parallel: 'model' is not one of folds, data"}, "c.yaml", {"run"}});
  t.push_back({"ConfigNotYaml", all({data, config("data: [1, 2\n")}), "train", kTrain, {"not valid YAML"}, "c.yaml", {"run"}});
  t.push_back({"ConfigMissing", data, "train", kTrain, {"cannot open the configuration"}, "c.yaml", {"run"}});

  // ---- train: dataset files -------------------------------------------------------------------------
  const auto tiny = config(tiny_yaml());
  t.push_back({"DatasetMissing", tiny, "train", kTrain, {"no such file"}, "x.h5", {"run"}});
  t.push_back({"DatasetZeroSized", all({tiny, [](const Dir& d) { spit(d("x.h5"), ""); }}), "train", kTrain,
               {"not an HDF5 file"}, "x.h5", {"run"}});
  t.push_back({"DatasetTruncated", all({tiny, [](const Dir& d) { truncated_copy(phantoms(), d("x.h5"), 0.5); }}), "train", kTrain,
               {"truncated"}, "x.h5", {"run"}});
  t.push_back({"DatasetMissingDataset", all({tiny, [](const Dir& d) {
                 io::H5File f = io::H5File::create(d("x.h5"));
                 f.write("images", zeros(Shape{2, 8, 8}));
               }}), "train", kTrain, {"missing dataset 'labels'"}, "x.h5", {"run"}});
  t.push_back({"DatasetWrongDtypeLabels", all({tiny, [](const Dir& d) {
                 edited_phantoms(d("x.h5"), [](io::H5File& f, const data::Dataset& ds) {
                   f.write("labels", zeros(Shape{ds.size()}));
                 });
               }}), "train", kTrain, {"'labels' must be integers, got float32"}, "x.h5", {"run"}});
  t.push_back({"DatasetWrongDtypeImages", all({tiny, [](const Dir& d) {
                 edited_phantoms(d("x.h5"), [](io::H5File& f, const data::Dataset&) { f.write_strings("images", {"a", "b"}); });
               }}), "train", kTrain, {"'images' must be (N, H, W) numbers in HU, got string"}, "x.h5", {"run"}});
  t.push_back({"DatasetWrongShapeImages", all({tiny, [](const Dir& d) {
                 edited_phantoms(d("x.h5"), [](io::H5File& f, const data::Dataset& ds) {
                   f.write("images", zeros(Shape{ds.size(), 1024}));
                 });
               }}), "train", kTrain, {"'images' must be (N, H, W) numbers in HU, got float32 [", ", 1024]"}, "x.h5", {"run"}});
  t.push_back({"DatasetWrongShapeLabels", all({tiny, [](const Dir& d) {
                 edited_phantoms(d("x.h5"), [](io::H5File& f, const data::Dataset&) {
                   f.write("labels", zeros(Shape{3}, DType::i64));
                 });
               }}), "train", kTrain, {"'labels' must be (", ") integers, got int64 [3]"}, "x.h5", {"run"}});
  t.push_back({"DatasetCountsDisagree", all({tiny, [](const Dir& d) {
                 edited_phantoms(d("x.h5"), [](io::H5File& f, const data::Dataset&) { f.write_strings("lesion_id", {"L1"}); });
               }}), "train", kTrain, {"1 lesion ids: the counts must agree"}, "x.h5", {"run"}});
  t.push_back({"DatasetHugeDimensions", all({tiny, [](const Dir& d) {
                 declare_huge_dataset(d("x.h5"), "images", {100000, 4096, 4096});
                 io::H5File f = io::H5File::open(d("x.h5"), true);
                 f.write("labels", zeros(Shape{100000}, DType::i64));
                 f.write_strings("patient_id", {"P1"});
                 f.write_strings("lesion_id", {"L1"});
                 f.write_string_list_attr("/", "classes", {"cyst", "metastasis"});
               }}), "train", kTrain, {"'images' declares 1677721600000 elements", "more than the 4294967296 allowed"}, "x.h5",
               {"run"}});
  // Within the element limit, but nothing of it stored: refused before the 16 GiB allocation.
  t.push_back({"DatasetDeclaredButNotStored", all({tiny, [](const Dir& d) {
                 declare_huge_dataset(d("x.h5"), "images", {250, 4096, 4096});
                 io::H5File f = io::H5File::open(d("x.h5"), true);
                 f.write("labels", zeros(Shape{250}, DType::i64));
                 f.write_strings("patient_id", {"P1"});
                 f.write_strings("lesion_id", {"L1"});
                 f.write_string_list_attr("/", "classes", {"cyst", "metastasis"});
               }}), "train", kTrain, {"'images' declares [250, 4096, 4096]", "MiB of it (corrupt or truncated file)"}, "x.h5",
               {"run"}});
  t.push_back({"DatasetHugePatches", all({tiny, [](const Dir& d) {
                 declare_huge_dataset(d("x.h5"), "images", {1, 100000, 100000});
                 io::H5File f = io::H5File::open(d("x.h5"), true);
                 f.write("labels", zeros(Shape{1}, DType::i64));
                 f.write_strings("patient_id", {"P1"});
                 f.write_strings("lesion_id", {"L1"});
                 f.write_string_list_attr("/", "classes", {"cyst", "metastasis"});
               }}), "train", kTrain, {"100000x100000 are larger than the 4096x4096 allowed"}, "x.h5", {"run"}});
  t.push_back({"DatasetNonFinite", all({tiny, [](const Dir& d) {
                 edited_phantoms(d("x.h5"), [](io::H5File& f, const data::Dataset&) {
                   Tensor im = f.read("images", DType::f32);
                   im.data<float>()[3 * 32 * 32 + 7] = INFINITY;
                   f.write("images", im);
                 });
               }}), "train", kTrain, {"'images' holds a non-finite value (image 3)"}, "x.h5", {"run"}});
  t.push_back({"DatasetLabelOutOfRange", all({tiny, [](const Dir& d) {
                 edited_phantoms(d("x.h5"), [](io::H5File& f, const data::Dataset& ds) {
                   auto l = labels_of(ds);
                   l[4] = 5;
                   f.write("labels", Tensor::from_vector(l, Shape{ds.size()}));
                 });
               }}), "train", kTrain, {"label 5 outside [0, 2)"}, "x.h5", {"run"}});
  t.push_back({"DatasetOneClassName", all({tiny, [](const Dir& d) {
                 edited_phantoms(d("x.h5"), [](io::H5File& f, const data::Dataset& ds) {
                   f.write("labels", zeros(Shape{ds.size()}, DType::i64));
                   f.write_string_list_attr("/", "classes", {"cyst"});
                 });
               }}), "train", kTrain, {"needs at least two class names, found 1"}, "x.h5", {"run"}});
  t.push_back({"DatasetOneClassPresent", all({tiny, [](const Dir& d) { small_dataset(d("x.h5"), 4, {"cyst", "metastasis"}, true); }}),
               "train", kTrain, {"class 'metastasis' has no samples"}, "x.h5", {"run"}});
  t.push_back({"DatasetOnePatient", all({tiny, [](const Dir& d) { small_dataset(d("x.h5"), 1); }}), "train", kTrain,
               {"1 patient(s) cannot be split into 2 patient-level folds"}, "x.h5", {"run"}});
  t.push_back({"DatasetFewerPatientsThanFolds", all({config(tiny_yaml(5)),
                                                      [](const Dir& d) { small_dataset(d("x.h5"), 3); }}),
               "train", kTrain, {"3 patient(s) cannot be split into 5 patient-level folds"}, "x.h5", {"run"}});
  t.push_back({"DatasetTooFewPatientsForValidation", all({tiny, [](const Dir& d) { small_dataset(d("x.h5"), 2); }}), "train",
               kTrain, {"training patient(s): too few to hold some out for validation"}, "x.h5", {"run"}});

  // ---- train: CSV manifests -------------------------------------------------------------------------
  const auto tiny_with_classes = config(tiny_yaml(2, "  class_names: [cyst, metastasis]\n"));
  t.push_back({"ManifestZeroSized", all({tiny, [](const Dir& d) { spit(d("m.csv"), ""); }}), "train", kManifest,
               {"empty file (expected a header path,label,patient_id"}, "m.csv", {"run"}});
  t.push_back({"ManifestMissingColumn", all({tiny, manifest("path,label\nimg/a.npy,cyst\n")}), "train", kManifest,
               {"missing column 'patient_id'"}, "m.csv", {"run"}});
  t.push_back({"ManifestNoRows", all({tiny, manifest("path,label,patient_id\n")}), "train", kManifest, {"no rows after the header"},
               "m.csv", {"run"}});
  t.push_back({"ManifestShortRow", all({tiny, manifest("path,label,patient_id\nimg/a.npy,cyst\n")}), "train", kManifest,
               {"m.csv:2: 2 columns, expected 3"}, "m.csv", {"run"}});
  t.push_back({"ManifestUnknownLabel",
               all({tiny_with_classes, manifest("path,label,patient_id\nimg/a.npy,cyst,P1\nimg/b.png,tumour,P2\n")}), "train",
               kManifest, {"m.csv:3: unknown label 'tumour' (classes: cyst, metastasis)"}, "m.csv", {"run"}});
  t.push_back({"ManifestPathEscapesTheDataRoot", all({tiny, manifest("path,label,patient_id\n../../../../etc/passwd,cyst,P1\n")}),
               "train", kManifest, {"m.csv:2: path '../../../../etc/passwd' leaves the manifest's folder"}, "m.csv", {"run"}});
  t.push_back({"ManifestAbsolutePath", all({tiny, manifest("path,label,patient_id\n/etc/passwd,cyst,P1\n")}), "train", kManifest,
               {"m.csv:2: path '/etc/passwd' leaves the manifest's folder"}, "m.csv", {"run"}});
  t.push_back({"ManifestImageMissing", all({tiny, manifest("path,label,patient_id\nimg/none.npy,cyst,P1\n")}), "train",
               kManifest, {"m.csv:2: img/none.npy: no such file"}, "m.csv", {"run"}});
  t.push_back({"ManifestNpyTruncated", all({tiny, manifest("path,label,patient_id\nimg/t.npy,cyst,P1\n"), [](const Dir& d) {
                 truncated_copy(d("img/a.npy"), d("img/t.npy"), 0.5);
               }}), "train", kManifest, {"m.csv:2:", "t.npy: truncated .npy data"}, "m.csv", {"run"}});
  t.push_back({"ManifestNpyHugeShape", all({tiny, manifest("path,label,patient_id\nimg/h.npy,cyst,P1\n"), [](const Dir& d) {
                 npy_with_header(d("img/h.npy"), "(1000000, 1000000)");
               }}), "train", kManifest, {"m.csv:2:", "h.npy: .npy shape is too large"}, "m.csv", {"run"}});
  t.push_back({"ManifestNpyNonFinite", all({tiny, manifest("path,label,patient_id\nimg/n.npy,cyst,P1\n"), [](const Dir& d) {
                 io::write_npy(d("img/n.npy"), full(Shape{8, 8}, NAN));
               }}), "train", kManifest, {"m.csv:2: img/n.npy holds NaN or infinity"}, "m.csv", {"run"}});
  t.push_back({"ManifestPngZeroSized", all({tiny, manifest("path,label,patient_id\nimg/z.png,cyst,P1\n"),
                                            [](const Dir& d) { spit(d("img/z.png"), ""); }}),
               "train", kManifest, {"m.csv:2:", "z.png: not a PNG file"}, "m.csv", {"run"}});
  t.push_back({"ManifestPngTruncated", all({tiny, manifest("path,label,patient_id\nimg/t.png,cyst,P1\n"), [](const Dir& d) {
                 truncated_copy(d("img/b.png"), d("img/t.png"), 40);
               }}), "train", kManifest, {"m.csv:2:", "t.png: corrupt PNG"}, "m.csv", {"run"}});

  // ---- train: initial weights and checkpoints (--resume) -------------------------------------------
  t.push_back({"TrainWeightsAreKeras", all({tiny, data, [](const Dir& d) { keras_file(d("k.h5"), {keras_v05_layer_names(), false}); }}),
               "train", kTrain + " --weights {d}/k.h5", {"convert_weights --from keras"}, "k.h5", {"run"}});
  t.push_back({"TrainWeightsOfTheOtherFlavour",
               all({config(replace_all(tiny_yaml(), "model:\n", "model:\n  flavour: torchvision\n")), data}), "train",
               kTrain + " --weights {w}", {"weights of the keras flavour, but model.flavour is torchvision"}, "w.h5", {"run"}});
  t.push_back({"TrainWeightsMissingABackboneTensor", all({tiny, data, [](const Dir& d) {
                 fs::copy_file(weights(), d("w.h5"));
                 io::H5File::open(d("w.h5"), true).remove("backbone/Mixed_7c/branch_pool/conv/weight");
               }}), "train", kTrain + " --weights {d}/w.h5",
               {"missing 'backbone/Mixed_7c/branch_pool/conv/weight'", "that the model needs"}, "w.h5", {"run"}});
  t.push_back({"TrainWeightsTruncated", all({tiny, data, [](const Dir& d) { truncated_copy(weights(), d("w.h5"), 0.5); }}),
               "train", kTrain + " --weights {d}/w.h5", {"truncated"}, "w.h5", {"run"}});
  t.push_back({"CheckpointTruncated", all({run_dir(), [](const Dir& d) {
                 formatted_h5(d("full.h5"), "livernet-checkpoint");
                 truncated_copy(d("full.h5"), d("run/fold_1/checkpoint.h5"), 0.5);
               }}), "train", "--resume {d}/run", {"truncated"}, "checkpoint.h5", {"run/log.txt", "run/splits.json"}});
  t.push_back({"CheckpointZeroSized", all({run_dir(), [](const Dir& d) { spit(d("run/fold_2/checkpoint.h5"), ""); }}), "train",
               "--resume {d}/run", {"fold_2/checkpoint.h5: not an HDF5 file"}, "checkpoint.h5", {"run/log.txt", "run/splits.json"}});
  t.push_back({"CheckpointIsAWeightFile", all({run_dir(), [](const Dir& d) {
                 formatted_h5(d("run/fold_1/checkpoint.h5"), "livernet-weights");
               }}), "train", "--resume {d}/run", {"not a training checkpoint"}, "checkpoint.h5", {"run/log.txt", "run/splits.json"}});
  t.push_back({"ResumeRunWithFoldsFromZero", all({run_dir(), [](const Dir& d) { fs::create_directories(d("run/fold_0")); }}),
               "train", "--resume {d}/run", {"numbered the folds from 0 (fold_0)", "do mv "}, "run", {"run/log.txt"}});
  t.push_back({"ResumeConfigUnknownKey", run_dir("colour: red\n"), "train", "--resume {d}/run",
               {"unknown key 'colour'"}, "config.yaml", {"run/log.txt", "run/splits.json"}});

  // ---- evaluate ------------------------------------------------------------------------------------
  const std::function<void(const Dir&)> test_data = [](const Dir& d) { fs::copy_file(phantoms(), d("test.h5")); };
  t.push_back({"EvaluateNoRun", test_data, "evaluate", kEvaluate, {"no such run directory"}, "run", {"run"}});
  t.push_back({"EvaluateRunConfigWrongType", all({run_dir("", "folds: 2", "folds: two"), test_data}), "evaluate", kEvaluate,
               {"cv.folds: expected an integer, got 'two'"}, "config.yaml", {"run/evaluation_test"}});
  t.push_back({"EvaluateDataTruncated", all({run_dir(), [](const Dir& d) { truncated_copy(phantoms(), d("test.h5"), 0.5); }}),
               "evaluate", kEvaluate, {"truncated"}, "test.h5", {"run/evaluation_test"}});
  t.push_back({"EvaluateFoldModelMissing", all({run_dir(), test_data, [](const Dir& d) {
                 fs::create_directories(d("run/fold_1"));
                 fs::create_symlink(weights(), d("run/fold_1/best.h5"));
               }}), "evaluate", kEvaluate, {"fold_2/best.h5: missing (is the run finished?"}, "best.h5", {"run/evaluation_test"}});
  t.push_back({"EvaluateFoldModelTruncated", all({run_dir(), test_data, [](const Dir& d) {
                 for (const char* f : {"run/fold_1/best.h5", "run/fold_2/best.h5"}) truncated_copy(weights(), d(f), 1 << 20);
               }}), "evaluate", kEvaluate, {"fold_1/best.h5", "truncated"}, "best.h5", {"run/evaluation_test"}});
  t.push_back({"EvaluateClassesDiffer", all({run_dir(), [](const Dir& d) {
                 small_dataset(d("test.h5"), 3, {"cyst", "hemangioma", "metastasis"});
                 for (const char* f : {"run/fold_1", "run/fold_2"}) {
                   fs::create_directories(d(f));
                   fs::create_symlink(weights(), d(std::string(f) + "/best.h5"));
                 }
               }}), "evaluate", kEvaluate, {"classes (3) differ from the run's (2)"}, "test.h5", {"run/evaluation_test"}});

  // ---- convert_weights: Keras and torchvision files -------------------------------------------------
  t.push_back({"KerasTruncated", [](const Dir& d) {
                 keras_file(d("full.h5"), {keras_v05_layer_names()});
                 truncated_copy(d("full.h5"), d("k.h5"), 0.5);
               }, "convert_weights", kConvert, {"truncated"}, "k.h5", {"out.h5"}});
  t.push_back({"KerasZeroSized", [](const Dir& d) { spit(d("k.h5"), ""); }, "convert_weights", kConvert, {"not an HDF5 file"},
               "k.h5", {"out.h5"}});
  t.push_back({"KerasNotKeras", [](const Dir& d) { formatted_h5(d("k.h5"), "livernet-weights"); }, "convert_weights", kConvert,
               {"not a Keras weight file (no 'layer_names' attribute)"}, "k.h5", {"out.h5"}});
  t.push_back({"KerasVersion02", [](const Dir& d) {
                 keras_file(d("k.h5"), {{"input_1", "convolution2d_1", "batchnormalization_1"}, false});
               }, "convert_weights", kConvert, {"Keras-1 InceptionV3 file (v0.2"}, "k.h5", {"out.h5"}});
  t.push_back({"KerasConvWithBias", [](const Dir& d) {
                 KerasFile k{keras_v05_layer_names()};
                 k.conv_bias = true;
                 keras_file(d("k.h5"), k);
               }, "convert_weights", kConvert, {"conv layers carry a bias", "(v0.2 / Keras-1)"}, "k.h5", {"out.h5"}});
  t.push_back({"KerasBatchNormWithGamma", [](const Dir& d) {
                 KerasFile k{keras_v05_layer_names()};
                 k.bn_gamma = true;
                 keras_file(d("k.h5"), k);
               }, "convert_weights", kConvert, {"batch norm has a gamma"}, "k.h5", {"out.h5"}});
  t.push_back({"KerasTooFewLayers", [](const Dir& d) {
                 keras_file(d("k.h5"), {{"input_1", "conv2d_1", "batch_normalization_1"}, false});
               }, "convert_weights", kConvert, {"1 conv2d layers where InceptionV3 has 94"}, "k.h5", {"out.h5"}});
  t.push_back({"KerasMissingLayer", [](const Dir& d) { keras_file(d("k.h5"), {keras_v05_layer_names()}); }, "convert_weights",
               kConvert, {"no layer 'conv2d_2'"}, "k.h5", {"out.h5"}});
  t.push_back({"KerasWrongShape", [](const Dir& d) {
                 KerasFile k{keras_v05_layer_names()};
                 k.kernel_shape = Shape{3, 3, 3, 16};
                 keras_file(d("k.h5"), k);
               }, "convert_weights", kConvert, {"conv2d_1", "has shape [16, 3, 3, 3] but InceptionV3 expects [32, 3, 3, 3]"}, "k.h5",
               {"out.h5"}});
  t.push_back({"KerasWrongDtype", [](const Dir& d) {
                 KerasFile k{keras_v05_layer_names()};
                 k.kernel_as_strings = true;
                 keras_file(d("k.h5"), k);
               }, "convert_weights", kConvert, {"'conv2d_1/conv2d_1/kernel:0' is string, not numeric"}, "k.h5", {"out.h5"}});
  t.push_back({"TorchvisionNotAStateDict", [](const Dir& d) { formatted_h5(d("k.h5"), "x"); }, "convert_weights",
               "--from torchvision {d}/k.h5 -o {d}/out.h5", {"not a torchvision InceptionV3 state_dict"}, "k.h5", {"out.h5"}});
  t.push_back({"TorchvisionWrongShape", [](const Dir& d) {
                 io::H5File f = io::H5File::create(d("k.h5"));
                 f.write("Conv2d_1a_3x3.conv.weight", zeros(Shape{32, 3, 5, 5}));
               }, "convert_weights", "--from torchvision {d}/k.h5 -o {d}/out.h5",
               {"Conv2d_1a_3x3.conv.weight has shape", "but InceptionV3 expects"}, "k.h5", {"out.h5"}});
  t.push_back({"TorchvisionMissingTensor", [](const Dir& d) {
                 io::H5File f = io::H5File::create(d("k.h5"));
                 f.write("Conv2d_1a_3x3.conv.weight", zeros(Shape{32, 3, 3, 3}));
               }, "convert_weights", "--from torchvision {d}/k.h5 -o {d}/out.h5", {"missing 'Conv2d_1a_3x3.bn."}, "k.h5", {"out.h5"}});

  // ---- export to ONNX, and reading ONNX back -------------------------------------------------------------
  t.push_back({"ExportBackboneOnly", [](const Dir& d) {
                 ModelConfig cfg = ModelConfig::plain_inception_v3(Flavour::keras, 0);
                 LesionClassifier model(cfg);
                 io::save_weights(model, cfg, d("b.h5"));
               }, "export", "{d}/b.h5 -o {d}/out.onnx", {"the model has no classifier"}, "b.h5", {"out.onnx"}});
  t.push_back({"ExportNotAModelFile", [](const Dir& d) { spit(d("x.h5"), "not a model"); }, "export",
               "{d}/x.h5 -o {d}/out.onnx", {"not an HDF5 file"}, "x.h5", {"out.onnx"}});
  t.push_back({"ExportWindowWithImageInput", nullptr, "export", "{w} --input image --window-width 300 -o {d}/out.onnx",
               {"--window-level/--window-width apply to --input hu only"}, "--input", {"out.onnx"}});
  t.push_back({"ExportEnsembleOfOneModel", nullptr, "export", "{w} --format ensemble -o {d}/out.h5",
               {"one model; --format ensemble takes a run directory (its fold models) or an ensemble file"}, "w.h5",
               {"out.h5"}});
  t.push_back({"ExportRunNotFinished", [](const Dir& d) { spit(d("run/config.yaml"), tiny_yaml()); }, "export",
               "{d}/run -o {d}/out.onnx", {"the run has not finished (no metrics.json)", "tools/train --resume"}, "run",
               {"out.onnx"}});
  const std::string kFromOnnx = "--from onnx {d}/m.onnx -o {d}/out.h5";
  t.push_back({"OnnxNotWrittenByLivernet", [](const Dir& d) { spit(d("m.onnx"), onnx_file("pytorch", {}, "")); },
               "convert_weights", kFromOnnx, {"written by 'pytorch', not by livernet"}, "m.onnx", {"out.h5"}});
  t.push_back({"OnnxNotOnnx", [](const Dir& d) { spit(d("m.onnx"), "PK\x03\x04 a zip file, say"); }, "convert_weights",
               kFromOnnx, {"malformed"}, "m.onnx", {"out.h5"}});
  t.push_back({"OnnxTruncated", [](const Dir& d) {
                 std::unique_ptr<LesionClassifier> model = io::load_model(weights());
                 const std::string bytes = io::onnx_model_bytes(*model, {});
                 spit(d("m.onnx"), bytes.substr(0, bytes.size() / 2));
               }, "convert_weights", kFromOnnx, {"truncated"}, "m.onnx", {"out.h5"}});
  t.push_back({"OnnxInitializerMissing", [](const Dir& d) {
                 // A livernet export whose metadata describe a model of which its graph holds one tensor.
                 io::pb::Writer bias;
                 bias.int64(1, 2);  // dims
                 bias.int64(2, 1);  // float
                 bias.string(8, "head.fc.bias");
                 bias.packed_float(4, {0.f, 0.f});
                 ModelConfig cfg;
                 cfg.head_hidden = {};
                 spit(d("m.onnx"), onnx_file("livernet", bias, cfg.to_json()));
               }, "convert_weights", kFromOnnx, {"no initializer 'backbone.Conv2d_1a_3x3.conv.weight'"}, "m.onnx",
               {"out.h5"}});

  // ---- extract_lesions: NIfTI, DICOM, class maps, the id key ----------------------------------------
  const std::function<void(const Dir&)> nifti = [](const Dir& d) {
    fs::copy(volumes("nifti"), d("in"), fs::copy_options::recursive);
    spit(d("classes.yaml"), "cyst: ['3']\nmetastasis: ['2']\n");
  };
  const std::function<void(const Dir&)> ircadb = [](const Dir& d) {
    fs::copy(volumes("ircadb"), d("in"), fs::copy_options::recursive);
    spit(d("classes.yaml"), "cyst: ['liver ?kyste?\\d*']\nmetastasis: ['livertumou?r\\d*']\n");
  };
  const std::vector<std::string> extract_outputs{"out.h5", "out_lesions.csv"};
  t.push_back({"NiftiTruncated", all({nifti, [](const Dir& d) {
                 const fs::path ct = only_patient(d("in")) / "ct.nii.gz";
                 fs::resize_file(ct, fs::file_size(ct) / 2);
               }}), "extract_lesions", kExtractNifti, {"truncated", "1 skipped"}, "ct.nii.gz", extract_outputs});
  t.push_back({"NiftiZeroSized", all({nifti, [](const Dir& d) { spit((only_patient(d("in")) / "ct.nii.gz").string(), ""); }}),
               "extract_lesions", kExtractNifti, {"empty file, not a NIfTI image"}, "ct.nii.gz", extract_outputs});
  t.push_back({"NiftiNonFinite", all({nifti, [](const Dir& d) { nifti_with_nan(only_patient(d("in"))); }}), "extract_lesions",
               kExtractNifti, {"is NaN; non-finite HU values are not accepted"}, "ct.nii", extract_outputs});
  t.push_back({"NiftiHugeDimensions", all({nifti, [](const Dir& d) { nifti_with_huge_dims(only_patient(d("in"))); }}),
               "extract_lesions", kExtractNifti, {"declares 30000x30000x30000 voxels, more than the 2^31 allowed"}, "ct.nii",
               extract_outputs});
  t.push_back({"NiftiLabelsTruncated", all({nifti, [](const Dir& d) {
                 const fs::path l = only_patient(d("in")) / "labels.nii.gz";
                 fs::resize_file(l, 100);
               }}), "extract_lesions", kExtractNifti, {"corrupt gzip data|truncated"}, "labels.nii.gz", extract_outputs});
  t.push_back({"DicomTruncated", all({ircadb, [](const Dir& d) {
                 const std::string s = victim_slice(only_patient(d("in")));
                 fs::resize_file(s, fs::file_size(s) - 300);
               }}), "extract_lesions", kExtractIrcadb, {"truncated"}, "slice_x", extract_outputs});
  t.push_back({"DicomZeroSized", all({ircadb, [](const Dir& d) { spit(victim_slice(only_patient(d("in"))), ""); }}),
               "extract_lesions", kExtractIrcadb, {"empty file (0 bytes) in a DICOM folder"}, "slice_x", extract_outputs});
  t.push_back({"DicomNonFinite", all({ircadb, [](const Dir& d) {
                 dicom_set(victim_slice(only_patient(d("in"))), DCM_RescaleSlope, "NaN");
               }}), "extract_lesions", kExtractIrcadb, {"invalid RescaleSlope/RescaleIntercept"}, "slice_x", extract_outputs});
  // ---- predict --ct: a CT volume and its mask -------------------------------------------------------------
  const std::function<void(const Dir&)> one_volume = [](const Dir& d) {
    const fs::path p = only_patient(volumes("nifti"));
    fs::copy(p / "ct.nii.gz", d("ct.nii.gz"));
    fs::copy(p / "labels.nii.gz", d("labels.nii.gz"));
  };
  const std::string kPredictCt = "--weights {w} --device cpu -o {d}/out.csv --ct {d}/ct.nii.gz ";
  t.push_back({"PredictCtMaskGridDiffers", all({one_volume, [](const Dir& d) {
                 io::LabelVolume l = io::read_nifti_labels(d("labels.nii.gz"));
                 l.grid.origin[2] += 5;
                 io::NiftiWriteOptions o;
                 o.datatype = "uint8";
                 io::write_nifti(d("labels.nii.gz"), l, o);
               }}), "predict", kPredictCt + "--mask {d}/labels.nii.gz --lesions 2", {"label map and volume grids differ"},
               "labels.nii.gz", {"out.csv"}});
  t.push_back({"PredictCtWithoutMask", one_volume, "predict", kPredictCt, {"--ct needs --mask"}, "--mask", {"out.csv"}});
  t.push_back({"PredictCtNoLesionStructure", one_volume, "predict", kPredictCt + "--mask {d}/labels.nii.gz --lesions 7",
               {"no structure matches --lesions '7'"}, "labels.nii.gz", {"out.csv"}});

  t.push_back({"ClassMapOneClass", all({nifti, [](const Dir& d) { spit(d("classes.yaml"), "cyst: ['3']\n"); }}),
               "extract_lesions", kExtractNifti, {"the class map names one class"}, "classes.yaml", extract_outputs});
  t.push_back({"ClassMapBadPattern", all({nifti, [](const Dir& d) { spit(d("classes.yaml"), "cyst: ['(3']\nmetastasis: ['2']\n"); }}),
               "extract_lesions", kExtractNifti, {"pattern '(3' of class 'cyst' is not a valid regular expression"}, "classes.yaml",
               extract_outputs});
  t.push_back({"ClassMapNotYaml", all({nifti, [](const Dir& d) { spit(d("classes.yaml"), "cyst: ['3'\n"); }}), "extract_lesions",
               kExtractNifti, {"not valid YAML"}, "classes.yaml", extract_outputs});
  t.push_back({"ClassMapMissing", all({nifti, [](const Dir& d) { fs::remove(d("classes.yaml")); }}), "extract_lesions",
               kExtractNifti, {"cannot read the class map"}, "classes.yaml", extract_outputs});
  t.push_back({"IdKeyTooShort", all({nifti, [](const Dir& d) { spit(d("short.key"), "12345"); }}), "extract_lesions",
               "--input {d}/in --layout nifti --classes {d}/classes.yaml -o {d}/out.h5 --id-key {d}/short.key",
               {"a pseudonymisation key needs at least 16 bytes"}, "short.key", extract_outputs});

  // ---- merge_datasets ---------------------------------------------------------------------------------
  const std::string kMerge = "{d}/a.h5 {d}/b.h5 -o {d}/merged.h5";
  t.push_back({"MergePatchSizesDiffer", [](const Dir& d) {
                 small_dataset(d("a.h5"), 2);
                 fs::copy_file(phantoms(), d("b.h5"));
               }, "merge_datasets", kMerge, {"patches are [32, 32] but", "extract every source with the same --size"}, "b.h5",
               {"merged.h5"}});
  t.push_back({"MergePatientInTwoSources", [](const Dir& d) {
                 small_dataset(d("a.h5"), 2);
                 small_dataset(d("b.h5"), 2);
               }, "merge_datasets", kMerge, {"patient P0 is in both", "--prefix-ids"}, "b.h5", {"merged.h5"}});
  t.push_back({"MergeInputTruncated", [](const Dir& d) {
                 small_dataset(d("a.h5"), 2);
                 truncated_copy(phantoms(), d("b.h5"), 0.5);
               }, "merge_datasets", kMerge, {"truncated"}, "b.h5", {"merged.h5"}});

  // ---- bench (reads no input; its --json output), make_phantoms, command-line errors (exit code 2) ----
  t.push_back({"BenchJsonInMissingFolder", nullptr, "bench",
               "--device cpu --batch 1 --size 75 --iters 1 --warmup 0 --no-per-block --json {d}/no/such/b.json", {"cannot create"},
               "b.json", {"no"}});
  t.push_back({"MakePhantomsBadVolumeSize", nullptr, "make_phantoms", "--volumes {d}/v --volume-size 64x64", {"--volume-size must be like"},
               "--volume-size", {"v"}});
  t.push_back({"ArgumentOutOfRange", nullptr, "predict", "--weights {d}/w.h5 --input {d}/x.npy --batch 0 -o {d}/out.csv",
               {"--batch", "(see --help)"}, "--batch", {"out.csv"}, 2});
  t.push_back({"ArgumentUnknownChoice", nullptr, "convert_weights", "--from caffe {d}/k.h5 -o {d}/out.h5", {"--from", "caffe"},
               "--from", {"out.h5"}, 2});
  t.push_back({"ArgumentUnknownOption", nullptr, "train", "--data {d}/x.h5 --epoch 3 -o {d}/run", {"--epoch", "(see --help)"},
               "--epoch", {"run"}, 2});
  t.push_back({"ArgumentMissingRequired", nullptr, "extract_lesions", "--input {d}/in --layout nifti -o {d}/out.h5",
               {"--classes", "required"}, "--classes", {"out.h5"}, 2});
  t.push_back({"InfoUnknownArgument", nullptr, "info", "--bogus", {"unknown argument '--bogus'"}, "--bogus", {}, 2});
  return t;
}


class BadInput : public ::testing::TestWithParam<Case> {
 protected:
  static void TearDownTestSuite() { fs::remove_all(root()); }
};

TEST_P(BadInput, OneLineNamingTheFileAndNoOutput) {
  const Case& c = GetParam();
  const Dir d{root() / c.name};
  fs::remove_all(d.path);
  fs::create_directories(d.path);
  struct Cleanup {
    fs::path p;
    ~Cleanup() { fs::remove_all(p); }
  } cleanup{d.path};
  if (c.make) c.make(d);
  std::string args = replace_all(c.args, "{d}", d.path.string());
  if (args.find("{w}") != std::string::npos) args = replace_all(args, "{w}", weights());
  if (args.find("{key}") != std::string::npos) args = replace_all(args, "{key}", id_key());
  const ToolRun r = run_tool(d.path.string(), c.tool, args);
  SCOPED_TRACE(c.tool + " " + args);
  RecordProperty("error", r.err);  // the messages, for docs/errors.md: --gtest_output=xml:FILE
  ASSERT_TRUE(r.exited) << "killed by a signal (core dump?); stderr: " << r.err;
  EXPECT_EQ(r.rc, c.rc) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "not one line:\n" << r.err;
  EXPECT_TRUE(!r.err.empty() && r.err.back() == '\n') << r.err;
  EXPECT_EQ(r.err.rfind(c.tool + ": ", 0), 0u) << "not '" << c.tool << ": ...': " << r.err;
  EXPECT_NE(r.err.find(c.names), std::string::npos) << "does not name " << c.names << ": " << r.err;
  for (const std::string& words : c.expect) {
    // "a|b": either.
    bool found = false;
    std::size_t from = 0;
    while (!found) {
      const std::size_t bar = words.find('|', from);
      found = r.err.find(words.substr(from, bar == std::string::npos ? std::string::npos : bar - from)) != std::string::npos;
      if (bar == std::string::npos) break;
      from = bar + 1;
    }
    EXPECT_TRUE(found) << "no '" << words << "' in: " << r.err;
  }
  for (const std::string& out : c.absent) EXPECT_FALSE(fs::exists(d(out))) << out << " was left behind";
}

INSTANTIATE_TEST_SUITE_P(Tools, BadInput, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& p) { return p.param.name; });

}  // namespace
