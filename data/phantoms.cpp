#include "data/phantoms.h"

#include <algorithm>
#include <cmath>

#include "core/philox.h"

namespace livernet::data {

namespace {

// Random numbers for one (patient, lesion) with a running draw counter.
class Rng {
 public:
  Rng(std::uint64_t seed, std::uint64_t stream) : seed_(seed), stream_(stream) {}
  float uniform(float lo = 0, float hi = 1) { return philox_uniform_at(seed_, stream_, n_++, lo, hi); }
  float normal(float mean = 0, float sd = 1) { return philox_normal_at(seed_, stream_ ^ 0x4e4f524dull, n_++, mean, sd); }
  bool chance(float p) { return uniform() < p; }
  int integer(int lo, int hi) { return std::min(hi, lo + static_cast<int>(uniform() * (hi - lo + 1))); }

 private:
  std::uint64_t seed_, stream_, n_ = 0;
};

// In-place separable Gaussian blur of an S x S image (sigma in pixels).
void blur(std::vector<float>& img, int S, float sigma) {
  if (sigma < 0.05f) return;
  const int r = std::max(1, static_cast<int>(std::ceil(3 * sigma)));
  std::vector<float> k(2 * r + 1);
  float sum = 0;
  for (int i = -r; i <= r; ++i) sum += k[i + r] = std::exp(-0.5f * i * i / (sigma * sigma));
  for (float& v : k) v /= sum;
  std::vector<float> tmp(img.size());
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      float acc = 0;
      for (int i = -r; i <= r; ++i) acc += k[i + r] * img[y * S + std::clamp(x + i, 0, S - 1)];
      tmp[y * S + x] = acc;
    }
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      float acc = 0;
      for (int i = -r; i <= r; ++i) acc += k[i + r] * tmp[std::clamp(y + i, 0, S - 1) * S + x];
      img[y * S + x] = acc;
    }
}

// Correlated noise field with unit standard deviation.
std::vector<float> texture(Rng& rng, int S, float corr_px) {
  std::vector<float> t(static_cast<std::size_t>(S) * S);
  for (float& v : t) v = rng.normal();
  blur(t, S, corr_px);
  double s2 = 0;
  for (float v : t) s2 += v * v;
  const float scale = static_cast<float>(1.0 / std::sqrt(s2 / t.size() + 1e-12));
  for (float& v : t) v *= scale;
  return t;
}

}  // namespace

