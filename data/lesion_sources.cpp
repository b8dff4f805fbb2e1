// Finding patients under an input root in each layout, and loading one patient's CT and structures.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "ct/dicom.h"
#include "ct/nifti.h"
#include "data/lesions.h"

namespace livernet::data {

namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_nifti(const fs::path& p) {
  const std::string n = lower(p.filename().string());
  return n.ends_with(".nii") || n.ends_with(".nii.gz");
}

std::string rel(const fs::path& p, const fs::path& root) {
  const std::string r = fs::relative(p, root).generic_string();
  return r == "." ? p.filename().string() : r;
}

std::vector<fs::path> sorted_dirs(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory()) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// The pairing key of a NIfTI file: its path below the root without the words that tell an image from a
// label map, so volume-3 ~ segmentation-3, imagesTr/liver_3 ~ labelsTr/liver_3, p1/ct ~ p1/labels.
std::string pairing_key(const fs::path& p, const fs::path& root) {
  std::string s = lower(rel(p, root));
  for (const char* ext : {".nii.gz", ".nii"})
    if (s.ends_with(ext)) s.resize(s.size() - std::string(ext).size());
  for (const char* w : {"segmentation", "labels", "label", "images", "image", "volume", "masks", "mask", "seg", "ct"})
    for (std::size_t at; (at = s.find(w)) != std::string::npos;) s.erase(at, std::string(w).size());
  std::string key;
  for (char c : s)
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '/') key += c;
  while (!key.empty() && key.back() == '/') key.pop_back();
  return key;
}

bool is_label_file(const fs::path& p, const fs::path& root) {
  const std::string r = lower(rel(p, root));
  return r.find("seg") != std::string::npos || r.find("label") != std::string::npos || r.find("mask") != std::string::npos;
}

}  // namespace

std::vector<PatientSource> find_patients(const std::string& root_s, const std::string& layout, std::vector<std::string>* notes) {
  const fs::path root(root_s);
  LN_CHECK(fs::is_directory(root), root_s, ": not a folder");
  std::vector<PatientSource> out;
  if (layout == "ircadb") {
    std::vector<fs::path> candidates{root};
    for (const auto& d : sorted_dirs(root)) candidates.push_back(d);
    for (const auto& d : candidates) {
      if (!fs::is_directory(d / "PATIENT_DICOM")) continue;
      PatientSource s;
      s.name = d == root ? fs::absolute(root).lexically_normal().filename().string() : rel(d, root);
      s.ct = (d / "PATIENT_DICOM").string();
      if (fs::is_directory(d / "MASKS_DICOM"))
        for (const auto& m : sorted_dirs(d / "MASKS_DICOM")) s.masks.push_back(m.string());
      out.push_back(std::move(s));
    }
    if (out.empty() && notes)
      notes->push_back(str_cat(root_s, ": no PATIENT_DICOM folder here or one level down (unzip 3D-IRCADb's PATIENT_DICOM.zip and MASKS_DICOM.zip first)"));
  } else if (layout == "dicom-seg") {
    std::vector<std::pair<fs::path, std::string>> patients;  // folder, name
    bool files_at_root = false;
    for (const auto& e : fs::directory_iterator(root)) files_at_root = files_at_root || e.is_regular_file();
    if (files_at_root) patients.emplace_back(root, root.filename().string());
    for (const auto& d : sorted_dirs(root)) patients.emplace_back(d, rel(d, root));
    for (const auto& [dir, name] : patients) {
      const std::vector<io::DicomFileFacts> facts =
          dir == root ? std::vector<io::DicomFileFacts>{} : io::scan_dicom_tree(dir.string());
      std::map<std::string, std::string> series_dir;  // CT series uid -> folder
      for (const auto& f : facts)
        if (f.modality != "SEG" && !f.series_uid.empty()) series_dir.emplace(f.series_uid, fs::path(f.path).parent_path().string());
      std::map<std::string, PatientSource> by_ct;  // by CT series uid
      int segs = 0;
      for (const auto& f : facts) {
        if (f.modality != "SEG") continue;
        ++segs;
        std::string ct, ct_uid;
        for (const auto& uid : f.referenced_series)
          if (series_dir.count(uid)) ct = series_dir[uid], ct_uid = uid;
        if (ct.empty()) {
          if (notes) notes->push_back(str_cat(f.path, ": the CT series this DICOM-SEG refers to is not under ", dir.string(), "; skipped"));
          continue;
        }
        PatientSource& s = by_ct[ct_uid];
        s.name = name;
        s.ct = ct;
        s.series_uid = ct_uid;
        s.masks.push_back(f.path);
      }
      if (segs == 0 && notes && dir != root) notes->push_back(str_cat(dir.string(), ": no DICOM-SEG file found; skipped"));
      for (auto& [uid, s] : by_ct) out.push_back(std::move(s));
    }
  } else if (layout == "nifti") {
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(root))
      if (e.is_regular_file() && is_nifti(e.path())) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    // MSD's dataset.json names the label values: {"labels": {"0": "background", "1": "liver", "2": "cancer"}}.
    std::map<int, std::string> label_names;
    if (fs::exists(root / "dataset.json")) {
      std::ifstream in(root / "dataset.json");
      const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
      if (!j.is_discarded() && j.contains("labels") && j["labels"].is_object()) {
        for (const auto& [k, v] : j["labels"].items())
          if (v.is_string() && !k.empty() && k.size() < 6 && k.find_first_not_of("0123456789") == std::string::npos)
            label_names[std::stoi(k)] = v.get<std::string>();
      } else if (notes) {
        notes->push_back(str_cat((root / "dataset.json").string(), ": no \"labels\" object in it; label values are matched as numbers"));
      }
    }
    std::map<std::string, std::vector<fs::path>> images, labels;
    for (const auto& f : files) (is_label_file(f, root) ? labels : images)[pairing_key(f, root)].push_back(f);
    for (const auto& [key, ims] : images) {
      const auto it = labels.find(key);
      if (ims.size() != 1 || it == labels.end() || it->second.size() != 1) {
        if (notes)
          notes->push_back(str_cat(ims[0].string(), ": ",
                                   it == labels.end() ? "no label map pairs with this volume" : "more than one volume or label map pair here",
                                   "; skipped"));
        continue;
      }
      PatientSource s;
      // A folder holding just this pair is the patient; else (LiTS, MSD) the volume's file is.
      const fs::path folder = ims[0].parent_path();
      int in_folder = 0;
      for (const auto& f : files) in_folder += f.parent_path() == folder;
      if (folder == it->second[0].parent_path() && in_folder == 2 && folder != root) {
        s.name = rel(folder, root);
      } else {
        std::string n = rel(ims[0], root);
        for (const char* ext : {".nii.gz", ".nii", ".NII.GZ", ".NII"})
          if (n.ends_with(ext)) n.resize(n.size() - std::string(ext).size());
        s.name = n;
      }
      s.ct = ims[0].string();
      s.masks.push_back(it->second[0].string());
      s.label_names = label_names;
      out.push_back(std::move(s));
    }
    for (const auto& [key, ls] : labels)
      if (!images.count(key) && notes) notes->push_back(str_cat(ls[0].string(), ": no volume pairs with this label map; skipped"));
  } else {
    LN_FAIL("unknown layout '", layout, "' (ircadb, dicom-seg or nifti)");
  }
  return out;
}

