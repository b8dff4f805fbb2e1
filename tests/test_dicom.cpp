// DICOM readers and writers (ct/dicom): round trips on axial, flipped, head-to-feet and oblique grids,
// masks, DICOM-SEG, the refusals, the tree scan, and an independent reader (dcmdump) on what we write.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

// DCMTK (linked through livernet) to check transfer syntaxes and to edit SEG files.
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"

#include "ct/dicom.h"
#include "test_util.h"

namespace livernet::io {
namespace {

namespace fs = std::filesystem;
using testing::error_of;
using testing::TempDir;

Grid axial_grid() {
  Grid g;
  g.size = {24, 20, 9};
  g.spacing = {0.7, 0.8, 2.5};
  g.origin = {-100.25, -120.5, -50};
  return g;
}

Grid lr_flipped_grid() {
  Grid g = axial_grid();
  g.axes[0] = {-1, 0, 0};
  g.origin = {80, -120.5, -50};
  return g;
}

Grid head_to_feet_grid() {
  Grid g = axial_grid();
  g.axes[2] = {0, 0, -1};
  g.origin = {-100.25, -120.5, 30};
  return g;
}

// Rotated by 25 degrees about (1, 2, 3) / |.|.
Grid oblique_grid() {
  Grid g = axial_grid();
  const double t = 25.0 * M_PI / 180.0, c = std::cos(t), s = std::sin(t);
  const double n = std::sqrt(14.0), x = 1 / n, y = 2 / n, z = 3 / n;
  const double r[3][3] = {{c + x * x * (1 - c), x * y * (1 - c) - z * s, x * z * (1 - c) + y * s},
                          {y * x * (1 - c) + z * s, c + y * y * (1 - c), y * z * (1 - c) - x * s},
                          {z * x * (1 - c) - y * s, z * y * (1 - c) + x * s, c + z * z * (1 - c)}};
  for (int a = 0; a < 3; ++a) g.axes[a] = {r[0][a], r[1][a], r[2][a]};
  g.origin = {12.5, -30.75, 101};
  return g;
}

// Integer HU covering air to bone, different on every voxel row.
Volume phantom_ct(const Grid& g) {
  Volume v(g);
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i)
        v.at(i, j, k) = static_cast<float>((i * 37 + j * 101 + k * 613) % 4096 - 1024);
  return v;
}

// A ball of radius r voxels around (ci, cj, ck), cut to slices [k0, k1].
Mask ball(const Grid& g, double ci, double cj, double ck, double r, std::int64_t k0 = 0, std::int64_t k1 = 1 << 20) {
  Mask m(g);
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i) {
        const double d2 = (i - ci) * (i - ci) + (j - cj) * (j - cj) + (k - ck) * (k - ck);
        m.at(i, j, k) = d2 <= r * r && k >= k0 && k <= k1 ? 1 : 0;
      }
  return m;
}

void expect_grid_near(const Grid& a, const Grid& b, double tol = 1e-4) {
  EXPECT_EQ(a.size, b.size);
  for (int d = 0; d < 3; ++d) {
    EXPECT_NEAR(a.spacing[d], b.spacing[d], tol) << "spacing " << d;
    EXPECT_NEAR(a.origin[d], b.origin[d], tol) << "origin " << d;
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(a.axes[d][c], b.axes[d][c], 1e-6) << "axis " << d << "," << c;
  }
}

