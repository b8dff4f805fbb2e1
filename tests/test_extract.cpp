// From CT volumes to lesion patches: pseudonyms (SHA-256/HMAC vectors, key files), class maps, and
// tools/extract_lesions end to end on phantom volumes in the three layouts (every planted lesion found
// with the right class, position and size, nothing else), orientations (flipped and permuted grids give
// identical patches; an oblique one still finds every lesion), broken inputs (the patient is skipped with
// its reason, the others extract), and privacy (no DICOM identifier or folder name in any output).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "ct/dicom.h"
#include "ct/nifti.h"
#include "data/dataset.h"
#include "data/lesions.h"
#include "data/phantom_volumes.h"
#include "data/pseudonym.h"
#include "layers/init.h"
#include "models/weights.h"
#include "test_util.h"
#include "train/model_usage.h"

using namespace livernet;
using namespace livernet::data;
using livernet::testing::error_of;
using livernet::testing::TempDir;
namespace fs = std::filesystem;

namespace {

std::string hex(const std::array<std::uint8_t, 32>& d) { return to_hex(d.data(), d.size()); }

using livernet::testing::slurp;

struct ToolRun {
  int rc;
  std::string out, err;
};

ToolRun run_tool(const TempDir& dir, const std::string& tool, const std::string& args) {
  const std::string cmd = std::string(LIVERNET_TOOLS_DIR) + "/" + tool + " " + args + " > " + dir.str("stdout") + " 2> " +
                          dir.str("stderr");
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(dir.str("stdout")), slurp(dir.str("stderr"))};
}

using livernet::testing::small_phantoms;

ClassMap phantom_classes(const std::string& layout) {
  if (layout == "nifti") return ClassMap::parse_yaml("cyst: ['3']\nmetastasis: ['2']\n", "test");
  if (layout == "ircadb") return ClassMap::parse_yaml("cyst: ['liver ?kyste?\\d*', 'liver ?cyst\\d*']\nmetastasis: ['livertumou?r\\d*']\n", "test");
  return ClassMap::parse_yaml("cyst: ['cyst_\\d+']\nmetastasis: ['tumou?r_\\d+']\n", "test");
}

struct Extraction {
  std::vector<LesionRecord> lesions;
  std::vector<Tensor> images;
  std::vector<std::string> skipped;
};

Extraction extract_all(const std::string& root, const std::string& layout, const ExtractOptions& o = {}) {
  Extraction e;
  const ClassMap classes = phantom_classes(layout);
  std::vector<std::string> notes;
  for (const auto& src : find_patients(root, layout, &notes)) {
    try {
      PatientScan scan = load_patient(src, layout, classes);
      scan.patient = src.name;
      const PatientResult r = extract_patient(scan, classes, o);
      e.lesions.insert(e.lesions.end(), r.lesions.begin(), r.lesions.end());
      e.images.insert(e.images.end(), r.images.begin(), r.images.end());
    } catch (const Error& err) {
      e.skipped.push_back(src.name + ": " + err.what());
    }
  }
  return e;
}

double dist(const io::Vec3& a, const io::Vec3& b) {
  return std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]));
}

