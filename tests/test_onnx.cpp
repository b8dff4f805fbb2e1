// ONNX export (models/onnx.h) as far as it can be checked without an ONNX runtime: the protobuf wire format
// both ways, the trace a forward pass leaves, the graph export writes (ops, inputs, outputs, metadata) for
// every architecture and flavour, and read-back bit for bit. tests/test_onnx_runtime.sh runs exported
// files in onnxruntime and onnx.checker against tools/predict.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "autograd/autograd.h"
#include "core/error.h"
#include "io/protobuf.h"
#include "kernels/tensor_ops.h"
#include "layers/init.h"
#include "layers/trace.h"
#include "models/onnx.h"
#include "models/weights.h"
#include "test_util.h"
#include "train/classifier.h"
#include "train/model_usage.h"

using namespace livernet;
namespace pb = livernet::io::pb;

namespace {

// Every field of a message, read back.
std::vector<pb::Field> fields(const std::string& bytes) {
  pb::Reader r(bytes, "test");
  std::vector<pb::Field> out;
  pb::Field f;
  while (r.next(f)) out.push_back(f);
  return out;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A small-input model of `cfg` with every parameter and buffer random (running statistics included, with
// positive variances), so a read-back that dropped or transposed one would show.
std::unique_ptr<LesionClassifier> random_model(ModelConfig cfg, std::uint64_t seed) {
  cfg.input_size = 75;
  auto m = std::make_unique<LesionClassifier>(cfg);
  std::uint64_t s = seed;
  for (auto& named : m->named_state()) {
    Tensor r = randn(named.tensor->shape(), seed, s++);
    float* d = named.tensor->data<float>();
    const float* v = r.data<float>();
    const bool var = named.name.ends_with("running_var");
    for (std::int64_t i = 0; i < r.numel(); ++i) d[i] = var ? 0.5f + std::abs(v[i]) : 0.1f * v[i];
  }
  return m;
}

ModelConfig paper(Flavour f, ResidualMode r) {
  ModelConfig c;
  c.flavour = f;
  c.residual = r;
  c.head_hidden = {16, 8};
  c.class_names = {"cyst", "metastasis"};
  return c;
}

}  // namespace

// ---- the wire format ------------------------------------------------------------------------------------

TEST(Protobuf, WritesTheWireFormatAndReadsItBack) {
  pb::Writer w, inner;
  inner.string(1, "inner");
  w.varint(1, 0);
  w.varint(2, 127);
  w.varint(3, 128);
  w.int64(4, -1);  // ten bytes, as protobuf writes a negative int64
  w.varint(5, ~0ull);
  w.float32(6, -2.5f);
  w.string(7, std::string("a\0b", 3));
  w.message(8, inner);
  w.packed_int64(9, {1, 300, -2});
  w.packed_float(10, {0.5f, 1e-30f});
  // Known encodings: field 2 = 127 is 0x10 0x7f; field 3 = 128 is 0x18 0x80 0x01.
  EXPECT_EQ(w.data().substr(2, 5), std::string("\x10\x7f\x18\x80\x01", 5));
  const auto f = fields(w.data());
  ASSERT_EQ(f.size(), 10u);
  EXPECT_EQ(f[0].value, 0u);
  EXPECT_EQ(f[1].value, 127u);
  EXPECT_EQ(f[2].value, 128u);
  EXPECT_EQ(f[3].as_int64(), -1);
  EXPECT_EQ(f[4].value, ~0ull);
  EXPECT_EQ(f[5].type, pb::WireType::i32);
  EXPECT_EQ(f[5].as_float(), -2.5f);
  EXPECT_EQ(f[6].bytes, std::string_view("a\0b", 3));
  EXPECT_EQ(fields(std::string(f[7].bytes))[0].bytes, "inner");
  std::vector<std::int64_t> ints;
  pb::Reader::append_int64(f[8], ints, "test");
  pb::Reader::append_int64(f[0], ints, "test");  // unpacked: one value per field
  EXPECT_EQ(ints, (std::vector<std::int64_t>{1, 300, -2, 0}));
  std::vector<float> floats;
  pb::Reader::append_float(f[9], floats, "test");
  pb::Reader::append_float(f[5], floats, "test");
  EXPECT_EQ(floats, (std::vector<float>{0.5f, 1e-30f, -2.5f}));
}

TEST(Protobuf, EveryTruncationIsRefusedNeverReadPast) {
  pb::Writer w, inner;
  inner.packed_int64(1, {5, 1 << 20});
  w.string(1, "name");
  w.message(2, inner);
  w.varint(3, 1ull << 40);
  w.float32(4, 1.f);
  const std::string full = w.data();
  // Each prefix is either whole fields (read without error) or refused; the copy has nothing after it,
  // so a read past the end would show under ASan.
  int refused = 0;
  for (std::size_t n = 0; n < full.size(); ++n) {
    const std::string cut = full.substr(0, n);
    const std::string e = error_of([&] { fields(cut); });
    if (!e.empty()) {
      ++refused;
      EXPECT_NE(e.find("test: truncated"), std::string::npos) << e;
    }
  }
  EXPECT_GT(refused, 10);
  EXPECT_NE(error_of([] { fields(std::string("\x0b", 1)); }).find("wire type 3"), std::string::npos);
  EXPECT_NE(error_of([] { fields(std::string(11, '\xff')); }).find("longer than ten bytes"), std::string::npos);
  EXPECT_NE(error_of([] { fields(std::string("\x02", 1)); }).find("field number 0"), std::string::npos);
}

// ---- the trace -----------------------------------------------------------------------------------------

TEST(Trace, RecordsTheOpsOfItsThreadInOrder) {
  Tensor x = randn(Shape{1, 8, 8, 2}, 1);
  Tensor w = randn(Shape{3, 3, 3, 2}, 2);
  std::vector<trace::Op> ops;
  {
    trace::Recorder rec;
    EXPECT_NE(error_of([] { trace::Recorder again; }).find("already recording"), std::string::npos);
    Tensor y = F::conv2d(x, w, Tensor(), kernels::Conv2dParams::make(2, 1, 1));
    y = F::relu(y);
    y = F::dropout(y, 0.5f, /*training=*/false, 1, 1);  // the identity: no record
    y = F::concat({y, y}, -1);
    y = F::global_avg_pool(y);
    ops = rec.ops();
  }
  EXPECT_EQ(trace::active(), nullptr);
  ASSERT_EQ(ops.size(), 4u);
  EXPECT_EQ(ops[0].kind, trace::OpKind::conv2d);
  EXPECT_EQ(ops[0].conv.stride_h, 2);
  EXPECT_TRUE(ops[0].inputs[0].is_same(x));
  EXPECT_FALSE(ops[0].inputs[2].defined());
  EXPECT_EQ(ops[1].name, "relu");
  EXPECT_TRUE(ops[1].inputs[0].is_same(ops[0].output));
  EXPECT_EQ(ops[2].axis, 3);  // -1 made non-negative
  EXPECT_EQ(ops[2].inputs.size(), 2u);
  EXPECT_EQ(ops[3].kind, trace::OpKind::global_avg_pool);
  F::relu(x);  // no recorder: nothing happens
}

// ---- export and read-back --------------------------------------------------------------------------------

struct ExportCase {
  const char* name;
  ModelConfig cfg;
  int convs, pools;  // Conv nodes, MaxPool + AveragePool nodes
};

class OnnxExport : public ::testing::TestWithParam<ExportCase> {};

TEST_P(OnnxExport, GraphAndReadBackBitForBit) {
  const ExportCase& c = GetParam();
  auto model = random_model(c.cfg, 7);
  io::OnnxExportOptions o;
  o.from_hu = true;
  o.window_level = 50;
  o.window_width = 350;
  o.temperature = 1.7;
  o.metadata = {{"classes", "cyst,metastasis"}};
  const std::string bytes = io::onnx_model_bytes(*model, o);
  const io::OnnxFile f = io::parse_onnx(bytes, "m.onnx");

  EXPECT_EQ(f.ir_version, io::kOnnxIrVersion);
  EXPECT_EQ(f.opset, io::kOnnxOpset);
  EXPECT_EQ(f.producer, "livernet");
  EXPECT_EQ(f.inputs, std::vector<std::string>{"hu"});
  EXPECT_EQ(f.outputs, (std::vector<std::string>{"logits", "probabilities"}));
  EXPECT_EQ(f.metadata.at("window_width"), "350");
  EXPECT_EQ(f.metadata.at("temperature"), "1.7");
  EXPECT_EQ(f.metadata.at("classes"), "cyst,metastasis");
  std::map<std::string, int> count;
  for (const std::string& op : f.node_ops) ++count[op];
  EXPECT_EQ(count["Conv"], c.convs);
  EXPECT_EQ(count["BatchNormalization"], c.convs);  // every conv unit and projection has its BN
  EXPECT_EQ(count["MaxPool"] + count["AveragePool"], c.pools);
  EXPECT_EQ(count["Clip"], 1);     // the HU window
  EXPECT_EQ(count["Softmax"], 1);  // the probabilities
  EXPECT_EQ(count["Gemm"], static_cast<int>(c.cfg.arch == "paper" ? c.cfg.head_hidden.size() + 1 : 1));
  EXPECT_EQ(count["Dropout"], 0);  // eval mode

  // Read back: the configuration and every tensor, bit for bit.
  ASSERT_EQ(f.members.size(), 1u);
  EXPECT_EQ(f.metadata.count(io::kOnnxMembersKey), 0u);
  EXPECT_EQ(f.members[0]->config().to_json(), [&] {
    ModelConfig want = c.cfg;
    want.input_size = 75;
    return want.to_json();
  }());
  auto a = model->named_state(), b = f.members[0]->named_state();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].name, b[i].name);
    ASSERT_EQ(a[i].tensor->shape(), b[i].tensor->shape()) << a[i].name;
    EXPECT_EQ(std::memcmp(a[i].tensor->data<float>(), b[i].tensor->data<float>(), a[i].tensor->numel() * 4), 0)
        << a[i].name;
  }
  // And the same logits from the read-back model.
  NoGradGuard ng;
  Tensor x = randn(Shape{2, 75, 75, 1}, 3);
  model->eval();
  EXPECT_EQ(model->forward(x).to_vector<float>(), f.members[0]->forward(x).to_vector<float>());
}

