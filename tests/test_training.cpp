// Training and evaluation: patient-level splits (property tests), oversampling, metrics, augmentation
// determinism across loader threads, the configuration parser, resume == uninterrupted, and a smoke
// run on phantoms that beats chance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/philox.h"
#include "data/augment.h"
#include "data/lesions.h"
#include "data/loader.h"
#include "data/phantoms.h"
#include "io/hdf5.h"
#include "kernels/tensor_ops.h"
#include "test_util.h"
#include "train/classifier.h"
#include "train/cv.h"
#include "train/metrics.h"
#include "train/model_usage.h"
#include "train/train_config.h"
#include "train/trainer.h"

using namespace livernet;
using namespace livernet::data;
using namespace livernet::train;
namespace fs = std::filesystem;

namespace {

// A random dataset: `patients` patients with 1..6 lesions, labels drawn with a patient-level bias.
data::Dataset random_dataset(int patients, int classes, std::uint64_t seed) {
  data::Dataset d;
  d.path = "random";
  for (int c = 0; c < classes; ++c) d.class_names.push_back(str_cat("c", c));
  for (int p = 0; p < patients; ++p) {
    const int n = 1 + static_cast<int>(philox_uniform_at(seed, p, 0, 0, 6));
    const float bias = philox_uniform_at(seed, p, 1, 0, 1);
    for (int l = 0; l < n; ++l) {
      const float u = philox_uniform_at(seed, p, 2 + l, 0, 1);
      const int label = classes == 2 ? (u < bias ? 1 : 0) : static_cast<int>(u * classes) % classes;
      d.images.push_back(zeros(Shape{4, 4}));
      d.labels.push_back(label);
      d.patient_ids.push_back(str_cat("p", p));
      d.lesion_ids.push_back(str_cat("p", p, "l", l));
    }
  }
  return d;
}

using livernet::testing::slurp;

using livernet::testing::TempDir;

}  // namespace

TEST(CrossValidation, NoPatientLeakageAndStratifiedOnRandomDatasets) {
  for (std::uint64_t seed = 1; seed <= 25; ++seed) {
    const int patients = 10 + static_cast<int>(seed * 7 % 60);
    const int classes = seed % 4 == 0 ? 3 : 2;
    data::Dataset d = random_dataset(patients, classes, seed);
    bool all_classes = true;
    for (auto c : d.class_counts()) all_classes = all_classes && c > 0;
    if (!all_classes) continue;
    const int k = 2 + static_cast<int>(seed % 4);
    const auto folds = make_folds(d, k, 0.2, seed);
    ASSERT_EQ(static_cast<int>(folds.size()), k);
    std::map<std::string, int> test_fold_of;
    std::vector<int> seen(static_cast<std::size_t>(d.size()), 0);
    for (int f = 0; f < k; ++f) {
      std::set<std::string> tr, va, te;
      for (auto i : folds[f].train) tr.insert(d.patient_ids[i]);
      for (auto i : folds[f].val) va.insert(d.patient_ids[i]);
      for (auto i : folds[f].test) {
        te.insert(d.patient_ids[i]);
        ++seen[i];
      }
      for (const auto& p : te) {
        EXPECT_FALSE(tr.count(p) || va.count(p)) << "patient " << p << " leaks into training of fold " << f;
        EXPECT_FALSE(test_fold_of.count(p)) << "patient " << p << " is tested twice";
        test_fold_of[p] = f;
      }
      for (const auto& p : va) EXPECT_FALSE(tr.count(p)) << "patient " << p << " in train and validation";
      EXPECT_EQ(folds[f].train.size() + folds[f].val.size() + folds[f].test.size(), static_cast<std::size_t>(d.size()));
    }
    for (int s : seen) ASSERT_EQ(s, 1) << "every lesion is tested exactly once";
    // Stratification: each fold's share of every class within 25 points of the overall share (patients are
    // indivisible, so exact balance is not always possible).
    const auto counts = d.class_counts();
    for (int f = 0; f < k; ++f) {
      std::vector<double> c(classes, 0);
      for (auto i : folds[f].test) c[d.labels[i]] += 1;
      for (int j = 0; j < classes; ++j)
        EXPECT_NEAR(c[j] / folds[f].test.size(), static_cast<double>(counts[j]) / d.size(), 0.25) << "seed " << seed;
    }
    // Reproducible from the seed.
    EXPECT_EQ(make_folds(d, k, 0.2, seed)[0].test, folds[0].test);
  }
}