// Every planted lesion found once, with its class, its exact voxel set's centroid and volume, a centre
// within a voxel of the analytic one, and (axis-aligned grids) a bounding box within a voxel of the
// ellipsoid's extent; and nothing else.
void expect_matches_truth(const Extraction& e, const std::vector<PhantomVolume>& truth, bool axis_aligned) {
  std::size_t planted = 0;
  std::map<std::string, std::vector<const LesionRecord*>> by_patient;
  for (const auto& l : e.lesions) by_patient[l.patient].push_back(&l);
  for (const auto& pv : truth) {
    const auto& found = by_patient[pv.folder];
    const io::Grid& g = pv.ct.grid;
    const double voxel_diag = std::sqrt(g.spacing[0] * g.spacing[0] + g.spacing[1] * g.spacing[1] + g.spacing[2] * g.spacing[2]);
    EXPECT_EQ(found.size(), pv.lesions.size()) << pv.folder;
    for (const auto& t : pv.lesions) {
      ++planted;
      const LesionRecord* best = nullptr;
      for (const auto* f : found)
        if (!best || dist(f->centroid_lps, t.voxel_centroid_lps) < dist(best->centroid_lps, t.voxel_centroid_lps)) best = f;
      ASSERT_NE(best, nullptr) << pv.folder;
      EXPECT_EQ(best->class_name, t.class_name) << pv.folder << " " << t.structure;
      EXPECT_LT(dist(best->centroid_lps, t.voxel_centroid_lps), 1e-3) << pv.folder << " " << t.structure;
      EXPECT_LT(dist(best->centroid_lps, t.centre_lps), voxel_diag) << pv.folder << " " << t.structure;
      // NIfTI keeps spacings as float32: relative 1e-6.
      EXPECT_NEAR(best->volume_ml, static_cast<double>(t.voxels) * g.voxel_volume_mm3() / 1000, 1e-6 * best->volume_ml);
      const double a = t.semi_axes_mm[0], b = t.semi_axes_mm[1];
      EXPECT_LE(best->max_diameter_mm, 2 * std::max(a, b) + 2 * g.spacing[0]);
      EXPECT_GE(best->max_diameter_mm, 2 * std::min(a, b) * 0.8 - 2 * g.spacing[0]);  // the largest slice may miss the equator
      if (axis_aligned) {
        // Extent of the rotated ellipse along x and y, of the ellipsoid along z; the voxel centres inside
        // span it within one voxel, less the shrinking of the cross-section on the slice nearest the
        // centre (slices are 2.5 mm apart).
        const io::Grid cg = io::reorient(g, io::canonical_reorientation(g));
        const double kc = cg.to_index(t.centre_lps)[2];
        const double dz = std::abs(kc - std::round(kc)) * cg.spacing[2];
        const double shrink = std::sqrt(std::max(0.0, 1 - (dz / t.semi_axes_mm[2]) * (dz / t.semi_axes_mm[2])));
        const double c = std::cos(t.angle), s = std::sin(t.angle);
        const double ex = 2 * std::sqrt(a * a * c * c + b * b * s * s), ey = 2 * std::sqrt(a * a * s * s + b * b * c * c);
        const double ez = 2 * t.semi_axes_mm[2];
        const double got[3] = {(best->bbox[3] - best->bbox[0] + 1) * cg.spacing[0], (best->bbox[4] - best->bbox[1] + 1) * cg.spacing[1],
                               (best->bbox[5] - best->bbox[2] + 1) * cg.spacing[2]};
        const double lo[3] = {ex * shrink - cg.spacing[0], ey * shrink - cg.spacing[1], ez - cg.spacing[2]};
        const double hi[3] = {ex + cg.spacing[0], ey + cg.spacing[1], ez + cg.spacing[2]};
        for (int d = 0; d < 3; ++d) {
          EXPECT_GE(got[d], lo[d] - 1e-6) << pv.folder << " " << t.structure << " axis " << d;
          EXPECT_LE(got[d], hi[d] + 1e-6) << pv.folder << " " << t.structure << " axis " << d;
        }
      }
    }
  }
  EXPECT_EQ(e.lesions.size(), planted) << "extra lesions found";
  EXPECT_GT(planted, 4u);
}

}  // namespace