DicomIdentity who() {
  DicomIdentity w;
  w.patient_name = "Doe^Jane";
  w.patient_id = "PID-0042";
  w.birth_date = "19700101";
  w.accession_number = "ACC42";
  w.institution = "Test Hospital";
  w.study_uid = "1.2.826.0.1.3680043.10.999.1";
  w.frame_of_reference_uid = "1.2.826.0.1.3680043.10.999.2";
  return w;
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(DicomSeries, RoundTripOnAxialFlippedHeadToFeetAndObliqueGrids) {
  TempDir tmp;
  const std::pair<const char*, Grid> cases[] = {{"axial", axial_grid()},
                                                {"lr_flipped", lr_flipped_grid()},
                                                {"head_to_feet", head_to_feet_grid()},
                                                {"oblique", oblique_grid()}};
  for (const auto& [name, grid] : cases) {
    SCOPED_TRACE(name);
    const Volume ct = phantom_ct(grid);
    const std::string dir = tmp / name;
    const std::string uid = write_dicom_series(dir, ct, who());
    EXPECT_EQ(files_in(dir).size(), 9u);
    DicomSeriesInfo info;
    const Volume back = read_dicom_series(dir, &info);
    expect_grid_near(back.grid, grid);
    EXPECT_EQ(back.v, ct.v);
    EXPECT_EQ(info.series_uid, uid);
    EXPECT_EQ(info.study_uid, who().study_uid);
    EXPECT_EQ(info.frame_of_reference_uid, who().frame_of_reference_uid);
    EXPECT_EQ(info.modality, "CT");
    ASSERT_EQ(info.files.size(), 9u);
    EXPECT_EQ(fs::path(info.files[0]).filename(), "image_0");
    EXPECT_EQ(fs::path(info.files[8]).filename(), "image_8");
  }
}

TEST(DicomSeries, HuOutsideTheUsualRangeUseAnotherRescale) {
  TempDir tmp;
  Volume ct = phantom_ct(axial_grid());
  ct.v[0] = 40000;
  ct.v[1] = -20000;
  ct.v[2] = 0.4f;  // rounds to 0
  write_dicom_series(tmp.str("ct"), ct, who());
  const Volume back = read_dicom_series(tmp.str("ct"));
  ct.v[2] = 0;
  EXPECT_EQ(back.v, ct.v);
}

TEST(DicomSeries, SortsByPositionNotByFileName) {
  TempDir tmp;
  const Volume ct = phantom_ct(oblique_grid());
  write_dicom_series(tmp.str("ct"), ct, who(), "slice{}.dcm", true);
  DicomSeriesInfo info;
  const Volume back = read_dicom_series(tmp.str("ct"), &info);
  EXPECT_EQ(back.v, ct.v);
  expect_grid_near(back.grid, ct.grid);
  std::vector<std::string> names;
  for (const auto& f : info.files) names.push_back(fs::path(f).filename().string());
  std::vector<std::string> by_name = names;
  std::sort(by_name.begin(), by_name.end());
  EXPECT_NE(names, by_name) << "the scramble should not be in name order";
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), 9u);
}

TEST(DicomSeries, MissingAndDuplicateSlicesAreRefused) {
  TempDir tmp;
  const std::string dir = tmp.str("ct");
  write_dicom_series(dir, phantom_ct(axial_grid()), who());
  fs::copy_file(dir + "/image_4", tmp.str("image_4"));
  fs::remove(dir + "/image_4");
  std::string e = error_of([&] { read_dicom_series(dir); });
  EXPECT_NE(e.find(dir), std::string::npos) << e;
  EXPECT_NE(e.find("missing slice(s) between z=-42.50 and z=-37.50 mm"), std::string::npos) << e;

  fs::copy_file(tmp.str("image_4"), dir + "/image_4");
  fs::copy_file(tmp.str("image_4"), dir + "/copy_of_4");
  e = error_of([&] { read_dicom_series(dir); });
  EXPECT_NE(e.find("duplicate"), std::string::npos) << e;
  EXPECT_NE(e.find("z=-40.00"), std::string::npos) << e;
}

TEST(DicomSeries, TwoSeriesInOneFolderNeedASeriesUid) {
  TempDir tmp;
  const std::string dir = tmp.str("ct");
  const Volume a = phantom_ct(axial_grid());
  Volume b = phantom_ct(lr_flipped_grid());
  b.v[5] = 77;
  const std::string uid_a = write_dicom_series(dir, a, who(), "a_{}");
  const std::string uid_b = write_dicom_series(dir, b, who(), "b_{}");
  const std::string e = error_of([&] { read_dicom_series(dir); });
  EXPECT_NE(e.find(dir), std::string::npos) << e;
  EXPECT_NE(e.find(uid_a), std::string::npos) << e;
  EXPECT_NE(e.find(uid_b), std::string::npos) << e;
  DicomSeriesInfo info;
  EXPECT_EQ(read_dicom_series(dir, &info, uid_b).v, b.v);
  EXPECT_EQ(info.series_uid, uid_b);
  EXPECT_EQ(read_dicom_series(dir, nullptr, uid_a).v, a.v);
  EXPECT_NE(error_of([&] { read_dicom_series(dir, nullptr, "1.2.3.4"); }).find("no DICOM image files of series 1.2.3.4"),
            std::string::npos);
}

