// File I/O: HDF5 layer, weight files (round trip, partial loading, every kind of mismatch), the Keras
// and torchvision importers' refusals, .npy and PNG readers, preprocessing, MD5.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "kernels/tensor_ops.h"
#include "models/import_weights.h"
#include "data/dataset.h"
#include "io/hdf5.h"
#include "io/image.h"
#include "io/md5.h"
#include "data/preprocess.h"
#include "models/weights.h"
#include "test_util.h"

using namespace livernet;
namespace fs = std::filesystem;

namespace {

using livernet::testing::TempDir;
using livernet::testing::error_of;

ModelConfig small_config() {
  ModelConfig c;
  c.head_hidden = {8};
  c.num_classes = 3;
  c.class_names = {"cyst", "metastasis", "hemangioma"};
  return c;
}

}  // namespace

TEST(Hdf5, TensorsStringsAndAttributesRoundTrip) {
  TempDir dir;
  const std::string p = dir / "a.h5";
  {
    io::H5File f = io::H5File::create(p);
    f.write("group/sub/x", arange(0, 6).reshape({2, 3}));
    f.write("labels", Tensor::from_vector<std::int64_t>({1, -2, 3}, Shape{3}));
    f.write("scalar", full(Shape{}, 2.5));
    f.write("u8", Tensor::from_vector<std::uint8_t>({0, 255}, Shape{2}));
    f.write_strings("names", {"P001", "", "ünïcode"});
    f.write_string_attr("/", "format", "test");
    f.write_int_attr("group", "version", 7);
    f.write_string_list_attr("/", "classes", {"cyst", "metastasis"});
  }
  io::H5File f = io::H5File::open(p);
  EXPECT_EQ(f.read("group/sub/x").to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(f.read("group/sub/x").shape(), (Shape{2, 3}));
  EXPECT_EQ(f.read("labels").dtype(), DType::i64);
  EXPECT_EQ(f.read("labels", DType::f32).to_vector<float>(), (std::vector<float>{1, -2, 3}));
  EXPECT_EQ(f.read("scalar").item(), 2.5);
  EXPECT_EQ(f.read("u8").to_vector<int>(), (std::vector<int>{0, 255}));
  EXPECT_EQ(f.read_rows("group/sub/x", 1, 1).to_vector<float>(), (std::vector<float>{3, 4, 5}));
  EXPECT_EQ(f.read_strings("names"), (std::vector<std::string>{"P001", "", "ünïcode"}));
  EXPECT_EQ(f.read_string_attr("/", "format"), "test");
  EXPECT_EQ(f.read_int_attr("group", "version"), 7);
  EXPECT_EQ(f.read_string_list_attr("/", "classes"), (std::vector<std::string>{"cyst", "metastasis"}));
  EXPECT_EQ(f.datasets(), (std::vector<std::string>{"group/sub/x", "labels", "names", "scalar", "u8"}));
  EXPECT_FALSE(f.exists("group/nope/x"));
  EXPECT_TRUE(f.exists("group/sub"));
  EXPECT_FALSE(f.is_dataset("group/sub"));
  EXPECT_NE(error_of([&] { (void)f.read("missing"); }).find("no dataset 'missing'"), std::string::npos);
  EXPECT_NE(error_of([&] { (void)f.read("names"); }).find("not numeric"), std::string::npos);
  EXPECT_NE(error_of([&] { (void)f.read("group/sub/x", std::nullopt, 5); }).find("more than the 5 allowed"), std::string::npos);
}

TEST(Hdf5, ClearErrorsForMissingAndNonHdf5Files) {
  TempDir dir;
  EXPECT_NE(error_of([&] { (void)io::H5File::open(dir / "nope.h5"); }).find("no such file"), std::string::npos);
  std::ofstream(dir / "text.h5") << "hello";
  EXPECT_NE(error_of([&] { (void)io::H5File::open(dir / "text.h5"); }).find("not an HDF5 file"), std::string::npos);
  // A truncated HDF5 file.
  {
    io::H5File f = io::H5File::create(dir / "full.h5");
    f.write("x", zeros(Shape{1000}));
  }
  fs::resize_file(dir / "full.h5", fs::file_size(dir / "full.h5") / 2);
  const std::string e = error_of([&] { (void)io::H5File::open(dir / "full.h5").read("x"); });
  EXPECT_NE(e.find("full.h5"), std::string::npos) << e;
}

TEST(Hdf5, AtomicWriteLeavesTheOldFileOnFailure) {
  TempDir dir;
  const std::string p = dir / "w.h5";
  io::write_file_atomically(p, [](const std::string& tmp) { std::ofstream(tmp) << "version 1"; });
  EXPECT_THROW(io::write_file_atomically(p, [](const std::string& tmp) {
                 std::ofstream(tmp) << "half";
                 throw Error("simulated failure");
               }),
               Error);
  std::ifstream in(p);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "version 1");
  int files = 0;
  for (auto& e : fs::directory_iterator(dir / "")) (void)e, ++files;
  EXPECT_EQ(files, 1) << "no temporary file left behind";
  EXPECT_THROW(io::write_file_atomically(dir / "no/such/dir/x.h5", [](const std::string&) {}), Error);
}

