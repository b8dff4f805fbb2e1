// The model: InceptionV3's structure against the specification (parameter counts, the 94 conv units
// in Keras order, shapes at 299 and at non-square sizes), residual shortcut placement, the head,
// grey input, freezing and the configuration JSON.
#include <gtest/gtest.h>

#include "kernels/tensor_ops.h"
#include "models/inception_v3.h"
#include "test_util.h"

using namespace livernet;

TEST(InceptionV3, ParameterCountsMatchTheReferences) {
  // Keras notop: 21,802,784 values of which 34,432 are BN moving statistics (buffers here).
  LesionClassifier keras(ModelConfig::plain_inception_v3(Flavour::keras, 0));
  std::int64_t buffers = 0;
  for (auto& b : keras.named_buffers()) buffers += b.tensor->numel();
  EXPECT_EQ(keras.num_parameters(), 21'768'352);
  EXPECT_EQ(buffers, 34'432);
  // torchvision without AuxLogits: 23,834,568 parameters (gamma added, 1000-class fc).
  LesionClassifier tv(ModelConfig::plain_inception_v3(Flavour::torchvision, 1000));
  EXPECT_EQ(tv.num_parameters(), 23'834'568);
}

TEST(InceptionV3, ConvUnitsFollowKerasCreationOrder) {
  LesionClassifier m(ModelConfig::plain_inception_v3(Flavour::keras, 0));
  const auto units = m.backbone->conv_units();
  ASSERT_EQ(units.size(), 94u);
  // Rows of the mapping table in docs/inception_v3.md, "The 94 conv units, Keras creation order"
  // (k -> torchvision prefix, kernel, Cin, Cout).
  struct Row {
    int k;
    const char* prefix;
    int kh, kw, cin, cout;
  };
  const Row rows[] = {{1, "Conv2d_1a_3x3", 3, 3, 3, 32},        {5, "Conv2d_4a_3x3", 3, 3, 80, 192},
                      {8, "Mixed_5b.branch5x5_2", 5, 5, 48, 64},  {12, "Mixed_5b.branch_pool", 1, 1, 192, 32},
                      {27, "Mixed_6a.branch3x3", 3, 3, 288, 384}, {33, "Mixed_6b.branch7x7_2", 1, 7, 128, 128},
                      {36, "Mixed_6b.branch7x7dbl_2", 7, 1, 128, 128}, {63, "Mixed_6e.branch7x7_2", 1, 7, 192, 192},
                      {76, "Mixed_7a.branch7x7x3_4", 3, 3, 192, 192}, {80, "Mixed_7b.branch3x3_2b", 3, 1, 384, 384},
                      {82, "Mixed_7b.branch3x3dbl_2", 3, 3, 448, 384}, {94, "Mixed_7c.branch_pool", 1, 1, 2048, 192}};
  for (const Row& r : rows) {
    const auto& [name, unit] = units[r.k - 1];
    EXPECT_EQ(name, r.prefix) << "k = " << r.k;
    EXPECT_EQ(unit->conv->weight.shape(), (Shape{r.cout, r.kh, r.kw, r.cin})) << r.prefix;
  }
}

TEST(InceptionV3, BlockShapesAt299AndNonSquareInputs) {
  init::set_seed(1);
  LesionClassifier m(ModelConfig::plain_inception_v3(Flavour::keras, 0));
  m.eval();
  NoGradGuard ng;
  std::vector<std::pair<std::string, Tensor>> blocks;
  const Tensor y = m.backbone->forward_blocks(randn(Shape{1, 299, 299, 3}, 2), &blocks);
  EXPECT_EQ(y.shape(), (Shape{1, 8, 8, 2048}));
  ASSERT_EQ(blocks.size(), 12u);
  EXPECT_EQ(blocks[0].second.shape(), (Shape{1, 35, 35, 192}));  // stem
  EXPECT_EQ(blocks[1].second.shape(), (Shape{1, 35, 35, 256}));  // Mixed_5b
  EXPECT_EQ(blocks[4].second.shape(), (Shape{1, 17, 17, 768}));  // Mixed_6a
  EXPECT_EQ(blocks[9].second.shape(), (Shape{1, 8, 8, 1280}));   // Mixed_7a
  EXPECT_EQ(m.backbone->forward(randn(Shape{2, 75, 75, 3}, 3)).shape(), (Shape{2, 1, 1, 2048}));
  EXPECT_EQ(m.backbone->forward(randn(Shape{1, 107, 139, 3}, 4)).shape(), (Shape{1, 2, 3, 2048}));
  try {
    (void)m.backbone->forward(zeros(Shape{1, 74, 80, 3}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("74x80 is smaller than the minimum 75x75"), std::string::npos) << e.what();
  }
}

TEST(PaperModel, ResidualShortcutsSitOnShapePreservingBlocks) {
  ModelConfig c;  // defaults: paper arch, identity shortcuts, learnable alpha initialised to 0
  LesionClassifier m(c);
  EXPECT_EQ(m.backbone->shortcut_blocks(),
            (std::vector<std::string>{"Mixed_5d", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7c"}));
  c.residual = ResidualMode::projection;
  LesionClassifier p(c);
  EXPECT_EQ(p.backbone->shortcut_blocks().size(), 11u);
  EXPECT_NE(p.find("backbone.Mixed_6a.shortcut.conv"), nullptr);
  c.residual = ResidualMode::none;
  EXPECT_TRUE(LesionClassifier(c).backbone->shortcut_blocks().empty());
}

TEST(PaperModel, AlphaZeroKeepsThePlainNetworksFunction) {
  ModelConfig c;
  c.head_hidden = {};
  init::set_seed(5);
  LesionClassifier with(c);
  c.residual = ResidualMode::none;
  init::set_seed(5);
  LesionClassifier without(c);
  with.eval();
  without.eval();
  NoGradGuard ng;
  const Tensor x = randn(Shape{1, 79, 83, 1}, 6);
  EXPECT_EQ(with(x).to_vector<float>(), without(x).to_vector<float>());
}

TEST(PaperModel, HeadGreyInputFreezingAndGradients) {
  ModelConfig c;
  c.num_classes = 3;
  c.residual_init = 0.5f;
  init::set_seed(2);
  LesionClassifier m(c);
  EXPECT_NE(m.find("head.fc1"), nullptr);
  EXPECT_NE(m.find("head.fc2"), nullptr);
  EXPECT_EQ(static_cast<Linear*>(m.find("head.fc"))->weight.shape(), (Shape{3, 512}));
  m.train();
  m.freeze("backbone");
  m.freeze("backbone.Mixed_7c", false);
  EXPECT_THROW(m.freeze("backbone.Mixed_9z"), Error);
  const Tensor x = randn(Shape{2, 75, 75, 1}, 1);  // grey: replicated to 3 channels
  Tensor loss = F::cross_entropy(m(x), Tensor::from_vector<std::int32_t>({0, 2}, Shape{2}));
  backward(loss);
  auto* frozen = static_cast<ConvBnReLU*>(m.find("backbone.Mixed_6e.branch1x1"));
  auto* open = static_cast<ConvBnReLU*>(m.find("backbone.Mixed_7c.branch1x1"));
  EXPECT_FALSE(frozen->conv->weight.grad().defined());
  EXPECT_TRUE(open->conv->weight.grad().defined());
  auto* sc = static_cast<Shortcut*>(m.find("backbone.Mixed_7c.shortcut"));
  EXPECT_TRUE(sc->alpha.grad().defined()) << "the learnable residual scale receives a gradient";
  EXPECT_TRUE(static_cast<Linear*>(m.find("head.fc"))->weight.grad().defined());
  EXPECT_THROW(m(zeros(Shape{1, 80, 80, 2})), Error) << "2 channels are neither grey nor RGB";
}

TEST(ModelConfig, JsonRoundTripAndErrors) {
  ModelConfig c;
  c.flavour = Flavour::torchvision;
  c.residual = ResidualMode::projection;
  c.head_hidden = {256};
  c.num_classes = 3;
  c.class_names = {"cyst", "metastasis", "hemangioma"};
  const ModelConfig r = ModelConfig::from_json(c.to_json());
  EXPECT_EQ(r.to_json(), c.to_json());
  EXPECT_EQ(r.class_names[2], "hemangioma");
  EXPECT_THROW(ModelConfig::from_json("{\"num_clases\": 3}"), Error);
  EXPECT_THROW(ModelConfig::from_json("{\"num_classes\": 1}"), Error);
  EXPECT_THROW(ModelConfig::from_json("{\"flavour\": \"caffe\"}"), Error);
  EXPECT_THROW(ModelConfig::from_json("{\"head_dropout\": \"high\"}"), Error);
  EXPECT_THROW(ModelConfig::from_json("not json"), Error);
}
