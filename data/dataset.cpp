#include "data/dataset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "data/lesions.h"
#include "io/hdf5.h"
#include "io/image.h"
#include "kernels/tensor_ops.h"

namespace livernet::data {

namespace fs = std::filesystem;

std::vector<std::int64_t> Dataset::class_counts() const {
  std::vector<std::int64_t> c(class_names.size(), 0);
  for (int l : labels)
    if (l >= 0 && l < static_cast<int>(c.size())) ++c[l];
  return c;
}

int Dataset::num_patients() const { return static_cast<int>(std::set<std::string>(patient_ids.begin(), patient_ids.end()).size()); }

Dataset Dataset::subset(const std::vector<std::int64_t>& idx) const {
  Dataset d;
  d.path = path;
  d.class_names = class_names;
  d.extraction = extraction;
  for (std::int64_t i : idx) {
    LN_CHECK(i >= 0 && i < size(), "dataset subset: index ", i, " out of range");
    d.images.push_back(images[i]);
    d.labels.push_back(labels[i]);
    d.patient_ids.push_back(patient_ids[i]);
    d.lesion_ids.push_back(lesion_ids[i]);
    if (!spacing_mm.empty()) d.spacing_mm.push_back(spacing_mm[i]);
    if (!sources.empty()) d.sources.push_back(sources[i]);
  }
  return d;
}

void Dataset::validate() const {
  const std::size_t n = labels.size();
  LN_CHECK(n > 0, path, ": the dataset is empty");
  LN_CHECK(images.size() == n && patient_ids.size() == n && lesion_ids.size() == n, path, ": ", images.size(),
           " images, ", n, " labels, ", patient_ids.size(), " patient ids and ", lesion_ids.size(),
           " lesion ids: the counts must agree");
  LN_CHECK(spacing_mm.empty() || spacing_mm.size() == n, path, ": spacing_mm has ", spacing_mm.size(), " rows for ", n,
           " images");
  LN_CHECK(sources.empty() || sources.size() == n, path, ": source has ", sources.size(), " entries for ", n, " images");
  LN_CHECK(class_names.size() >= 2, path, ": needs at least two class names, found ", class_names.size());
  std::set<std::string> names(class_names.begin(), class_names.end());
  LN_CHECK(names.size() == class_names.size(), path, ": class names repeat");
  for (std::size_t i = 0; i < n; ++i) {
    LN_CHECK(labels[i] >= 0 && labels[i] < num_classes(), path, ": label ", labels[i], " of sample ", i,
             " is outside [0, ", num_classes(), ")");
    LN_CHECK(!patient_ids[i].empty(), path, ": sample ", i, " has an empty patient id");
    const Tensor& im = images[i];
    LN_CHECK(im.dim() == 2 && im.size(0) >= 1 && im.size(1) >= 1, path, ": image ", i, " must be 2-D, got ",
             im.shape().str());
  }
}

std::string Dataset::summary() const {
  // Several samples per lesion (neighbouring slices): say so.
  const std::size_t lesions = std::set<std::string>(lesion_ids.begin(), lesion_ids.end()).size();
  std::string s = lesions > 0 && lesions < static_cast<std::size_t>(size())
                      ? str_cat(size(), " samples of ", lesions, " lesions, ", num_patients(), " patients, classes")
                      : str_cat(size(), " lesions, ", num_patients(), " patients, classes");
  const auto counts = class_counts();
  for (std::size_t k = 0; k < class_names.size(); ++k) s += str_cat(k ? " / " : " ", class_names[k], " ", counts[k]);
  if (!images.empty()) s += str_cat(", patches ", images[0].size(0), "x", images[0].size(1));
  return s;
}

Dataset load_dataset_h5(const std::string& path) {
  io::H5File f = io::H5File::open(path);
  Dataset d;
  d.path = path;
  for (const char* name : {"images", "labels", "patient_id", "lesion_id"})
    LN_CHECK(f.is_dataset(name), path, ": missing dataset '", name, "' (see docs/training.md for the format)");
  LN_CHECK(f.has_attr("/", "classes"), path, ": missing root attribute 'classes' (class names in label order)");
  d.class_names = f.read_string_list_attr("/", "classes");
  if (f.has_attr("/", "extraction")) {
    d.extraction = f.read_string_attr("/", "extraction");
    (void)parse_extraction(d.extraction, path);  // a damaged one is refused here, naming the file
  }
  const io::H5DatasetInfo inf = f.info("images");
  LN_CHECK(inf.numeric && inf.shape.size() == 3, path, ": 'images' must be (N, H, W) numbers in HU, got ",
           inf.type, " ", inf.shape.str());
  LN_CHECK(inf.shape[1] <= 4096 && inf.shape[2] <= 4096, path, ": 'images' patches of ", inf.shape[1], "x", inf.shape[2],
           " are larger than the 4096x4096 allowed");
  const Tensor images = f.read("images", DType::f32, std::int64_t{1} << 32);
  const std::int64_t n = inf.shape[0];
  const float* px = images.data<float>();
  for (std::int64_t i = 0; i < images.numel(); ++i)
    LN_CHECK(std::isfinite(px[i]), path, ": 'images' holds a non-finite value (image ", i / (inf.shape[1] * inf.shape[2]), ")");
  for (std::int64_t i = 0; i < n; ++i) d.images.push_back(images.slice0(i, i + 1).reshape({inf.shape[1], inf.shape[2]}));
  const io::H5DatasetInfo li = f.info("labels");
  LN_CHECK(li.numeric && li.shape.size() == 1 && li.shape[0] == n, path, ": 'labels' must be (", n, ") integers, got ",
           li.type, " ", li.shape.str());
  LN_CHECK(li.type.find("float") == std::string::npos, path, ": 'labels' must be integers, got ", li.type);
  for (std::int64_t v : f.read("labels", DType::i64).to_vector<std::int64_t>()) {
    LN_CHECK(v >= 0 && v < static_cast<std::int64_t>(d.class_names.size()), path, ": label ", v, " outside [0, ",
             d.class_names.size(), ") (classes: ", d.class_names.size(), ")");
    d.labels.push_back(static_cast<int>(v));
  }
  d.patient_ids = f.read_strings("patient_id");
  d.lesion_ids = f.read_strings("lesion_id");
  if (f.is_dataset("spacing_mm")) {
    const Tensor s = f.read("spacing_mm", DType::f32);
    LN_CHECK(s.dim() == 2 && s.size(0) == n && s.size(1) == 2, path, ": 'spacing_mm' must be (", n, ", 2), got ",
             s.shape().str());
    const auto v = s.to_vector<float>();
    for (std::int64_t i = 0; i < n; ++i) d.spacing_mm.push_back({v[2 * i], v[2 * i + 1]});
  }
  if (f.is_dataset("source")) d.sources = f.read_strings("source");
  d.validate();
  return d;
}

void save_dataset_h5(const Dataset& d, const std::string& path) {
  d.validate();
  const std::int64_t h = d.images[0].size(0), w = d.images[0].size(1);
  Tensor all = Tensor::empty(Shape{d.size(), h, w});
  for (std::int64_t i = 0; i < d.size(); ++i) {
    LN_CHECK(d.images[i].size(0) == h && d.images[i].size(1) == w, path, ": image ", i, " is ", d.images[i].size(0), "x",
             d.images[i].size(1), ", image 0 is ", h, "x", w, ": a dataset file holds one patch size");
    copy_(all.slice0(i, i + 1), d.images[i]);
  }
  io::write_file_atomically(path, [&](const std::string& tmp) {
    io::H5File f = io::H5File::create(tmp);
    f.write("images", all);
    std::vector<std::int64_t> labels(d.labels.begin(), d.labels.end());
    f.write("labels", Tensor::from_vector(labels, Shape{d.size()}));
    f.write_strings("patient_id", d.patient_ids);
    f.write_strings("lesion_id", d.lesion_ids);
    if (!d.spacing_mm.empty()) {
      std::vector<float> s;
      for (auto& p : d.spacing_mm) s.insert(s.end(), p.begin(), p.end());
      f.write("spacing_mm", Tensor::from_vector(s, Shape{d.size(), 2}));
    }
    if (!d.sources.empty()) f.write_strings("source", d.sources);
    f.write_string_list_attr("/", "classes", d.class_names);
    if (!d.extraction.empty()) f.write_string_attr("/", "extraction", d.extraction);
    f.close();
  });
}

// ---- CSV manifests ------------------------------------------------------------------------------

namespace {

// Splits one CSV line (RFC 4180 quoting).
std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cur += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  out.push_back(cur);
  for (auto& s : out) {
    while (!s.empty() && s.front() == ' ') s.erase(s.begin());
    while (!s.empty() && s.back() == ' ') s.pop_back();
  }
  return out;
}

Tensor read_image_hu(const std::string& path, const ManifestOptions& o) {
  std::string ext = fs::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".npy") {
    Tensor t = to_dtype(io::read_npy(path, std::int64_t{1} << 26), DType::f32);
    if (t.dim() == 3 && t.size(2) == 1) t = t.reshape({t.size(0), t.size(1)});
    LN_CHECK(t.dim() == 2, path, ": expected a 2-D (H, W) array in HU, got ", t.shape().str());
    return t;
  }
  if (ext == ".png") {
    int depth = 8;
    Tensor img = io::read_png(path, &depth);
    LN_CHECK(img.size(2) == 1, path, ": CT patches must be grey PNGs, this one has ", img.size(2), " channels");
    Tensor hu = Tensor::empty(Shape{img.size(0), img.size(1)});
    const float* s = img.data<float>();
    float* d = hu.data<float>();
    const float lo = o.window.level - o.window.width / 2;
    for (std::int64_t i = 0; i < hu.numel(); ++i)
      d[i] = depth == 16 ? s[i] - o.png_hu_offset : lo + s[i] / 255.f * o.window.width;
    return hu;
  }
  LN_FAIL(path, ": unsupported image type '", ext, "' (expected .npy in HU or .png)");
}

}  // namespace