TEST(CrossValidation, ClearErrorsForImpossibleSplits) {
  data::Dataset d = random_dataset(3, 2, 9);
  d.labels = std::vector<int>(d.labels.size(), 0);
  d.labels[0] = 1;
  try {
    make_folds(d, 5, 0.2, 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 patient(s) cannot be split into 5"), std::string::npos) << e.what();
  }
  d.labels = std::vector<int>(d.labels.size(), 0);
  EXPECT_THROW(make_folds(d, 2, 0.2, 1), Error) << "one class only";
}

TEST(CrossValidation, OversamplingBalancesAndIsSeeded) {
  std::vector<int> labels{0, 0, 0, 0, 0, 0, 1, 1};
  std::vector<std::int64_t> idx{0, 1, 2, 3, 4, 5, 6, 7};
  const auto a = epoch_order(idx, labels, 2, true, 3, 0);
  EXPECT_EQ(a.size(), 12u);
  EXPECT_EQ(std::count_if(a.begin(), a.end(), [&](auto i) { return labels[i] == 1; }), 6);
  EXPECT_EQ(a, epoch_order(idx, labels, 2, true, 3, 0));
  EXPECT_NE(a, epoch_order(idx, labels, 2, true, 3, 1));
  EXPECT_EQ(epoch_order(idx, labels, 2, false, 3, 0).size(), 8u);
}

TEST(Metrics, HandComputedCases) {
  // 6 samples, positive class 1.
  const std::vector<std::vector<double>> p = {{0.9, 0.1}, {0.4, 0.6}, {0.2, 0.8}, {0.7, 0.3}, {0.35, 0.65}, {0.6, 0.4}};
  const std::vector<int> y = {0, 0, 1, 1, 1, 0};
  const Metrics m = compute_metrics(p, y, 1);
  // predictions: 0 1 1 0 1 0 -> TP 2, FP 1, FN 1, TN 2
  EXPECT_DOUBLE_EQ(m.accuracy, 4.0 / 6);
  EXPECT_DOUBLE_EQ(m.precision, 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.recall, 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.specificity, 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.f1, 2.0 / 3);
  EXPECT_EQ(m.confusion, (std::vector<std::vector<int>>{{2, 1}, {1, 2}}));
  // AUC: scores of positives .8 .3 .65 vs negatives .1 .6 .4: pairs won 3 + 1 + 3 = 7 of 9.
  EXPECT_NEAR(m.auc, 7.0 / 9, 1e-12);
  // Ties count 1/2 (as sklearn's roc_auc_score).
  EXPECT_NEAR(roc_auc({0.5, 0.5, 0.5, 0.9}, {0, 1, 0, 1}), 0.75, 1e-12);
  EXPECT_TRUE(std::isnan(roc_auc({0.1, 0.2}, {1, 1})));
  const auto curve = roc_curve({0.9, 0.8, 0.3}, {1, 0, 1});
  EXPECT_EQ(curve.front(), (std::pair<double, double>{0, 0}));
  EXPECT_EQ(curve.back(), (std::pair<double, double>{1, 1}));
  const auto ms = mean_std({m, m});
  EXPECT_DOUBLE_EQ(ms.at("f1").first, 2.0 / 3);
  EXPECT_DOUBLE_EQ(ms.at("f1").second, 0);
}

TEST(Augmentation, WithoutAugmentationItIsWindowPlusResize) {
  const Tensor hu = rand(Shape{37, 29}, 4, 0, -300.f, 500.f);
  std::vector<float> out(75 * 75);
  data::make_input(hu, {{40, 400}, 75}, {}, 1, 2, 3, out.data());
  const Tensor ref = data::apply_window(data::resize_bilinear(hu.reshape({37, 29, 1}), 75, 75), {40, 400});
  const auto r = ref.to_vector<float>();
  for (std::size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], r[i], 1e-5) << i;
}

