// tools/extract_lesions: CT volumes with lesion masks (3D-IRCADb DICOM + mask series, TCIA DICOM +
// DICOM-SEG, NIfTI volume + label map) -> a lesion dataset file + a per-lesion CSV.
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "io/csv.h"
#include "data/dataset.h"
#include "data/lesions.h"
#include "data/merge.h"
#include "train/progress.h"
#include "data/pseudonym.h"
#include "tools/cli.h"

using namespace livernet;
namespace fs = std::filesystem;

namespace {


}  // namespace

int main(int argc, char** argv) {
  CLI::App app(
      "Finds the lesions in CT volumes with lesion masks and writes one axial patch per lesion (HU) to a dataset\n"
      "file, plus a per-lesion CSV. Patient ids are pseudonyms (a keyed hash of the patient's folder); DICOM\n"
      "identifiers never reach the outputs. See docs/data.md.",
      "extract_lesions");
  std::string input, layout, classes_path, output, lesions_csv, id_key, id_map, source;
  data::ExtractOptions o;
  bool strict = false, show_paths = false;
  app.add_option("--input,-i", input, "root folder of the CT data")->required();
  app.add_option("--layout", layout, "ircadb (DICOM + mask series), dicom-seg (DICOM + DICOM-SEG) or nifti (volume + label map)")
      ->required()
      ->check(CLI::IsMember({"ircadb", "dicom-seg", "nifti"}));
  app.add_option("--classes,-c", classes_path, "class map: YAML (class: [patterns]) or CSV (pattern,class); see configs/classes/")
      ->required();
  app.add_option("--output,-o", output, "dataset file to write (.h5)")->required();
  app.add_option("--source", source,
                 "the source name recorded with each lesion, e.g. ircadb or tcia_crlm (default: the layout); tools/train "
                 "reports metrics per source");
  app.add_option("--lesions-csv", lesions_csv, "per-lesion table (default: OUTPUT without .h5 + _lesions.csv)");
  app.add_option("--spacing", o.spacing_mm, "in-plane spacing of the patches, mm")->capture_default_str()->check(CLI::Range(0.05, 10.0));
  app.add_option("--size", o.size, "patch side, pixels")->capture_default_str()->check(CLI::Range(16, 1024));
  app.add_option("--margin", o.margin_mm, "context around the lesion, mm")->capture_default_str()->check(CLI::Range(0.0, 200.0));
  app.add_option("--min-volume", o.min_volume_mm3, "smallest lesion kept, mm^3")->capture_default_str()->check(CLI::Range(0.0, 1e7));
  app.add_option("--neighbours", o.neighbours, "also take this many slices on each side of the largest one")
      ->capture_default_str()
      ->check(CLI::Range(0, 20));
  app.add_option("--id-key", id_key, "pseudonymisation key file (created when missing; default: " + data::default_id_key_path() + ")");
  app.add_option("--id-map", id_map, "also write folder -> pseudonym to this CSV (keep it apart from the data)");
  app.add_flag("--strict", strict, "fail when any patient is skipped");
  app.add_flag("--show-paths", show_paths,
               "print the folder and file names under --input as they are (debugging on your own machine); by default "
               "they are printed as the patients' pseudonyms, since hospital exports often name folders after patients");
  return tools::run(app, argc, argv, [&]() -> int {
    // Every message that can name a file under --input goes through `show`, errors included.
    std::optional<data::PathRedactor> redactor;
    auto show = [&](const std::string& s) { return show_paths || !redactor ? s : (*redactor)(s); };
    try {
      if (source.empty()) source = layout;
      LN_CHECK(data::valid_source_name(source), "--source '", printable(source), "': use 1-40 letters, digits, '_', '-' or '.'");
      const data::ClassMap classes = data::ClassMap::load(classes_path);
      if (lesions_csv.empty()) {
        std::string stem = output;
        if (stem.size() > 3 && stem.substr(stem.size() - 3) == ".h5") stem.resize(stem.size() - 3);
        lesions_csv = stem + "_lesions.csv";
      }
      LN_CHECK(fs::absolute(lesions_csv) != fs::absolute(output), "--lesions-csv must differ from --output");
      if (id_key.empty()) id_key = data::default_id_key_path();
      bool created = false;
      const std::string key = data::load_or_create_id_key(id_key, &created);
      if (created)
        std::fprintf(stderr, "extract_lesions: created a new pseudonymisation key %s; keep it (the same key gives the same patient ids) "
                     "and keep it apart from the data\n", id_key.c_str());

      redactor.emplace(input, key, std::vector<std::string>{});
      std::vector<std::string> notes;
      const std::vector<data::PatientSource> sources = data::find_patients(input, layout, &notes);
      {
        std::vector<std::string> names;
        for (const auto& s : sources) names.push_back(s.name);
        redactor.emplace(input, key, names);
      }
      for (const auto& n : notes) std::fprintf(stderr, "extract_lesions: %s\n", show(n).c_str());
      LN_CHECK(!sources.empty(), input, ": no patient found for layout '", layout, "' (see docs/data.md)");

      data::Dataset d;
      d.path = output;
      d.class_names = classes.classes;
      std::vector<data::LesionRecord> records;
      std::vector<std::pair<std::string, std::string>> skipped;  // patient (as shown), reason (printed, never stored)
      std::map<std::string, std::string> pseudonyms;             // folder -> id
      std::map<std::string, std::string> owner;                  // id -> folder (collision check)
      std::map<std::string, int> ignored, lesions_of;
      std::int64_t small = 0;
      train::Progress progress;
      for (std::size_t p = 0; p < sources.size(); ++p) {
        const auto& src = sources[p];
        const std::string pid = redactor->id(src.name);
        const std::string who = show_paths ? src.name : pid;
        LN_CHECK(!owner.count(pid) || owner[pid] == src.name, "two patient folders have the same pseudonym ", pid,
                 "; use another --id-key");
        owner[pid] = src.name;
        pseudonyms[src.name] = pid;
        progress.update(static_cast<double>(p), static_cast<double>(sources.size()), str_cat("patient ", pid));
        try {
          data::PatientScan scan = data::load_patient(src, layout, classes);
          for (const auto& n : scan.ignored) ++ignored[n];
          scan.patient = pid;
          scan.lesion_offset = lesions_of[pid];
          const data::PatientResult r = data::extract_patient(scan, classes, o);
          for (const auto& n : r.notes) progress.line(str_cat("extract_lesions: ", who, ": ", show(n)));
          small += r.below_min_volume;
          lesions_of[pid] += static_cast<int>(r.lesions.size());
          data::append_samples(d, r, source + ":");
          records.insert(records.end(), r.lesions.begin(), r.lesions.end());
        } catch (const Error& e) {
          skipped.emplace_back(who, show(e.what()));
          // Listed in the summary (and the first one in the error when nothing is extracted); live on a terminal.
          if (progress.tty()) progress.line(str_cat("extract_lesions: skipped ", who, ": ", skipped.back().second));
        }
      }
      progress.update(static_cast<double>(sources.size()), static_cast<double>(sources.size()), "done");
      const std::string first_skip =
          skipped.empty() ? std::string() : str_cat(skipped.size() > 1 ? "first: " : "", skipped[0].first, ": ", skipped[0].second);
      LN_CHECK(!records.empty(), input, ": no lesion extracted from ", sources.size(), " patient(s)",
               skipped.empty() ? std::string(" (no mask matched the class map with enough volume)")
                               : str_cat(" (", skipped.size(), " skipped; ", first_skip, ")"));
      LN_CHECK(!strict || skipped.empty(), skipped.size(), " patient(s) skipped and --strict given; nothing written (",
               first_skip, ")");

      d.extraction = data::extraction_json(o);
      data::save_dataset_h5(d, output);
      std::vector<std::vector<std::string>> rows{{"patient", "lesion", "class", "label", "volume_ml", "max_diameter_mm", "slice",
                                                  "i0", "j0", "k0", "i1", "j1", "k1", "centroid_x_mm", "centroid_y_mm",
                                                  "centroid_z_mm", "patch_spacing_mm", "samples", "structures"}};
      for (const auto& r : records)
        rows.push_back({r.patient, r.lesion, r.class_name, std::to_string(r.label), str_fixed(r.volume_ml, 4),
                        str_fixed(r.max_diameter_mm, 2), std::to_string(r.slice), std::to_string(r.bbox[0]),
                        std::to_string(r.bbox[1]), std::to_string(r.bbox[2]), std::to_string(r.bbox[3]),
                        std::to_string(r.bbox[4]), std::to_string(r.bbox[5]), str_fixed(r.centroid_lps[0], 2),
                        str_fixed(r.centroid_lps[1], 2), str_fixed(r.centroid_lps[2], 2),
                        str_fixed(r.patch_spacing_mm, 4), std::to_string(r.samples), r.structures});
      io::write_csv(lesions_csv, rows);
      if (!id_map.empty()) {
        std::vector<std::vector<std::string>> m{{"folder", "patient"}};
        for (const auto& [folder, pid] : pseudonyms) m.push_back({folder, pid});
        io::write_csv(id_map, m);
      }

      // Summary.
      std::set<std::string> extracted;
      for (const auto& r : records) extracted.insert(r.patient);
      std::printf("extract_lesions: %zu patient(s) found, %zu with lesions, %zu skipped\n", sources.size(), extracted.size(),
                  skipped.size());
      std::vector<int> per_class(classes.classes.size(), 0);
      int grown = 0;
      for (const auto& r : records) ++per_class[r.label], grown += r.patch_spacing_mm > o.spacing_mm + 1e-9;
      std::string counts;
      for (std::size_t c = 0; c < per_class.size(); ++c) counts += str_cat(c ? ", " : "", classes.classes[c], " ", per_class[c]);
      std::printf("  lesions: %zu (%s); samples: %lld; patches %dx%d at %.2f mm", records.size(), counts.c_str(),
                  static_cast<long long>(d.size()), o.size, o.size, o.spacing_mm);
      if (grown) std::printf(" (%d large lesion(s) at a coarser spacing to fit the field of view)", grown);
      std::printf("\n");
      if (small) std::printf("  %lld component(s) below %.0f mm^3 dropped\n", static_cast<long long>(small), o.min_volume_mm3);
      for (std::size_t c = 0; c < per_class.size(); ++c)
        if (!per_class[c]) std::printf("  warning: no lesion of class '%s' (check the class map)\n", classes.classes[c].c_str());
      if (!ignored.empty()) {
        std::string s;
        for (const auto& [n, k] : ignored) s += str_cat(s.empty() ? "" : ", ", n, " (", k, ")");
        std::printf("  structures not in the class map (ignored): %s\n", s.c_str());
      }
      for (const auto& [folder, why] : skipped) std::printf("  skipped %s: %s\n", folder.c_str(), why.c_str());
      std::printf("  wrote %s (%s) and %s\n", output.c_str(), d.summary().c_str(), lesions_csv.c_str());
      return 0;
    } catch (const Error& e) {
      throw Error(show(e.what()));
    }
  });
}