TEST(DicomSeries, NonDicomFilesAreIgnoredTruncatedOnesRefused) {
  TempDir tmp;
  const std::string dir = tmp.str("ct");
  const Volume ct = phantom_ct(axial_grid());
  write_dicom_series(dir, ct, who());
  std::ofstream(dir + "/notes.txt") << "not an image\n";
  std::ofstream(dir + "/DICOMDIR") << "directory";
  EXPECT_EQ(read_dicom_series(dir).v, ct.v);

  const std::string victim = dir + "/image_3";
  fs::resize_file(victim, fs::file_size(victim) - 300);
  const std::string e = error_of([&] { read_dicom_series(dir); });
  EXPECT_NE(e.find(victim), std::string::npos) << e;
  EXPECT_EQ(e.find("notes.txt"), std::string::npos) << e;

  EXPECT_NE(error_of([&] { read_dicom_series(tmp.str("nowhere")); }).find("no such folder"), std::string::npos);
}

TEST(DicomMask, RoundTripOnTheCtGridBothModalities) {
  TempDir tmp;
  const Volume ct = phantom_ct(head_to_feet_grid());
  write_dicom_series(tmp.str("ct"), ct, who());
  const Grid grid = read_dicom_series(tmp.str("ct")).grid;
  Mask liver = ball(ct.grid, 10, 9, 4, 5);
  liver.grid = grid;
  for (const char* modality : {"OT", "CT"}) {
    SCOPED_TRACE(modality);
    const std::string dir = tmp / (std::string("liver_") + modality);
    write_dicom_mask_series(dir, liver, who(), "image_{}", modality);
    EXPECT_EQ(read_dicom_mask_series(dir, grid).v, liver.v);
  }
  // Slices without a mask file stay empty.
  fs::remove(tmp.str("liver_OT/image_4"));
  const Mask part = read_dicom_mask_series(tmp.str("liver_OT"), grid);
  const std::size_t plane = 24 * 20;
  for (std::size_t p = 0; p < part.v.size(); ++p) EXPECT_EQ(part.v[p], p / plane == 4 ? 0 : liver.v[p]) << p;
}

TEST(DicomMask, MismatchedGridsAreRefused) {
  TempDir tmp;
  const Grid ct = axial_grid();
  Grid shifted = ct;
  shifted.origin[2] += 1.25;  // half a slice
  write_dicom_mask_series(tmp.str("shifted"), ball(shifted, 10, 9, 4, 4), who());
  std::string e = error_of([&] { read_dicom_mask_series(tmp.str("shifted"), ct); });
  EXPECT_NE(e.find("mask and volume grids differ: " + tmp.str("shifted")), std::string::npos) << e;
  EXPECT_NE(e.find("lies on no slice"), std::string::npos) << e;

  Grid wider = ct;
  wider.size[0] = 25;
  write_dicom_mask_series(tmp.str("wider"), ball(wider, 10, 9, 4, 4), who());
  e = error_of([&] { read_dicom_mask_series(tmp.str("wider"), ct); });
  EXPECT_NE(e.find("mask and volume grids differ: " + tmp.str("wider")), std::string::npos) << e;
  EXPECT_NE(e.find("25x20"), std::string::npos) << e;

  Grid moved = ct;
  moved.origin[0] += 3;
  write_dicom_mask_series(tmp.str("moved"), ball(moved, 10, 9, 4, 4), who());
  e = error_of([&] { read_dicom_mask_series(tmp.str("moved"), ct); });
  EXPECT_NE(e.find("shifted in-plane by 3.00 mm"), std::string::npos) << e;
}