// `-o /dev/null` once replaced, as root, the system's /dev/null with a regular file (the temporary file was
// renamed over it). A FIFO stands in for the device here: written through, and still a FIFO afterwards. A
// symbolic link stays a link, and the file it points to gets the new contents.
TEST(Hdf5, AtomicWriteGoesThroughDevicesFifosAndLinks) {
  TempDir dir;
  const std::string fifo = dir / "pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const int reader = ::open(fifo.c_str(), O_RDWR | O_NONBLOCK);  // so that the writer's open does not wait
  ASSERT_GE(reader, 0);
  io::write_text_file_atomically(fifo, "through the pipe");
  char buf[64] = {};
  const ssize_t n = ::read(reader, buf, sizeof buf - 1);
  ::close(reader);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0), "through the pipe");
  EXPECT_TRUE(fs::is_fifo(fifo));

  const std::string real = dir / "real.csv", link = dir / "link.csv";
  std::ofstream(real) << "old";
  fs::create_symlink(real, link);
  io::write_text_file_atomically(link, "new");
  EXPECT_TRUE(fs::is_symlink(link));
  std::ifstream in(real);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()), "new");
  EXPECT_THROW(io::write_text_file_atomically(dir / "", "x"), Error);
}

TEST(Weights, SaveLoadRoundTripIsExact) {
  TempDir dir;
  init::set_seed(3);
  LesionClassifier a(small_config());
  io::save_weights(a, a.config(), dir / "w.h5");
  // The file layout: slash paths, OIHW conv weights, root attributes.
  io::H5File f = io::H5File::open(dir / "w.h5");
  EXPECT_EQ(f.read_string_attr("/", "format"), "livernet-weights");
  EXPECT_EQ(f.read_int_attr("/", "format_version"), 1);
  EXPECT_EQ(f.info("backbone/Mixed_5b/branch5x5_2/conv/weight").shape, (Shape{64, 48, 5, 5}));
  EXPECT_EQ(f.info("head/fc/weight").shape, (Shape{3, 8}));
  EXPECT_TRUE(f.is_dataset("backbone/Mixed_5d/shortcut/alpha"));
  auto b = io::load_model(dir / "w.h5");
  EXPECT_EQ(b->config().to_json(), a.config().to_json());
  auto sa = a.named_state(), sb = b->named_state();
  ASSERT_EQ(sa.size(), sb.size());
  for (std::size_t i = 0; i < sa.size(); ++i) EXPECT_EQ(sa[i].tensor->to_vector<float>(), sb[i].tensor->to_vector<float>()) << sa[i].name;
}

TEST(Weights, PartialLoadingReportsWhatWasAndWasNotLoaded) {
  TempDir dir;
  ModelConfig imagenet = small_config();
  imagenet.arch = "inception_v3";
  imagenet.residual = ResidualMode::none;
  imagenet.num_classes = 10;
  imagenet.class_names.clear();
  init::set_seed(1);
  LesionClassifier src(imagenet);
  io::save_weights(src, imagenet, dir / "imagenet.h5");
  init::set_seed(2);
  LesionClassifier dst(small_config());
  // Strict loading names the first problem.
  const std::string e = error_of([&] { io::load_weights(dst, dir / "imagenet.h5"); });
  EXPECT_NE(e.find("missing 'backbone/Mixed_5d/shortcut/alpha'"), std::string::npos) << e;
  io::LoadOptions opt;
  opt.strict = false;
  opt.only_prefixes = {"backbone."};
  const io::LoadReport r = io::load_weights(dst, dir / "imagenet.h5", opt);
  EXPECT_EQ(r.loaded.size(), 94u * 4u);  // conv weight, BN beta, running mean, running var (keras flavour)
  EXPECT_EQ(r.missing.size(), 6u) << "the six shortcut scales are not in an ImageNet file";
  EXPECT_FALSE(r.skipped.empty()) << "the head is kept as initialised";
  EXPECT_NE(r.summary().find("loaded 376 tensors"), std::string::npos) << r.summary();
  auto* u = static_cast<ConvBnReLU*>(dst.find("backbone.Mixed_6e.branch7x7_2"));
  auto* v = static_cast<ConvBnReLU*>(src.find("backbone.Mixed_6e.branch7x7_2"));
  EXPECT_EQ(u->conv->weight.to_vector<float>(), v->conv->weight.to_vector<float>());
}

