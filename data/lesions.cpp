#include "data/lesions.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "core/error.h"

namespace livernet::data {

// ---- class map -------------------------------------------------------------------------------------

namespace {
std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}
std::string unquote(std::string s) {
  s = trim(s);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}
}  // namespace

ClassMap ClassMap::single(const std::string& pattern, const std::string& name, const std::string& where) {
  ClassMap m;
  m.classes = {name};
  m.rules = {{pattern, 0}};
  m.compile(where, 1);
  return m;
}

void ClassMap::compile(const std::string& where, std::size_t min_classes) {
  LN_CHECK(!classes.empty(), where, ": the class map names no class");
  LN_CHECK(classes.size() >= min_classes, where, ": the class map names one class ('", printable(classes[0]),
           "'); a classifier needs at least two");
  compiled_.clear();
  // libstdc++'s default (backtracking) matcher takes exponential time on patterns such as "a***" or "(.*)*x"
  // (found by fuzz/fuzz_class_map); its polynomial mode (no back-references) answers the same full-match
  // question in time linear in the name. Long patterns are refused: the compiler recurses on nesting.
  auto flags = std::regex::ECMAScript | std::regex::icase;
#ifdef __GLIBCXX__
  flags |= std::regex_constants::__polynomial;
#endif
  for (const auto& [pattern, cls] : rules) {
    LN_CHECK(pattern.size() <= 256, where, ": pattern '", printable(pattern), "' of class '", printable(classes[cls]), "' is ",
             pattern.size(), " characters long (at most 256)");
    // libstdc++ (GCC 12) reads the numbers of "{n,m}" and of back-references "\\n" into a long without an
    // overflow check (UB, found by fuzz/fuzz_class_map): such numbers may have at most 6 digits.
    bool in_braces = false;
    const std::string& pat = pattern;  // (clang 14 cannot capture a structured binding)
    const auto digit = [&pat](std::size_t k) { return k < pat.size() && std::isdigit(static_cast<unsigned char>(pat[k])); };
    for (std::size_t i = 0; i < pattern.size(); ++i) {
      bool number = false;
      if (pattern[i] == '\\') {
        if (!digit(i + 1)) {
          ++i;  // an escaped character
          continue;
        }
        number = true;
        ++i;
      } else if (pattern[i] == '{' || pattern[i] == '}') {
        in_braces = pattern[i] == '{';
        continue;
      } else {
        number = in_braces && digit(i);
      }
      if (!number) continue;
      std::size_t j = i;
      while (digit(j)) ++j;
      LN_CHECK(j - i <= 6, where, ": pattern '", printable(pattern), "' of class '", printable(classes[cls]),
               "' holds a repetition count or back-reference of more than 6 digits");
      i = j - 1;
    }
    try {
      compiled_.emplace_back(pattern, flags);
    } catch (const std::regex_error& e) {
      LN_FAIL(where, ": pattern '", printable(pattern), "' of class '", printable(classes[cls]), "' is not a valid regular expression (",
              e.what(), ")");
    }
  }
}

ClassMap ClassMap::parse_yaml(const std::string& text, const std::string& where) {
  ClassMap m;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    LN_FAIL(where, ": not valid YAML (line ", e.mark.line + 1, ": ", printable(e.msg), ")");
  }
  LN_CHECK(root.IsMap(), where, ": expected a mapping of class name -> list of structure-name patterns");
  for (const auto& kv : root) {
    LN_CHECK(kv.first.IsScalar(), where, ": a class name must be a string (line ", kv.first.Mark().line + 1, ")");
    const std::string cls = kv.first.as<std::string>();
    LN_CHECK(std::find(m.classes.begin(), m.classes.end(), cls) == m.classes.end(), where, ": class '", printable(cls),
             "' appears twice");
    const int idx = static_cast<int>(m.classes.size());
    m.classes.push_back(cls);
    const YAML::Node& v = kv.second;
    if (v.IsScalar()) {
      m.rules.emplace_back(v.as<std::string>(), idx);
    } else {
      LN_CHECK(v.IsSequence() && v.size() > 0, where, ": class '", printable(cls), "' needs a pattern or a list of patterns");
      for (const auto& p : v) {
        LN_CHECK(p.IsScalar(), where, ": class '", printable(cls), "': every pattern must be a string");
        m.rules.emplace_back(p.as<std::string>(), idx);
      }
    }
  }
  m.compile(where);
  return m;
}