TEST(DicomSeg, ThreeSegmentsRoundTripOnAFlippedGrid) {
  TempDir tmp;
  const Volume ct = phantom_ct(lr_flipped_grid());
  const std::string ct_uid = write_dicom_series(tmp.str("ct"), ct, who());
  const Grid grid = read_dicom_series(tmp.str("ct")).grid;
  std::vector<DicomSegment> segs(3);
  segs[0] = {1, "Liver", ball(grid, 11, 10, 4, 7)};
  segs[1] = {2, "Tumor_1", ball(grid, 8, 8, 3, 3, 2, 4)};  // only on slices 2..4
  segs[2] = {5, "Tumor_2", ball(grid, 15, 12, 6, 1.5)};
  const std::string file = tmp.str("seg.dcm");
  write_dicom_seg(file, segs, ct_uid, who());
  const auto back = read_dicom_seg(file, grid);
  ASSERT_EQ(back.size(), 3u);
  for (std::size_t s = 0; s < 3; ++s) {
    SCOPED_TRACE(segs[s].label);
    EXPECT_EQ(back[s].number, segs[s].number);
    EXPECT_EQ(back[s].label, segs[s].label);
    EXPECT_EQ(grid_difference(back[s].mask.grid, grid), "");
    EXPECT_EQ(back[s].mask.v, segs[s].mask.v);
  }
}

// Our BINARY file rewritten as FRACTIONAL (8 bits per pixel, thresholded at half the maximum).
TEST(DicomSeg, FractionalAndDamagedFiles) {
  TempDir tmp;
  const Grid grid = axial_grid();
  std::vector<DicomSegment> segs = {{1, "Liver", ball(grid, 11, 10, 4, 6)}, {2, "Tumor_1", ball(grid, 8, 8, 3, 2)}};
  const std::string file = tmp.str("seg.dcm");
  write_dicom_seg(file, segs, "1.2.3", who());
  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile(file.c_str()).good());
  DcmDataset* ds = ff.getDataset();
  long frames = 0;
  ASSERT_TRUE(ds->findAndGetLongInt(DCM_NumberOfFrames, frames).good());
  const Uint8* bits = nullptr;
  ASSERT_TRUE(ds->findAndGetUint8Array(DCM_PixelData, bits).good());
  const std::size_t plane = 24 * 20, n = plane * static_cast<std::size_t>(frames);
  std::vector<Uint8> frac(n);
  for (std::size_t b = 0; b < n; ++b) frac[b] = ((bits[b >> 3] >> (b & 7)) & 1) ? 150 : 99;  // max 200
  ASSERT_TRUE(ds->putAndInsertString(DCM_SegmentationType, "FRACTIONAL").good());
  ASSERT_TRUE(ds->putAndInsertString(DCM_SegmentationFractionalType, "PROBABILITY").good());
  ASSERT_TRUE(ds->putAndInsertUint16(DCM_MaximumFractionalValue, 200).good());
  for (const auto& tag : {DCM_BitsAllocated, DCM_BitsStored}) ASSERT_TRUE(ds->putAndInsertUint16(tag, 8).good());
  ASSERT_TRUE(ds->putAndInsertUint16(DCM_HighBit, 7).good());
  ASSERT_TRUE(ds->putAndInsertUint8Array(DCM_PixelData, frac.data(), static_cast<unsigned long>(n)).good());
  ASSERT_TRUE(ff.saveFile(file.c_str(), EXS_LittleEndianExplicit).good());
  const auto back = read_dicom_seg(file, grid);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].mask.v, segs[0].mask.v);
  EXPECT_EQ(back[1].mask.v, segs[1].mask.v);

  // Fewer pixel bytes than the frames declare.
  ASSERT_TRUE(ds->putAndInsertUint8Array(DCM_PixelData, frac.data(), static_cast<unsigned long>(n - plane)).good());
  ASSERT_TRUE(ff.saveFile(file.c_str(), EXS_LittleEndianExplicit).good());
  std::string e = error_of([&] { read_dicom_seg(file, grid); });
  EXPECT_NE(e.find(file + ": the pixel data holds"), std::string::npos) << e;

  // NumberOfFrames disagrees with the per-frame functional groups.
  ASSERT_TRUE(ds->putAndInsertUint8Array(DCM_PixelData, frac.data(), static_cast<unsigned long>(n)).good());
  ASSERT_TRUE(ds->putAndInsertString(DCM_NumberOfFrames, std::to_string(frames + 1).c_str()).good());
  ASSERT_TRUE(ff.saveFile(file.c_str(), EXS_LittleEndianExplicit).good());
  e = error_of([&] { read_dicom_seg(file, grid); });
  EXPECT_NE(e.find("per-frame functional groups"), std::string::npos) << e;

  // Not a SEG at all.
  write_dicom_series(tmp.str("ct"), phantom_ct(grid), who());
  e = error_of([&] { read_dicom_seg(tmp.str("ct/image_0"), grid); });
  EXPECT_NE(e.find("not a DICOM-SEG"), std::string::npos) << e;
}

