#include "train/report.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "core/philox.h"
#include "io/hdf5.h"
#include "io/image.h"
#include "models/weights.h"
#include "train/gradcam.h"

namespace livernet::train {

namespace fs = std::filesystem;

std::vector<double> central_mean_hu(const data::Dataset& d) {
  std::vector<double> out;
  for (const Tensor& im : d.images) {
    const std::int64_t H = im.size(0), W = im.size(1);
    const double r = 0.15 * static_cast<double>(std::min(H, W)), cy = (H - 1) / 2.0, cx = (W - 1) / 2.0;
    const float* p = im.data<float>();
    double s = 0;
    int n = 0;
    for (std::int64_t y = 0; y < H; ++y)
      for (std::int64_t x = 0; x < W; ++x)
        if ((y - cy) * (y - cy) + (x - cx) * (x - cx) <= r * r) s += p[y * W + x], ++n;
    out.push_back(n ? s / n : p[(H / 2) * W + W / 2]);
  }
  return out;
}

std::vector<FoldResult> trivial_rule(const data::Dataset& d, const std::vector<FoldResult>& folds, int positive) {
  const std::vector<double> hu = central_mean_hu(d);
  std::vector<FoldResult> out;
  for (const FoldResult& f : folds) {
    std::vector<bool> is_test(static_cast<std::size_t>(d.size()), false);
    for (auto i : f.test_indices) is_test[i] = true;
    // Fit on everything outside the test fold: the best threshold and direction for accuracy.
    std::vector<std::pair<double, int>> train;
    for (std::int64_t i = 0; i < d.size(); ++i)
      if (!is_test[i]) train.emplace_back(hu[i], d.labels[i] == positive);
    if (train.empty()) return {};  // nothing to fit on (an external evaluation): no trivial rule
    std::sort(train.begin(), train.end());
    double best_acc = -1, thr = 0;
    int dir = 1;
    for (std::size_t k = 0; k <= train.size(); ++k) {
      const double t = k == 0 ? train.front().first - 1 : k == train.size() ? train.back().first + 1
                                                                             : (train[k - 1].first + train[k].first) / 2;
      for (int s : {1, -1}) {
        int ok = 0;
        for (auto& [v, y] : train) ok += ((s * (v - t) > 0) == (y == 1));
        const double acc = static_cast<double>(ok) / train.size();
        if (acc > best_acc) best_acc = acc, thr = t, dir = s;
      }
    }
    FoldResult r;
    r.fold = f.fold;
    r.test_indices = f.test_indices;
    const int K = d.num_classes();
    for (auto i : f.test_indices) {
      const double p = 1.0 / (1.0 + std::exp(-dir * (hu[i] - thr) / 10.0));
      std::vector<double> probs(static_cast<std::size_t>(K), K > 1 ? (1 - p) / (K - 1) : 0.0);
      probs[positive] = p;
      r.test_probs.push_back(probs);
    }
    std::vector<int> labels;
    for (auto i : f.test_indices) labels.push_back(d.labels[i]);
    r.metrics = compute_metrics(r.test_probs, labels, positive);
    out.push_back(std::move(r));
  }
  return out;
}

namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string num(double v, int prec = 3) {
  if (!std::isfinite(v)) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> pts;
  std::string color;
  bool dashed = false;
  double width = 1.6;
};

// A line chart with axes, ticks, a legend; class "chart" (checked by the render test).
// integer_x: ticks only at whole numbers of x (epochs), every one or every few.
std::string line_chart(const std::string& title, const std::string& xl, const std::string& yl, const std::vector<Series>& series,
                       double x0, double x1, double y0, double y1, bool diagonal = false, bool integer_x = false) {
  const double W = 440, H = 320, L = 52, R = 12, T = 28, B = 44;
  auto sx = [&](double x) { return L + (x - x0) / std::max(x1 - x0, 1e-12) * (W - L - R); };
  auto sy = [&](double y) { return H - B - (y - y0) / std::max(y1 - y0, 1e-12) * (H - T - B); };
  std::ostringstream o;
  o << "<svg class=\"chart\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W << " " << H
    << "\" xmlns=\"http://www.w3.org/2000/svg\" font-family=\"sans-serif\" font-size=\"11\">";
  o << "<text x=\"" << W / 2 << "\" y=\"16\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">" << esc(title) << "</text>";
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\"" << H - T - B
    << "\" fill=\"#fafafa\" stroke=\"#999\"/>";
  auto x_tick = [&](double xv, int decimals) {
    o << "<line x1=\"" << sx(xv) << "\" y1=\"" << H - B << "\" x2=\"" << sx(xv) << "\" y2=\"" << H - B + 4 << "\" stroke=\"#666\"/>";
    o << "<text x=\"" << sx(xv) << "\" y=\"" << H - B + 16 << "\" text-anchor=\"middle\">" << num(xv, decimals) << "</text>";
  };
  if (integer_x) {
    const double step = std::max(1.0, std::ceil((x1 - x0) / 5));
    for (double xv = std::ceil(x0); xv <= x1 + 1e-9; xv += step) x_tick(xv, 0);
  }
  for (int i = 0; i <= 5; ++i) {
    const double xv = x0 + (x1 - x0) * i / 5, yv = y0 + (y1 - y0) * i / 5;
    if (!integer_x) x_tick(xv, x1 - x0 >= 10 ? 0 : 1);
    o << "<line x1=\"" << L - 4 << "\" y1=\"" << sy(yv) << "\" x2=\"" << L << "\" y2=\"" << sy(yv) << "\" stroke=\"#666\"/>";
    o << "<text x=\"" << L - 6 << "\" y=\"" << sy(yv) + 4 << "\" text-anchor=\"end\">" << num(yv, 2) << "</text>";
    o << "<line x1=\"" << L << "\" y1=\"" << sy(yv) << "\" x2=\"" << W - R << "\" y2=\"" << sy(yv) << "\" stroke=\"#eee\"/>";
  }
  o << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 8 << "\" text-anchor=\"middle\">" << esc(xl) << "</text>";
  o << "<text transform=\"translate(13," << (T + H - B) / 2 << ") rotate(-90)\" text-anchor=\"middle\">" << esc(yl) << "</text>";
  if (diagonal)
    o << "<line x1=\"" << sx(x0) << "\" y1=\"" << sy(y0) << "\" x2=\"" << sx(x1) << "\" y2=\"" << sy(y1)
      << "\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>";
  int li = 0;
  for (const Series& s : series) {
    if (s.pts.empty()) continue;
    o << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"" << s.width << "\""
      << (s.dashed ? " stroke-dasharray=\"5 3\"" : "") << " points=\"";
    for (auto& [x, y] : s.pts)
      if (std::isfinite(y)) o << sx(std::clamp(x, x0, x1)) << "," << sy(std::clamp(y, y0, y1)) << " ";
    o << "\"/>";
    const double ly = T + 10 + 14 * li++;
    o << "<line x1=\"" << W - R - 120 << "\" y1=\"" << ly << "\" x2=\"" << W - R - 102 << "\" y2=\"" << ly << "\" stroke=\""
      << s.color << "\" stroke-width=\"2\"" << (s.dashed ? " stroke-dasharray=\"5 3\"" : "") << "/>";
    o << "<text x=\"" << W - R - 98 << "\" y=\"" << ly + 4 << "\">" << esc(s.name) << "</text>";
  }
  o << "</svg>";
  return o.str();
}

struct Interval {
  double lo, hi;
};

// 95 % intervals of the pooled metrics by resampling patients (1000 draws, Philox-seeded).
std::map<std::string, Interval> bootstrap(const data::Dataset& d, const std::vector<FoldResult>& folds, int positive) {
  std::map<std::string, std::vector<std::size_t>> by_patient;
  std::vector<std::vector<double>> probs;
  std::vector<int> labels;
  for (const auto& f : folds)
    for (std::size_t i = 0; i < f.test_indices.size(); ++i) {
      by_patient[d.patient_ids[f.test_indices[i]]].push_back(probs.size());
      probs.push_back(f.test_probs[i]);
      labels.push_back(d.labels[f.test_indices[i]]);
    }
  std::vector<std::vector<std::size_t>> groups;
  for (auto& [p, v] : by_patient) groups.push_back(v);
  std::map<std::string, std::vector<double>> draws;
  for (int b = 0; b < 1000 && !groups.empty(); ++b) {
    std::vector<std::vector<double>> bp;
    std::vector<int> bl;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      const std::size_t pick = philox_block(2024, b, g).v[0] % groups.size();
      for (std::size_t i : groups[pick]) {
        bp.push_back(probs[i]);
        bl.push_back(labels[i]);
      }
    }
    const Metrics m = compute_metrics(bp, bl, positive);
    for (auto& [k, v] : m.as_map())
      if (std::isfinite(v)) draws[k].push_back(v);
  }
  std::map<std::string, Interval> out;
  for (auto& [k, v] : draws) {
    std::sort(v.begin(), v.end());
    if (v.empty()) continue;
    out[k] = {v[static_cast<std::size_t>(0.025 * (v.size() - 1))], v[static_cast<std::size_t>(0.975 * (v.size() - 1))]};
  }
  return out;
}

