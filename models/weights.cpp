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

// Recognises files that are not livernet weights and says what to do with them. An ensemble file passes
// when `ensemble` (it is read member by member).
void check_format(const H5File& f, bool ensemble = false) {
  if (f.has_attr("/", "format")) {
    const std::string fmt = f.read_string_attr("/", "format");
    if (fmt == kEnsembleFormat && !ensemble)
      LN_FAIL(f.path(), ": an ensemble of ", f.has_attr("/", "members") ? f.read_int_attr("/", "members") : 0,
              " models, not one model's weights: tools/predict, tools/evaluate, tools/export and the C API use it as "
              "one model; tools/train --weights and --resume take a single model's file");
    LN_CHECK(fmt == kWeightsFormat || fmt == kCheckpointFormat || (ensemble && fmt == kEnsembleFormat), f.path(),
             ": a '", fmt, "' file, not livernet weights");
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
  check_format(f, options.member > 0);
  LoadReport report;
  // A member of an ensemble: its datasets under member_<i>/, named here without it.
  const std::string prefix = options.member > 0 ? str_cat("member_", options.member, "/") : "";
  if (options.member > 0) {
    LN_CHECK(f.read_string_attr("/", "format") == kEnsembleFormat, path, ": not an ensemble file");
    LN_CHECK(options.member <= f.read_int_attr("/", "members"), path, ": no member ", options.member);
  }
  std::set<std::string> file_sets;
  for (const std::string& full : f.datasets()) {
    if (full.rfind(prefix, 0) != 0) continue;
    const std::string d = full.substr(prefix.size());
    if (d.rfind("optimizer/", 0) != 0 && d.rfind("trainer/", 0) != 0) file_sets.insert(d);  // checkpoint extras
  }
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
    const H5DatasetInfo inf = f.info(prefix + ds);
    LN_CHECK(inf.numeric && inf.type == "float32", path, ": '", prefix + ds, "' is ", inf.type, ", expected float32");
    const Tensor& target = *named.tensor;
    const Shape want = target.dim() == 4 ? Shape{target.size(0), target.size(3), target.size(1), target.size(2)} : target.shape();
    LN_CHECK(inf.shape == want, path, ": '", prefix + ds, "' has shape ", inf.shape.str(), " but the model expects ",
             want.str(), target.dim() == 4 ? " (OIHW)" : "");
    staged.emplace_back(named.tensor, from_file_layout(f.read(prefix + ds, DType::f32)));
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
  check_format(f, /*ensemble=*/true);
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

int ensemble_members(const std::string& path) {
  H5File f = H5File::open(path);
  check_format(f, /*ensemble=*/true);
  if (f.read_string_attr("/", "format") != kEnsembleFormat) return 0;
  LN_CHECK(f.has_attr("/", "members"), path, ": an ensemble file without its 'members' attribute");
  const std::int64_t k = f.read_int_attr("/", "members");
  LN_CHECK(k >= 2 && k <= 100, path, ": an ensemble of ", k, " members (2 to 100 are read)");
  return static_cast<int>(k);
}

void save_ensemble(const std::vector<LesionClassifier*>& members, const std::string& path,
                   const std::function<void(H5File&)>& extra) {
  LN_CHECK(members.size() >= 2, path, ": an ensemble needs at least two models, got ", members.size());
  const std::string config = members[0]->config().to_json();
  for (std::size_t i = 1; i < members.size(); ++i)
    LN_CHECK(members[i]->config().to_json() == config, path, ": ensemble member ", i + 1,
             " has another configuration than member 1 (an ensemble averages models of one architecture and classes)");
  write_file_atomically(path, [&](const std::string& tmp) {
    H5File f = H5File::create(tmp);
    f.write_string_attr("/", "format", kEnsembleFormat);
    f.write_int_attr("/", "format_version", kWeightsFormatVersion);
    f.write_string_attr("/", "model", config);
    f.write_int_attr("/", "members", static_cast<std::int64_t>(members.size()));
    for (std::size_t i = 0; i < members.size(); ++i)
      for (auto& named : members[i]->named_state())
        f.write(str_cat("member_", i + 1, "/", dataset_path(named.name)), to_file_layout(*named.tensor));
    if (extra) extra(f);
    f.close();
  });
}

std::vector<std::unique_ptr<LesionClassifier>> load_ensemble(const std::string& path) {
  const int k = ensemble_members(path);
  LN_CHECK(k > 0, path, ": not an ensemble file (one model's weights: load it as a model)");
  const ModelConfig cfg = read_model_config(path);
  std::vector<std::unique_ptr<LesionClassifier>> out;
  for (int i = 1; i <= k; ++i) {
    out.push_back(std::make_unique<LesionClassifier>(cfg));
    LoadOptions o;
    o.member = i;
    load_weights(*out.back(), path, o);
  }
  return out;
}

}  // namespace livernet::io