TEST(DicomSeg, FramesOffTheCtAreRefused) {
  TempDir tmp;
  const Grid ct = axial_grid();
  Grid shifted = ct;
  shifted.origin[2] -= 1.0;
  const std::string file = tmp.str("seg.dcm");
  write_dicom_seg(file, {{1, "Tumor_1", ball(shifted, 10, 10, 4, 3)}}, "1.2.3", who());
  std::string e = error_of([&] { read_dicom_seg(file, ct); });
  EXPECT_NE(e.find("mask and volume grids differ: " + file + ": frame 1 (segment 1)"), std::string::npos) << e;

  // The CT covers slices 0..4 only; the segment reaches slice 7.
  Grid short_ct = ct;
  short_ct.size[2] = 5;
  write_dicom_seg(file, {{1, "Liver", ball(ct, 10, 10, 5, 3)}}, "1.2.3", who());
  e = error_of([&] { read_dicom_seg(file, short_ct); });
  EXPECT_NE(e.find("lies on no slice of the volume"), std::string::npos) << e;

  EXPECT_NE(error_of([&] { read_dicom_seg(tmp.str("nothing.dcm"), ct); }).find("no such file"), std::string::npos);
}

long max_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024;
}

// A small file listing thousands of segments on a long CT (fuzzing could not see it on its 8x8x3 grid):
// segments without frames cost nothing, and masks beyond kMaxSegMaskBytes are refused before allocating.
TEST(DicomSeg, ManySegmentsDoNotAllocateAMaskEach) {
  TempDir tmp;
  Grid small = axial_grid();
  small.size[2] = 4;
  const std::string file = tmp.str("seg.dcm");
  write_dicom_seg(file, {{1, "Liver", ball(small, 11, 10, 2, 5)}, {2, "Tumor_1", ball(small, 8, 8, 1, 2)}}, "1.2.3", who());
  // 5000 more segments in the SegmentSequence, none of them with frames.
  DcmFileFormat ff;
  ASSERT_TRUE(ff.loadFile(file.c_str()).good());
  DcmSequenceOfItems* seq = nullptr;
  ASSERT_TRUE(ff.getDataset()->findAndGetSequence(DCM_SegmentSequence, seq).good());
  for (int n = 3; n < 5003; ++n) {
    auto* item = new DcmItem(*static_cast<DcmItem*>(seq->getItem(0)));
    ASSERT_TRUE(item->putAndInsertString(DCM_SegmentNumber, std::to_string(n).c_str()).good());
    ASSERT_TRUE(item->putAndInsertString(DCM_SegmentLabel, ("Empty_" + std::to_string(n)).c_str()).good());
    ASSERT_TRUE(seq->append(item).good());
  }
  ASSERT_TRUE(ff.saveFile(file.c_str(), EXS_LittleEndianExplicit).good());
  // A CT of 24 x 20 x 200,000 slices (96 MB per mask): one mask per listed segment would be 480 GB.
  Grid long_ct = small;
  long_ct.size[2] = 200000;
  const long rss_before = max_rss_mib();
  const auto back = read_dicom_seg(file, long_ct);
  ASSERT_EQ(back.size(), 5002u);
  EXPECT_EQ(back[0].mask.v.size(), static_cast<std::size_t>(long_ct.voxels()));
  const Mask tumour = ball(small, 8, 8, 1, 2);
  EXPECT_EQ(std::count(back[1].mask.v.begin(), back[1].mask.v.end(), 1), std::count(tumour.v.begin(), tumour.v.end(), 1));
  for (std::size_t i = 2; i < back.size(); ++i) ASSERT_TRUE(back[i].mask.v.empty()) << i;
  EXPECT_EQ(back[4000].label, "Empty_4001");
  EXPECT_LT(max_rss_mib(), std::max(rss_before, 0L) + 1024);

  // Five segments with frames on a CT of 1.9 G voxels: 9.6 GB of masks, refused before allocating.
  std::vector<DicomSegment> five;
  for (int n = 1; n <= 5; ++n) five.push_back({n, "Tumor_" + std::to_string(n), ball(small, 4 + 3 * n, 8, 1, 1.5)});
  write_dicom_seg(file, five, "1.2.3", who());
  Grid huge_ct = small;
  huge_ct.size[2] = 4000000;
  const std::string e = error_of([&] { read_dicom_seg(file, huge_ct); });
  EXPECT_NE(e.find(file + ": 5 segments have frames; their masks on the"), std::string::npos) << e;
  EXPECT_NE(e.find("MiB allowed)"), std::string::npos) << e;
  EXPECT_LT(max_rss_mib(), std::max(rss_before, 0L) + 1024);
}

