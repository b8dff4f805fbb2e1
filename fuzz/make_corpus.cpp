// Writes the seed corpus fuzz/corpus/<target>/ with the project's own writers (plus a few hand-made
// variants the writers do not produce): a handful of small, valid inputs per target.
//
//   build-x/fuzz/fuzz_make_corpus fuzz/corpus [configs]
//
// Existing seed files of the same names are overwritten; nothing else is removed.
#include <png.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "ct/dicom.h"
#include "ct/nifti.h"
#include "data/dataset.h"
#include "fuzz/fuzz_common.h"
#include "fuzz/fuzz_grid.h"
#include "fuzz/fuzz_model.h"
#include "io/hdf5.h"
#include "io/image.h"
#include "io/protobuf.h"
#include "models/onnx.h"
#include "models/weights.h"
#include "train/train_config.h"

namespace {

namespace fs = std::filesystem;
using namespace livernet;
using namespace livernet::io;

fs::path out_root;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void put(const std::string& target, const std::string& name, const std::string& bytes) {
  const fs::path dir = out_root / target;
  fs::create_directories(dir);
  lnfuzz::Scratch::write(dir, name, bytes);
  std::printf("%s/%s (%zu bytes)\n", target.c_str(), name.c_str(), bytes.size());
}

void put_file(const std::string& target, const std::string& name, const fs::path& from) { put(target, name, slurp(from)); }

// The files of a folder joined as one multi-file input, in name order.
std::string joined(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::string s;
  for (std::size_t i = 0; i < files.size(); ++i) s += (i ? std::string(lnfuzz::kNextFile) : "") + slurp(files[i]);
  return s;
}

Volume ct_volume() {
  Volume v(lnfuzz::ct_grid());
  for (std::size_t i = 0; i < v.v.size(); ++i) v.v[i] = static_cast<float>(static_cast<int>(i * 37 % 400) - 100);
  return v;
}

Mask disc(int k0, int k1) {
  Mask m(lnfuzz::ct_grid());
  for (int k = k0; k <= k1; ++k)
    for (int j = 2; j < 6; ++j)
      for (int i = 2; i < 6; ++i) m.at(i, j, k) = 1;
  return m;
}

// ---- NIfTI -----------------------------------------------------------------------------------------
void nifti(const fs::path& tmp) {
  const Volume v = ct_volume();
  LabelVolume l(lnfuzz::ct_grid());
  for (std::size_t i = 0; i < l.v.size(); ++i) l.v[i] = static_cast<std::int32_t>(i % 3);
  struct Case {
    const char* name;
    bool labels;
    NiftiWriteOptions o;
  };
  NiftiWriteOptions o1, f32, v2, sform, qform, none, scaled;
  f32.datatype = "float32";
  v2.version = 2;
  v2.datatype = "uint8";
  sform.qform_code = 0;
  qform.sform_code = 0;
  none.qform_code = none.sform_code = 0;
  scaled.scl_slope = 2;
  scaled.scl_inter = -1024;
  const Case cases[] = {{"ct_int16.nii", false, o1},      {"ct_float32.nii.gz", false, f32},
                        {"labels_v2_uint8.nii", true, v2}, {"ct_sform_only.nii", false, sform},
                        {"ct_qform_only.nii", false, qform}, {"labels_no_orientation.nii", true, none},
                        {"ct_scaled.nii.gz", false, scaled}};
  for (const Case& c : cases) {
    const fs::path p = tmp / c.name;
    if (c.labels) write_nifti(p.string(), l, c.o);
    else write_nifti(p.string(), v, c.o);
    put_file("nifti", c.name, p);
  }
}

// ---- DICOM -----------------------------------------------------------------------------------------
void dicom(const fs::path& tmp) {
  DicomIdentity who;
  who.patient_name = "FUZZ^SEED";
  who.patient_id = "FZ1";
  const fs::path ct = tmp / "ct";
  const std::string uid = write_dicom_series(ct.string(), ct_volume(), who, "ct_{}.dcm");
  put("dicom", "ct_series", joined(ct));
  Volume wide = ct_volume();
  wide.v[5] = 40000;  // a slope/intercept other than 1/-1024
  write_dicom_series((tmp / "wide").string(), wide, who, "w_{}.dcm");
  put("dicom", "ct_series_rescaled", joined(tmp / "wide"));
  write_dicom_mask_series((tmp / "mask_ot").string(), disc(0, 2), who, "m_{}.dcm", "OT");
  put("dicom", "mask_series_ot", joined(tmp / "mask_ot"));
  write_dicom_mask_series((tmp / "mask_ct").string(), disc(1, 2), who, "m_{}.dcm", "CT");
  put("dicom", "mask_series_ct", joined(tmp / "mask_ct"));
  put_file("dicom", "single_slice", ct / "ct_1.dcm");

  std::vector<DicomSegment> segs(2);
  segs[0].label = "liver";
  segs[0].mask = disc(0, 2);
  segs[1].label = "tumor";
  segs[1].mask = disc(1, 1);
  write_dicom_seg((tmp / "seg.dcm").string(), segs, uid, who);
  put_file("dicom_seg", "seg_two_segments.dcm", tmp / "seg.dcm");
  segs.resize(1);
  segs[0].number = 7;
  write_dicom_seg((tmp / "seg1.dcm").string(), segs, uid, who);
  put_file("dicom_seg", "seg_one_segment.dcm", tmp / "seg1.dcm");
}

// ---- .npy ------------------------------------------------------------------------------------------
std::string npy_bytes(const std::string& descr, const std::string& shape, const std::string& data, int major = 1,
                      const char* fortran = "False") {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
  const std::size_t pre = major == 1 ? 10 : 12;
  while ((pre + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string s = "\x93NUMPY";
  s += static_cast<char>(major);
  s += '\0';
  const std::size_t n = header.size();
  s += static_cast<char>(n & 0xff);
  s += static_cast<char>((n >> 8) & 0xff);
  if (major != 1) s += std::string(2, '\0');
  return s + header + data;
}

void npy(const fs::path& tmp) {
  auto via_writer = [&](const std::string& name, const Tensor& t) {
    write_npy((tmp / name).string(), t);
    put_file("npy", name, tmp / name);
  };
  via_writer("f32_4x4.npy", Tensor::from_vector(std::vector<float>{-1000, -50, 0, 10, 20, 30, 40, 50, 60, 70, 80, 90,
                                                                   100, 200, 300, 1e3f},
                                                Shape{4, 4}));
  via_writer("i32_2x3.npy", Tensor::from_vector(std::vector<std::int32_t>{1, -2, 3, -4, 5, -6}, Shape{2, 3}));
  via_writer("i64_3.npy", Tensor::from_vector(std::vector<std::int64_t>{7, 8, 9}, Shape{3}));
  via_writer("u8_2x2x1.npy", Tensor::from_vector(std::vector<std::uint8_t>{0, 1, 254, 255}, Shape{2, 2, 1}));
  put("npy", "i2_2x2.npy", npy_bytes("<i2", "(2, 2)", std::string("\x01\x00\xff\xff\x00\x80\xff\x7f", 8)));
  put("npy", "u2_3.npy", npy_bytes("<u2", "(3,)", std::string("\x01\x00\xff\xff\x00\x80", 6)));
  put("npy", "f8_2.npy", npy_bytes("<f8", "(2,)", std::string("\0\0\0\0\0\0\xf0\x3f\0\0\0\0\0\0\0\xc0", 16)));
  put("npy", "b1_3.npy", npy_bytes("|b1", "(3,)", std::string("\x01\x00\x01", 3)));
  put("npy", "i1_2.npy", npy_bytes("|i1", "(2,)", "\x80\x7f"));
  put("npy", "u4_scalar_v2.npy", npy_bytes("<u4", "()", std::string("\x2a\0\0\0", 4), 2));
  put("npy", "fortran.npy", npy_bytes("<f4", "(1, 1)", std::string(4, '\0'), 1, "True"));
}

// ---- PNG -------------------------------------------------------------------------------------------
// A PNG written directly with libpng: any depth / colour type (with a palette and tRNS when asked).
std::string png_bytes(int w, int h, int depth, int color, bool interlace = false, bool trns = false) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    LN_FAIL("make_corpus: libpng failed");
  }
  png_set_write_fn(png, &out, [](png_structp p, png_bytep d, png_size_t n) {
    static_cast<std::string*>(png_get_io_ptr(p))->append(reinterpret_cast<const char*>(d), n);
  }, [](png_structp) {});
  png_set_IHDR(png, info, w, h, depth, color, interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (color == PNG_COLOR_TYPE_PALETTE) {
    png_color pal[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    png_set_PLTE(png, info, pal, 4);
    if (trns) {
      png_byte alpha[2] = {0, 128};
      png_set_tRNS(png, info, alpha, 2, nullptr);
    }
  } else if (trns) {
    png_color_16 t{};
    t.gray = 1;
    png_set_tRNS(png, info, nullptr, 0, &t);
  }
  png_write_info(png, info);
  const int channels = color == PNG_COLOR_TYPE_RGB ? 3 : color == PNG_COLOR_TYPE_RGB_ALPHA ? 4
                       : color == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
  const std::size_t stride = (static_cast<std::size_t>(w) * channels * depth + 7) / 8;
  std::vector<png_byte> row(stride);
  const int passes = interlace ? png_set_interlace_handling(png) : 1;
  for (int pass = 0; pass < passes; ++pass)
    for (int r = 0; r < h; ++r) {
      for (std::size_t b = 0; b < stride; ++b) row[b] = static_cast<png_byte>((r * 31 + b * 17) & (depth < 8 ? 0x55 : 0xff));
      png_write_row(png, row.data());
    }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

void png(const fs::path& tmp) {
  Tensor grey = Tensor::empty(Shape{4, 5, 1});
  for (std::int64_t i = 0; i < grey.numel(); ++i) grey.data<float>()[i] = static_cast<float>(i * 12);
  write_png((tmp / "g.png").string(), grey);
  put_file("png", "grey8_writer.png", tmp / "g.png");
  Tensor rgb = Tensor::empty(Shape{3, 3, 3});
  for (std::int64_t i = 0; i < rgb.numel(); ++i) rgb.data<float>()[i] = static_cast<float>(i * 9);
  write_png((tmp / "c.png").string(), rgb);
  put_file("png", "rgb8_writer.png", tmp / "c.png");
  put("png", "grey16.png", png_bytes(4, 3, 16, PNG_COLOR_TYPE_GRAY));
  put("png", "grey1.png", png_bytes(9, 2, 1, PNG_COLOR_TYPE_GRAY));
  put("png", "grey_alpha8.png", png_bytes(3, 3, 8, PNG_COLOR_TYPE_GRAY_ALPHA));
  put("png", "rgba16.png", png_bytes(2, 2, 16, PNG_COLOR_TYPE_RGB_ALPHA));
  put("png", "palette_trns.png", png_bytes(4, 4, 2, PNG_COLOR_TYPE_PALETTE, false, true));
  put("png", "grey8_interlaced_trns.png", png_bytes(9, 9, 8, PNG_COLOR_TYPE_GRAY, true, true));
}

// ---- CSV manifests -----------------------------------------------------------------------------------
void manifest() {
  const std::string img1 = npy_bytes("<f4", "(2, 2)", std::string("\0\0\x7a\xc4\0\0\0\0\0\0\x48\x42\0\0\xc8\x42", 16));
  const std::string img2 = png_bytes(2, 2, 16, PNG_COLOR_TYPE_GRAY);
  const std::string img3 = png_bytes(3, 2, 8, PNG_COLOR_TYPE_GRAY);
  const std::string sep(lnfuzz::kNextFile);
  put("manifest", "names.csv",
      "path,label,patient_id,lesion_id\nimg1.npy,cyst,P1,L1\nimg2.png,metastasis,P2,L2\nimg3.png,cyst,P2,\n" + sep +
          img1 + sep + img2 + sep + img3);
  put("manifest", "numeric_quoted.csv",
      "label,\"patient_id\",path\r\n0,\"P, 1\",img1.npy\r\n1,P2,\"img2.png\"\r\n\r\n" + sep + img1 + sep + img2);
  put("manifest", "header_only.csv", "path,label,patient_id\n");
}

// ---- HDF5 ------------------------------------------------------------------------------------------
void dataset_h5(const fs::path& tmp) {
  data::Dataset d;
  d.class_names = {"cyst", "metastasis"};
  for (int i = 0; i < 3; ++i) {
    Tensor im = Tensor::empty(Shape{4, 4});
    for (std::int64_t p = 0; p < 16; ++p) im.data<float>()[p] = static_cast<float>(p * 10 - 50 + i);
    d.images.push_back(im);
    d.labels.push_back(i % 2);
    d.patient_ids.push_back("P" + std::to_string(i / 2));
    d.lesion_ids.push_back("L" + std::to_string(i));
  }
  save_dataset_h5(d, (tmp / "plain.h5").string());
  put_file("dataset_h5", "plain.h5", tmp / "plain.h5");
  d.spacing_mm = {{0.8f, 0.8f}, {0.7f, 0.7f}, {1.f, 1.f}};
  d.sources = {"a", "b", "c"};
  save_dataset_h5(d, (tmp / "full.h5").string());
  put_file("dataset_h5", "full.h5", tmp / "full.h5");
  // int16 images and int32 labels, as other tools write them.
  {
    H5File f = H5File::create((tmp / "int16.h5").string());
    f.write("images", Tensor::from_vector(std::vector<std::int32_t>{-1024, 0, 50, 3000}, Shape{1, 2, 2}));
    f.write("labels", Tensor::from_vector(std::vector<std::int32_t>{1}, Shape{1}));
    f.write_strings("patient_id", {"P"});
    f.write_strings("lesion_id", {"L"});
    f.write_string_list_attr("/", "classes", {"a", "b"});
  }
  put_file("dataset_h5", "int32.h5", tmp / "int16.h5");
}

void weights(const fs::path& tmp) {
  lnfuzz::TinyNet net;
  ModelConfig c;
  c.num_classes = 3;
  save_weights(net, c, (tmp / "w.h5").string());
  put_file("weights", "tiny.h5", tmp / "w.h5");
  save_weights(net, c, (tmp / "ck.h5").string(), [](H5File& f) {
    f.write("optimizer/step", Tensor::from_vector(std::vector<std::int64_t>{3}, Shape{1}));
  }, kCheckpointFormat);
  put_file("weights", "tiny_checkpoint.h5", tmp / "ck.h5");
}

// ONNX: the header and metadata of a livernet export without its (87 MB of) initializers, the same from
// another producer, and the first 4 KiB of a real export (a truncation inside the initializers).
void onnx() {
  ModelConfig c;
  c.head_hidden = {};
  for (const char* producer : {"livernet", "pytorch"}) {
    pb::Writer graph, m, meta, opset, node;
    node.string(1, "image");
    node.string(2, "logits");
    node.string(4, "Identity");
    graph.message(1, node);
    graph.string(2, "livernet_paper");
    m.int64(1, kOnnxIrVersion);
    m.string(2, producer);
    opset.string(1, "");
    opset.int64(2, kOnnxOpset);
    m.message(8, opset);
    m.message(7, graph);
    meta.string(1, kOnnxConfigKey);
    meta.string(2, c.to_json());
    m.message(14, meta);
    put("onnx", std::string(producer) + "_header.onnx", m.data());
  }
  // A real export, cut after its first initializers (a truncation, and the initializer layout).
  LesionClassifier model(c);
  const std::string bytes = onnx_model_bytes(model, {});
  put("onnx", "export_head.onnx", bytes.substr(0, 4096));
}

// ---- YAML --------------------------------------------------------------------------------------------
void yaml(const fs::path& configs) {
  for (const char* f : {"demo_cpu.yaml", "paper.yaml"})
    if (fs::exists(configs / f)) put_file("train_config", f, configs / f);
  train::TrainConfig c;
  c.data = "data/lesions.h5";
  put("train_config", "resolved_default.yaml", c.to_yaml());
  put("train_config", "small.yaml", "data:\n  path: x.csv\n  augment: {flips: true, rotation_deg: 10}\ntrain:\n  lr: 0.01\n  epochs: 3\n"
                                    "model:\n  head_hidden: [8]\n  flavour: torchvision\ncv: {folds: 3, seed: 7}\n");
  for (const auto& e : fs::directory_iterator(configs / "classes"))
    if (e.path().extension() == ".yaml") put_file("class_map", e.path().filename().string(), e.path());
  put("class_map", "simple.csv", "pattern,class\nliver ?cyst\\d*,cyst\n\"tumou?r.*\",metastasis\n# comment\nhcc,hcc\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: fuzz_make_corpus OUT_DIR [CONFIGS_DIR]\n");
    return 2;
  }
  out_root = argv[1];
  const fs::path configs = argc > 2 ? fs::path(argv[2]) : out_root / ".." / ".." / "configs";
  const fs::path tmp = lnfuzz::Scratch::get().root();
  try {
    nifti(tmp);
    dicom(tmp);
    npy(tmp);
    png(tmp);
    manifest();
    dataset_h5(tmp);
    weights(tmp);
    onnx();
    yaml(configs);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_make_corpus: %s\n", e.what());
    return 1;
  }
  return 0;
}
