// The command-line tools end to end: exit codes, one-line errors, and outputs checked against the
// library (predict's CSV against the model's own probabilities).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/augment.h"
#include "io/hdf5.h"
#include "io/image.h"
#include "data/preprocess.h"
#include "kernels/tensor_ops.h"
#include "models/weights.h"
#include "kernels/nn.h"
#include "train/model_usage.h"
#include "test_util.h"

using namespace livernet;
namespace fs = std::filesystem;

namespace {

struct Result {
  int rc;
  std::string out, err;
};

using livernet::testing::slurp;

class Tools : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("livernet_tools_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  Result run(const std::string& tool, const std::string& args) const {
    const std::string cmd = std::string(LIVERNET_TOOLS_DIR) + "/" + tool + " " + args + " > " + path("stdout") + " 2> " +
                            path("stderr");
    const int status = std::system(cmd.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(path("stdout")), slurp(path("stderr"))};
  }
  fs::path dir_;
};

// Number of lines in a string (a one-line error ends with exactly one newline).
int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

std::vector<std::vector<std::string>> read_csv(const std::string& text) { return livernet::testing::read_csv_text(text); }

}  // namespace

TEST_F(Tools, HelpAndArgumentErrors) {
  for (const char* tool : {"convert_weights", "predict", "bench", "info"}) {
    const Result r = run(tool, "--help");
    EXPECT_EQ(r.rc, 0) << tool;
    EXPECT_NE(r.out.find("sage"), std::string::npos) << tool << ": " << r.out;
  }
  const Result r = run("predict", "--weights");
  EXPECT_EQ(r.rc, 2);
  const Result unknown = run("convert_weights", "--from caffe x.h5 -o y.h5");
  EXPECT_EQ(unknown.rc, 2);
}

TEST_F(Tools, ConvertWeightsReportsBadInputOnOneLine) {
  std::ofstream(path("junk.h5")) << "junk";
  const Result r = run("convert_weights", "--from keras " + path("junk.h5") + " -o " + path("out.h5"));
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("junk.h5: not an HDF5 file"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(path("out.h5")));
}