ClassMap ClassMap::parse_csv(const std::string& text, const std::string& where) {
  ClassMap m;
  std::istringstream in(text);
  std::string line;
  int row = 0;
  bool header = true;
  while (std::getline(in, line)) {
    ++row;
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    const auto comma = line.rfind(',');
    LN_CHECK(comma != std::string::npos, where, ":", row, ": expected 'pattern,class'");
    const std::string pattern = unquote(line.substr(0, comma)), cls = unquote(line.substr(comma + 1));
    if (header) {
      header = false;
      if (pattern == "pattern" && cls == "class") continue;
    }
    LN_CHECK(!pattern.empty() && !cls.empty(), where, ":", row, ": empty pattern or class");
    auto it = std::find(m.classes.begin(), m.classes.end(), cls);
    if (it == m.classes.end()) it = m.classes.insert(m.classes.end(), cls);
    m.rules.emplace_back(pattern, static_cast<int>(it - m.classes.begin()));
  }
  m.compile(where);
  return m;
}

ClassMap ClassMap::load(const std::string& path) {
  std::ifstream f(path);
  LN_CHECK(f, path, ": cannot read the class map");
  std::stringstream ss;
  ss << f.rdbuf();
  const bool csv = path.size() >= 4 && path.substr(path.size() - 4) == ".csv";
  return csv ? parse_csv(ss.str(), path) : parse_yaml(ss.str(), path);
}

int ClassMap::match(const std::string& structure) const {
  for (std::size_t r = 0; r < rules.size(); ++r)
    if (std::regex_match(structure, compiled_[r])) return rules[r].second;
  return -1;
}

// ---- extraction ------------------------------------------------------------------------------------

namespace {

struct Component {
  std::vector<std::int64_t> voxels;  // linear indices in the canonical grid
};

// 26-connected components of a binary mask (iterative flood fill).
std::vector<Component> components(const io::Mask& m) {
  const auto& g = m.grid;
  const std::int64_t ni = g.size[0], nj = g.size[1], nk = g.size[2];
  std::vector<std::uint8_t> seen(m.v.size(), 0);
  std::vector<Component> out;
  std::vector<std::int64_t> stack;
  for (std::int64_t start = 0; start < static_cast<std::int64_t>(m.v.size()); ++start) {
    if (!m.v[start] || seen[start]) continue;
    Component c;
    seen[start] = 1;
    stack.push_back(start);
    while (!stack.empty()) {
      const std::int64_t p = stack.back();
      stack.pop_back();
      c.voxels.push_back(p);
      const std::int64_t i = p % ni, j = (p / ni) % nj, k = p / (ni * nj);
      for (std::int64_t dk = -1; dk <= 1; ++dk)
        for (std::int64_t dj = -1; dj <= 1; ++dj)
          for (std::int64_t di = -1; di <= 1; ++di) {
            const std::int64_t a = i + di, b = j + dj, c2 = k + dk;
            if (a < 0 || b < 0 || c2 < 0 || a >= ni || b >= nj || c2 >= nk) continue;
            const std::int64_t q = (c2 * nj + b) * ni + a;
            if (m.v[q] && !seen[q]) seen[q] = 1, stack.push_back(q);
          }
    }
    std::sort(c.voxels.begin(), c.voxels.end());
    out.push_back(std::move(c));
  }
  return out;
}

// Bilinear HU at continuous in-plane position (x, y) of slice k; fill outside [0, n-1].
float bilinear(const io::Volume& v, double x, double y, std::int64_t k, float fill) {
  const auto& g = v.grid;
  if (x < -0.5 || y < -0.5 || x > g.size[0] - 0.5 || y > g.size[1] - 0.5) return fill;
  x = std::clamp(x, 0.0, static_cast<double>(g.size[0] - 1));
  y = std::clamp(y, 0.0, static_cast<double>(g.size[1] - 1));
  const std::int64_t x0 = static_cast<std::int64_t>(std::floor(x)), y0 = static_cast<std::int64_t>(std::floor(y));
  const std::int64_t x1 = std::min(x0 + 1, g.size[0] - 1), y1 = std::min(y0 + 1, g.size[1] - 1);
  const double fx = x - x0, fy = y - y0;
  const double top = (1 - fx) * v.at(x0, y0, k) + fx * v.at(x1, y0, k);
  const double bot = (1 - fx) * v.at(x0, y1, k) + fx * v.at(x1, y1, k);
  return static_cast<float>((1 - fy) * top + fy * bot);
}

// A size x size patch of slice k centred at in-plane voxel position (cx, cy), `spacing` mm per pixel;
// rows run along j (anterior -> posterior), columns along i (right -> left).
Tensor crop(const io::Volume& v, std::int64_t k, double cx, double cy, double spacing, int size, float fill) {
  const auto& g = v.grid;
  // Box filter when a patch pixel covers several voxels: s x s bilinear samples per pixel.
  const int s = std::max(1, static_cast<int>(std::ceil(spacing / std::min(g.spacing[0], g.spacing[1]) - 1e-6)));
  Tensor t = Tensor::empty(Shape{size, size});
  float* out = t.data<float>();
  const double half = 0.5 * (size - 1);
  for (int r = 0; r < size; ++r)
    for (int c = 0; c < size; ++c) {
      double acc = 0;
      for (int sy = 0; sy < s; ++sy)
        for (int sx = 0; sx < s; ++sx) {
          const double du = (c - half + (sx + 0.5) / s - 0.5) * spacing, dv = (r - half + (sy + 0.5) / s - 0.5) * spacing;
          acc += bilinear(v, cx + du / g.spacing[0], cy + dv / g.spacing[1], k, fill);
        }
      out[r * size + c] = static_cast<float>(acc / (s * s));
    }
  return t;
}

// Longest distance (mm) across the component's pixels on one slice, pixel extent included.
double max_diameter(const std::vector<std::array<std::int64_t, 2>>& px, double si, double sj) {
  double best = 0;
  for (std::size_t a = 0; a < px.size(); ++a)
    for (std::size_t b = a + 1; b < px.size(); ++b) {
      const double dx = (px[a][0] - px[b][0]) * si, dy = (px[a][1] - px[b][1]) * sj;
      best = std::max(best, dx * dx + dy * dy);
    }
  return std::sqrt(best) + 0.5 * (si + sj);
}

}  // namespace

