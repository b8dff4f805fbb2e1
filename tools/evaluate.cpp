// tools/evaluate: applies a run's fold models to an external test set (their probabilities averaged, or
// one chosen fold) and reports the same metrics as tools/train.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "models/weights.h"
#include "train/calibration.h"
#include "train/model_usage.h"
#include "train/report.h"
#include "tools/cli.h"
#include "train/trainer.h"

using namespace livernet;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  CLI::App app("Evaluates a trained run on a held-out dataset: metrics.json and predictions.csv in OUTPUT.", "evaluate");
  std::string run, data, output, device = "auto";
  int fold = 0;
  bool uncalibrated = false;
  app.add_option("--run,-r", run, "the run directory made by tools/train")->required();
  app.add_option("--data,-d", data, "test dataset .h5 or manifest .csv")->required();
  app.add_option("--fold", fold, "use only this fold's model (1-based); default: average all folds")->check(CLI::PositiveNumber);
  app.add_option("--output,-o", output, "where to write (default: RUN/evaluation_<data name>)");
  app.add_option("--device", device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  app.add_flag("--uncalibrated", uncalibrated, "the fold models' own probabilities, without the temperature their files "
               "record (the expected calibration error of both is reported either way)");
  return tools::run(app, argc, argv, [&] {
    LN_CHECK(fs::is_directory(run), run, ": no such run directory");
    train::TrainConfig cfg = train::load_train_config(run + "/config.yaml");
    train::check_fold_numbering(run);
    const data::Dataset test = data::load_dataset(data, data::ManifestOptions{cfg.window, 32768.f, {}});
    const Device dev = resolve_device(device);
    std::vector<int> folds;
    if (fold) {
      folds.push_back(fold - 1);
    } else {
      for (int k = 0; k < cfg.folds; ++k) folds.push_back(k);
    }
    for (int k : folds) (void)train::fold_model(run, k);  // all of them before any is applied
    std::vector<std::int64_t> all(static_cast<std::size_t>(test.size()));
    for (std::int64_t i = 0; i < test.size(); ++i) all[i] = i;
    // Each model's probabilities with its own temperature (as tools/predict gives them) and without.
    std::vector<std::vector<double>> avg, avg_raw;
    std::vector<double> temperatures;
    std::vector<std::string> class_names;
    for (int k : folds) {
      const std::string w = train::fold_model(run, k);
      auto model = io::load_model(w);
      class_names = model->config().class_names;
      LN_CHECK(class_names == test.class_names, data, ": classes (", test.class_names.size(), ") differ from the run's (",
               class_names.size(), "): ", test.class_names.empty() ? "" : test.class_names[0], " ... vs ",
               class_names.empty() ? "" : class_names[0], " ...");
      model->to(dev);
      cfg.model.input_size = model->config().input_size;
      const auto probs = train::predict_probs(*model, test, all, cfg, dev, cfg.batch_size);
      const auto usage = train::read_model_usage(w);
      temperatures.push_back(usage ? usage->temperature : 1.0);
      if (avg.empty()) {
        avg.assign(probs.size(), std::vector<double>(probs[0].size(), 0.0));
        avg_raw = avg;
      }
      for (std::size_t i = 0; i < probs.size(); ++i) {
        const std::vector<double> cal = train::apply_temperature(probs[i], temperatures.back());
        for (std::size_t c = 0; c < probs[i].size(); ++c) {
          avg[i][c] += cal[c] / static_cast<double>(folds.size());
          avg_raw[i][c] += probs[i][c] / static_cast<double>(folds.size());
        }
      }
      std::fprintf(stderr, "evaluate: fold %d model applied to %lld lesions\n", k + 1, static_cast<long long>(test.size()));
    }
    const bool calibrated = !uncalibrated && std::any_of(temperatures.begin(), temperatures.end(), [](double t) { return t != 1; });
    const double ece_raw = train::expected_calibration_error(avg_raw, test.labels);
    const double ece_cal = train::expected_calibration_error(avg, test.labels);
    const int positive = train::positive_class_index(cfg, test.class_names);
    train::FoldResult r;
    r.fold = fold ? fold - 1 : 0;
    r.test_indices = all;
    r.test_probs = calibrated ? avg : avg_raw;
    r.metrics = train::compute_metrics(r.test_probs, test.labels, positive);
    if (output.empty()) output = run + "/evaluation_" + fs::path(data).stem().string();
    fs::create_directories(output);
    std::string temps;
    for (double t : temperatures) temps += (temps.empty() ? "" : ", ") + str_fixed(t, 3);
    const std::string cal_note = str_cat("probabilities ", calibrated ? "calibrated" : "uncalibrated",
                                         " (fold temperatures ", temps, uncalibrated ? "; --uncalibrated" : "",
                                         "); expected calibration error on this set: ", str_fixed(ece_raw, 3),
                                         " uncalibrated, ", str_fixed(ece_cal, 3), " with the temperatures");
    train::write_results(output, test, {r}, r.metrics, positive,
                         str_cat(fold ? str_cat("fold ", fold, " model") : str_cat("average of ", folds.size(), " fold models"),
                                 "; ", cal_note));
    std::printf("%s", train::metrics_table({}, r.metrics, train::per_source_metrics(test, {r}, positive)).c_str());
    std::printf("%s\n", cal_note.c_str());
    train::ReportInputs rep;
    rep.run_dir = output;
    rep.title = str_cat("livernet evaluation of ", fs::path(run).filename().string(), " on ", fs::path(data).filename().string());
    rep.config = &cfg;
    rep.data = &test;
    rep.folds = {r};
    rep.pooled = r.metrics;
    rep.positive = positive;
    rep.training_curves = false;
    rep.gallery = 8;
    rep.fold_weights = {train::fold_dir(run, fold ? fold - 1 : 0) + "/best.h5"};
    const std::string report = train::write_report(rep);
    std::printf("results: %s/metrics.json, %s/predictions.csv\nreport:  %s\n", output.c_str(), output.c_str(), report.c_str());
    return 0;
  });
}
