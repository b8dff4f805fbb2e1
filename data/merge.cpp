#include "data/merge.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "core/error.h"

namespace livernet::data {

namespace fs = std::filesystem;

std::string source_name(const std::string& source_entry) { return source_entry.substr(0, source_entry.find(':')); }

bool valid_source_name(const std::string& name) {
  if (name.empty() || name.size() > 40) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
  });
}

std::vector<std::string> source_names(const Dataset& d) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& s : d.sources) {
    std::string n = source_name(s);
    if (seen.insert(n).second) out.push_back(std::move(n));
  }
  return out;
}

namespace {

// The spacing the patches were extracted at: the finest one (lesions too large for the field of view are
// stored at a coarser spacing, so the finest is the --spacing asked for). 0 when the file has none.
double nominal_spacing(const Dataset& d) {
  double s = 0;
  for (const auto& sp : d.spacing_mm)
    if (s == 0 || sp[0] < s) s = sp[0];
  return s;
}

std::string stem(const std::string& path) {
  std::string s = fs::path(path).filename().string();
  for (const char* ext : {".h5", ".csv"})
    if (s.size() > std::string(ext).size() && s.ends_with(ext)) s.resize(s.size() - std::string(ext).size());
  return s;
}

}  // namespace

Dataset merge_datasets(const std::vector<Dataset>& inputs, const MergeOptions& o, std::vector<std::string>* notes) {
  LN_CHECK(inputs.size() >= 2, "merging needs at least two datasets, got ", inputs.size());
  LN_CHECK(o.source_names.empty() || o.source_names.size() == inputs.size(), o.source_names.size(),
           " source names for ", inputs.size(), " datasets (give one per dataset, in the same order)");
  std::set<std::string> paths;
  for (const auto& d : inputs)
    LN_CHECK(paths.insert(fs::weakly_canonical(d.path).string()).second, d.path, ": given twice");

  // Sizes and spacings first: a mismatch is a re-extraction, not something to paper over.
  const Dataset& first = inputs[0];
  LN_CHECK(!first.images.empty(), first.path, ": no samples");
  const Shape hw = first.images[0].shape();
  double spacing = 0;
  std::string spacing_from;
  for (const auto& d : inputs) {
    LN_CHECK(!d.images.empty(), d.path, ": no samples");
    LN_CHECK(d.images[0].shape() == hw, d.path, ": patches are ", d.images[0].shape().str(), " but ", first.path, "'s are ",
             hw.str(), "; extract every source with the same --size");
    const double s = nominal_spacing(d);
    if (s == 0) {
      if (notes) notes->push_back(str_cat(d.path, ": records no pixel spacing; not checked against the others"));
      continue;
    }
    if (spacing == 0) {
      spacing = s;
      spacing_from = d.path;
    }
    LN_CHECK(std::abs(s - spacing) <= 1e-3 * spacing, d.path, ": patches at ", s, " mm per pixel but ", spacing_from, "'s at ",
             spacing, " mm; extract every source with the same --spacing (a lesion would look larger in one source)");
  }

  // Classes by name.
  std::vector<std::string> classes = o.classes;
  if (classes.empty())
    for (const auto& d : inputs)
      for (const auto& c : d.class_names)
        if (std::find(classes.begin(), classes.end(), c) == classes.end()) classes.push_back(c);
  {
    std::set<std::string> uniq(classes.begin(), classes.end());
    LN_CHECK(uniq.size() == classes.size(), "--classes names a class twice");
  }

  // Source names, and patients kept apart.
  std::vector<std::string> names(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Dataset& d = inputs[i];
    const std::string given = o.source_names.empty() ? "" : o.source_names[i];
    if (!given.empty()) {
      LN_CHECK(valid_source_name(given), "source name '", printable(given), "' for ", d.path,
               ": use 1-40 letters, digits, '_', '-' or '.'");
      names[i] = given;
    } else if (d.sources.empty()) {
      names[i] = stem(d.path);
      LN_CHECK(valid_source_name(names[i]), d.path, ": records no source and its file name is not a source name; "
               "give one with --source");
    }
  }
  std::map<std::string, std::size_t> patient_input;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    std::set<std::string> mine(inputs[i].patient_ids.begin(), inputs[i].patient_ids.end());
    for (const auto& p : mine) {
      const auto [it, fresh] = patient_input.emplace(p, i);
      LN_CHECK(fresh || o.prefix_ids, "patient ", printable(p), " is in both ", inputs[it->second].path, " and ", inputs[i].path,
               ": the same patient twice, or two patients whose folders had the same name (extracted with the same key)? "
               "--prefix-ids keeps them apart as SOURCE/ID");
    }
  }

  Dataset out;
  out.class_names = classes;
  // The extraction when every source was cut the same way (the sizes and spacings were checked above).
  const bool same_cut = std::all_of(inputs.begin(), inputs.end(), [&](const Dataset& d) {
    return !d.extraction.empty() && d.extraction == inputs[0].extraction;
  });
  if (same_cut)
    out.extraction = inputs[0].extraction;
  else if (notes && std::any_of(inputs.begin(), inputs.end(), [](const Dataset& d) { return !d.extraction.empty(); }))
    notes->push_back(
        "the sources record different extraction options (or some none): the merged file records none, "
        "so models trained on it do not either (tools/predict --ct then needs --patch-spacing etc.)");
  const bool all_spacing = std::all_of(inputs.begin(), inputs.end(), [](const Dataset& d) { return !d.spacing_mm.empty(); });
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Dataset& d = inputs[i];
    std::vector<int> remap(d.class_names.size());
    for (std::size_t c = 0; c < d.class_names.size(); ++c) {
      const auto at = std::find(classes.begin(), classes.end(), d.class_names[c]);
      LN_CHECK(at != classes.end(), d.path, ": class '", printable(d.class_names[c]), "' is not in --classes (",
               classes.size(), " given); name it there or rename it with the class map at extraction");
      remap[c] = static_cast<int>(at - classes.begin());
    }
    for (std::int64_t s = 0; s < d.size(); ++s) {
      std::string src = d.sources.empty() ? names[i] : d.sources[static_cast<std::size_t>(s)];
      if (!names[i].empty() && !d.sources.empty()) {
        const auto colon = src.find(':');
        src = names[i] + (colon == std::string::npos ? "" : src.substr(colon));
      }
      const std::string source = source_name(src);
      out.images.push_back(d.images[static_cast<std::size_t>(s)]);
      out.labels.push_back(remap[static_cast<std::size_t>(d.labels[static_cast<std::size_t>(s)])]);
      out.patient_ids.push_back(o.prefix_ids ? source + "/" + d.patient_ids[static_cast<std::size_t>(s)]
                                             : d.patient_ids[static_cast<std::size_t>(s)]);
      out.lesion_ids.push_back(o.prefix_ids ? source + "/" + d.lesion_ids[static_cast<std::size_t>(s)]
                                            : d.lesion_ids[static_cast<std::size_t>(s)]);
      if (all_spacing) out.spacing_mm.push_back(d.spacing_mm[static_cast<std::size_t>(s)]);
      out.sources.push_back(std::move(src));
    }
  }
  return out;
}

}  // namespace livernet::data