std::string extraction_json(const ExtractOptions& o) {
  return nlohmann::json{{"spacing_mm", o.spacing_mm}, {"size", o.size},
                        {"margin_mm", o.margin_mm},   {"min_volume_mm3", o.min_volume_mm3},
                        {"neighbours", o.neighbours}, {"fill_hu", o.fill_hu}}
      .dump();
}

ExtractOptions parse_extraction(const std::string& json, const std::string& what) {
  ExtractOptions o;
  try {
    const nlohmann::json j = nlohmann::json::parse(json);
    LN_CHECK(j.is_object(), "not a JSON object");
    for (const auto& [key, v] : j.items()) {
      LN_CHECK(v.is_number(), "'", key, "' is not a number");
      if (key == "spacing_mm")
        o.spacing_mm = v.get<double>();
      else if (key == "size")
        o.size = v.get<int>();
      else if (key == "margin_mm")
        o.margin_mm = v.get<double>();
      else if (key == "min_volume_mm3")
        o.min_volume_mm3 = v.get<double>();
      else if (key == "neighbours")
        o.neighbours = v.get<int>();
      else if (key == "fill_hu")
        o.fill_hu = v.get<float>();
      else
        LN_FAIL("unknown key '", printable(key), "'");
    }
    LN_CHECK(std::isfinite(o.spacing_mm) && o.spacing_mm > 0 && o.size >= 16 && o.size <= 1024 &&
                 std::isfinite(o.margin_mm) && o.margin_mm >= 0 && std::isfinite(o.min_volume_mm3) &&
                 o.min_volume_mm3 >= 0 && o.neighbours >= 0 && std::isfinite(o.fill_hu),
             "values out of range");
  } catch (const std::exception& e) {
    LN_FAIL(what, ": damaged 'extraction' (", printable(e.what(), 120), ")");
  }
  return o;
}