TEST(Pseudonym, Sha256AndHmacMatchThePublishedVectors) {
  EXPECT_EQ(hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(hex(sha256(std::string(1000000, 'a'))), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // RFC 4231 test cases 2 and 6 (a key longer than the block).
  EXPECT_EQ(hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(hex(hmac_sha256(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(Pseudonym, KeyFileIsCreatedPrivateAndReused) {
  TempDir dir;
  const std::string path = dir / "cfg/id.key";
  bool created = false;
  const std::string k1 = load_or_create_id_key(path, &created);
  EXPECT_TRUE(created);
  EXPECT_EQ(k1.size(), 32u);
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(load_or_create_id_key(path, &created), k1);
  EXPECT_FALSE(created);
  EXPECT_EQ(pseudonym(k1, "3Dircadb1.1"), pseudonym(k1, "3Dircadb1.1"));
  EXPECT_NE(pseudonym(k1, "3Dircadb1.1"), pseudonym(k1, "3Dircadb1.2"));
  EXPECT_NE(pseudonym(k1, "3Dircadb1.1"), pseudonym(std::string(32, 'x'), "3Dircadb1.1"));
  EXPECT_EQ(pseudonym(k1, "a").size(), 13u);
  std::ofstream(dir / "short.key") << "tooshort";
  EXPECT_NE(error_of([&] { load_or_create_id_key(dir / "short.key"); }).find("short.key: a pseudonymisation key needs at least 16 bytes"),
            std::string::npos);
}

TEST(ClassMap, YamlAndCsvFirstMatchCaseInsensitive) {
  const ClassMap y = ClassMap::parse_yaml("cyst: ['liverkyste?\\d*', 'livercyst']\nmetastasis: livertumor\\d+\n", "m.yaml");
  EXPECT_EQ(y.classes, (std::vector<std::string>{"cyst", "metastasis"}));
  EXPECT_EQ(y.match("liverkyst"), 0);
  EXPECT_EQ(y.match("LiverKyste02"), 0);
  EXPECT_EQ(y.match("livertumor07"), 1);
  EXPECT_EQ(y.match("livertumor"), -1);   // full match only
  EXPECT_EQ(y.match("xlivercyst"), -1);
  EXPECT_EQ(y.match("portalvein"), -1);
  const ClassMap c = ClassMap::parse_csv("pattern,class\nTumor_\\d+,metastasis\n# comment\n\"3\",cyst\n", "m.csv");
  EXPECT_EQ(c.classes, (std::vector<std::string>{"metastasis", "cyst"}));
  EXPECT_EQ(c.match("tumor_12"), 0);
  EXPECT_EQ(c.match("3"), 1);
  EXPECT_NE(error_of([] { ClassMap::parse_yaml("cyst: ['(']\nmetastasis: x\n", "m.yaml"); }).find("m.yaml: pattern '(' of class 'cyst' is not a valid regular expression"),
            std::string::npos);
  EXPECT_NE(error_of([] { ClassMap::parse_yaml("cyst: x\n", "m.yaml"); }).find("m.yaml: the class map names one class"), std::string::npos);
  EXPECT_NE(error_of([] { ClassMap::parse_yaml("- a\n- b\n", "m.yaml"); }).find("m.yaml: expected a mapping"), std::string::npos);
  EXPECT_NE(error_of([] { ClassMap::parse_csv("just one cell\n", "m.csv"); }).find("m.csv:1: expected 'pattern,class'"), std::string::npos);
  EXPECT_NE(error_of([] { ClassMap::load("/nonexistent/m.yaml"); }).find("/nonexistent/m.yaml: cannot read"), std::string::npos);
}

// The three layouts: every planted lesion is found with its class, place and size, and nothing else.
TEST(ExtractLesions, EveryPlantedLesionInEachLayout) {
  for (const std::string layout : {"nifti", "ircadb", "dicom-seg"}) {
    SCOPED_TRACE(layout);
    TempDir dir;
    const auto truth = write_phantom_volumes(small_phantoms(layout), dir.str("data"));
    const Extraction e = extract_all(dir.str("data"), layout);
    EXPECT_TRUE(e.skipped.empty()) << e.skipped[0];
    expect_matches_truth(e, truth, true);
    for (const auto& im : e.images) {
      EXPECT_EQ(im.size(0), 96);
      EXPECT_EQ(im.size(1), 96);
    }
  }
}

// Flipped and permuted storage give the very same patches and records as axial storage (the anatomy and
// its noise are the same voxels, stored in another order); an oblique grid still finds every lesion.
TEST(ExtractLesions, OrientationsGiveTheSamePatches) {
  TempDir dir;
  ExtractOptions o;
  o.size = 48;
  o.neighbours = 1;
  std::vector<Extraction> runs;
  for (const std::string orientation : {"axial", "flipped", "permuted"}) {
    auto cfg = small_phantoms("nifti", 2);
    cfg.orientation = orientation;
    const auto truth = write_phantom_volumes(cfg, dir.str(orientation));
    runs.push_back(extract_all(dir.str(orientation), "nifti", o));
    expect_matches_truth(runs.back(), truth, true);
  }
  // The same through DICOM (3D-IRCADb layout), flipped.
  for (const std::string orientation : {"axial", "flipped"}) {
    auto cfg = small_phantoms("ircadb", 2);
    cfg.orientation = orientation;
    write_phantom_volumes(cfg, dir.str("dcm_" + orientation));
    runs.push_back(extract_all(dir.str("dcm_" + orientation), "ircadb", o));
  }
  // Same format: bit for bit. NIfTI against DICOM: NIfTI keeps spacings as float32, so the bilinear
  // weights differ in the 7th digit.
  const std::pair<std::size_t, std::size_t> pairs[] = {{1, 0}, {2, 0}, {4, 3}, {3, 0}};
  for (const auto& [r, ref] : pairs) {
    SCOPED_TRACE(r);
    ASSERT_EQ(runs[r].images.size(), runs[ref].images.size());
    ASSERT_EQ(runs[r].lesions.size(), runs[ref].lesions.size());
    for (std::size_t i = 0; i < runs[ref].lesions.size(); ++i) {
      EXPECT_EQ(runs[r].lesions[i].bbox, runs[ref].lesions[i].bbox);
      EXPECT_EQ(runs[r].lesions[i].slice, runs[ref].lesions[i].slice);
      EXPECT_LT(dist(runs[r].lesions[i].centroid_lps, runs[ref].lesions[i].centroid_lps), 1e-4);
    }
    for (std::size_t i = 0; i < runs[ref].images.size(); ++i) {
      const auto a = runs[r].images[i].to_vector<float>(), b = runs[ref].images[i].to_vector<float>();
      if (r != 3) {
        EXPECT_EQ(a, b) << "image " << i;
      } else {
        float worst = 0;
        for (std::size_t p = 0; p < a.size(); ++p) worst = std::max(worst, std::abs(a[p] - b[p]));
        EXPECT_LT(worst, 1e-2f) << "image " << i;
      }
    }
  }
  auto cfg = small_phantoms("nifti", 2);
  cfg.orientation = "oblique";
  const auto truth = write_phantom_volumes(cfg, dir.str("oblique"));
  expect_matches_truth(extract_all(dir.str("oblique"), "nifti", o), truth, false);
}

// A 3-D lesion larger than the field of view is taken at a coarser spacing rather than cut, and the
// neighbouring slices become extra samples of the same lesion.
TEST(ExtractLesions, LargeLesionsGrowTheFieldOfViewAndNeighboursShareTheLesion) {
  TempDir dir;
  auto cfg = small_phantoms("nifti", 1);
  cfg.min_diameter = cfg.max_diameter = 20;
  cfg.min_lesions = cfg.max_lesions = 1;
  write_phantom_volumes(cfg, dir.str("d"));
  ExtractOptions o;
  o.size = 16;
  o.spacing_mm = 0.5;  // 8 mm field of view for a 20 mm lesion
  o.neighbours = 2;
  const Extraction e = extract_all(dir.str("d"), "nifti", o);
  ASSERT_EQ(e.lesions.size(), 1u);
  EXPECT_GT(e.lesions[0].patch_spacing_mm, 1.2);
  EXPECT_EQ(e.lesions[0].samples, 5);
  EXPECT_EQ(e.images.size(), 5u);
}

// Real-world NIfTI naming: LiTS (volume-N / segmentation-N in one folder) and MSD (imagesTr / labelsTr).
TEST(ExtractLesions, NiftiPairingFollowsLitsAndMsdNames) {
  TempDir dir;
  write_phantom_volumes(small_phantoms("nifti", 2), dir.str("src"));
  fs::create_directories(dir.str("lits"));
  fs::create_directories(dir.str("msd/imagesTr"));
  fs::create_directories(dir.str("msd/labelsTr"));
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir.str("src"))) {
    fs::copy_file(e.path() / "ct.nii.gz", dir.str("lits/volume-" + std::to_string(n) + ".nii.gz"));
    fs::copy_file(e.path() / "labels.nii.gz", dir.str("lits/segmentation-" + std::to_string(n) + ".nii.gz"));
    fs::copy_file(e.path() / "ct.nii.gz", dir.str("msd/imagesTr/liver_" + std::to_string(n) + ".nii.gz"));
    fs::copy_file(e.path() / "labels.nii.gz", dir.str("msd/labelsTr/liver_" + std::to_string(n) + ".nii.gz"));
    ++n;
  }
  std::ofstream(dir.str("lits/volume-9.nii.gz")) << "lonely";
  for (const char* root : {"lits", "msd"}) {
    std::vector<std::string> notes;
    const auto sources = find_patients(dir.str(root), "nifti", &notes);
    ASSERT_EQ(sources.size(), 2u) << root;
    for (const auto& s : sources) {
      EXPECT_NE(s.ct.find(root == std::string("lits") ? "volume-" : "imagesTr"), std::string::npos);
      EXPECT_NE(s.masks.at(0).find(root == std::string("lits") ? "segmentation-" : "labelsTr"), std::string::npos);
    }
    EXPECT_NE(sources[0].name, sources[1].name);
    if (root == std::string("lits")) {
      ASSERT_EQ(notes.size(), 1u);
      EXPECT_NE(notes[0].find("volume-9.nii.gz: no label map pairs with this volume"), std::string::npos);
    }
  }
}

// MSD's dataset.json names the label values; a class map may use the names.
TEST(ExtractLesions, NiftiLabelNamesFromDatasetJson) {
  TempDir dir;
  const auto truth = write_phantom_volumes(small_phantoms("nifti", 2), dir.str("data"));
  std::ofstream(dir.str("data/dataset.json")) << R"({"name": "phantoms", "labels": {"0": "background", "1": "liver", "2": "cancer", "3": "cyst"}})";
  const ClassMap classes = ClassMap::parse_yaml("cyst: [cyst]\nmetastasis: [cancer]\n", "test");
  std::size_t found = 0, planted = 0;
  for (const auto& pv : truth) planted += pv.lesions.size();
  for (const auto& src : find_patients(dir.str("data"), "nifti", nullptr)) {
    PatientScan scan = load_patient(src, "nifti", classes);
    EXPECT_EQ(scan.ignored, (std::vector<std::string>{"liver"}));
    scan.patient = src.name;
    found += extract_patient(scan, classes, ExtractOptions{}).lesions.size();
  }
  EXPECT_EQ(found, planted);
}

// Broken patients are skipped with their reason; the others extract; --strict refuses; nothing is
// written when nothing could be extracted.
TEST(ExtractLesions, BrokenPatientsAreSkippedWithTheirReason) {
  TempDir dir;
  const std::string key = dir / "id.key";
  // NIfTI: a truncated volume, a label map on another grid.
  write_phantom_volumes(small_phantoms("nifti", 4), dir.str("nii"));
  std::vector<fs::path> pats;
  for (const auto& e : fs::directory_iterator(dir.str("nii"))) pats.push_back(e.path());
  std::sort(pats.begin(), pats.end());
  {
    const std::string ct = slurp((pats[0] / "ct.nii.gz").string());
    std::ofstream((pats[0] / "ct.nii.gz").string(), std::ios::binary) << ct.substr(0, ct.size() / 2);
    const io::LabelVolume lab = io::read_nifti_labels((pats[1] / "labels.nii.gz").string());
    io::LabelVolume shifted = lab;
    shifted.grid.origin[2] += 5;
    io::NiftiWriteOptions lo;
    lo.datatype = "uint8";
    io::write_nifti((pats[1] / "labels.nii.gz").string(), shifted, lo);
  }
  const std::string classes = dir / "classes.yaml";
  std::ofstream(classes) << "cyst: ['3']\nmetastasis: ['2']\n";
  const std::string out = dir / "out.h5";
  ToolRun r = run_tool(dir, "extract_lesions",
                   "--input " + dir.str("nii") + " --layout nifti --classes " + classes + " --output " + out + " --size 32 --id-key " + key);
  ASSERT_EQ(r.rc, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("4 patient(s) found, 2 with lesions, 2 skipped"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("skipped " + pseudonym(load_or_create_id_key(key), pats[0].filename().string()) + ": "), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("truncated"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("label map and volume grids differ (origins differ by 5.00 mm)"), std::string::npos) << r.out;
  const data::Dataset d = data::load_dataset_h5(out);
  EXPECT_EQ(d.num_patients(), 2);
  EXPECT_TRUE(fs::exists(dir / "out_lesions.csv"));
  // --strict: non-zero exit, nothing written.
  r = run_tool(dir, "extract_lesions",
               "--input " + dir.str("nii") + " --layout nifti --classes " + classes + " --output " + dir.str("strict.h5") +
                   " --strict --id-key " + key);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("2 patient(s) skipped and --strict given; nothing written"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir.str("strict.h5")));

  // 3D-IRCADb: a missing slice in one patient, unknown structure names in another.
  write_phantom_volumes(small_phantoms("ircadb", 3), dir.str("ircadb"));
  pats.clear();
  for (const auto& e : fs::directory_iterator(dir.str("ircadb"))) pats.push_back(e.path());
  std::sort(pats.begin(), pats.end());
  {
    // Remove a middle slice (the file names are shuffled: find it by position).
    io::DicomSeriesInfo info;
    io::read_dicom_series((pats[0] / "PATIENT_DICOM").string(), &info);
    fs::remove(info.files.at(info.files.size() / 2));
    int renamed = 0;
    std::vector<fs::path> masks;
    for (const auto& m : fs::directory_iterator(pats[1] / "MASKS_DICOM")) masks.push_back(m.path());
    for (const auto& m : masks) {
      const std::string n = m.filename().string();
      if (n != "liver" && n != "portalvein") fs::rename(m, m.parent_path() / ("lesion_" + std::to_string(++renamed)));
    }
  }
  std::ofstream(dir / "ircadb.yaml") << "cyst: ['liver ?kyste?\\d*', 'livercyst\\d*']\nmetastasis: ['livertumou?r\\d*']\n";
  r = run_tool(dir, "extract_lesions",
               "--input " + dir.str("ircadb") + " --layout ircadb --classes " + dir.str("ircadb.yaml") + " --output " +
                   dir.str("ircadb.h5") + " --id-key " + key);
  ASSERT_EQ(r.rc, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("3 patient(s) found, 1 with lesions, 2 skipped"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("missing slice"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no structure matches the class map (structures found: lesion_1, lesion_2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("structures not in the class map (ignored): lesion_"), std::string::npos) << r.out;

  // Nothing extractable: an error, no file.
  r = run_tool(dir, "extract_lesions",
               "--input " + dir.str("ircadb") + " --layout nifti --classes " + classes + " --output " + dir.str("none.h5") +
                   " --id-key " + key);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("no patient found for layout 'nifti'"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir.str("none.h5")));
}

// Identifiers planted in the DICOM headers (and the patient folder names) never reach the dataset, the
// lesion table or what the tool prints; the same key gives the same pseudonyms, another key other ones.
TEST(ExtractLesions, NoIdentifierReachesAnyOutput) {
  for (const std::string layout : {"ircadb", "dicom-seg"}) {
    SCOPED_TRACE(layout);
    TempDir dir;
    const auto truth = write_phantom_volumes(small_phantoms(layout, 2), dir.str("data"));
    std::ofstream(dir / "classes.yaml") << "cyst: ['liver ?kyste?\\d*', 'livercyst\\d*', 'cyst_\\d+']\n"
                                           "metastasis: ['livertumou?r\\d*', 'tumor_\\d+']\n";
    const std::string args = "--input " + dir.str("data") + " --layout " + layout + " --classes " + dir.str("classes.yaml") +
                             " --size 32 --id-key " + dir.str("id.key");
    const ToolRun r = run_tool(dir, "extract_lesions", args + " --output " + dir.str("a.h5") + " --id-map " + dir.str("map.csv"));
    ASSERT_EQ(r.rc, 0) << r.err << r.out;
    const std::string outputs = slurp(dir.str("a.h5")) + slurp(dir.str("a_lesions.csv")) + r.out + r.err;
    for (const auto& pv : truth) {
      for (const std::string& id : {pv.patient_name, pv.patient_id, pv.birth_date, pv.accession_number, pv.institution, pv.folder,
                                    pv.patient_name.substr(0, pv.patient_name.find('^'))})
        EXPECT_EQ(outputs.find(id), std::string::npos) << "'" << id << "' leaked";
      // The id map (kept apart by the user) is the one place that links a folder to its pseudonym.
      EXPECT_NE(slurp(dir.str("map.csv")).find(pv.folder), std::string::npos);
    }
    const ToolRun again = run_tool(dir, "extract_lesions", args + " --output " + dir.str("b.h5"));
    ASSERT_EQ(again.rc, 0) << again.err;
    const data::Dataset a = data::load_dataset_h5(dir.str("a.h5")), b = data::load_dataset_h5(dir.str("b.h5"));
    EXPECT_EQ(a.patient_ids, b.patient_ids);
    EXPECT_EQ(a.lesion_ids, b.lesion_ids);
    std::ofstream(dir.str("other.key")) << std::string(32, 'k');
    const ToolRun other = run_tool(dir, "extract_lesions",
                               "--input " + dir.str("data") + " --layout " + layout + " --classes " + dir.str("classes.yaml") +
                                   " --size 32 --id-key " + dir.str("other.key") + " --output " + dir.str("c.h5"));
    ASSERT_EQ(other.rc, 0) << other.err;
    EXPECT_NE(data::load_dataset_h5(dir.str("c.h5")).patient_ids, a.patient_ids);
    EXPECT_EQ(a.num_patients(), 2);
  }
}

// Folder and file names under --input often carry patients' names: what the tool prints (skipped patients,
// their reasons, notes about unpaired files) names them by pseudonym unless --show-paths is given.
TEST(ExtractLesions, PrintedPathsArePseudonymised) {
  for (const std::string layout : {"ircadb", "dicom-seg", "nifti"}) {
    SCOPED_TRACE(layout);
    TempDir dir;
    const auto truth = write_phantom_volumes(small_phantoms(layout, 3), dir.str("data"));
    // One patient's files damaged (the reason names a file in its folder), and a folder named after a person
    // that holds no usable patient (the note names it).
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(dir.str("data") + "/" + truth[0].folder))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    ASSERT_FALSE(files.empty());
    for (const auto& f : files)
      if (layout != "dicom-seg" || f.filename().string().find("seg") == std::string::npos) fs::resize_file(f, 100);
    const fs::path stray = fs::path(dir.str("data")) / "Doe_Jane_1961";
    fs::create_directories(stray / "PATIENT_DICOM");
    std::ofstream((stray / "PATIENT_DICOM" / "Doe_Jane.dcm").string()) << "not DICOM";
    if (layout == "nifti") std::ofstream((stray / "Doe_Jane_1961_seg.nii.gz").string()) << "not NIfTI";
    std::ofstream(dir / "classes.yaml") << "cyst: ['liver ?kyste?\\d*', 'livercyst\\d*', 'cyst_\\d+', '3']\n"
                                           "metastasis: ['livertumou?r\\d*', 'tumor_\\d+', '2']\n";
    const std::string args = "--input " + dir.str("data") + " --layout " + layout + " --classes " + dir.str("classes.yaml") +
                             " --size 32 --id-key " + dir.str("id.key") + " --output " + dir.str("a.h5");
    const ToolRun r = run_tool(dir, "extract_lesions", args);
    ASSERT_EQ(r.rc, 0) << r.err << r.out;
    const std::string printed = r.out + r.err;
    const std::string damaged = pseudonym(load_or_create_id_key(dir.str("id.key")), truth[0].folder);
    EXPECT_NE(printed.find("/" + damaged), std::string::npos) << damaged << " not in:\n" << printed;
    for (const auto& pv : truth) EXPECT_EQ(printed.find(pv.folder), std::string::npos) << "'" << pv.folder << "' printed:\n" << printed;
    EXPECT_EQ(printed.find("Doe_Jane"), std::string::npos) << printed;
    EXPECT_EQ(printed.find("Tremblay"), std::string::npos) << printed;

    const ToolRun shown = run_tool(dir, "extract_lesions", args + " --show-paths");
    ASSERT_EQ(shown.rc, 0) << shown.err;
    EXPECT_NE((shown.out + shown.err).find(truth[0].folder), std::string::npos) << shown.out << shown.err;
  }
}

TEST(Pseudonym, PathRedactorReplacesPathsUnderTheRoot) {
  const std::string key(32, 'k');
  const PathRedactor r("/data/in/", key, {"Gagnon_2", "imagesTr/liver_3"});
  const std::string g = pseudonym(key, "Gagnon_2"), l = pseudonym(key, "imagesTr/liver_3");
  EXPECT_EQ(r("/data/in/Gagnon_2: no slices"), "/data/in/" + g + ": no slices");
  EXPECT_EQ(r("/data/in/Gagnon_2/PATIENT_DICOM/image_3: truncated"), "/data/in/" + g + "/.../image_3: truncated");
  EXPECT_EQ(r("'/data/in/Gagnon_2/ct.nii.gz', and"), "'/data/in/" + g + "/ct.nii.gz', and");
  EXPECT_EQ(r("/data/in/imagesTr/liver_3.nii.gz: bad"), "/data/in/" + l + ".nii.gz: bad");
  EXPECT_EQ(r("x /data/in/Doe_Jane/a.dcm (b)"), "x /data/in/" + pseudonym(key, "Doe_Jane/a.dcm (b") + ")");
  EXPECT_EQ(r("/data/in/Gagnon_20/x: y"), "/data/in/" + pseudonym(key, "Gagnon_20/x") + ": y");  // not Gagnon_2's
  EXPECT_EQ(r("nothing here; /data/other/Gagnon_2"), "nothing here; /data/other/Gagnon_2");
  EXPECT_EQ(r.id("Gagnon_2"), g);
  const std::string once = r("/data/in/Gagnon_2/PATIENT_DICOM/image_3: truncated; /data/in/imagesTr/liver_3.nii.gz: bad");
  EXPECT_EQ(r(once), once);
}

// tools/predict --ct: a CT volume and its lesion mask in each layout give one row per lesion whose
// probabilities are those of the same lesion's patch from tools/extract_lesions run through tools/predict,
// whose centroid maps back to the CT's own voxel indices, and which holds no identifier.
TEST(ExtractLesions, PredictOnACtVolumeClassifiesEveryLesionAsItsPatch) {
  const ModelConfig cfg = livernet::testing::two_class_config(75);
  init::set_seed(3);
  LesionClassifier model(cfg);
  for (const std::string layout : {"nifti", "ircadb", "dicom-seg"}) {
    SCOPED_TRACE(layout);
    TempDir dir;
    io::save_weights(model, cfg, dir.str("w.h5"));
    const auto truth = write_phantom_volumes(small_phantoms(layout, 2), dir.str("data"));
    std::ofstream(dir / "classes.yaml") << "cyst: ['3', 'liver ?kyste?\\d*', 'livercyst\\d*', 'cyst_\\d+']\n"
                                           "metastasis: ['2', 'livertumou?r\\d*', 'tumor_\\d+']\n";
    ToolRun r = run_tool(dir, "extract_lesions", "--input " + dir.str("data") + " --layout " + layout + " --classes " +
                                                     dir.str("classes.yaml") + " --size 32 --id-key " + dir.str("id.key") +
                                                     " --output " + dir.str("a.h5"));
    ASSERT_EQ(r.rc, 0) << r.err << r.out;
    r = run_tool(dir, "predict", "-w " + dir.str("w.h5") + " -i " + dir.str("a.h5") + " --device cpu");
    ASSERT_EQ(r.rc, 0) << r.err;
    std::map<std::string, std::vector<std::string>> by_lesion;  // lesion id -> probabilities
    for (const auto& row : livernet::testing::read_csv_text(r.out)) by_lesion[row[0]] = {row[1], row[2]};
    const auto lesions = livernet::testing::read_csv_text(slurp(dir.str("a_lesions.csv")));
    const fs::path p = fs::path(dir.str("data")) / truth[0].folder;
    const std::string ct = layout == "nifti" ? (p / "ct.nii.gz").string() : layout == "ircadb" ? (p / "PATIENT_DICOM").string()
                                                                                                 : (p / "CT").string();
    const std::string mask = layout == "nifti" ? (p / "labels.nii.gz").string()
                             : layout == "ircadb" ? (p / "MASKS_DICOM").string() : (p / "SEG" / "1-1.dcm").string();
    // Without --lesions a mask that also outlines the liver is refused with the structures it holds.
    r = run_tool(dir, "predict", "-w " + dir.str("w.h5") + " --ct " + ct + " --mask " + mask + " --device cpu");
    EXPECT_EQ(r.rc, 1);
    EXPECT_NE(r.err.find("holds several structures"), std::string::npos) << r.err;
    r = run_tool(dir, "predict", "-w " + dir.str("w.h5") + " --ct " + ct + " --mask " + mask +
                                     " --lesions '2|3|liver ?kyste?\\d*|livertumou?r\\d*|tumor_\\d+|cyst_\\d+' --patch-size 32 "
                                     "--device cpu -o " + dir.str("ct.csv"));
    ASSERT_EQ(r.rc, 0) << r.err;
    const auto rows = livernet::testing::read_csv_text(slurp(dir.str("ct.csv")));
    ASSERT_GE(rows.size(), 2u);
    EXPECT_EQ(rows[0][0], "lesion");
    EXPECT_EQ(rows[0][1], "voxel_i");
    EXPECT_EQ(rows[0][10], "prob_cyst");
    EXPECT_EQ(rows.size() - 1, truth[0].lesions.size()) << slurp(dir.str("ct.csv"));
    const io::Grid grid = layout == "nifti" ? io::read_nifti_volume(ct).grid : io::read_dicom_series(ct).grid;
    for (std::size_t i = 1; i < rows.size(); ++i) {
      const double x = std::stod(rows[i][4]), y = std::stod(rows[i][5]), z = std::stod(rows[i][6]);
      // The same lesion in extract_lesions' table: the one with this centroid.
      std::string id;
      for (std::size_t j = 1; j < lesions.size(); ++j)
        if (std::fabs(std::stod(lesions[j][13]) - x) < 0.06 && std::fabs(std::stod(lesions[j][14]) - y) < 0.06 &&
            std::fabs(std::stod(lesions[j][15]) - z) < 0.06)
          id = lesions[j][1];
      ASSERT_FALSE(id.empty()) << "no extracted lesion at " << x << " " << y << " " << z;
      EXPECT_NEAR(std::stod(rows[i][10]), std::stod(by_lesion.at(id)[0]), 1e-5) << id;
      EXPECT_NEAR(std::stod(rows[i][11]), std::stod(by_lesion.at(id)[1]), 1e-5) << id;
      const io::Vec3 lps = grid.to_lps(std::stod(rows[i][1]), std::stod(rows[i][2]), std::stod(rows[i][3]));
      EXPECT_NEAR(lps[0], x, 0.5);
      EXPECT_NEAR(lps[1], y, 0.5);
      EXPECT_NEAR(lps[2], z, 1.0);
    }
    // The dataset records how its patches were cut; a model file that records it too (as tools/train writes
    // it) needs no geometry flags, and a flag that disagrees is warned about.
    const data::Dataset extracted = data::load_dataset_h5(dir.str("a.h5"));
    EXPECT_EQ(data::parse_extraction(extracted.extraction, "a.h5").size, 32) << extracted.extraction;
    train::ModelUsage usage;
    usage.extraction = extracted.extraction;
    train::rewrite_model_usage(dir.str("w.h5"), usage);
    const std::string ct_args =
        "-w " + dir.str("w.h5") + " --ct " + ct + " --mask " + mask +
        " --lesions '2|3|liver ?kyste?\\d*|livertumou?r\\d*|tumor_\\d+|cyst_\\d+' --device cpu ";
    r = run_tool(dir, "predict", ct_args + "-o " + dir.str("ct_recorded.csv"));
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_EQ(slurp(dir.str("ct_recorded.csv")), slurp(dir.str("ct.csv")));
    EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
    r = run_tool(dir, "predict", ct_args + "--patch-size 48 -o " + dir.str("ct48.csv"));
    ASSERT_EQ(r.rc, 0) << r.err;
    EXPECT_NE(r.err.find("warning: --patch-size 48 differs from the 32 the training patches"), std::string::npos)
        << r.err;
    const std::string out = slurp(dir.str("ct.csv"));
    for (const std::string& id : {truth[0].patient_name, truth[0].patient_id, truth[0].folder, truth[0].birth_date})
      if (!id.empty()) {
        EXPECT_EQ(out.find(id), std::string::npos) << "'" << id << "' leaked";
      }
  }
}