data::Dataset make_phantoms(const PhantomConfig& cfg, std::vector<PhantomLesion>* truth) {
  LN_CHECK(cfg.patients >= 1, "phantoms: need at least one patient");
  LN_CHECK(cfg.min_lesions >= 1 && cfg.max_lesions >= cfg.min_lesions, "phantoms: need 1 <= min_lesions <= max_lesions");
  LN_CHECK(cfg.size >= 16 && cfg.size <= 1024, "phantoms: patch size must be in [16, 1024]");
  LN_CHECK(cfg.min_diameter > 0 && cfg.max_diameter >= cfg.min_diameter, "phantoms: bad lesion diameters");
  data::Dataset d;
  d.path = "phantoms";
  d.class_names = {"cyst", "metastasis"};
  if (cfg.hemangioma) d.class_names.push_back("hemangioma");
  const int S = cfg.size;
  for (int p = 0; p < cfg.patients; ++p) {
    Rng pr(cfg.seed, 0x10000ull * (p + 1));
    // Patient: contrast phase (liver attenuation), scanner noise, texture grain, pixel spacing.
    const float liver_hu = pr.uniform(85, 135);
    const float noise_sd = pr.chance(0.2f) ? pr.uniform(22, 35) : pr.uniform(8, 20);
    const float spacing = pr.uniform(cfg.spacing_min, cfg.spacing_max);
    const float grain_mm = pr.uniform(1.0f, 2.5f);
    const float texture_sd = pr.uniform(4, 10);
    const float rim_boost = pr.uniform(0.6f, 1.4f);  // arterial-ish phases enhance rims more
    const int lesions = pr.integer(cfg.min_lesions, cfg.max_lesions);
    const std::string pid = str_cat("P", p < 9 ? "00" : p < 99 ? "0" : "", p + 1);
    for (int l = 0; l < lesions; ++l) {
      Rng r(cfg.seed, 0x10000ull * (p + 1) + l + 1);
      const int label = cfg.hemangioma ? r.integer(0, 2) : (r.chance(0.45f) ? 0 : 1);
      const bool hard = r.chance(cfg.hard_fraction);
      // Size: log-uniform; hard cases are often small.
      const float dmax = hard && r.chance(0.5f) ? std::min(cfg.max_diameter, 12.f) : cfg.max_diameter;
      const float diameter = std::exp(r.uniform(std::log(cfg.min_diameter), std::log(std::max(dmax, cfg.min_diameter))));
      const float radius_px = std::min(0.42f * S, diameter / 2 / spacing);
      // Background: parenchyma with correlated texture, a slow gradient and vessels.
      std::vector<float> img(static_cast<std::size_t>(S) * S);
      const std::vector<float> tex = texture(r, S, grain_mm / spacing);
      const float gx = r.normal(0, 0.15f), gy = r.normal(0, 0.15f);
      for (int y = 0; y < S; ++y)
        for (int x = 0; x < S; ++x) img[y * S + x] = liver_hu + texture_sd * tex[y * S + x] + gx * (x - S / 2) + gy * (y - S / 2);
      const int vessels = r.integer(0, 3);
      for (int v = 0; v < vessels; ++v) {
        const float ang = r.uniform(0, static_cast<float>(M_PI)), off = r.uniform(-0.5f, 0.5f) * S;
        const float width = r.uniform(1.f, 4.f) / spacing, contrast = r.uniform(30, 80);
        const float c = std::cos(ang), s = std::sin(ang), curve = r.normal(0, 0.004f);
        for (int y = 0; y < S; ++y)
          for (int x = 0; x < S; ++x) {
            const float u = (x - S / 2) * c + (y - S / 2) * s, w = -(x - S / 2) * s + (y - S / 2) * c;
            const float dist = std::fabs(w - off - curve * u * u);
            img[y * S + x] += contrast * std::exp(-0.5f * dist * dist / (width * width / 4 + 1e-3f));
          }
      }
      // Lesion shape: radius(theta) = R (1 + sum a_k cos(k theta + phi_k)); cysts nearly round or oval.
      const bool lobulated = label == 1 && !(hard && r.chance(0.6f));
      float harm[7] = {0}, phase[7] = {0};
      const float ecc = label == 0 ? r.uniform(0.0f, 0.12f) : r.uniform(0.0f, 0.2f);
      harm[2] = ecc;
      phase[2] = r.uniform(0, 6.283f);
      if (lobulated)
        for (int k = 3; k <= 6; ++k) {
          harm[k] = r.uniform(0.02f, 0.14f) / (k - 1.5f);
          phase[k] = r.uniform(0, 6.283f);
        }
      const float cx = S / 2 + r.normal(0, 0.04f * S), cy = S / 2 + r.normal(0, 0.04f * S);
      std::vector<float> mask(img.size()), radial(img.size());
      for (int y = 0; y < S; ++y)
        for (int x = 0; x < S; ++x) {
          const float dx = x - cx, dy = y - cy, th = std::atan2(dy, dx);
          float rr = 1;
          for (int k = 2; k <= 6; ++k) rr += harm[k] * std::cos(k * th + phase[k]);
          const float rel = std::sqrt(dx * dx + dy * dy) / (radius_px * rr);  // 1 at the boundary
          radial[y * S + x] = rel;
          mask[y * S + x] = rel <= 1 ? 1.f : 0.f;
        }
      // Partial-volume / margin blur: sharp for cysts, fuzzier for metastases.
      const float margin_mm = label == 0 ? r.uniform(0.2f, 0.6f) : (label == 1 ? r.uniform(0.6f, 1.8f) : r.uniform(0.3f, 1.0f));
      blur(mask, S, margin_mm / spacing);
      // Lesion interior.
      std::vector<float> lesion(img.size());
      const std::vector<float> inner = texture(r, S, r.uniform(0.8f, 2.0f) / spacing);
      if (label == 0) {
        const float hu = r.uniform(0, 20) + (hard ? r.uniform(0, 12) : 0);
        const bool wall = hard && r.chance(0.5f);  // thin enhancing wall: a metastasis-like cue
        for (std::size_t i = 0; i < img.size(); ++i) {
          lesion[i] = hu + 2 * inner[i];
          if (wall && radial[i] > 0.85f && radial[i] < 1.0f) lesion[i] += 35;
        }
      } else if (label == 1) {
        const bool homogeneous = hard && r.chance(0.6f);
        const float hu = homogeneous ? r.uniform(22, 45) : r.uniform(35, 75);
        const float het = homogeneous ? r.uniform(2, 5) : r.uniform(8, 22);
        const bool rim = !homogeneous && r.chance(0.65f);
        const bool necrosis = !homogeneous && r.chance(0.35f);
        const float rim_hu = r.uniform(25, 55) * rim_boost, rim_w = r.uniform(0.12f, 0.3f);
        const float nec_hu = r.uniform(10, 28), nec_r = r.uniform(0.25f, 0.5f);
        for (std::size_t i = 0; i < img.size(); ++i) {
          float v = hu + het * inner[i];
          if (rim) v += rim_hu * std::exp(-0.5f * std::pow((radial[i] - (1 - rim_w / 2)) / (rim_w / 2), 2.f));
          if (necrosis && radial[i] < nec_r) v = v * 0.3f + nec_hu * 0.7f;
          lesion[i] = v;
        }
      } else {
        // Haemangioma: peripheral nodular enhancement, brighter than liver at the edge, centre filling in.
        const float hu = r.uniform(50, 90), nod = r.uniform(40, 90);
        for (std::size_t i = 0; i < img.size(); ++i)
          lesion[i] = hu + 6 * inner[i] + nod * std::max(0.f, radial[i] - 0.6f) * (0.5f + 0.5f * inner[i]);
      }
      for (std::size_t i = 0; i < img.size(); ++i) img[i] = img[i] * (1 - mask[i]) + lesion[i] * mask[i];
      // Scanner: reconstruction smoothing and noise.
      blur(img, S, 0.5f);
      const std::vector<float> noise = texture(r, S, 0.6f);
      for (std::size_t i = 0; i < img.size(); ++i) img[i] += noise_sd * noise[i];
      Tensor t = Tensor::from_vector(img, Shape{S, S});
      if (truth) {
        double sum = 0;
        int cnt = 0;
        for (int y = 0; y < S; ++y)
          for (int x = 0; x < S; ++x)
            if (radial[y * S + x] < 1.f / 3) sum += img[y * S + x], ++cnt;
        truth->push_back({label, diameter, hard, cnt ? static_cast<float>(sum / cnt) : img[(S / 2) * S + S / 2]});
      }
      d.images.push_back(t);
      d.labels.push_back(label);
      d.patient_ids.push_back(pid);
      d.lesion_ids.push_back(str_cat(pid, "-L", l + 1));
      d.spacing_mm.push_back({spacing, spacing});
      d.sources.push_back("phantom");
    }
  }
  d.validate();
  return d;
}

}  // namespace livernet::data