PatientScan load_patient(const PatientSource& src, const std::string& layout, const ClassMap& classes) {
  PatientScan scan;
  if (layout == "ircadb") {
    scan.ct = io::read_dicom_series(src.ct);
    for (const auto& m : src.masks) {
      const std::string name = fs::path(m).filename().string();
      if (classes.match(name) < 0) {
        scan.ignored.push_back(name);
        continue;
      }
      scan.structures.emplace_back(name, io::read_dicom_mask_series(m, scan.ct.grid));
    }
  } else if (layout == "dicom-seg") {
    scan.ct = io::read_dicom_series(src.ct, nullptr, src.series_uid);
    for (const auto& s : src.masks)
      for (auto& seg : io::read_dicom_seg(s, scan.ct.grid)) {
        if (seg.mask.v.empty()) {
          scan.notes.push_back(str_cat(s, ": segment ", seg.number, " ('", printable(seg.label), "') has no frames"));
          continue;
        }
        if (classes.match(seg.label) < 0) {
          scan.ignored.push_back(seg.label);
          continue;
        }
        scan.structures.emplace_back(seg.label, std::move(seg.mask));
      }
  } else if (layout == "nifti") {
    io::NiftiInfo info;
    scan.ct = io::read_nifti_volume(src.ct, &info);
    if (info.no_orientation)
      scan.notes.push_back(str_cat(src.ct, ": no qform or sform (Analyze-style header): orientation assumed LPS, "
                                   "left and right may be swapped"));
    const io::LabelVolume labels = io::read_nifti_labels(src.masks.at(0));
    const std::string diff = io::grid_difference(scan.ct.grid, labels.grid, 0.5);
    LN_CHECK(diff.empty(), src.masks[0], ": label map and volume grids differ (", diff, ")");
    std::set<std::int32_t> values(labels.v.begin(), labels.v.end());
    for (std::int32_t v : values) {
      if (v == 0) continue;
      // By value first, then by the value's name (dataset.json); the structure keeps the form that matched.
      std::string name = std::to_string(v);
      const auto named = src.label_names.find(v);
      if (classes.match(name) < 0 && named != src.label_names.end()) name = named->second;
      if (classes.match(name) < 0) {
        scan.ignored.push_back(name);
        continue;
      }
      io::Mask m(scan.ct.grid);
      for (std::size_t n = 0; n < m.v.size(); ++n) m.v[n] = labels.v[n] == v;
      scan.structures.emplace_back(name, std::move(m));
    }
  } else {
    LN_FAIL("unknown layout '", layout, "' (ircadb, dicom-seg or nifti)");
  }
  return scan;
}

}  // namespace livernet::data