// Grey patch with a jet-like heat map blended on top, as an RGB tensor.
Tensor overlay(const Tensor& input /* [S, S] in [-1, 1] */, const Tensor& heat /* [S, S] in [0, 1] */) {
  const std::int64_t S = input.size(0), S2 = input.size(1);
  Tensor rgb = Tensor::empty(Shape{S, S2, 3});
  const float* g = input.data<float>();
  const float* h = heat.data<float>();
  float* o = rgb.data<float>();
  for (std::int64_t i = 0; i < S * S2; ++i) {
    const float grey = (g[i] + 1) * 127.5f, t = std::clamp(h[i], 0.f, 1.f);
    const float r = std::clamp(1.5f - std::fabs(4 * t - 3), 0.f, 1.f) * 255, gg = std::clamp(1.5f - std::fabs(4 * t - 2), 0.f, 1.f) * 255,
                b = std::clamp(1.5f - std::fabs(4 * t - 1), 0.f, 1.f) * 255;
    const float a = 0.5f * t;
    o[3 * i] = grey * (1 - a) + r * a;
    o[3 * i + 1] = grey * (1 - a) + gg * a;
    o[3 * i + 2] = grey * (1 - a) + b * a;
  }
  return rgb;
}

std::vector<std::vector<std::string>> read_history(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, ',')) cells.push_back(c);
    if (cells.size() >= 5) rows.push_back(cells);
  }
  return rows;
}

}  // namespace