INSTANTIATE_TEST_SUITE_P(
    Models, OnnxExport,
    ::testing::Values(
        // 94 conv units; pools: 2 in the stem, 9 average pools (one per non-reduction block), 2 in the reductions.
        ExportCase{"PaperKerasIdentity", paper(Flavour::keras, ResidualMode::identity), 94, 13},
        // Projection shortcuts: 1x1 conv + BN on the other five blocks, a max pool before the two reductions'.
        ExportCase{"PaperTorchvisionProjection", paper(Flavour::torchvision, ResidualMode::projection), 99, 15},
        ExportCase{"PlainInceptionV3", ModelConfig::plain_inception_v3(Flavour::torchvision, 3), 94, 13}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(OnnxExport, ImageInputAndUncalibratedOutputs) {
  auto model = random_model(paper(Flavour::keras, ResidualMode::none), 1);
  const io::OnnxFile f = io::parse_onnx(io::onnx_model_bytes(*model, {}), "m.onnx");
  EXPECT_EQ(f.inputs, std::vector<std::string>{"image"});
  EXPECT_EQ(std::count(f.node_ops.begin(), f.node_ops.end(), "Clip"), 0);
  EXPECT_EQ(f.metadata.at("temperature"), "1");
  EXPECT_EQ(f.metadata.count("window_level"), 0u);
}

TEST(OnnxExport, RefusesWhatItCannotWrite) {
  ModelConfig backbone_only = ModelConfig::plain_inception_v3(Flavour::keras, 0);
  LesionClassifier m(backbone_only);
  EXPECT_NE(error_of([&] { io::onnx_model_bytes(m, {}); }).find("no classifier"), std::string::npos);
  auto model = random_model(paper(Flavour::keras, ResidualMode::none), 1);
  io::OnnxExportOptions o;
  o.temperature = 0;
  EXPECT_NE(error_of([&] { io::onnx_model_bytes(*model, o); }).find("temperature must be positive"), std::string::npos);
}

TEST(OnnxRead, RefusesFilesItDidNotWrite) {
  auto model = random_model(paper(Flavour::keras, ResidualMode::none), 1);
  const std::string good = io::onnx_model_bytes(*model, {});
  // Another producer.
  std::string other = good;
  const std::size_t at = other.find("livernet");
  ASSERT_NE(at, std::string::npos);
  other.replace(at, 8, "pytorch!");
  EXPECT_NE(error_of([&] {
              io::parse_onnx(other, "x.onnx");
            }).find("x.onnx: an ONNX model written by 'pytorch!', not by livernet"),
            std::string::npos);
  // Not ONNX at all.
  EXPECT_NE(error_of([] { io::parse_onnx("", "x.onnx"); }).find("x.onnx: not an ONNX model"), std::string::npos);
  // Damaged configuration metadata.
  std::string bad_cfg = good;
  const std::size_t arch = bad_cfg.find("\"arch\"");
  ASSERT_NE(arch, std::string::npos);
  bad_cfg.replace(arch, 6, "\"arhc\"");
  EXPECT_NE(error_of([&] { io::parse_onnx(bad_cfg, "x.onnx"); }).find("model configuration in its metadata"),
            std::string::npos);
  // Missing file.
  EXPECT_NE(error_of([] { io::read_onnx("/nonexistent/m.onnx"); }).find("/nonexistent/m.onnx: cannot open"),
            std::string::npos);
}

// ---- ensembles ---------------------------------------------------------------------------------------------

TEST(Ensemble, FileRoundTripAndRefusals) {
  livernet::testing::TempDir dir;
  auto a = random_model(paper(Flavour::keras, ResidualMode::identity), 1);
  auto b = random_model(paper(Flavour::keras, ResidualMode::identity), 2);
  io::save_ensemble({a.get(), b.get()}, dir.str("e.h5"));
  EXPECT_EQ(io::ensemble_members(dir.str("e.h5")), 2);
  const auto back = io::load_ensemble(dir.str("e.h5"));
  ASSERT_EQ(back.size(), 2u);
  for (std::size_t m = 0; m < 2; ++m) {
    auto want = (m ? b : a)->named_state(), got = back[m]->named_state();
    ASSERT_EQ(want.size(), got.size());
    for (std::size_t i = 0; i < want.size(); ++i)
      ASSERT_EQ(want[i].tensor->to_vector<float>(), got[i].tensor->to_vector<float>()) << m << " " << want[i].name;
  }
  // Not one model's weights; members of one configuration only; a weight file is no ensemble.
  EXPECT_NE(
      error_of([&] { io::load_model(dir.str("e.h5")); }).find("e.h5: an ensemble of 2 models, not one model's weights"),
      std::string::npos);
  auto other = random_model(paper(Flavour::torchvision, ResidualMode::identity), 3);
  EXPECT_NE(error_of([&] {
              io::save_ensemble({a.get(), other.get()}, dir.str("x.h5"));
            }).find("member 2 has another configuration"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.str("x.h5")));
  io::save_weights(*a, a->config(), dir.str("a.h5"));
  EXPECT_EQ(io::ensemble_members(dir.str("a.h5")), 0);
  EXPECT_NE(error_of([&] { io::load_ensemble(dir.str("a.h5")); }).find("not an ensemble file"), std::string::npos);
}

TEST(Ensemble, ClassifierAveragesTheMembersCalibratedProbabilities) {
  livernet::testing::TempDir dir;
  auto a = random_model(paper(Flavour::keras, ResidualMode::identity), 1);
  auto b = random_model(paper(Flavour::keras, ResidualMode::identity), 2);
  train::ModelUsage u;
  u.temperature = 1.6;
  u.window = {60.f, 300.f};
  const auto with_usage = [&](io::H5File& f) { train::write_model_usage(f, u); };
  io::save_weights(*a, a->config(), dir.str("a.h5"), with_usage);
  io::save_weights(*b, b->config(), dir.str("b.h5"), with_usage);
  io::save_ensemble({a.get(), b.get()}, dir.str("e.h5"), with_usage);
  train::Classifier ca(dir.str("a.h5"), Device::cpu()), cb(dir.str("b.h5"), Device::cpu()),
      ce(dir.str("e.h5"), Device::cpu());
  EXPECT_EQ(ce.members(), 2);
  EXPECT_EQ(ce.temperature, 1.6);
  EXPECT_EQ(ce.window.level, 60.f);
  const Tensor hu = rand(Shape{3, 40, 40}, 5, 0, -200.f, 300.f);
  const auto pa = ca.classify_hu(hu).to_vector<float>(), pb = cb.classify_hu(hu).to_vector<float>(),
             pe = ce.classify_hu(hu).to_vector<float>();
  ASSERT_EQ(pe.size(), 6u);
  for (std::size_t i = 0; i < pe.size(); ++i) EXPECT_NEAR(pe[i], (pa[i] + pb[i]) / 2, 1e-6) << i;
  const Tensor x = ce.prepare(hu.reshape({3, 40, 40, 1}), true, true);
  const auto la = ca.run(x, false).to_vector<float>(), lb = cb.run(x, false).to_vector<float>(),
             le = ce.run(x, false).to_vector<float>();
  for (std::size_t i = 0; i < le.size(); ++i) EXPECT_NEAR(le[i], (la[i] + lb[i]) / 2, 1e-5) << i;
}

TEST(OnnxExport, EnsembleGraphAndReadBack) {
  auto a = random_model(paper(Flavour::torchvision, ResidualMode::none), 1);
  auto b = random_model(paper(Flavour::torchvision, ResidualMode::none), 2);
  io::OnnxExportOptions o;
  o.temperature = 2;
  const io::OnnxFile f = io::parse_onnx(io::onnx_model_bytes({a.get(), b.get()}, o), "e.onnx");
  EXPECT_EQ(f.metadata.at(io::kOnnxMembersKey), "2");
  EXPECT_EQ(f.outputs, (std::vector<std::string>{"logits", "probabilities"}));
  std::map<std::string, int> count;
  for (const std::string& op : f.node_ops) ++count[op];
  EXPECT_EQ(count["Conv"], 2 * 94);
  EXPECT_EQ(count["Softmax"], 2);  // one per member, then averaged
  EXPECT_EQ(count["Sum"], 2);      // logits and probabilities
  ASSERT_EQ(f.members.size(), 2u);
  NoGradGuard ng;
  const Tensor x = randn(Shape{1, 75, 75, 1}, 9);
  a->eval();
  b->eval();
  EXPECT_EQ(a->forward(x).to_vector<float>(), f.members[0]->forward(x).to_vector<float>());
  EXPECT_EQ(b->forward(x).to_vector<float>(), f.members[1]->forward(x).to_vector<float>());
  // A member count that does not fit the file.
  std::string bytes = io::onnx_model_bytes({a.get(), b.get()}, o);
  const std::size_t at = bytes.find(std::string(io::kOnnxMembersKey) + "\x12\x01" + "2");
  ASSERT_NE(at, std::string::npos);
  bytes[at + std::strlen(io::kOnnxMembersKey) + 2] = '3';
  EXPECT_NE(error_of([&] { io::parse_onnx(bytes, "e.onnx"); }).find("no initializer 'member_3."), std::string::npos);
}
