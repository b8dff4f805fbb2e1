#include "models/onnx.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "autograd/autograd.h"
#include "core/error.h"
#include "core/version.h"
#include "io/hdf5.h"
#include "io/protobuf.h"
#include "kernels/tensor_ops.h"
#include "layers/trace.h"
#include "models/weights.h"

namespace livernet::io {

namespace {

// Field numbers of onnx.proto (ONNX 1.12+, IR version 8).
namespace model_f {
constexpr int ir_version = 1, producer_name = 2, producer_version = 3, doc_string = 6, graph = 7, opset_import = 8,
              metadata_props = 14;
}
namespace graph_f {
constexpr int node = 1, name = 2, initializer = 5, input = 11, output = 12;
}
namespace node_f {
constexpr int input = 1, output = 2, name = 3, op_type = 4, attribute = 5;
}
namespace attr_f {
constexpr int name = 1, f = 2, i = 3, ints = 8, type = 20;
constexpr int FLOAT = 1, INT = 2, INTS = 7;
}  // namespace attr_f
namespace tensor_f {
constexpr int dims = 1, data_type = 2, float_data = 4, name = 8, raw_data = 9, data_location = 14;
constexpr int FLOAT = 1;
}  // namespace tensor_f

// A graph being written: nodes, initializers, and the names already used.
class GraphWriter {
 public:
  pb::Writer graph;

  // Adds a node and returns the name of its (first) output, `out` or a fresh name.
  std::string node(const std::string& op_type, const std::vector<std::string>& inputs, std::string out,
                   const std::function<void(GraphWriter&, pb::Writer&)>& attrs = {}) {
    if (out.empty()) out = fresh(op_type);
    pb::Writer n;
    for (const std::string& i : inputs) n.string(node_f::input, i);
    n.string(node_f::output, out);
    n.string(node_f::name, out);
    n.string(node_f::op_type, op_type);
    if (attrs) attrs(*this, n);
    graph.message(graph_f::node, n);
    return out;
  }
  static void attr_int(pb::Writer& n, const char* name, std::int64_t v) {
    pb::Writer a;
    a.string(attr_f::name, name);
    a.int64(attr_f::i, v);
    a.int64(attr_f::type, attr_f::INT);
    n.message(node_f::attribute, a);
  }
  static void attr_float(pb::Writer& n, const char* name, float v) {
    pb::Writer a;
    a.string(attr_f::name, name);
    a.float32(attr_f::f, v);
    a.int64(attr_f::type, attr_f::FLOAT);
    n.message(node_f::attribute, a);
  }
  static void attr_ints(pb::Writer& n, const char* name, const std::vector<std::int64_t>& v) {
    pb::Writer a;
    a.string(attr_f::name, name);
    for (std::int64_t x : v) a.int64(attr_f::ints, x);  // unpacked, as proto2 declares it
    a.int64(attr_f::type, attr_f::INTS);
    n.message(node_f::attribute, a);
  }

  // An f32 initializer of `dims` (row-major `values`).
  std::string initializer(const std::string& name, const std::vector<std::int64_t>& dims, const float* values) {
    std::int64_t n = 1;
    for (std::int64_t d : dims) n *= d;
    pb::Writer t;
    for (std::int64_t d : dims) t.int64(tensor_f::dims, d);
    t.int64(tensor_f::data_type, tensor_f::FLOAT);
    t.string(tensor_f::name, name);
    t.bytes(tensor_f::raw_data,
            std::string_view(reinterpret_cast<const char*>(values), static_cast<std::size_t>(n) * 4));
    graph.message(graph_f::initializer, t);
    used_.insert(name);
    return name;
  }
  std::string scalar(float v) { return initializer(fresh("const"), {1}, &v); }

  std::string fresh(const std::string& base) {
    for (int k = counts_[base]++;; k = counts_[base]++) {
      std::string name = str_cat(base, "_", k);
      if (used_.insert(name).second) return name;
    }
  }