std::string write_report(const ReportInputs& in) {
  LN_CHECK(in.data && in.config, "report: missing data or configuration");
  const data::Dataset& d = *in.data;
  const int P = in.positive;
  std::ostringstream h;
  char when[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M", std::localtime(&now));
  h << "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>" << esc(in.title) << "</title><style>"
    << "body{font-family:sans-serif;margin:24px;max-width:1200px;color:#222}h1{font-size:22px}h2{font-size:17px;margin-top:28px;"
       "border-bottom:1px solid #ddd}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;"
       "text-align:right}th{background:#f0f0f0}td.l,th.l{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:12px}"
       ".gallery{display:flex;flex-wrap:wrap;gap:14px}.card{width:200px;font-size:12px}.card img{width:200px;height:200px;"
       "image-rendering:pixelated;border:1px solid #999}pre{background:#f6f6f6;padding:10px;font-size:12px;overflow:auto}"
       ".note{color:#555;font-size:13px}</style></head><body>";
  h << "<h1>" << esc(in.title) << "</h1><p class=\"note\">" << esc(d.summary()) << " &middot; positive class: "
    << esc(d.class_names[P]) << " &middot; generated " << when << " by livernet</p>";

  // ---- metrics ----
  const auto ci = bootstrap(d, in.folds, P);
  std::vector<Metrics> per;
  for (const auto& f : in.folds) per.push_back(f.metrics);
  const auto ms = mean_std(per);
  const char* names[] = {"accuracy", "precision", "recall", "specificity", "f1", "auc"};
  h << "<h2>Metrics</h2><table><tr><th class=\"l\"></th><th>n</th>";
  for (const char* n : names) h << "<th>" << n << "</th>";
  h << "</tr>";
  for (const auto& f : in.folds) {
    h << "<tr><td class=\"l\">fold " << f.fold + 1 << "</td><td>" << f.metrics.n << "</td>";
    for (const char* n : names) h << "<td>" << num(f.metrics.as_map().at(n)) << "</td>";
    h << "</tr>";
  }
  if (in.folds.size() > 1) {
    h << "<tr><td class=\"l\">mean &plusmn; std</td><td></td>";
    for (const char* n : names) h << "<td>" << num(ms.at(n).first) << " &plusmn; " << num(ms.at(n).second) << "</td>";
    h << "</tr>";
  }
  h << "<tr><th class=\"l\">pooled (95% CI)</th><th>" << in.pooled.n << "</th>";
  for (const char* n : names) {
    h << "<th>" << num(in.pooled.as_map().at(n));
    if (ci.count(n)) h << "<br><small>" << num(ci.at(n).lo) << "&ndash;" << num(ci.at(n).hi) << "</small>";
    h << "</th>";
  }
  h << "</tr>";
  // Per source (several datasets merged): a model can learn the scanner instead of the lesion, and a source
  // holding one class shows it as that class's accuracy alone.
  const auto sources = per_source_metrics(d, in.folds, P);
  if (sources.size() > 1)
    for (const auto& [name, m] : sources) {
      h << "<tr><td class=\"l\">source " << esc(name) << "</td><td>" << m.n << "</td>";
      for (const char* n : names) h << "<td>" << num(m.as_map().at(n)) << "</td>";
      h << "</tr>";
    }
  h << "</table><p class=\"note\">Pooled: all out-of-fold predictions together; intervals from 1000 bootstrap "
       "resamples of patients.";
  if (sources.size() > 1)
    h << " Per source: the pooled predictions of that source's lesions (n/a: not defined when the source lacks a class).";
  h << "</p>";

  // ---- comparison ----
  const std::vector<FoldResult> triv = trivial_rule(d, in.folds, P);
  std::vector<std::vector<double>> tp;
  std::vector<int> tl;
  for (const auto& f : triv)
    for (std::size_t i = 0; i < f.test_indices.size(); ++i) {
      tp.push_back(f.test_probs[i]);
      tl.push_back(d.labels[f.test_indices[i]]);
    }
  const Metrics tm = tp.empty() ? Metrics{0, NAN, NAN, NAN, NAN, NAN, NAN, {}} : compute_metrics(tp, tl, P);
  h << "<h2>Beside the paper and a trivial rule</h2><table><tr><th class=\"l\"></th><th>accuracy</th><th>F1</th><th>AUC</th>"
       "<th class=\"l\">data</th></tr>";
  h << "<tr><td class=\"l\">livernet (this run, pooled)</td><td>" << num(in.pooled.accuracy) << "</td><td>" << num(in.pooled.f1)
    << "</td><td>" << num(in.pooled.auc) << "</td><td class=\"l\">" << esc(d.summary()) << "</td></tr>";
  h << "<tr><td class=\"l\">trivial rule: threshold on the lesion's central mean HU</td><td>" << num(tm.accuracy) << "</td><td>"
    << num(tm.f1) << "</td><td>" << num(tm.auc) << "</td><td class=\"l\">"
    << (tp.empty() ? "not fitted: no training lesions in this data" : "same folds") << "</td></tr>";
  h << "<tr><td class=\"l\">Perdigon Romero et al., ISBI 2019</td><td>0.960</td><td>0.920</td><td>n/a</td><td class=\"l\">230 "
       "lesions, 63 patients (in-house)</td></tr></table>";

  // ---- ROC curves ----
  h << "<h2>ROC curves and confusion matrix</h2><div class=\"charts\">";
  {
    std::vector<Series> s;
    std::vector<double> all_scores;
    std::vector<int> all_y;
    for (std::size_t k = 0; k < in.folds.size(); ++k) {
      std::vector<double> sc;
      std::vector<int> y;
      for (std::size_t i = 0; i < in.folds[k].test_indices.size(); ++i) {
        sc.push_back(in.folds[k].test_probs[i][P]);
        y.push_back(d.labels[in.folds[k].test_indices[i]] == P);
      }
      all_scores.insert(all_scores.end(), sc.begin(), sc.end());
      all_y.insert(all_y.end(), y.begin(), y.end());
      s.push_back({str_cat("fold ", in.folds[k].fold + 1), roc_curve(sc, y), kColors[(k + 1) % 10], true, 1.2});
    }
    s.push_back({str_cat("pooled (AUC ", num(in.pooled.auc), ")"), roc_curve(all_scores, all_y), "#000", false, 2.4});
    std::vector<double> ts;
    std::vector<int> ty;
    for (std::size_t i = 0; i < tp.size(); ++i) {
      ts.push_back(tp[i][P]);
      ty.push_back(tl[i] == P);
    }
    if (!ts.empty()) s.push_back({str_cat("trivial rule (", num(tm.auc), ")"), roc_curve(ts, ty), "#d62728", true, 1.8});
    h << line_chart("ROC, positive class " + d.class_names[P], "false positive rate", "true positive rate", s, 0, 1, 0, 1, true);
  }
  {
    const int K = d.num_classes();
    int mx = 1;
    for (auto& r : in.pooled.confusion)
      for (int v : r) mx = std::max(mx, v);
    h << "<div><p><b>Confusion matrix (pooled)</b></p><table><tr><th class=\"l\">true \\ predicted</th>";
    for (int k = 0; k < K; ++k) h << "<th>" << esc(d.class_names[k]) << "</th>";
    h << "</tr>";
    for (int t = 0; t < K; ++t) {
      h << "<tr><th class=\"l\">" << esc(d.class_names[t]) << "</th>";
      for (int p = 0; p < K; ++p) {
        const int v = in.pooled.confusion[t][p];
        const int shade = 255 - static_cast<int>(150.0 * v / mx);
        h << "<td style=\"background:rgb(" << shade << "," << shade << ",255)\">" << v << "</td>";
      }
      h << "</tr>";
    }
    h << "</table></div>";
  }
  h << "</div>";

  // ---- calibration ----
  if (in.calibration && in.calibration->n > 0) {
    const Calibration& c = *in.calibration;
    h << "<h2>Calibration</h2><p>Reliability diagram of the " << c.n << " out-of-fold predictions: the fraction "
      << "predicted right against the mean confidence (the top class's probability) in " << c.bins
      << " equal-width bins; a calibrated model lies on the diagonal. Temperature scaling (probabilities = "
      << "softmax(logits / T)) fitted on them gives T = " << num(c.fitted) << ", "
      << (c.applied ? "which every fold's <code>best.h5</code> records and <code>tools/predict</code> applies"
                    : "<b>not applied</b> (the fold models keep T = 1): it did not lower the log loss of folds it was "
                      "not fitted on")
      << ". Expected calibration error "
      << num(c.ece_before) << " before, " << num(c.ece_after) << " after; log loss " << num(c.nll_before) << " before, "
      << num(c.nll_after) << " after (after: each fold's predictions scaled by the temperature fitted on the other "
      << "folds, T = ";
    for (std::size_t k = 0; k < c.fold_temperatures.size(); ++k) h << (k ? ", " : "") << num(c.fold_temperatures[k]);
    h << ").</p><div class=\"charts\">";
    auto points = [](const std::vector<ReliabilityBin>& bins) {
      std::vector<std::pair<double, double>> pts;
      for (const ReliabilityBin& b : bins)
        if (b.n > 0) pts.emplace_back(b.confidence, b.accuracy);
      return pts;
    };
    h << line_chart("Reliability (out of fold)", "mean confidence", "fraction right",
                    {{str_cat("before (ECE ", num(c.ece_before), ")"), points(c.before), "#000", false, 2.0},
                     {str_cat("after, T ", num(c.fitted), " (ECE ", num(c.ece_after), ")"), points(c.after), kColors[0],
                      false, 2.0}},
                    0, 1, 0, 1, true);
    h << "</div>";
  }

  // ---- training curves ----
  if (in.training_curves) {
    h << "<h2>Training and validation</h2><div class=\"charts\">";
    for (const auto& f : in.folds) {
      const auto rows = read_history(fold_dir(in.run_dir, f.fold) + "/history.csv");
      if (rows.empty()) continue;
      Series tr{"train loss", {}, kColors[0]}, va{"val loss", {}, kColors[1]}, auc{"val AUC", {}, kColors[2], true};
      double ymax = 1;
      for (const auto& r : rows) {
        const double e = std::atof(r[0].c_str());
        tr.pts.emplace_back(e, std::atof(r[1].c_str()));
        va.pts.emplace_back(e, std::atof(r[2].c_str()));
        auc.pts.emplace_back(e, std::atof(r[4].c_str()));
        ymax = std::max({ymax, std::atof(r[1].c_str()), std::atof(r[2].c_str())});
      }
      h << line_chart(str_cat("fold ", f.fold + 1, " (best epoch ", f.best_epoch, ")"), "epoch", "loss / AUC", {tr, va, auc}, 1,
                      std::max<double>(2, static_cast<double>(rows.size())), 0, std::min(ymax, 3.0), false, true);
    }
    h << "</div>";
  }

  // ---- gallery ----
  if (in.gallery > 0 && !in.fold_weights.empty()) {
    struct Wrong {
      double conf;
      int fold;
      std::int64_t idx;
      int pred;
    };
    std::vector<Wrong> wrong;
    for (const auto& f : in.folds)
      for (std::size_t i = 0; i < f.test_indices.size(); ++i) {
        const auto& p = f.test_probs[i];
        const int pred = static_cast<int>(std::max_element(p.begin(), p.end()) - p.begin());
        if (pred != d.labels[f.test_indices[i]]) wrong.push_back({p[pred], f.fold, f.test_indices[i], pred});
      }
    std::sort(wrong.begin(), wrong.end(), [](const Wrong& a, const Wrong& b) { return a.conf > b.conf; });
    if (wrong.size() > static_cast<std::size_t>(in.gallery)) wrong.resize(static_cast<std::size_t>(in.gallery));
    h << "<h2>Most confidently wrong lesions, with Grad-CAM</h2>";
    if (wrong.empty()) h << "<p>No lesion was misclassified.</p>";
    h << "<div class=\"gallery\">";
    std::map<int, std::unique_ptr<LesionClassifier>> models;
    for (const Wrong& w : wrong) {
      if (!models.count(w.fold)) {
        if (static_cast<std::size_t>(w.fold) >= in.fold_weights.size() || !fs::exists(in.fold_weights[w.fold])) continue;
        models[w.fold] = io::load_model(in.fold_weights[w.fold]);
      }
      LesionClassifier& m = *models[w.fold];
      TrainConfig c = *in.config;
      c.model.input_size = m.config().input_size;
      const Tensor x = make_inputs(d, {w.idx}, c);
      const GradCam cam = grad_cam(m, x, w.pred);
      const Tensor img = overlay(x.reshape({x.size(1), x.size(2)}), cam.heat);
      h << "<div class=\"card\"><img alt=\"lesion " << esc(d.lesion_ids[w.idx]) << "\" src=\"data:image/png;base64,"
        << io::base64(io::encode_png(img)) << "\"><br><b>" << esc(d.lesion_ids[w.idx]) << "</b> (patient "
        << esc(d.patient_ids[w.idx]) << ")<br>true: " << esc(d.class_names[d.labels[w.idx]]) << "<br>predicted: "
        << esc(d.class_names[w.pred]) << " (" << num(w.conf) << ")<br><span class=\"note\">Grad-CAM on " << esc(cam.block)
        << ", fold " << w.fold + 1 << "</span></div>";
    }
    h << "</div>";
  }

  h << "<h2>Configuration</h2><pre>" << esc(in.config->to_yaml()) << "</pre>";
  h << "<div id=\"render-check\"></div><script>window.addEventListener('load',function(){"
       "var c=document.querySelectorAll('svg.chart'),ok=0;c.forEach(function(s){var b=s.getBBox();"
       "if(b.width>50&&b.height>50&&s.querySelector('polyline'))ok++;});var im=document.querySelectorAll('img'),iok=0;"
       "im.forEach(function(i){if(i.complete&&i.naturalWidth>0)iok++;});var m=document.getElementById('render-check');"
       "m.setAttribute('data-charts',c.length);m.setAttribute('data-charts-ok',ok);m.setAttribute('data-images',im.length);"
       "m.setAttribute('data-images-ok',iok);});</script></body></html>\n";
  const std::string path = in.run_dir + "/report.html";
  io::write_text_file_atomically(path, h.str());
  return path;
}

}  // namespace livernet::train