TEST(Weights, MismatchesAreNamed) {
  TempDir dir;
  init::set_seed(1);
  LesionClassifier m(small_config());
  io::save_weights(m, m.config(), dir / "w.h5");
  // Wrong shape.
  ModelConfig other = small_config();
  other.head_hidden = {16};
  LesionClassifier wrong(other);
  std::string e = error_of([&] { io::load_weights(wrong, dir / "w.h5"); });
  EXPECT_NE(e.find("'head/fc1/weight' has shape [8, 2048] but the model expects [16, 2048]"), std::string::npos) << e;
  // Wrong dtype.
  {
    io::H5File f = io::H5File::open(dir / "w.h5", true);
    f.write("head/fc/bias", zeros(Shape{3}, DType::i32));
  }
  e = error_of([&] { io::load_weights(m, dir / "w.h5"); });
  EXPECT_NE(e.find("'head/fc/bias' is int32, expected float32"), std::string::npos) << e;
  // A newer format version.
  {
    io::H5File f = io::H5File::open(dir / "w.h5", true);
    f.write_int_attr("/", "format_version", 99);
  }
  e = error_of([&] { io::load_weights(m, dir / "w.h5"); });
  EXPECT_NE(e.find("version 99 is not supported"), std::string::npos) << e;
  // Keras and torchvision files get a conversion hint.
  {
    io::H5File f = io::H5File::create(dir / "keras.h5");
    f.write_string_list_attr("/", "layer_names", {"input_1"});
  }
  e = error_of([&] { (void)io::read_model_config(dir / "keras.h5"); });
  EXPECT_NE(e.find("convert_weights --from keras"), std::string::npos) << e;
  {
    io::H5File f = io::H5File::create(dir / "tv.h5");
    f.write("Conv2d_1a_3x3.conv.weight", zeros(Shape{32, 3, 3, 3}));
  }
  e = error_of([&] { (void)io::read_model_config(dir / "tv.h5"); });
  EXPECT_NE(e.find("--from torchvision"), std::string::npos) << e;
  // A model configuration with an unknown key.
  {
    io::H5File f = io::H5File::open(dir / "w.h5", true);
    f.write_int_attr("/", "format_version", 1);
    f.write_string_attr("/", "model", "{\"arch\": \"paper\", \"hiden\": 3}");
  }
  e = error_of([&] { (void)io::read_model_config(dir / "w.h5"); });
  EXPECT_NE(e.find("unknown key 'hiden'"), std::string::npos) << e;
}