TEST(DicomScan, FindsCtAndSegWithTheReferencedSeries) {
  TempDir tmp;
  const Volume ct = phantom_ct(axial_grid());
  const std::string ct_uid = write_dicom_series(tmp.str("p1/ct"), ct, who());
  write_dicom_seg(tmp.str("p1/seg/seg.dcm"), {{1, "Liver", ball(ct.grid, 10, 10, 4, 3)}}, ct_uid, who());
  std::ofstream(tmp.str("p1/readme.txt")) << "hello";
  const auto facts = scan_dicom_tree(tmp.str());
  ASSERT_EQ(facts.size(), 10u);
  int cts = 0, segs = 0;
  for (const auto& f : facts) {
    EXPECT_EQ(f.study_uid, who().study_uid);
    if (f.modality == "CT") {
      ++cts;
      EXPECT_EQ(f.series_uid, ct_uid);
      EXPECT_EQ(f.sop_class_uid, "1.2.840.10008.5.1.4.1.1.2");
      EXPECT_TRUE(f.referenced_series.empty());
    } else {
      ++segs;
      EXPECT_EQ(f.modality, "SEG");
      EXPECT_EQ(f.sop_class_uid, "1.2.840.10008.5.1.4.1.1.66.4");
      EXPECT_EQ(f.referenced_series, std::vector<std::string>{ct_uid});
      EXPECT_NE(f.series_uid, ct_uid);
      EXPECT_EQ(f.path, tmp.str("p1/seg/seg.dcm"));
    }
  }
  EXPECT_EQ(cts, 9);
  EXPECT_EQ(segs, 1);
}