TEST_F(Tools, PredictMatchesTheModelOnNpyPngAndDatasets) {
  const ModelConfig cfg = livernet::testing::two_class_config(80);
  init::set_seed(4);
  LesionClassifier model(cfg);
  model.eval();
  io::save_weights(model, cfg, path("w.h5"));

  // .npy, already scaled: 3 grey images at the model's size.
  const Tensor x = rand(Shape{3, 80, 80, 1}, 9, 0, -1.f, 1.f);
  io::write_npy(path("x.npy"), x);
  Result r = run("predict", "--weights " + path("w.h5") + " --input " + path("x.npy") + " -o " + path("p.csv") + " --device cpu");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto rows = read_csv(slurp(path("p.csv")));
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"id", "prob_cyst", "prob_metastasis"}));
  NoGradGuard ng;
  const std::vector<float> want = kernels::softmax(model(x)).to_vector<float>();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(rows[i + 1][0], std::to_string(i));
    for (int k = 0; k < 2; ++k) EXPECT_NEAR(std::stod(rows[i + 1][k + 1]), want[i * 2 + k], 1e-5);
  }
  // --logits to standard output.
  r = run("predict", "--weights " + path("w.h5") + " --input " + path("x.npy") + " --logits --device cpu");
  ASSERT_EQ(r.rc, 0) << r.err;
  rows = read_csv(r.out);
  const std::vector<float> logits = model(x).to_vector<float>();
  EXPECT_EQ(rows[0][1], "logit_cyst");
  EXPECT_NEAR(std::stod(rows[2][2]), logits[3], 1e-4);

  // An 8-bit PNG of another size: scaled to [-1, 1] and resized to 80x80, and stderr says so.
  std::vector<float> px(100 * 100);
  for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<float>((i * 7) % 256);
  io::write_png(path("img.png"), Tensor::from_vector(px, Shape{100, 100, 1}));
  r = run("predict", "--weights " + path("w.h5") + " --input " + path("img.png") + " --device cpu");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("img.png: 1 image(s) 100x100, resized to 80x80 (bilinear), values used as the model's input"),
            std::string::npos) << r.err;
  rows = read_csv(r.out);
  const Tensor png_in = data::resize_bilinear(data::scale_8bit(Tensor::from_vector(px, Shape{1, 100, 100, 1})), 80, 80);
  EXPECT_EQ(rows[1][0], "img.png");
  EXPECT_NEAR(std::stod(rows[1][2]), kernels::softmax(model(png_in)).to_vector<float>()[1], 1e-5);

  // A non-square image is refused (it would be stretched); --resize none runs the network at its own size.
  std::vector<float> wide(90 * 120);
  for (std::size_t i = 0; i < wide.size(); ++i) wide[i] = static_cast<float>((i * 5) % 256);
  io::write_png(path("wide.png"), Tensor::from_vector(wide, Shape{90, 120, 1}));
  r = run("predict", "--weights " + path("w.h5") + " --input " + path("wide.png") + " --device cpu");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("images are 90x120"), std::string::npos) << r.err;
  r = run("predict", "--weights " + path("w.h5") + " --input " + path("wide.png") + " --resize none --device cpu");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("90x120 at their own size"), std::string::npos) << r.err;
  rows = read_csv(r.out);
  const Tensor wide_in = data::scale_8bit(Tensor::from_vector(wide, Shape{1, 90, 120, 1}));
  EXPECT_NEAR(std::stod(rows[1][2]), kernels::softmax(model(wide_in)).to_vector<float>()[1], 1e-5);

  // A dataset file in HU with lesion ids.
  {
    io::H5File f = io::H5File::create(path("d.h5"));
    f.write("images", rand(Shape{2, 80, 80}, 3, 0, -200.f, 300.f));
    f.write_strings("lesion_id", {"L-7", "L-9"});
  }
  r = run("predict", "--weights " + path("w.h5") + " --input " + path("d.h5") + " --device cpu");
  ASSERT_EQ(r.rc, 0) << r.err;
  rows = read_csv(r.out);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2][0], "L-9");
  const Tensor hu = io::H5File::open(path("d.h5")).read("images");
  const Tensor win = data::apply_window(hu, {}).reshape({2, 80, 80, 1});
  EXPECT_NEAR(std::stod(rows[2][1]), kernels::softmax(model(win)).to_vector<float>()[2], 1e-5);

  // A model file that records its training window (tools/train's best.h5): used without flags; a flag that
  // differs wins, with a warning.
  io::save_weights(model, cfg, path("w_usage.h5"), [](io::H5File& f) {
    train::ModelUsage u;
    u.window = data::HuWindow{60.f, 300.f};
    u.positive_class = "metastasis";
    u.run = "r";
    train::write_model_usage(f, u);
  });
  r = run("predict", "--weights " + path("w_usage.h5") + " --input " + path("d.h5") + " --device cpu");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("window level 60 width 300 (as the model was trained)"), std::string::npos) << r.err;
  rows = read_csv(r.out);
  const Tensor win60 = data::apply_window(hu, data::HuWindow{60.f, 300.f}).reshape({2, 80, 80, 1});
  EXPECT_NEAR(std::stod(rows[2][1]), kernels::softmax(model(win60)).to_vector<float>()[2], 1e-5);
  r = run("predict", "--weights " + path("w_usage.h5") + " --input " + path("d.h5") + " --window-level 40 --device cpu");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("warning: --window-level/--window-width (40, 300) differ from the window"), std::string::npos) << r.err;
  EXPECT_FALSE(train::read_model_usage(path("w.h5")).has_value());

  // A model file with a calibration (tools/train's, when the temperature helped): probabilities are
  // softmax(logits / T); --uncalibrated and --logits give the network's own.
  {
    train::ModelUsage u = *train::read_model_usage(path("w_usage.h5"));
    u.temperature = 2.5;
    u.calibration = "test";
    train::rewrite_model_usage(path("w_usage.h5"), u);
    EXPECT_EQ(train::read_model_usage(path("w_usage.h5"))->temperature, 2.5);
  }
  const Tensor logits60 = model(win60);
  r = run("predict", "--weights " + path("w_usage.h5") + " --input " + path("d.h5") + " --device cpu");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("probabilities calibrated with temperature 2.5 (test)"), std::string::npos) << r.err;
  rows = read_csv(r.out);
  const std::vector<float> calibrated = kernels::softmax(kernels::scale(logits60, 1 / 2.5f)).to_vector<float>();
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 2; ++k) EXPECT_NEAR(std::stod(rows[i + 1][k + 1]), calibrated[i * 2 + k], 1e-5) << i << " " << k;
  r = run("predict", "--weights " + path("w_usage.h5") + " --input " + path("d.h5") + " --device cpu --uncalibrated");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NEAR(std::stod(read_csv(r.out)[2][1]), kernels::softmax(logits60).to_vector<float>()[2], 1e-5);
  r = run("predict", "--weights " + path("w_usage.h5") + " --input " + path("d.h5") + " --device cpu --logits");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NEAR(std::stod(read_csv(r.out)[2][1]), logits60.to_vector<float>()[2], 1e-4);

  // Patches of another size with values far outside the window: resized in HU, then windowed, exactly
  // as training and tools/evaluate prepare them (data::make_input), not clipped first.
  const Tensor hu64 = rand(Shape{2, 64, 64}, 5, 0, -600.f, 900.f);
  {
    io::H5File f = io::H5File::create(path("d64.h5"));
    f.write("images", hu64);
  }
  r = run("predict", "--weights " + path("w.h5") + " --input " + path("d64.h5") + " --device cpu");
  ASSERT_EQ(r.rc, 0) << r.err;
  rows = read_csv(r.out);
  ASSERT_EQ(rows.size(), 3u);
  Tensor as_trained = Tensor::empty(Shape{2, 80, 80, 1});
  for (std::int64_t i = 0; i < 2; ++i)
    data::make_input(hu64.slice0(i, i + 1).reshape({64, 64}).clone(), data::InputConfig{{}, 80}, data::AugmentConfig{}, 0, 0, 0,
                   as_trained.data<float>() + i * 80 * 80);
  const std::vector<float> p_trained = kernels::softmax(model(as_trained)).to_vector<float>();
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 2; ++k) EXPECT_NEAR(std::stod(rows[i + 1][k + 1]), p_trained[i * 2 + k], 1e-5) << i << " " << k;
}

