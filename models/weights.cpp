#include "models/weights.h"

#include <algorithm>
#include <set>

#include "autograd/autograd.h"
#include "io/hdf5.h"
#include "kernels/tensor_ops.h"

namespace livernet::io {

std::string dataset_path(const std::string& dotted) {
  std::string p = dotted;
  std::replace(p.begin(), p.end(), '.', '/');
  return p;
}

Tensor permute(const Tensor& t_in, const std::vector<int>& perm) {
  const Tensor t = to_dtype(t_in.to(Device::cpu()), DType::f32);
  const int nd = t.dim();
  LN_CHECK(static_cast<int>(perm.size()) == nd, "permute: ", perm.size(), " axes for a ", nd, "-d tensor");
  Shape out_shape;
  for (int k = 0; k < nd; ++k) out_shape.push_back(t.size(perm[k]));
  Tensor out = Tensor::empty(out_shape);
  std::vector<std::int64_t> in_stride(nd, 1);
  for (int k = nd - 2; k >= 0; --k) in_stride[k] = in_stride[k + 1] * t.size(k + 1);
  const float* src = t.data<float>();
  float* dst = out.data<float>();
  std::vector<std::int64_t> idx(nd, 0);
  for (std::int64_t o = 0; o < out.numel(); ++o) {
    std::int64_t s = 0;
    for (int k = 0; k < nd; ++k) s += idx[k] * in_stride[perm[k]];
    dst[o] = src[s];
    for (int k = nd - 1; k >= 0; --k) {
      if (++idx[k] < out_shape[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

Tensor to_file_layout(const Tensor& t) { return t.dim() == 4 ? permute(t, {0, 3, 1, 2}) : to_dtype(t.to(Device::cpu()), DType::f32); }
Tensor from_file_layout(const Tensor& t) { return t.dim() == 4 ? permute(t, {0, 2, 3, 1}) : t; }

void save_weights(Module& model, const ModelConfig& config, const std::string& path,
                  const std::function<void(H5File&)>& extra, const char* format) {
  write_file_atomically(path, [&](const std::string& tmp) {
    H5File f = H5File::create(tmp);
    f.write_string_attr("/", "format", format);
    f.write_int_attr("/", "format_version", kWeightsFormatVersion);
    f.write_string_attr("/", "model", config.to_json());
    for (auto& named : model.named_state()) f.write(dataset_path(named.name), to_file_layout(*named.tensor));
    if (extra) extra(f);
    f.close();
  });
}

namespace {

// Recognises files that are not livernet weights and says what to do with them.
void check_format(const H5File& f) {
  if (f.has_attr("/", "format")) {
    const std::string fmt = f.read_string_attr("/", "format");
    LN_CHECK(fmt == kWeightsFormat || fmt == kCheckpointFormat, f.path(), ": a '", fmt, "' file, not livernet weights");
    const std::int64_t v = f.read_int_attr("/", "format_version");
    LN_CHECK(v >= 1 && v <= kWeightsFormatVersion, f.path(), ": weight format version ", v,
             " is not supported by this livernet (which reads up to ", kWeightsFormatVersion, ")");
    return;
  }
  if (f.has_attr("/", "layer_names") || f.exists("model_weights"))
    LN_FAIL(f.path(), ": this is a Keras weight file; convert it first: tools/convert_weights --from keras ", f.path(),
            " --output OUT.h5");
  if (f.exists("Conv2d_1a_3x3.conv.weight") || f.exists("Conv2d_1a_3x3"))
    LN_FAIL(f.path(), ": this looks like a torchvision state_dict; convert it first: tools/convert_weights --from "
            "torchvision ", f.path(), " --output OUT.h5");
  LN_FAIL(f.path(), ": not a livernet weight file (no 'format' attribute)");
}

bool starts_with_any(const std::string& s, const std::vector<std::string>& prefixes) {
  if (prefixes.empty()) return true;
  for (const auto& p : prefixes)
    if (s.rfind(p, 0) == 0) return true;
  return false;
}

std::string list_head(const std::vector<std::string>& v, std::size_t n = 5) {
  std::string s;
  for (std::size_t i = 0; i < std::min(n, v.size()); ++i) s += (i ? ", " : "") + v[i];
  if (v.size() > n) s += str_cat(", ... (", v.size(), " in all)");
  return s;
}

}  // namespace

std::string LoadReport::summary() const {
  std::string s = str_cat("loaded ", loaded.size(), " tensors");
  if (!skipped.empty()) s += str_cat("; kept ", skipped.size(), " as initialised (", list_head(skipped, 3), ")");
  if (!missing.empty()) s += str_cat("; not in the file, kept as initialised: ", missing.size(), " (", list_head(missing, 3), ")");
  if (!unexpected.empty()) s += str_cat("; in the file but not in the model, ignored: ", unexpected.size(), " (", list_head(unexpected, 3), ")");
  return s;
}

LoadReport load_weights(Module& model, const std::string& path, const LoadOptions& options) {
  H5File f = H5File::open(path);
  check_format(f);
  LoadReport report;
  std::set<std::string> file_sets;
  for (const std::string& d : f.datasets())
    if (d.rfind("optimizer/", 0) != 0 && d.rfind("trainer/", 0) != 0) file_sets.insert(d);  // checkpoint extras
  std::set<std::string> used;
  // Validate everything before changing anything, so a failed load leaves the model untouched.
  std::vector<std::pair<Tensor*, Tensor>> staged;
  for (auto& named : model.named_state()) {
    const std::string ds = dataset_path(named.name);
    if (!starts_with_any(named.name, options.only_prefixes)) {
      report.skipped.push_back(named.name);
      used.insert(ds);
      continue;
    }
    if (!file_sets.count(ds)) {
      const bool allowed = std::any_of(options.may_be_missing.begin(), options.may_be_missing.end(),
                                       [&](const std::string& part) { return named.name.find(part) != std::string::npos; });
      LN_CHECK(!options.strict || allowed, path, ": missing '", ds, "' (", named.tensor->shape().str(), ") that the model needs");
      report.missing.push_back(named.name);
      continue;
    }
    used.insert(ds);
    const H5DatasetInfo inf = f.info(ds);
    LN_CHECK(inf.numeric && inf.type == "float32", path, ": '", ds, "' is ", inf.type, ", expected float32");
    const Tensor& target = *named.tensor;
    const Shape want = target.dim() == 4 ? Shape{target.size(0), target.size(3), target.size(1), target.size(2)} : target.shape();
    LN_CHECK(inf.shape == want, path, ": '", ds, "' has shape ", inf.shape.str(), " but the model expects ", want.str(),
             target.dim() == 4 ? " (OIHW)" : "");
    staged.emplace_back(named.tensor, from_file_layout(f.read(ds, DType::f32)));
    report.loaded.push_back(named.name);
  }
  for (const std::string& d : file_sets) {
    if (used.count(d)) continue;
    std::string dotted = d;
    std::replace(dotted.begin(), dotted.end(), '/', '.');
    if (!starts_with_any(dotted, options.only_prefixes)) continue;
    LN_CHECK(!options.strict, path, ": '", d, "' is in the file but not in the model (different architecture?)");
    report.unexpected.push_back(dotted);
  }
  NoGradGuard ng;
  for (auto& [dst, src] : staged) copy_(*dst, src);
  return report;
}

ModelConfig read_model_config(const std::string& path) {
  H5File f = H5File::open(path);
  check_format(f);
  LN_CHECK(f.has_attr("/", "model"), path, ": no 'model' attribute (the model configuration)");
  const std::string json = f.read_string_attr("/", "model");  // its errors name the file already
  try {
    return ModelConfig::from_json(json);
  } catch (const Error& e) {
    LN_FAIL(path, ": ", e.what());
  }
}

std::unique_ptr<LesionClassifier> load_model(const std::string& path) {
  auto model = std::make_unique<LesionClassifier>(read_model_config(path));
  load_weights(*model, path);
  return model;
}

}  // namespace livernet::io