 private:
  std::unordered_map<std::string, int> counts_;
  std::unordered_set<std::string> used_;
};

void value_info(pb::Writer& graph, int field, const std::string& name, const std::vector<std::string>& dims) {
  pb::Writer shape;
  for (const std::string& d : dims) {
    pb::Writer dim;
    if (!d.empty() && d.find_first_not_of("0123456789") == std::string::npos)
      dim.int64(1, std::stoll(d));
    else
      dim.string(2, d);
    shape.message(1, dim);
  }
  pb::Writer tensor_type;
  tensor_type.int64(1, tensor_f::FLOAT);
  tensor_type.message(2, shape);
  pb::Writer type;
  type.message(1, tensor_type);
  pb::Writer vi;
  vi.string(1, name);
  vi.message(2, type);
  graph.message(field, vi);
}

// NHWC axis of a rank-4 activation -> its NCHW axis.
int nchw_axis(int axis, int rank) {
  if (rank != 4) return axis;
  static constexpr int map[4] = {0, 2, 3, 1};
  return map[axis];
}

std::string fmt_float(double v) {
  std::ostringstream os;
  os.precision(9);
  os << v;
  return os.str();
}

// Traces one forward pass of `model` (batch 1, f32, eval mode) and writes its ops into `g`, reading the graph
// value `image` as the model input and naming its logits `logits_name`; parameters and buffers become
// initializers named prefix + their dotted names. `ones`: BN scales of ones already written, by channel count.
void emit_model(GraphWriter& g, LesionClassifier& model, const std::string& prefix, const std::string& image,
                const std::string& logits_name, std::unordered_map<std::int64_t, std::string>& ones) {
  const ModelConfig& cfg = model.config();
  const std::int64_t S = cfg.input_size > 0 ? cfg.input_size : 299;
  model.eval();
  const DType compute = model.compute_dtype();
  model.set_compute_dtype(DType::f32);

  // One forward pass at batch 1, recorded.
  Tensor x = zeros(Shape{1, S, S, 1});
  std::vector<trace::Op> ops;
  Tensor logits;
  {
    NoGradGuard no_tape;
    trace::Recorder rec;
    logits = model(x);
    ops = rec.ops();
  }
  model.set_compute_dtype(compute);

  std::unordered_map<const TensorImpl*, std::string> names;  // values and initializers by tensor identity
  std::unordered_map<const TensorImpl*, std::string> state;  // parameters and buffers by identity
  std::unordered_map<const TensorImpl*, Tensor> state_tensor;
  for (auto& named : model.named_state()) {
    state[named.tensor->impl()] = prefix + named.name;
    state_tensor[named.tensor->impl()] = *named.tensor;
  }

  names[x.impl()] = image;

  auto input_name = [&](const trace::Op& op, const Tensor& t) -> std::string {
    if (!t.defined()) return "";
    if (auto it = names.find(t.impl()); it != names.end()) return it->second;
    auto st = state.find(t.impl());
    LN_CHECK(st != state.end(), "ONNX export: '", op.name,
             "' reads a tensor that is neither a model parameter nor an earlier result");
    const Tensor file = to_file_layout(state_tensor[t.impl()]);  // conv weights OIHW, as ONNX's Conv takes them
    std::vector<std::int64_t> dims(file.shape().begin(), file.shape().end());
    return names[t.impl()] = g.initializer(st->second, dims, file.data<float>());
  };

  for (std::size_t k = 0; k < ops.size(); ++k) {
    const trace::Op& op = ops[k];
    std::vector<std::string> in;
    for (const Tensor& t : op.inputs) in.push_back(input_name(op, t));
    for (const Tensor& t : op.inputs)
      LN_CHECK(!t.defined() || t.dtype() == DType::f32, "ONNX export: '", op.name, "' runs in ", dtype_name(t.dtype()),
               "; only float32 models are exported");
    const std::string out = op.output.is_same(logits) ? logits_name : "";
    const int rank = op.output.dim();
    std::string y;
    switch (op.kind) {
      case trace::OpKind::conv2d: {
        const kernels::Conv2dParams& p = op.conv;
        if (in[2].empty()) in.pop_back();
        y = g.node("Conv", in, out, [&](GraphWriter&, pb::Writer& n) {
          GraphWriter::attr_ints(n, "kernel_shape", {op.inputs[1].size(1), op.inputs[1].size(2)});
          GraphWriter::attr_ints(n, "strides", {p.stride_h, p.stride_w});
          GraphWriter::attr_ints(n, "pads", {p.pad_top, p.pad_left, p.pad_bottom, p.pad_right});
          GraphWriter::attr_ints(n, "dilations", {p.dilation_h, p.dilation_w});
          GraphWriter::attr_int(n, "group", p.groups);
        });
        break;
      }
      case trace::OpKind::batch_norm: {
        LN_CHECK(!op.training, "ONNX export: batch norm in training mode");
        if (in[1].empty()) {
          const std::int64_t c = op.inputs[2].numel();
          auto it = ones.find(c);
          if (it == ones.end()) {
            const std::vector<float> one(static_cast<std::size_t>(c), 1.f);
            it = ones.emplace(c, g.initializer(g.fresh("ones"), {c}, one.data())).first;
          }
          in[1] = it->second;
        }
        y = g.node("BatchNormalization", in, op.relu ? "" : out,
                   [&](GraphWriter&, pb::Writer& n) { GraphWriter::attr_float(n, "epsilon", op.eps); });
        if (op.relu) y = g.node("Relu", {y}, out);
        break;
      }
      case trace::OpKind::unary: {
        const char* onnx = op.unary == kernels::UnaryOp::relu      ? "Relu"
                           : op.unary == kernels::UnaryOp::sigmoid ? "Sigmoid"
                           : op.unary == kernels::UnaryOp::tanh    ? "Tanh"
                           : op.unary == kernels::UnaryOp::exp     ? "Exp"
                           : op.unary == kernels::UnaryOp::abs     ? "Abs"
                           : op.unary == kernels::UnaryOp::neg     ? "Neg"
                                                                   : nullptr;
        LN_CHECK(onnx, "ONNX export: the model's forward pass uses '", op.name, "', which is not exported");
        y = g.node(onnx, in, out);
        break;
      }
      case trace::OpKind::binary: {
        const char* onnx = op.binary == kernels::BinaryOp::add   ? "Add"
                           : op.binary == kernels::BinaryOp::sub ? "Sub"
                                                                 : "Mul";
        LN_CHECK(op.inputs[0].shape() == op.inputs[1].shape(), "ONNX export: '", op.name, "' of different shapes");
        y = g.node(onnx, in, out);
        break;
      }
      case trace::OpKind::scale:
        y = g.node("Mul", {in[0], g.scalar(op.alpha)}, out);
        break;
      case trace::OpKind::scale_by:
        y = g.node("Mul", in, out);
        break;
      case trace::OpKind::max_pool2d:
      case trace::OpKind::avg_pool2d: {
        const kernels::Pool2dParams& p = op.pool;
        const bool avg = op.kind == trace::OpKind::avg_pool2d;
        y = g.node(avg ? "AveragePool" : "MaxPool", in, out, [&](GraphWriter&, pb::Writer& n) {
          GraphWriter::attr_ints(n, "kernel_shape", {p.kernel_h, p.kernel_w});
          GraphWriter::attr_ints(n, "strides", {p.stride_h, p.stride_w});
          GraphWriter::attr_ints(n, "pads", {p.pad_h, p.pad_w, p.pad_h, p.pad_w});
          if (avg) GraphWriter::attr_int(n, "count_include_pad", p.count_include_pad ? 1 : 0);
        });
        break;
      }
      case trace::OpKind::global_avg_pool: {
        const std::string pooled = g.node("GlobalAveragePool", in, "");
        y = g.node("Flatten", {pooled}, out, [](GraphWriter&, pb::Writer& n) { GraphWriter::attr_int(n, "axis", 1); });
        break;
      }
      case trace::OpKind::concat:
        y = g.node("Concat", in, out,
                   [&](GraphWriter&, pb::Writer& n) { GraphWriter::attr_int(n, "axis", nchw_axis(op.axis, rank)); });
        break;
      case trace::OpKind::linear:
        LN_CHECK(op.inputs[0].dim() == 2, "ONNX export: linear of a rank-", op.inputs[0].dim(), " input");
        if (in[2].empty()) in.pop_back();
        y = g.node("Gemm", in, out, [](GraphWriter&, pb::Writer& n) { GraphWriter::attr_int(n, "transB", 1); });
        break;
      case trace::OpKind::cast:
        LN_FAIL("ONNX export: the model casts to ", dtype_name(op.output.dtype()),
                "; only float32 models are exported");
      case trace::OpKind::softmax:
        y = g.node("Softmax", in, out, [](GraphWriter&, pb::Writer& n) { GraphWriter::attr_int(n, "axis", -1); });
        break;
      case trace::OpKind::reshape:
      case trace::OpKind::dropout:
      case trace::OpKind::other:
        LN_FAIL("ONNX export: the model's forward pass uses '", op.name, "'",
                op.kind == trace::OpKind::dropout ? " in training mode" : "", ", which is not exported");
    }
    names[op.output.impl()] = y;
  }
  LN_CHECK(names.count(logits.impl()) && names[logits.impl()] == logits_name,
           "ONNX export: the traced forward pass did not produce the logits");
}

}  // namespace

std::string onnx_model_bytes(LesionClassifier& model, const OnnxExportOptions& o) {
  return onnx_model_bytes(std::vector<LesionClassifier*>{&model}, o);
}

std::string onnx_model_bytes(const std::vector<LesionClassifier*>& members, const OnnxExportOptions& o) {
  LN_CHECK(!members.empty() && members.size() <= 100, "ONNX export: 1 to 100 models, got ", members.size());
  const ModelConfig& cfg = members[0]->config();
  LN_CHECK(cfg.num_classes > 0, "the model has no classifier (a backbone-only file): nothing to export");
  for (std::size_t i = 1; i < members.size(); ++i)
    LN_CHECK(members[i]->config().to_json() == cfg.to_json(), "ONNX export: ensemble member ", i + 1,
             " has another configuration than member 1");
  LN_CHECK(o.temperature > 0 && std::isfinite(o.temperature), "temperature must be positive, got ", o.temperature);
  LN_CHECK(!o.from_hu || o.window_width > 0, "HU window width must be positive, got ", o.window_width);
  const std::int64_t S = cfg.input_size > 0 ? cfg.input_size : 299;
  GraphWriter g;
  // The input, windowed from HU in the graph when asked.
  const std::vector<std::string> in_dims = {"batch", "1", cfg.input_size > 0 ? std::to_string(S) : "height",
                                            cfg.input_size > 0 ? std::to_string(S) : "width"};
  std::string image = o.from_hu ? "hu" : "image";
  value_info(g.graph, graph_f::input, image, in_dims);
  if (o.from_hu) {
    // The same f32 operations as data::apply_window: clamp((hu - lo) * (2 / width) - 1, -1, 1).
    const float lo = o.window_level - o.window_width / 2, inv = 2.f / o.window_width;
    std::string v = g.node("Sub", {image, g.scalar(lo)}, "");
    v = g.node("Mul", {v, g.scalar(inv)}, "");
    v = g.node("Sub", {v, g.scalar(1.f)}, "");
    image = g.node("Clip", {v, g.scalar(-1.f), g.scalar(1.f)}, "image");
  }

  // Each model's forward pass; an ensemble's members side by side on the one input.
  const bool one = members.size() == 1;
  std::unordered_map<std::int64_t, std::string> ones;
  std::vector<std::string> logits;
  for (std::size_t i = 0; i < members.size(); ++i) {
    const std::string prefix = one ? "" : str_cat("member_", i + 1, ".");
    logits.push_back(one ? "logits" : prefix + "logits");
    emit_model(g, *members[i], prefix, image, logits.back(), ones);
  }
  // Calibrated probabilities, as train::Classifier computes them: softmax(logits * (1 / T)); an ensemble's are
  // the mean of its members', its logits the mean of theirs.
  const auto probabilities = [&](const std::string& l, const std::string& out) {
    std::string scaled = l;
    if (o.temperature != 1) scaled = g.node("Mul", {scaled, g.scalar(static_cast<float>(1 / o.temperature))}, "");
    return g.node("Softmax", {scaled}, out, [](GraphWriter&, pb::Writer& n) { GraphWriter::attr_int(n, "axis", -1); });
  };
  if (one) {
    probabilities("logits", "probabilities");
  } else {
    const std::string inv_k = g.scalar(1.f / static_cast<float>(members.size()));
    g.node("Mul", {g.node("Sum", logits, ""), inv_k}, "logits");
    std::vector<std::string> probs;
    for (const std::string& l : logits) probs.push_back(probabilities(l, ""));
    g.node("Mul", {g.node("Sum", probs, ""), inv_k}, "probabilities");
  }
  const std::string K = std::to_string(cfg.num_classes);
  value_info(g.graph, graph_f::output, "logits", {"batch", K});
  value_info(g.graph, graph_f::output, "probabilities", {"batch", K});
  g.graph.string(graph_f::name, "livernet_" + cfg.arch);

  pb::Writer m;
  m.int64(model_f::ir_version, kOnnxIrVersion);
  m.string(model_f::producer_name, "livernet");
  m.string(model_f::producer_version, version());
  if (!o.doc.empty()) m.string(model_f::doc_string, o.doc);
  pb::Writer opset;
  opset.string(1, "");
  opset.int64(2, kOnnxOpset);
  m.message(model_f::opset_import, opset);
  m.message(model_f::graph, g.graph);
  std::vector<std::pair<std::string, std::string>> meta = {{kOnnxConfigKey, cfg.to_json()},
                                                           {"input", o.from_hu ? "hu" : "image"},
                                                           {"temperature", fmt_float(o.temperature)}};
  if (!one) meta.emplace_back(kOnnxMembersKey, std::to_string(members.size()));
  if (o.from_hu) {
    meta.emplace_back("window_level", fmt_float(o.window_level));
    meta.emplace_back("window_width", fmt_float(o.window_width));
  }
  meta.insert(meta.end(), o.metadata.begin(), o.metadata.end());
  for (const auto& [key, value] : meta) {
    pb::Writer e;
    e.string(1, key);
    e.string(2, value);
    m.message(model_f::metadata_props, e);
  }
  return m.take();
}

void export_onnx(const std::vector<LesionClassifier*>& members, const OnnxExportOptions& options,
                 const std::string& path) {
  const std::string bytes = onnx_model_bytes(members, options);
  write_file_atomically(path, [&](const std::string& tmp) {
    std::ofstream f(tmp, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    f.close();
    LN_CHECK(f, path, ": cannot write the ONNX file");
  });
}

// ---- reading back ------------------------------------------------------------------------------------------

namespace {

struct Initializer {
  std::vector<std::int64_t> dims;
  std::int64_t data_type = 0, location = 0;
  std::string_view raw;
  std::vector<float> floats;
  bool has_raw = false;
};

std::string dims_str(const std::vector<std::int64_t>& d) {
  std::string s = "[";
  for (std::size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

std::string value_name(std::string_view vi, const std::string& what) {
  pb::Reader r(vi, what);
  pb::Field f;
  while (r.next(f))
    if (f.number == 1 && f.type == pb::WireType::len) return std::string(f.bytes);
  return "";
}

}  // namespace

OnnxFile parse_onnx(const std::string& bytes, const std::string& what) {
  OnnxFile out;
  std::string_view graph;
  bool has_graph = false;
  {
    pb::Reader r(bytes, what);
    pb::Field f;
    while (r.next(f)) {
      const bool len = f.type == pb::WireType::len;
      switch (f.number) {
        case model_f::ir_version:
          out.ir_version = f.as_int64();
          break;
        case model_f::producer_name:
          if (len) out.producer = f.bytes;
          break;
        case model_f::producer_version:
          if (len) out.producer_version = f.bytes;
          break;
        case model_f::graph:
          if (len) graph = f.bytes, has_graph = true;
          break;
        case model_f::opset_import: {
          if (!len) break;
          pb::Reader o(f.bytes, what);
          pb::Field g;
          std::string domain;
          std::int64_t v = 0;
          while (o.next(g)) {
            if (g.number == 1 && g.type == pb::WireType::len) domain = g.bytes;
            if (g.number == 2) v = g.as_int64();
          }
          if (domain.empty() || domain == "ai.onnx") out.opset = v;
          break;
        }
        case model_f::metadata_props: {
          if (!len) break;
          pb::Reader e(f.bytes, what);
          pb::Field g;
          std::string key, value;
          while (e.next(g)) {
            if (g.number == 1 && g.type == pb::WireType::len) key = g.bytes;
            if (g.number == 2 && g.type == pb::WireType::len) value = g.bytes;
          }
          out.metadata[key] = value;
          break;
        }
        default:
          break;
      }
    }
  }
  LN_CHECK(has_graph && out.ir_version > 0, what, ": not an ONNX model (no graph or IR version)");
  auto cfg_it = out.metadata.find(kOnnxConfigKey);
  LN_CHECK(out.producer == "livernet" && cfg_it != out.metadata.end(), what, ": an ONNX model written by ",
           out.producer.empty() ? "an unnamed producer" : "'" + printable(out.producer) + "'",
           ", not by livernet: only livernet's own exports are read back (tools/export --format onnx)");
  ModelConfig cfg;
  try {
    cfg = ModelConfig::from_json(cfg_it->second);
  } catch (const Error& e) {
    LN_FAIL(what, ": the model configuration in its metadata (", kOnnxConfigKey, ") is not valid: ", e.what());
  }

  std::unordered_map<std::string, Initializer> inits;
  {
    pb::Reader r(graph, what);
    pb::Field f;
    while (r.next(f)) {
      if (f.type != pb::WireType::len) continue;
      if (f.number == graph_f::input) out.inputs.push_back(value_name(f.bytes, what));
      if (f.number == graph_f::output) out.outputs.push_back(value_name(f.bytes, what));
      if (f.number == graph_f::node) {
        pb::Reader n(f.bytes, what);
        pb::Field g;
        std::string op;
        while (n.next(g))
          if (g.number == node_f::op_type && g.type == pb::WireType::len) op = g.bytes;
        out.node_ops.push_back(op);
      }
      if (f.number == graph_f::initializer) {
        pb::Reader t(f.bytes, what);
        pb::Field g;
        Initializer init;
        std::string name;
        while (t.next(g)) {
          switch (g.number) {
            case tensor_f::dims:
              pb::Reader::append_int64(g, init.dims, what);
              break;
            case tensor_f::data_type:
              init.data_type = g.as_int64();
              break;
            case tensor_f::float_data:
              pb::Reader::append_float(g, init.floats, what);
              break;
            case tensor_f::name:
              if (g.type == pb::WireType::len) name = g.bytes;
              break;
            case tensor_f::raw_data:
              if (g.type == pb::WireType::len) init.raw = g.bytes, init.has_raw = true;
              break;
            case tensor_f::data_location:
              init.location = g.as_int64();
              break;
            default:
              break;
          }
        }
        inits[name] = std::move(init);
      }
    }
  }

  // (Before building the networks the configuration describes, which takes a while.)
  LN_CHECK(!inits.empty(), what, ": the graph holds no initializers (weights), so there is no model to read back");
  int k = 1;
  if (auto it = out.metadata.find(kOnnxMembersKey); it != out.metadata.end()) {
    char* end = nullptr;
    const long v = std::strtol(it->second.c_str(), &end, 10);
    LN_CHECK(end && *end == 0 && v >= 2 && v <= 100, what, ": metadata ", kOnnxMembersKey, " is '",
             printable(it->second), "', not a member count from 2 to 100");
    k = static_cast<int>(v);
  }
  for (int m = 0; m < k; ++m) {
    const std::string prefix = k == 1 ? "" : str_cat("member_", m + 1, ".");
    auto model = std::make_unique<LesionClassifier>(cfg);
    for (auto& named : model->named_state()) {
      const std::string name = prefix + named.name;
      auto it = inits.find(name);
      LN_CHECK(it != inits.end(), what, ": no initializer '", name, "', which the model needs");
      const Initializer& init = it->second;
      LN_CHECK(init.location == 0, what, ": initializer '", name, "' is stored in an external file, which is not read");
      LN_CHECK(init.data_type == tensor_f::FLOAT, what, ": initializer '", name, "' is not float32 (data type ",
               init.data_type, ")");
      // The file layout (weights.h): conv weights OIHW, the engine's OHWI.
      const Shape& e = named.tensor->shape();
      const Shape want = e.size() == 4 ? Shape{e[0], e[3], e[1], e[2]} : e;
      LN_CHECK(init.dims == std::vector<std::int64_t>(want.begin(), want.end()), what, ": initializer '", name,
               "' has dimensions ", dims_str(init.dims), ", the model needs ", want.str());
      const std::size_t n = static_cast<std::size_t>(want.numel());
      const std::size_t have = init.has_raw ? init.raw.size() / 4 : init.floats.size();
      LN_CHECK(have == n && (!init.has_raw || init.raw.size() == n * 4), what, ": initializer '", name, "' holds ",
               have, " values, its shape ", n);
      Tensor file = Tensor::empty(want);
      std::memcpy(file.data<float>(), init.has_raw ? static_cast<const void*>(init.raw.data()) : init.floats.data(),
                  n * 4);
      const Tensor engine = from_file_layout(file);
      std::memcpy(named.tensor->data<float>(), engine.data<float>(), n * 4);
    }
    model->eval();
    out.members.push_back(std::move(model));
  }
  return out;
}

OnnxFile read_onnx(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  LN_CHECK(f, path, ": cannot open the file");
  std::ostringstream ss;
  ss << f.rdbuf();
  LN_CHECK(!f.bad(), path, ": cannot read the file");
  return parse_onnx(ss.str(), path);
}

}  // namespace livernet::io