TEST_F(Tools, PredictRefusesBadInputsWithOneLine) {
  ModelConfig cfg;
  cfg.head_hidden = {};
  cfg.input_size = 0;
  init::set_seed(1);
  LesionClassifier model(cfg);
  io::save_weights(model, cfg, path("w.h5"));
  std::ofstream(path("a.txt")) << "x";
  io::write_npy(path("small.npy"), zeros(Shape{1, 50, 50, 1}));
  io::write_npy(path("nan.npy"), full(Shape{1, 80, 80, 1}, NAN));
  const std::pair<std::string, std::string> cases[] = {
      {"--input " + path("a.txt"), "unsupported input type '.txt'"},
      {"--input " + path("missing.npy"), "missing.npy: cannot open"},
      {"--input " + path("small.npy"), "smaller than the network's minimum 75x75"},
      {"--input " + path("nan.npy"), "contains NaN"},
  };
  for (const auto& [args, msg] : cases) {
    const Result r = run("predict", "--weights " + path("w.h5") + " " + args + " --device cpu -o " + path("out.csv"));
    EXPECT_EQ(r.rc, 1) << args;
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(msg), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(path("out.csv")));
  }
  const Result gpu = run("predict", "--weights " + path("w.h5") + " --input " + path("small.npy") + " --device cuda:7");
  EXPECT_EQ(gpu.rc, 1);
  EXPECT_NE(gpu.err.find("cuda:7"), std::string::npos) << gpu.err;
}