TEST(Convert, RefusesKeras1AndForeignFiles) {
  TempDir dir;
  {
    io::H5File f = io::H5File::create(dir / "v02.h5");
    f.write_string_list_attr("/", "layer_names", {"input_1", "convolution2d_1", "batchnormalization_1"});
  }
  std::string e = error_of([&] { io::convert_keras(dir / "v02.h5", dir / "out.h5"); });
  EXPECT_NE(e.find("Keras-1 InceptionV3 file (v0.2"), std::string::npos) << e;
  {
    io::H5File f = io::H5File::create(dir / "small.h5");
    f.write_string_list_attr("/", "layer_names", {"input_1", "conv2d_1", "batch_normalization_1"});
  }
  e = error_of([&] { io::convert_keras(dir / "small.h5", dir / "out.h5"); });
  EXPECT_NE(e.find("1 conv2d layers where InceptionV3 has 94"), std::string::npos) << e;
  {
    io::H5File f = io::H5File::create(dir / "plain.h5");
    f.write("x", zeros(Shape{2}));
  }
  e = error_of([&] { io::convert_keras(dir / "plain.h5", dir / "out.h5"); });
  EXPECT_NE(e.find("no 'layer_names' attribute"), std::string::npos) << e;
  e = error_of([&] { io::convert_torchvision(dir / "plain.h5", dir / "out.h5"); });
  EXPECT_NE(e.find("not a torchvision InceptionV3 state_dict"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(dir / "out.h5")) << "no output after a refusal";
}

TEST(Md5, Rfc1321Examples) {
  EXPECT_EQ(io::md5_bytes(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(io::md5_bytes("abc"), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(io::md5_bytes("message digest"), "f96b697d7cb7938d525a2f31aaf161d0");
  EXPECT_EQ(io::md5_bytes(std::string(1000, 'a')), "cabe45dcc9ae5b66ba86600cca6b8ba8");
  TempDir dir;
  std::ofstream(dir / "f.txt") << "abc";
  EXPECT_EQ(io::md5_file(dir / "f.txt"), "900150983cd24fb0d6963f7d28e17f72");
}

TEST(Npy, RoundTripAndErrors) {
  TempDir dir;
  const Tensor t = randn(Shape{2, 3, 4}, 1);
  io::write_npy(dir / "a.npy", t);
  const Tensor r = io::read_npy(dir / "a.npy");
  EXPECT_EQ(r.shape(), t.shape());
  EXPECT_EQ(r.to_vector<float>(), t.to_vector<float>());
  io::write_npy(dir / "b.npy", arange(0, 5, 1, DType::i64));
  EXPECT_EQ(io::read_npy(dir / "b.npy").to_vector<std::int64_t>(), (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
  std::ofstream(dir / "bad.npy") << "not numpy";
  EXPECT_NE(error_of([&] { (void)io::read_npy(dir / "bad.npy"); }).find("bad magic"), std::string::npos);
  fs::copy_file(dir / "a.npy", dir / "trunc.npy");
  fs::resize_file(dir / "trunc.npy", fs::file_size(dir / "trunc.npy") - 8);
  EXPECT_NE(error_of([&] { (void)io::read_npy(dir / "trunc.npy"); }).find("truncated .npy data"), std::string::npos);
  {
    std::ofstream huge(dir / "huge.npy", std::ios::binary);
    std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000, 100000), }";
    while ((10 + h.size() + 1) % 64) h += ' ';
    h += '\n';
    huge.write("\x93NUMPY\x01\x00", 8);
    const char len[2] = {static_cast<char>(h.size() & 0xff), static_cast<char>(h.size() >> 8)};
    huge.write(len, 2);
    huge << h;
  }
  EXPECT_NE(error_of([&] { (void)io::read_npy(dir / "huge.npy"); }).find("too large"), std::string::npos);
}

TEST(Png, RoundTripGreyAndRgbAndErrors) {
  TempDir dir;
  std::vector<float> v(5 * 7 * 3);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((i * 37) % 256);
  io::write_png(dir / "rgb.png", Tensor::from_vector(v, Shape{5, 7, 3}));
  int depth = 0;
  const Tensor r = io::read_png(dir / "rgb.png", &depth);
  EXPECT_EQ(depth, 8);
  EXPECT_EQ(r.shape(), (Shape{5, 7, 3}));
  EXPECT_EQ(r.to_vector<float>(), v);
  std::ofstream(dir / "bad.png") << "GIF89a";
  EXPECT_NE(error_of([&] { (void)io::read_png(dir / "bad.png"); }).find("not a PNG file"), std::string::npos);
  fs::copy_file(dir / "rgb.png", dir / "trunc.png");
  fs::resize_file(dir / "trunc.png", 40);
  EXPECT_NE(error_of([&] { (void)io::read_png(dir / "trunc.png"); }).find("corrupt PNG"), std::string::npos);
}

TEST(Preprocess, WindowScaleAndResize) {
  const Tensor hu = Tensor::from_vector<float>({-1000, -160, 40, 240, 3000}, Shape{5});
  EXPECT_EQ(data::apply_window(hu, {40, 400}).to_vector<float>(), (std::vector<float>{-1, -1, 0, 1, 1}));
  EXPECT_THROW(data::apply_window(Tensor::from_vector<float>({NAN}, Shape{1}), {}), Error);
  EXPECT_EQ(data::scale_8bit(Tensor::from_vector<float>({0, 255}, Shape{2})).to_vector<float>(), (std::vector<float>{-1, 1}));
  // 2x2 -> 4x4 with half-pixel centres: torch.nn.functional.interpolate(bilinear, align_corners=False).
  const Tensor small = Tensor::from_vector<float>({0, 1, 2, 3}, Shape{2, 2, 1});
  const std::vector<float> up = data::resize_bilinear(small, 4, 4).to_vector<float>();
  const std::vector<float> expected = {0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3};
  for (std::size_t i = 0; i < up.size(); ++i) EXPECT_FLOAT_EQ(up[i], expected[i]) << i;
  EXPECT_EQ(data::resize_bilinear(zeros(Shape{2, 10, 20, 3}), 5, 7).shape(), (Shape{2, 5, 7, 3}));
}

TEST(Datasets, H5RoundTripAndValidation) {
  TempDir dir;
  data::Dataset d;
  d.path = "mem";
  d.class_names = {"cyst", "metastasis"};
  for (int i = 0; i < 4; ++i) {
    d.images.push_back(full(Shape{6, 5}, 10.0 * i));
    d.labels.push_back(i % 2);
    d.patient_ids.push_back("P" + std::to_string(i / 2));
    d.lesion_ids.push_back("L" + std::to_string(i));
    d.spacing_mm.push_back({0.8f, 0.8f});
  }
  data::save_dataset_h5(d, dir / "d.h5");
  const data::Dataset r = data::load_dataset(dir / "d.h5");
  EXPECT_EQ(r.labels, d.labels);
  EXPECT_EQ(r.patient_ids, d.patient_ids);
  EXPECT_EQ(r.images[3].to_vector<float>(), d.images[3].to_vector<float>());
  EXPECT_EQ(r.summary(), "4 lesions, 2 patients, classes cyst 2 / metastasis 2, patches 6x5");
  data::Dataset two_per_lesion = r;
  two_per_lesion.lesion_ids = {"L0", "L0", "L1", "L1"};
  EXPECT_EQ(two_per_lesion.summary(), "4 samples of 2 lesions, 2 patients, classes cyst 2 / metastasis 2, patches 6x5");
  {
    io::H5File f = io::H5File::open(dir / "d.h5", true);
    f.write("labels", Tensor::from_vector<std::int64_t>({0, 1, 5, 0}, Shape{4}));
  }
  EXPECT_NE(error_of([&] { (void)data::load_dataset(dir / "d.h5"); }).find("label 5 outside [0, 2)"), std::string::npos);
  {
    io::H5File f = io::H5File::create(dir / "partial.h5");
    f.write("images", zeros(Shape{2, 4, 4}));
  }
  EXPECT_NE(error_of([&] { (void)data::load_dataset(dir / "partial.h5"); }).find("missing dataset 'labels'"), std::string::npos);
}

TEST(Datasets, CsvManifestsAndTheirErrors) {
  TempDir dir;
  fs::create_directories(dir / "data/p1");
  io::write_npy(dir / "data/p1/a.npy", full(Shape{8, 8}, 30.0));
  std::vector<float> px(8 * 8, 255.f);
  io::write_png(dir / "data/p1/b.png", Tensor::from_vector(px, Shape{8, 8, 1}));
  io::write_npy(dir / "data/p1/c.npy", full(Shape{8, 8}, -5.0));
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / ("data/" + name)) << text;
    return dir / ("data/" + name);
  };
  const data::Dataset d = data::load_manifest(write("ok.csv", "path,label,patient_id,lesion_id\np1/a.npy,metastasis,P1,L1\n"
                                                          "p1/b.png,cyst,P1,L2\n\"p1/c.npy\",cyst,P2,L3\n"));
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"cyst", "metastasis"}));
  EXPECT_EQ(d.labels, (std::vector<int>{1, 0, 0}));
  EXPECT_EQ(d.lesion_ids[1], "L2");
  EXPECT_FLOAT_EQ(d.images[0].to_vector<float>()[0], 30.f);
  EXPECT_FLOAT_EQ(d.images[1].to_vector<float>()[0], 240.f) << "8-bit PNG 255 = the top of the 40/400 window";
  const std::pair<std::string, std::string> bad[] = {
      {"path,label\np1/a.npy,cyst\n", "missing column 'patient_id'"},
      {"path,label,patient_id\n../../etc/passwd,cyst,P1\n", "leaves the manifest's folder"},
      {"path,label,patient_id\n/etc/passwd,cyst,P1\n", "leaves the manifest's folder"},
      {"path,label,patient_id\np1/missing.npy,cyst,P1\n", "no such file"},
      {"path,label,patient_id\np1/a.npy,cyst,P1\np1/c.npy,tumour,P2\n", ":3: unknown label 'tumour'"},
      {"path,label,patient_id\np1/a.npy,cyst,\n", "empty patient_id"},
      {"path,label,patient_id\n", "no rows"},
  };
  data::ManifestOptions fixed;
  fixed.class_names = {"cyst", "metastasis"};
  int i = 0;
  for (const auto& [text, msg] : bad) {
    const std::string e = error_of([&] { (void)data::load_manifest(write("bad" + std::to_string(i++) + ".csv", text), fixed); });
    EXPECT_NE(e.find(msg), std::string::npos) << text << " -> " << e;
  }
}