PatientResult extract_patient(const PatientScan& scan, const ClassMap& classes, const ExtractOptions& o) {
  PatientResult res;
  res.notes = scan.notes;
  const io::Reorientation reo = io::canonical_reorientation(scan.ct.grid);
  const io::Volume ct = io::reorient(scan.ct, reo);
  const auto& g = ct.grid;
  if (const double ob = io::obliquity_degrees(g); ob > 1)
    res.notes.push_back(str_cat("the volume is oblique by ", static_cast<int>(std::lround(ob)),
                                " degrees: slices are taken along its own axes, the closest to axial"));

  // Union of the structures of each class, on the canonical grid.
  std::vector<io::Mask> class_mask(classes.classes.size());
  std::vector<std::string> class_structures(classes.classes.size());
  std::vector<std::string> unmatched = scan.ignored;
  for (const auto& [name, mask] : scan.structures) {
    const int c = classes.match(name);
    if (c < 0) {
      unmatched.push_back(name);
      continue;
    }
    const std::string diff = io::grid_difference(scan.ct.grid, mask.grid);
    LN_CHECK(diff.empty(), "structure '", name, "': mask and volume grids differ (", diff, ")");
    const io::Mask m = io::reorient(mask, reo);
    if (class_mask[c].v.empty()) class_mask[c] = io::Mask(g, 0);
    for (std::size_t n = 0; n < m.v.size(); ++n) class_mask[c].v[n] |= (m.v[n] != 0);
    class_structures[c] += (class_structures[c].empty() ? "" : "+") + name;
  }
  bool any = false;
  for (const auto& m : class_mask) any = any || !m.v.empty();
  if (!any) {
    std::string found;
    for (const auto& n : unmatched) found += (found.empty() ? "" : ", ") + n;
    LN_FAIL("no structure matches the class map (structures found: ", found.empty() ? "none" : found, ")");
  }

  const double voxel_mm3 = g.voxel_volume_mm3();
  const std::int64_t ni = g.size[0], nj = g.size[1];
  int lesion_no = scan.lesion_offset;
  for (std::size_t c = 0; c < class_mask.size(); ++c) {
    if (class_mask[c].v.empty()) continue;
    for (Component& comp : components(class_mask[c])) {
      const double vol = static_cast<double>(comp.voxels.size()) * voxel_mm3;
      if (vol < o.min_volume_mm3) {
        ++res.below_min_volume;
        continue;
      }
      LesionRecord rec;
      rec.patient = scan.patient;
      rec.lesion = str_cat(scan.patient, "_L", ++lesion_no);
      rec.label = static_cast<int>(c);
      rec.class_name = classes.classes[c];
      rec.structures = class_structures[c];
      rec.volume_ml = vol / 1000.0;
      std::array<std::int64_t, 6> bb{ni, nj, g.size[2], -1, -1, -1};
      std::map<std::int64_t, std::int64_t> area;
      double si = 0, sj = 0, sk = 0;
      for (std::int64_t p : comp.voxels) {
        const std::int64_t i = p % ni, j = (p / ni) % nj, k = p / (ni * nj);
        bb[0] = std::min(bb[0], i), bb[1] = std::min(bb[1], j), bb[2] = std::min(bb[2], k);
        bb[3] = std::max(bb[3], i), bb[4] = std::max(bb[4], j), bb[5] = std::max(bb[5], k);
        ++area[k];
        si += static_cast<double>(i), sj += static_cast<double>(j), sk += static_cast<double>(k);
      }
      const double n = static_cast<double>(comp.voxels.size());
      rec.centroid_lps = g.to_lps(si / n, sj / n, sk / n);
      rec.bbox = bb;
      std::int64_t best_k = area.begin()->first;
      for (const auto& [k, a] : area)
        if (a > area[best_k]) best_k = k;
      rec.slice = best_k;
      // In-plane extent on the sample slice decides the crop centre and the field of view.
      std::vector<std::array<std::int64_t, 2>> px, boundary;
      std::int64_t i0 = ni, i1 = -1, j0 = nj, j1 = -1;
      const io::Mask& cm = class_mask[c];
      for (std::int64_t p : comp.voxels) {
        if (p / (ni * nj) != best_k) continue;
        const std::int64_t i = p % ni, j = (p / ni) % nj;
        px.push_back({i, j});
        i0 = std::min(i0, i), i1 = std::max(i1, i), j0 = std::min(j0, j), j1 = std::max(j1, j);
        const bool inner = i > 0 && j > 0 && i < ni - 1 && j < nj - 1 && cm.at(i - 1, j, best_k) && cm.at(i + 1, j, best_k) &&
                           cm.at(i, j - 1, best_k) && cm.at(i, j + 1, best_k);
        if (!inner) boundary.push_back({i, j});
      }
      rec.max_diameter_mm = max_diameter(boundary, g.spacing[0], g.spacing[1]);
      const double cx = 0.5 * static_cast<double>(i0 + i1), cy = 0.5 * static_cast<double>(j0 + j1);
      const double extent = std::max((i1 - i0 + 1) * g.spacing[0], (j1 - j0 + 1) * g.spacing[1]) + 2 * o.margin_mm;
      const double spacing = std::max(o.spacing_mm, extent / o.size);
      rec.patch_spacing_mm = spacing;
      const std::size_t lesion_index = res.lesions.size();
      std::vector<std::int64_t> ks{best_k};
      for (int d = 1; d <= o.neighbours; ++d)
        for (std::int64_t k : {best_k - d, best_k + d})
          if (area.count(k)) ks.push_back(k);
      for (std::int64_t k : ks) {
        res.images.push_back(crop(ct, k, cx, cy, spacing, o.size, o.fill_hu));
        res.sample_lesion.push_back(static_cast<int>(lesion_index));
        ++rec.samples;
      }
      res.lesions.push_back(std::move(rec));
    }
  }
  return res;
}

void append_samples(data::Dataset& d, const PatientResult& r, const std::string& source_prefix) {
  for (std::size_t s = 0; s < r.images.size(); ++s) {
    const LesionRecord& l = r.lesions[r.sample_lesion[s]];
    d.images.push_back(r.images[s]);
    d.labels.push_back(l.label);
    d.patient_ids.push_back(l.patient);
    d.lesion_ids.push_back(l.lesion);
    const float sp = static_cast<float>(l.patch_spacing_mm);
    d.spacing_mm.push_back({sp, sp});
    d.sources.push_back(source_prefix + l.structures);
  }
}

}  // namespace livernet::data