TEST(Augmentation, LoaderOutputDoesNotDependOnThreadCount) {
  data::Dataset d = random_dataset(8, 2, 3);
  for (std::size_t i = 0; i < d.images.size(); ++i) d.images[i] = rand(Shape{20, 24}, 50 + i, 0, -100.f, 200.f);
  data::AugmentConfig aug;
  aug.enabled = true;
  std::vector<std::int64_t> order;
  for (std::int64_t i = d.size() - 1; i >= 0; --i) order.push_back(i);
  auto run = [&](int threads) {
    data::BatchLoader loader(d, order, 3, {{40, 400}, 32}, aug, 11, 4, Device::cpu(), threads);
    std::vector<float> all;
    data::Batch b;
    while (loader.next(b)) {
      const auto v = b.images.to_vector<float>();
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  };
  const auto one = run(1), four = run(4);
  EXPECT_EQ(one.size(), static_cast<std::size_t>(d.size()) * 32 * 32);
  EXPECT_EQ(one, four);
  // A different epoch draws different augmentations.
  data::BatchLoader other(d, order, 3, {{40, 400}, 32}, aug, 11, 5, Device::cpu(), 1);
  data::Batch b;
  other.next(b);
  const std::vector<float> first = b.images.to_vector<float>();
  EXPECT_NE(std::vector<float>(one.begin(), one.begin() + 32 * 32), std::vector<float>(first.begin(), first.begin() + 32 * 32));
}

TEST(TrainConfig, ErrorsNameTheKey) {
  auto err = [](const std::string& yaml) {
    try {
      parse_train_config(yaml, "c.yaml").validate();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(err("train:\n  learning_rate: 0.1\n").find("unknown key 'learning_rate'"), std::string::npos);
  EXPECT_NE(err("train:\n  epoch: 3\n").find("did you mean 'epochs'"), std::string::npos);
  EXPECT_NE(err("trian:\n  epochs: 3\n").find("did you mean 'train'"), std::string::npos);
  EXPECT_NE(err("train:\n  epochs: many\n").find("train.epochs: expected an integer"), std::string::npos);
  EXPECT_NE(err("data:\n  path: x.h5\ntrain:\n  lr: -1\n").find("train.lr must be > 0"), std::string::npos);
  EXPECT_NE(err("data:\n  path: x.h5\ntrain:\n  optimizer: rmsprop\n").find("'rmsprop' is not one of sgd, adam, adamw"),
            std::string::npos);
  EXPECT_NE(err("data:\n  path: x.h5\n  input_size: 64\n").find("input_size must be >= 75"), std::string::npos);
  EXPECT_NE(err("data: [1, 2\n").find("not valid YAML"), std::string::npos);
  // Round trip of the resolved configuration.
  TrainConfig c = parse_train_config("data:\n  path: a.h5\ntrain:\n  lr: 0.01\ncv:\n  folds: 3\n", "c.yaml");
  const TrainConfig r = parse_train_config(c.to_yaml(), "resolved");
  EXPECT_EQ(r.to_yaml(), c.to_yaml());
  EXPECT_EQ(r.folds, 3);
  // Every kind of value survives config.yaml: choices, nested sections, lists, flags.
  c.optimizer = OptimizerKind::adamw;
  c.schedule = Schedule::cosine;
  c.monitor = Monitor::val_auc;
  c.balance = Balance::class_weight;
  c.nonfinite = NonFinite::stop;
  c.precision = Precision::f16;
  c.model.flavour = Flavour::torchvision;
  c.model.residual = ResidualMode::projection;
  c.model.head_hidden = {7, 5};
  c.model.class_names = {"cyst", "metastasis"};
  c.augment.rotation_deg = 12.5f;
  c.augment.enabled = false;
  c.seed = 123456789012ull;
  const std::string yaml = c.to_yaml();
  EXPECT_NE(yaml.find("optimizer: adamw"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("  augment:\n    enabled: false"), std::string::npos) << yaml;
  const TrainConfig back = parse_train_config(yaml, "resolved");
  EXPECT_EQ(back.to_yaml(), yaml);
  EXPECT_EQ(back.optimizer, OptimizerKind::adamw);
  EXPECT_EQ(back.schedule, Schedule::cosine);
  EXPECT_EQ(back.monitor, Monitor::val_auc);
  EXPECT_EQ(back.balance, Balance::class_weight);
  EXPECT_EQ(back.nonfinite, NonFinite::stop);
  EXPECT_EQ(back.precision, Precision::f16);
  EXPECT_EQ(back.model.flavour, Flavour::torchvision);
  EXPECT_EQ(back.model.residual, ResidualMode::projection);
  EXPECT_EQ(back.model.head_hidden, (std::vector<int>{7, 5}));
  EXPECT_EQ(back.model.class_names, (std::vector<std::string>{"cyst", "metastasis"}));
  EXPECT_FLOAT_EQ(back.augment.rotation_deg, 12.5f);
  EXPECT_FALSE(back.augment.enabled);
  EXPECT_EQ(back.seed, 123456789012ull);
  // A wrong choice anywhere, a nested section included, names its key.
  EXPECT_NE(err("model:\n  flavour: caffe\n").find("c.yaml: model.flavour: 'caffe' is not one of keras, torchvision"),
            std::string::npos);
  EXPECT_NE(err("data:\n  augment:\n    flipz: true\n").find("c.yaml: data.augment: unknown key 'flipz' (did you mean 'flips'?)"),
            std::string::npos);
}

namespace {
TrainConfig tiny_config(const std::string& data) {
  TrainConfig c;
  c.data = data;
  c.model.input_size = 75;
  c.model.head_hidden = {16};
  c.batch_size = 4;
  c.epochs = 2;
  c.folds = 2;
  c.early_stopping_patience = 0;
  c.augment.enabled = true;
  c.device = "cpu";
  return c;
}
}  // namespace

TEST(Training, RepeatsAreRunsOfTheirOwnWithConsecutiveSeedsAndResumeFoldByFold) {
  TempDir dir;
  data::save_dataset_h5(make_phantoms({.patients = 12, .max_lesions = 4, .size = 32}), dir.str("d.h5"));
  TrainConfig cfg = tiny_config(dir.str("d.h5"));
  cfg.epochs = 1;
  fs::create_directories(dir.str("plain"));
  Progress quiet(dir.str("plain/log.txt"));
  cfg.seed = 43;
  run_training(cfg, dir.str("plain"), quiet);  // what repeat 2 must be
  cfg.seed = 42;
  cfg.repeats = 2;
  fs::create_directories(dir.str("rep"));
  Progress p(dir.str("rep/log.txt"));
  // Interrupted in repeat 2's first fold, then resumed.
  TrainHooks h;
  int folds_started = 0;
  h.on_step = [&](int, std::int64_t s) {
    if (s == 1 && ++folds_started == 3) interrupt_flag() = true;
  };
  EXPECT_THROW(run_repeats(cfg, dir.str("rep"), p, h), Interrupted);
  interrupt_flag() = false;
  EXPECT_TRUE(fs::exists(dir.str("rep/repeat_1/fold_2/result.json")));
  EXPECT_FALSE(fs::exists(dir.str("rep/repeat_2/fold_1/result.json")));
  const std::vector<RunSummary> all = run_repeats(cfg, dir.str("rep"), p);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(load_train_config(dir.str("rep/repeat_1/config.yaml")).seed, 42u);
  EXPECT_EQ(load_train_config(dir.str("rep/repeat_2/config.yaml")).seed, 43u);
  EXPECT_EQ(load_train_config(dir.str("rep/repeat_2/config.yaml")).repeats, 1);
  EXPECT_EQ(slurp(dir.str("rep/repeat_2/predictions.csv")), slurp(dir.str("plain/predictions.csv")));
  const nlohmann::json j = nlohmann::json::parse(slurp(dir.str("rep/repeats.json")));
  ASSERT_EQ(j["repeats"].size(), 2u);
  const double a1 = j["repeats"][0]["pooled"]["accuracy"], a2 = j["repeats"][1]["pooled"]["accuracy"];
  EXPECT_DOUBLE_EQ(j["mean"]["accuracy"].get<double>(), (a1 + a2) / 2);
  EXPECT_NEAR(j["std"]["accuracy"].get<double>(), std::fabs(a1 - a2) / std::sqrt(2.0), 1e-12);
  EXPECT_EQ(j["repeats"][1]["seed"], 43);
  // A repeat's config.yaml edited by hand is refused on resume; tools take a repeat, not the whole run.
  TrainConfig edited = load_train_config(dir.str("rep/repeat_1/config.yaml"));
  edited.lr = 0.5f;
  io::write_text_file_atomically(dir.str("rep/repeat_1/config.yaml"), edited.to_yaml());
  EXPECT_THROW(run_repeats(cfg, dir.str("rep"), p), Error);
  try {
    (void)fold_model(dir.str("rep"), 0);
    FAIL() << "a run of repeats taken as one run";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds repeats of the cross-validation"), std::string::npos) << e.what();
  }
}

TEST(Training, ResumeAfterInterruptionEqualsAnUninterruptedRun) {
  TempDir dir;
  data::save_dataset_h5(make_phantoms({.patients = 12, .max_lesions = 4, .size = 32}), dir.str("d.h5"));
  const TrainConfig cfg = tiny_config(dir.str("d.h5"));
  fs::create_directories(dir.str("full"));
  Progress quiet(dir.str("full/log.txt"));
  run_training(cfg, dir.str("full"), quiet);
  // Interrupt mid-epoch in fold 1, then at an epoch boundary in fold 2; resume each time.
  fs::create_directories(dir.str("resumed"));
  Progress p2(dir.str("resumed/log.txt"));
  int interrupts = 0;
  for (const auto& [fold, step] : {std::pair{0, 3}, std::pair{1, 4}}) {
    TrainHooks h;
    h.on_step = [&, fold = fold, step = step](int f, std::int64_t s) {
      if (f == fold && s == step) interrupt_flag() = true;
    };
    try {
      run_training(cfg, dir.str("resumed"), p2, h);
    } catch (const Interrupted&) {
      ++interrupts;
    }
    interrupt_flag() = false;
  }
  run_training(cfg, dir.str("resumed"), p2);
  EXPECT_EQ(interrupts, 2);
  EXPECT_EQ(slurp(dir.str("resumed/predictions.csv")), slurp(dir.str("full/predictions.csv")));
  EXPECT_EQ(slurp(dir.str("resumed/metrics.json")), slurp(dir.str("full/metrics.json")));
  for (int f = 0; f < 2; ++f) {
    const std::string h = "/fold_" + std::to_string(f + 1) + "/history.csv";
    // Times differ; losses and metrics must not.
    auto strip = [](std::string s) {
      std::string out;
      std::istringstream in(s);
      std::string line;
      while (std::getline(in, line)) {
        std::stringstream ls(line);
        std::string cell;
        for (int i = 0; i < 6 && std::getline(ls, cell, ','); ++i) out += cell + ",";
        out += "\n";
      }
      return out;
    };
    EXPECT_EQ(strip(slurp(dir.str("resumed") + h)), strip(slurp(dir.str("full") + h)));
  }
}

TEST(Training, FinalEpochsAreTheMedianOfTheFoldsBestEpochs) {
  auto folds = [](std::vector<int> best) {
    std::vector<FoldResult> f(best.size());
    for (std::size_t i = 0; i < best.size(); ++i) f[i].best_epoch = best[i];
    return f;
  };
  EXPECT_EQ(final_epochs(folds({3, 1, 2})), 2);
  EXPECT_EQ(final_epochs(folds({1, 2})), 2);  // 1.5 rounded up
  EXPECT_EQ(final_epochs(folds({2, 2, 5, 5})), 4);
  EXPECT_EQ(final_epochs(folds({7, 9, 8, 1, 30})), 8);
  EXPECT_THROW(final_epochs({}), Error);
}

TEST(Training, FinalModelTrainsOnEveryPatientAndResumesToTheSameWeights) {
  TempDir dir;
  data::Dataset d = make_phantoms({.patients = 12, .max_lesions = 4, .size = 32});
  data::ExtractOptions cut;
  cut.size = 32;
  cut.spacing_mm = 0.7;
  d.extraction = data::extraction_json(cut);  // as if extract_lesions had cut the patches
  data::save_dataset_h5(d, dir.str("d.h5"));
  TrainConfig cfg = tiny_config(dir.str("d.h5"));
  cfg.epochs = 3;
  cfg.final_model = true;
  fs::create_directories(dir.str("full"));
  Progress quiet(dir.str("full/log.txt"));
  const RunSummary s = run_training(cfg, dir.str("full"), quiet);
  ASSERT_EQ(s.final_model, dir.str("full/final/model.h5"));
  EXPECT_EQ(s.final_epochs, final_epochs(s.folds));
  EXPECT_FALSE(fs::exists(dir.str("full/final/best.h5")));
  // Trained for that many epochs on every lesion, nothing held out.
  const std::string history = slurp(dir.str("full/final/history.csv"));
  EXPECT_EQ(std::count(history.begin(), history.end(), '\n'), s.final_epochs + 1) << history;
  const std::string result = slurp(dir.str("full/final/result.json"));
  EXPECT_NE(result.find(str_cat("\"epochs\":", s.final_epochs)), std::string::npos) << result;
  EXPECT_NE(result.find(str_cat("\"lesions\":", s.data.size())), std::string::npos) << result;
  // The run's window and temperature, and it classifies as a fold model does.
  const auto u = read_model_usage(s.final_model);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->temperature, s.calibration.temperature);
  EXPECT_NE(u->calibration.find("no held-out patients"), std::string::npos) << u->calibration;
  // The patch geometry of the training data, in the final and the fold models.
  EXPECT_EQ(u->extraction, d.extraction);
  EXPECT_EQ(read_model_usage(dir.str("full/fold_2/best.h5"))->extraction, d.extraction);
  Classifier clf(s.final_model, Device::cpu());
  EXPECT_EQ(clf.temperature, s.calibration.temperature);
  EXPECT_TRUE(clf.extraction_recorded);
  EXPECT_EQ(clf.extraction.spacing_mm, 0.7);
  // Not one of the fold models.
  auto final_w = io::load_model(s.final_model), fold_w = io::load_model(dir.str("full/fold_1/best.h5"));
  EXPECT_NE(final_w->head->named_parameters()[0].tensor->to_vector<float>(),
            fold_w->head->named_parameters()[0].tensor->to_vector<float>());
  // A finished final model is kept when the run is resumed.
  const auto written = fs::last_write_time(s.final_model);
  run_training(cfg, dir.str("full"), quiet);
  EXPECT_EQ(fs::last_write_time(s.final_model), written);

  // Interrupted part-way through the final model, then resumed: the same weights, bit for bit.
  fs::create_directories(dir.str("resumed"));
  Progress p2(dir.str("resumed/log.txt"));
  TrainHooks h;
  h.on_step = [&](int f, std::int64_t step) {
    if (f == cfg.folds && step == 5) interrupt_flag() = true;
  };
  EXPECT_THROW(run_training(cfg, dir.str("resumed"), p2, h), Interrupted);
  interrupt_flag() = false;
  EXPECT_TRUE(fs::exists(dir.str("resumed/final/checkpoint.h5")));
  run_training(cfg, dir.str("resumed"), p2);
  auto a = io::load_model(s.final_model), b = io::load_model(dir.str("resumed/final/model.h5"));
  auto sa = a->named_state(), sb = b->named_state();
  ASSERT_EQ(sa.size(), sb.size());
  for (std::size_t i = 0; i < sa.size(); ++i)
    EXPECT_EQ(sa[i].tensor->to_vector<float>(), sb[i].tensor->to_vector<float>()) << sa[i].name;
}

TEST(Training, SmokeRunOnPhantomsBeatsChance) {
  TempDir dir;
  data::save_dataset_h5(make_phantoms({.patients = 40, .max_lesions = 4, .size = 40, .hard_fraction = 0, .seed = 4}),
                        dir.str("d.h5"));
  TrainConfig c = tiny_config(dir.str("d.h5"));
  c.model.head_hidden = {64};
  c.batch_size = 16;
  c.epochs = 12;
  fs::create_directories(dir.str("run"));
  Progress quiet(dir.str("run/log.txt"));
  const RunSummary s = run_training(c, dir.str("run"), quiet);
  // Chance is 0.5 (AUC) and about 0.6 (accuracy, majority class); the run reaches ~0.82 / ~0.88.
  EXPECT_GT(s.pooled.accuracy, 0.7) << metrics_table(s.folds, s.pooled);
  EXPECT_GT(s.pooled.auc, 0.75) << metrics_table(s.folds, s.pooled);
}

// The option tables of docs/training.md and docs/model.md against the parser's keys, both ways, so the
// documentation cannot drift from what the configuration accepts. A key is documented by its own row
// (`train.lr`), or by name in the row of its group (`train.schedule` ... plateau_factor; `data.augment.*` ...
// flips); model keys by their row in docs/model.md's table.
TEST(TrainConfig, EveryKeyIsDocumentedAndEveryDocumentedKeyExists) {
  auto read = [](const std::string& rel) {
    std::ifstream in(std::string(LIVERNET_SOURCE_DIR) + "/" + rel);
    EXPECT_TRUE(in.good()) << rel;
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  auto table_rows = [](const std::string& doc, const std::string& heading) {
    std::vector<std::string> rows;
    std::istringstream in(doc.substr(doc.find(heading)));
    std::string line;
    bool started = false;
    while (std::getline(in, line)) {
      if (line.rfind("| `", 0) == 0) started = true, rows.push_back(line);
      else if (started && line.rfind("|", 0) != 0) break;
    }
    return rows;
  };
  const std::string training = read("docs/training.md"), model = read("docs/model.md");
  const auto train_rows = table_rows(training, "## Options");
  const auto model_rows = table_rows(model, "| key | default | meaning |");
  ASSERT_GT(train_rows.size(), 10u);
  ASSERT_GT(model_rows.size(), 8u);
  const std::vector<std::string> keys = config_keys();
  auto first_cell = [](const std::string& row) { return row.substr(1, row.find('|', 1) - 1); };
  for (const std::string& key : keys) {
    const std::string sec = key.substr(0, key.rfind('.')), leaf = key.substr(key.rfind('.') + 1);
    bool documented = false;
    for (const auto& row : train_rows) {
      const std::string cell = first_cell(row);
      documented = documented || cell.find("`" + key + "`") != std::string::npos ||
                   (cell.find("`" + sec + ".") != std::string::npos && row.find(leaf) != std::string::npos);
    }
    if (sec == "model" || key == "data.input_size" || key == "data.class_names")
      for (const auto& row : model_rows) documented = documented || first_cell(row).find("`" + leaf + "`") != std::string::npos;
    EXPECT_TRUE(documented) << key << " is in the parser but not in docs/training.md's options (or docs/model.md's table)";
  }
  // Every `section.key` in the first column of docs/training.md's table is a key.
  for (const auto& row : train_rows) {
    const std::string cell = first_cell(row);
    for (std::size_t at = cell.find('`'); at != std::string::npos; at = cell.find('`', cell.find('`', at + 1) + 1)) {
      const std::string name = cell.substr(at + 1, cell.find('`', at + 1) - at - 1);
      if (name.find('.') == std::string::npos || name.ends_with(".*") || name.starts_with("--")) continue;
      EXPECT_NE(std::find(keys.begin(), keys.end(), name), keys.end()) << "docs/training.md documents '" << name << "', which the parser does not know";
    }
  }
  // And every key of docs/model.md's table is a model key (or data.input_size / data.class_names / num_classes).
  for (const auto& row : model_rows) {
    const std::string cell = first_cell(row);
    for (std::size_t at = cell.find('`'); at != std::string::npos; at = cell.find('`', cell.find('`', at + 1) + 1)) {
      const std::string name = cell.substr(at + 1, cell.find('`', at + 1) - at - 1);
      const bool known = std::find(keys.begin(), keys.end(), "model." + name) != keys.end() || name == "input_size" ||
                         name == "class_names" || name == "num_classes";
      EXPECT_TRUE(known) << "docs/model.md documents '" << name << "', which is not a configuration key";
    }
  }
}