Dataset load_manifest(const std::string& csv_path, const ManifestOptions& o) {
  std::ifstream in(csv_path);
  LN_CHECK(in, csv_path, ": cannot open");
  const fs::path root = fs::weakly_canonical(fs::absolute(csv_path)).parent_path();
  std::string line;
  LN_CHECK(static_cast<bool>(std::getline(in, line)), csv_path, ": empty file (expected a header path,label,patient_id[,lesion_id])");
  const std::vector<std::string> header = split_csv(line);
  auto col = [&](const std::string& name) -> int {
    auto it = std::find(header.begin(), header.end(), name);
    return it == header.end() ? -1 : static_cast<int>(it - header.begin());
  };
  const int c_path = col("path"), c_label = col("label"), c_patient = col("patient_id"), c_lesion = col("lesion_id");
  for (auto [c, name] : {std::pair{c_path, "path"}, {c_label, "label"}, {c_patient, "patient_id"}})
    LN_CHECK(c >= 0, csv_path, ": missing column '", name, "' (header: path,label,patient_id[,lesion_id])");
  struct Row {
    std::string path, label, patient, lesion;
    int line;
  };
  std::vector<Row> rows;
  int lineno = 1;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
    const auto cells = split_csv(line);
    const int need = std::max({c_path, c_label, c_patient, c_lesion}) + 1;
    LN_CHECK(static_cast<int>(cells.size()) >= need, csv_path, ":", lineno, ": ", cells.size(), " columns, expected ", need);
    rows.push_back({cells[c_path], cells[c_label], cells[c_patient], c_lesion >= 0 ? cells[c_lesion] : "", lineno});
  }
  LN_CHECK(!rows.empty(), csv_path, ": no rows after the header");
  Dataset d;
  d.path = csv_path;
  d.class_names = o.class_names;
  if (d.class_names.empty()) {
    std::set<std::string> names;
    bool all_numeric = true;
    for (const Row& r : rows) {
      names.insert(r.label);
      all_numeric = all_numeric && !r.label.empty() && r.label.find_first_not_of("0123456789") == std::string::npos;
    }
    if (all_numeric) {
      int max_label = 0;
      for (const Row& r : rows) {
        const int v = r.label.size() <= 6 ? std::stoi(r.label) : 1000000;
        LN_CHECK(v < 1000, csv_path, ":", r.line, ": label ", printable(r.label), " is not a class index (0..999)");
        max_label = std::max(max_label, v);
      }
      for (int k = 0; k <= max_label; ++k) d.class_names.push_back(str_cat("class", k));
    } else {
      d.class_names.assign(names.begin(), names.end());
    }
  }
  for (const Row& r : rows) {
    const std::string where = str_cat(csv_path, ":", r.line);
    int label = -1;
    auto it = std::find(d.class_names.begin(), d.class_names.end(), r.label);
    if (it != d.class_names.end()) {
      label = static_cast<int>(it - d.class_names.begin());
    } else if (!r.label.empty() && r.label.find_first_not_of("0123456789") == std::string::npos && r.label.size() < 6) {
      label = std::stoi(r.label);
    }
    LN_CHECK(label >= 0 && label < static_cast<int>(d.class_names.size()), where, ": unknown label '", printable(r.label),
             "' (classes: ", [&] {
               std::string s;
               for (auto& n : d.class_names) s += (s.empty() ? "" : ", ") + printable(n);
               return s;
             }(), ")");
    LN_CHECK(!r.patient.empty(), where, ": empty patient_id");
    LN_CHECK(!r.path.empty(), where, ": empty path");
    std::error_code ec;
    const fs::path p = fs::weakly_canonical(root / r.path, ec);
    LN_CHECK(!ec, where, ": path '", printable(r.path), "': ", ec.message());
    const std::string rel = p.lexically_relative(root).string();
    LN_CHECK(!fs::path(r.path).is_absolute() && !rel.empty() && rel.rfind("..", 0) != 0, where, ": path '", printable(r.path),
             "' leaves the manifest's folder ", root.string());
    LN_CHECK(fs::exists(p, ec), where, ": ", printable(r.path), ": no such file");
    Tensor img;
    try {
      img = read_image_hu(p.string(), o);
    } catch (const Error& e) {
      LN_FAIL(where, ": ", e.what());
    }
    for (float v : img.to_vector<float>()) LN_CHECK(std::isfinite(v), where, ": ", printable(r.path), " holds NaN or infinity");
    d.images.push_back(img);
    d.labels.push_back(label);
    d.patient_ids.push_back(r.patient);
    d.lesion_ids.push_back(r.lesion.empty() ? fs::path(r.path).stem().string() : r.lesion);
  }
  d.validate();
  return d;
}

Dataset load_dataset(const std::string& path, const ManifestOptions& manifest) {
  std::string ext = fs::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".csv") return load_manifest(path, manifest);
  return load_dataset_h5(path);
}

}  // namespace livernet::data