// Compressed and other transfer syntaxes, made by DCMTK's command line tools (Debian package dcmtk).
TEST(DicomCodecs, CompressedAndOtherTransferSyntaxesAreDecoded) {
  for (const char* tool : {"dcmcrle", "dcmcjpeg", "dcmcjpls", "dcmconv"})
    if (!fs::exists(std::string("/usr/bin/") + tool)) GTEST_SKIP() << "/usr/bin/" << tool << " not installed (Debian package dcmtk)";
  TempDir tmp;
  Grid grid = oblique_grid();
  grid.size[2] = 3;  // few files: one process per file and syntax
  const Volume ct = phantom_ct(grid);
  write_dicom_series(tmp.str("raw"), ct, who());
  Mask liver = ball(ct.grid, 10, 9, 1, 5);
  write_dicom_mask_series(tmp.str("mask_raw"), liver, who());
  auto convert = [&](const std::string& from, const std::string& to, const std::string& cmd) {
    fs::create_directories(tmp.str(to));
    for (const auto& name : files_in(tmp.str(from))) {
      const std::string line = cmd + " " + tmp.str(from + "/" + name) + " " + tmp.str(to + "/" + name);
      ASSERT_EQ(std::system(line.c_str()), 0) << line;
    }
  };
  const std::pair<const char*, const char*> syntaxes[] = {{"rle", "/usr/bin/dcmcrle"},
                                                          {"jpeg_lossless", "/usr/bin/dcmcjpeg"},
                                                          {"jpeg_ls", "/usr/bin/dcmcjpls"},
                                                          {"implicit", "/usr/bin/dcmconv +ti"},
                                                          {"big_endian", "/usr/bin/dcmconv +tb"}};
  for (const auto& [name, cmd] : syntaxes) {
    SCOPED_TRACE(name);
    convert("raw", name, cmd);
    DcmFileFormat ff;
    ASSERT_TRUE(ff.loadFile(tmp.str(std::string(name) + "/image_0").c_str()).good());
    EXPECT_EQ(DcmXfer(ff.getDataset()->getOriginalXfer()).isEncapsulated(), std::string(cmd).find("dcmconv") == std::string::npos);
    const Volume back = read_dicom_series(tmp.str(name));
    expect_grid_near(back.grid, ct.grid);
    EXPECT_EQ(back.v, ct.v);
    if (std::string(name) == "rle" || std::string(name) == "implicit") {  // 8-bit pixels: OB / OW
      const std::string mask_dir = std::string("mask_") + name;
      convert("mask_raw", mask_dir, cmd);
      EXPECT_EQ(read_dicom_mask_series(tmp.str(mask_dir), back.grid).v, liver.v);
    }
  }
}

// dcmdump (Debian package dcmtk) reads our files independently of the library code paths we use.
TEST(DicomDump, AnIndependentReaderSeesWhatWeWrote) {
  if (!fs::exists("/usr/bin/dcmdump")) GTEST_SKIP() << "/usr/bin/dcmdump not installed (Debian package dcmtk)";
  TempDir tmp;
  const Volume ct = phantom_ct(axial_grid());
  const std::string uid = write_dicom_series(tmp.str("ct"), ct, who());
  write_dicom_seg(tmp.str("seg.dcm"), {{1, "Liver", ball(ct.grid, 10, 10, 4, 3)}}, uid, who());
  auto dump = [&](const std::string& args) {
    const std::string out = tmp.str("dump.txt");
    const int rc = std::system(("/usr/bin/dcmdump --log-level warn " + args + " > " + out + " 2>&1").c_str());
    EXPECT_EQ(rc, 0) << args;
    std::ifstream in(out);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  std::string d = dump("+P 0028,0030 +P 0020,0032 +P 0028,1052 +P 0010,0010 " + tmp.str("ct/image_2"));
  EXPECT_NE(d.find("[0.8\\0.7]"), std::string::npos) << d;
  EXPECT_NE(d.find("[-100.25\\-120.5\\-45]"), std::string::npos) << d;
  EXPECT_NE(d.find("[-1024]"), std::string::npos) << d;
  EXPECT_NE(d.find("[Doe^Jane]"), std::string::npos) << d;
  d = dump("-dc " + tmp.str("ct/image_0"));  // the whole file, checking value lengths / VRs
  EXPECT_EQ(d.find("W: "), std::string::npos) << d;
  EXPECT_EQ(d.find("E: "), std::string::npos) << d;
  EXPECT_NE(d.find("CTImageStorage"), std::string::npos) << d;
  d = dump("-dc " + tmp.str("seg.dcm"));
  EXPECT_EQ(d.find("W: "), std::string::npos) << d;
  EXPECT_EQ(d.find("E: "), std::string::npos) << d;
  EXPECT_NE(d.find("SegmentationStorage"), std::string::npos) << d;
  EXPECT_NE(d.find("(0062,0005) LO [Liver"), std::string::npos) << d;  // padded to even length
  EXPECT_NE(d.find("(7fe0,0010) OB"), std::string::npos) << d;
  EXPECT_NE(d.find("(0008,1115) SQ"), std::string::npos) << d;
}

}  // namespace
}  // namespace livernet::io