TEST_F(Tools, BenchWritesJson) {
  const Result r = run("bench", "--model inception_v3 --classes 3 --device cpu --batch 1 --size 75 --iters 1 --warmup 0 "
                                "--train --no-per-block --json " + path("b.json"));
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto j = nlohmann::json::parse(slurp(path("b.json")));
  EXPECT_GT(j["images_per_s"].get<double>(), 0);
  EXPECT_GT(j["peak_memory_bytes"].get<double>(), 1e6);
  EXPECT_GT(j["gflop_per_step"].get<double>(), 0.5);
  EXPECT_NE(r.out.find("images/s"), std::string::npos);
}

TEST_F(Tools, TrainEvaluateEndToEndAndItsErrors) {
  Result r = run("make_phantoms", "-o " + path("train.h5") + " --patients 8 --max-lesions 3 --size 32 --seed 2");
  ASSERT_EQ(r.rc, 0) << r.err;
  r = run("make_phantoms", "-o " + path("test.h5") + " --patients 3 --max-lesions 3 --size 32 --seed 9");
  ASSERT_EQ(r.rc, 0) << r.err;
  std::ofstream(path("tiny.yaml")) << "data:\n  input_size: 75\nmodel:\n  head_hidden: [8]\ntrain:\n  batch_size: 4\n"
                                      "  epochs: 1\ncv:\n  folds: 2\nruntime:\n  device: cpu\n";
  const std::string run_dir = path("run");
  r = run("train", "-c " + path("tiny.yaml") + " --data " + path("train.h5") + " -o " + run_dir);
  ASSERT_EQ(r.rc, 0) << r.err;
  for (const char* f : {"config.yaml", "splits.json", "metrics.json", "predictions.csv", "log.txt", "fold_1/best.h5",
                        "fold_2/checkpoint.h5", "fold_2/history.csv"})
    EXPECT_TRUE(fs::exists(run_dir + "/" + f)) << f;
  const auto metrics = nlohmann::json::parse(slurp(run_dir + "/metrics.json"));
  for (const char* k : {"accuracy", "precision", "recall", "specificity", "f1", "auc"}) EXPECT_TRUE(metrics.contains(k)) << k;
  EXPECT_EQ(metrics["folds"].size(), 2u);
  const auto rows = read_csv(slurp(run_dir + "/predictions.csv"));
  EXPECT_EQ(rows[0], (std::vector<std::string>{"lesion_id", "patient_id", "source", "fold", "label", "prob_cyst", "prob_metastasis"}));
  // Never overwrites a run without --force; resuming a finished run just reports it.
  r = run("train", "-c " + path("tiny.yaml") + " --data " + path("train.h5") + " -o " + run_dir);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("--resume"), std::string::npos) << r.err;
  r = run("train", "--resume " + run_dir);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("already done"), std::string::npos);
  // Evaluate the fold models on a held-out set.
  r = run("evaluate", "--run " + run_dir + " --data " + path("test.h5") + " --device cpu");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_TRUE(fs::exists(run_dir + "/evaluation_test/metrics.json"));
  EXPECT_NE(r.out.find("pooled"), std::string::npos) << r.out;
}

TEST_F(Tools, TrainRejectsBadConfigurationsAndData) {
  ASSERT_EQ(run("make_phantoms", "-o " + path("one.h5") + " --patients 1 --size 32").rc, 0);
  std::ofstream(path("typo.yaml")) << "train:\n  learnin_rate: 0.1\n";
  Result r = run("train", "-c " + path("typo.yaml") + " --data " + path("one.h5") + " -o " + path("r1"));
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("unknown key 'learnin_rate'"), std::string::npos) << r.err;
  r = run("train", "--data " + path("one.h5") + " --size 75 --epochs 1 --device cpu -o " + path("r2"));
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("1 patient(s) cannot be split into 5"), std::string::npos) << r.err;
  r = run("train", "--data " + path("missing.h5") + " -o " + path("r3"));
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("missing.h5: no such file"), std::string::npos) << r.err;
}
