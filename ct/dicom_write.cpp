// DICOM writers: CT series, mask series and DICOM-SEG objects (the synthetic volumes of make_phantoms
// and the tests' inputs). Every file is written atomically.
#include "ct/dicom.h"

#include "ct/dicom_detail.h"

namespace livernet::io {

using namespace dicom_detail;

namespace {

// ---- Writing helpers ------------------------------------------------------------------------------------

// A DS value in at most 16 characters.
std::string ds_str(double v) {
  if (std::abs(v) < 1e-12) return "0";
  char buf[40];
  for (int prec = 15; prec >= 1; --prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strlen(buf) <= 16) return buf;
  }
  LN_FAIL("cannot write ", v, " as a DICOM decimal string");
}

std::string ds_list(std::initializer_list<double> vs) {
  std::string s;
  for (double v : vs) {
    if (!s.empty()) s += '\\';
    s += ds_str(v);
  }
  return s;
}

std::string new_uid(const char* root) {
  char buf[100];
  dcmGenerateUniqueIdentifier(buf, root);
  return buf;
}

void put(DcmItem* item, const DcmTagKey& tag, const std::string& value) {
  const OFCondition c = item->putAndInsertString(DcmTag(tag), value.c_str());
  LN_CHECK(c.good(), "cannot set DICOM attribute ", DcmTag(tag).getTagName(), " to '", value, "' (", c.text(), ")");
}
void put16(DcmItem* item, const DcmTagKey& tag, unsigned v) {
  const OFCondition c = item->putAndInsertUint16(DcmTag(tag), static_cast<Uint16>(v));
  LN_CHECK(c.good(), "cannot set DICOM attribute ", DcmTag(tag).getTagName(), " (", c.text(), ")");
}
DcmItem* sub_item(DcmItem* item, const DcmTagKey& seq, long index = 0) {
  DcmItem* sub = nullptr;
  const OFCondition c = item->findOrCreateSequenceItem(DcmTag(seq), sub, index);
  LN_CHECK(c.good() && sub != nullptr, "cannot create DICOM sequence ", DcmTag(seq).getTagName(), " (", c.text(), ")");
  return sub;
}

std::string today() {
  OFString d;
  DcmDate::getCurrentDate(d);
  return d.c_str();
}

// Patient / study / equipment attributes shared by every file we write.
void put_common(DcmItem* ds, const DicomIdentity& who, const std::string& study_uid, const std::string& for_uid,
                const std::string& series_uid, const std::string& modality, const std::string& sop_class,
                int series_number) {
  put(ds, DCM_SpecificCharacterSet, "ISO_IR 192");
  put(ds, DCM_SOPClassUID, sop_class);
  put(ds, DCM_SOPInstanceUID, new_uid(SITE_INSTANCE_UID_ROOT));
  put(ds, DCM_StudyInstanceUID, study_uid);
  put(ds, DCM_SeriesInstanceUID, series_uid);
  put(ds, DCM_FrameOfReferenceUID, for_uid);
  put(ds, DCM_PositionReferenceIndicator, "");
  put(ds, DCM_Modality, modality);
  put(ds, DCM_PatientName, who.patient_name);
  put(ds, DCM_PatientID, who.patient_id);
  put(ds, DCM_PatientBirthDate, who.birth_date);
  put(ds, DCM_PatientSex, "");
  put(ds, DCM_AccessionNumber, who.accession_number);
  put(ds, DCM_InstitutionName, who.institution);
  put(ds, DCM_ReferringPhysicianName, "");
  put(ds, DCM_StudyID, "1");
  const std::string date = today();
  put(ds, DCM_StudyDate, date);
  put(ds, DCM_StudyTime, "120000");
  put(ds, DCM_SeriesDate, date);
  put(ds, DCM_ContentDate, date);
  put(ds, DCM_ContentTime, "120000");
  put(ds, DCM_Manufacturer, "livernet");
  put(ds, DCM_SeriesNumber, std::to_string(series_number));
}

void save(DcmFileFormat& ff, const std::string& path) {
  write_file_atomically(path, [&](const std::string& tmp) {
    const OFCondition c = ff.saveFile(tmp.c_str(), EXS_LittleEndianExplicit);
    LN_CHECK(c.good(), path, ": cannot write the DICOM file (", c.text(), ")");
  });
}

std::string file_for(const std::string& dir, const std::string& pattern, std::int64_t number) {
  const auto at = pattern.find("{}");
  LN_CHECK(at != std::string::npos, dir, ": file name pattern '", pattern, "' has no {}");
  std::string name = pattern;
  name.replace(at, 2, std::to_string(number));
  return (fs::path(dir) / name).string();
}

// File numbers per slice: 0..n-1, or a fixed scramble of them (never the identity for n >= 2).
std::vector<std::int64_t> file_numbers(std::int64_t n, bool shuffle) {
  std::vector<std::int64_t> num_of(static_cast<std::size_t>(n));
  std::iota(num_of.begin(), num_of.end(), 0);
  if (shuffle && n >= 2) {
    std::mt19937 rng(12345);
    std::shuffle(num_of.begin(), num_of.end(), rng);
    bool identity = true;
    for (std::int64_t k = 0; k < n; ++k) identity = identity && num_of[static_cast<std::size_t>(k)] == k;
    if (identity) std::reverse(num_of.begin(), num_of.end());
  }
  return num_of;
}

struct SeriesSpec {
  std::string sop_class, modality, image_type;
  int bits = 16;
  bool is_signed = true;
  bool rescale = true;
  double slope = 1, intercept = 0;
};

// Writes one file per slice of `g`; slice k's stored values come from stored(k, values).
std::string write_slices(const std::string& dir, const Grid& g, const DicomIdentity& who, const std::string& pattern,
                         bool shuffle, const SeriesSpec& spec, int series_number,
                         const std::function<void(std::int64_t, std::vector<std::int32_t>&)>& stored) {
  g.validate(dir);
  LN_CHECK(g.size[0] <= 65535 && g.size[1] <= 65535, dir, ": ", g.str(), " is too large for DICOM (65535 rows/columns)");
  std::error_code ec;
  fs::create_directories(dir, ec);
  LN_CHECK(fs::is_directory(dir), dir, ": cannot create the folder (", ec.message(), ")");
  const std::string study = who.study_uid.empty() ? new_uid(SITE_STUDY_UID_ROOT) : who.study_uid;
  const std::string for_uid = who.frame_of_reference_uid.empty() ? new_uid(SITE_UID_ROOT ".1.5") : who.frame_of_reference_uid;
  const std::string series = new_uid(SITE_SERIES_UID_ROOT);
  const auto numbers = file_numbers(g.size[2], shuffle);
  const std::size_t n = static_cast<std::size_t>(g.size[0] * g.size[1]);
  std::vector<std::int32_t> values(n);
  std::vector<Uint16> words;
  std::vector<Uint8> bytes;
  const long lo = spec.bits == 8 ? 0 : (spec.is_signed ? -32768 : 0);
  const long hi = spec.bits == 8 ? 255 : (spec.is_signed ? 32767 : 65535);
  for (std::int64_t k = 0; k < g.size[2]; ++k) {
    stored(k, values);
    DcmFileFormat ff;
    DcmDataset* ds = ff.getDataset();
    put_common(ds, who, study, for_uid, series, spec.modality, spec.sop_class, series_number);
    put(ds, DCM_ImageType, spec.image_type);
    put(ds, DCM_InstanceNumber, std::to_string(k + 1));
    put(ds, DCM_PatientPosition, "HFS");
    if (spec.sop_class == UID_SecondaryCaptureImageStorage) put(ds, DCM_ConversionType, "WSD");
    const Vec3 ipp = g.to_lps(0, 0, static_cast<double>(k));
    put(ds, DCM_ImagePositionPatient, ds_list({ipp[0], ipp[1], ipp[2]}));
    put(ds, DCM_ImageOrientationPatient, ds_list({g.axes[0][0], g.axes[0][1], g.axes[0][2], g.axes[1][0],
                                                  g.axes[1][1], g.axes[1][2]}));
    put(ds, DCM_PixelSpacing, ds_list({g.spacing[1], g.spacing[0]}));
    put(ds, DCM_SliceThickness, ds_str(g.spacing[2]));
    put(ds, DCM_SliceLocation, ds_str(dot(ipp, cross(g.axes[0], g.axes[1]))));
    put16(ds, DCM_SamplesPerPixel, 1);
    put(ds, DCM_PhotometricInterpretation, "MONOCHROME2");
    put16(ds, DCM_Rows, static_cast<unsigned>(g.size[1]));
    put16(ds, DCM_Columns, static_cast<unsigned>(g.size[0]));
    put16(ds, DCM_BitsAllocated, static_cast<unsigned>(spec.bits));
    put16(ds, DCM_BitsStored, static_cast<unsigned>(spec.bits));
    put16(ds, DCM_HighBit, static_cast<unsigned>(spec.bits - 1));
    put16(ds, DCM_PixelRepresentation, spec.is_signed ? 1 : 0);
    if (spec.rescale) {
      put(ds, DCM_RescaleIntercept, ds_str(spec.intercept));
      put(ds, DCM_RescaleSlope, ds_str(spec.slope));
      put(ds, DCM_RescaleType, spec.modality == "CT" && spec.is_signed ? "HU" : "US");
    }
    if (spec.bits == 16) put(ds, DCM_KVP, "");
    OFCondition c;
    if (spec.bits == 8) {
      bytes.resize(n + (n & 1), 0);
      for (std::size_t p = 0; p < n; ++p) bytes[p] = static_cast<Uint8>(std::clamp<long>(values[p], lo, hi));
      c = ds->putAndInsertUint8Array(DCM_PixelData, bytes.data(), static_cast<unsigned long>(bytes.size()));
    } else {
      words.resize(n);
      for (std::size_t p = 0; p < n; ++p)
        words[p] = static_cast<Uint16>(static_cast<std::int32_t>(std::clamp<long>(values[p], lo, hi)) & 0xffff);
      c = ds->putAndInsertUint16Array(DCM_PixelData, words.data(), static_cast<unsigned long>(n));
    }
    LN_CHECK(c.good(), dir, ": cannot set the pixel data (", c.text(), ")");
    save(ff, file_for(dir, pattern, numbers[static_cast<std::size_t>(k)]));
  }
  return series;
}

}  // namespace

// ---- Writers ---------------------------------------------------------------------------------------------

std::string write_dicom_series(const std::string& dir, const Volume& ct, const DicomIdentity& who,
                               const std::string& name_pattern, bool shuffle_names) {
  LN_CHECK(ct.v.size() == static_cast<std::size_t>(ct.grid.voxels()), dir, ": the volume holds ", ct.v.size(),
           " values for ", ct.grid.str());
  double lo = 0, hi = 0;
  for (std::size_t p = 0; p < ct.v.size(); ++p) {
    const double v = std::round(static_cast<double>(ct.v[p]));
    LN_CHECK(std::isfinite(v), dir, ": the volume holds a non-finite value");
    if (p == 0 || v < lo) lo = v;
    if (p == 0 || v > hi) hi = v;
  }
  SeriesSpec spec;
  spec.sop_class = UID_CTImageStorage;
  spec.modality = "CT";
  spec.image_type = "ORIGINAL\\PRIMARY\\AXIAL";
  if (lo - -1024 >= -32768 && hi - -1024 <= 32767) {
    spec.slope = 1, spec.intercept = -1024;
  } else if (hi - lo <= 65535) {
    spec.slope = 1, spec.intercept = std::floor((lo + hi) / 2);
  } else {
    spec.slope = (hi - lo) / 65534.0, spec.intercept = (lo + hi) / 2;
  }
  return write_slices(dir, ct.grid, who, name_pattern, shuffle_names, spec, 1,
                      [&](std::int64_t k, std::vector<std::int32_t>& out) {
                        const float* src = ct.v.data() + static_cast<std::size_t>(k) * out.size();
                        for (std::size_t p = 0; p < out.size(); ++p)
                          out[p] = static_cast<std::int32_t>(std::lround((src[p] - spec.intercept) / spec.slope));
                      });
}

void write_dicom_mask_series(const std::string& dir, const Mask& mask, const DicomIdentity& who,
                             const std::string& name_pattern, const std::string& modality) {
  LN_CHECK(mask.v.size() == static_cast<std::size_t>(mask.grid.voxels()), dir, ": the mask holds ", mask.v.size(),
           " values for ", mask.grid.str());
  SeriesSpec spec;
  spec.modality = modality;
  spec.is_signed = false;
  if (modality == "OT") {
    spec.sop_class = UID_SecondaryCaptureImageStorage;
    spec.image_type = "DERIVED\\SECONDARY";
    spec.bits = 8;
    spec.rescale = false;
  } else if (modality == "CT") {
    spec.sop_class = UID_CTImageStorage;
    spec.image_type = "DERIVED\\SECONDARY\\AXIAL";
    spec.bits = 16;
  } else {
    LN_FAIL(dir, ": mask series modality '", modality, "' is not supported (OT or CT)");
  }
  write_slices(dir, mask.grid, who, name_pattern, false, spec, 2, [&](std::int64_t k, std::vector<std::int32_t>& out) {
    const std::uint8_t* src = mask.v.data() + static_cast<std::size_t>(k) * out.size();
    for (std::size_t p = 0; p < out.size(); ++p) out[p] = src[p] != 0 ? 255 : 0;
  });
}

void write_dicom_seg(const std::string& path, const std::vector<DicomSegment>& segments,
                     const std::string& ct_series_uid, const DicomIdentity& who) {
  LN_CHECK(!segments.empty(), path, ": no segments to write");
  const Grid& g = segments[0].mask.grid;
  g.validate(path);
  LN_CHECK(g.size[0] <= 65535 && g.size[1] <= 65535, path, ": ", g.str(), " is too large for DICOM");
  std::vector<int> numbers;
  std::set<int> seen;
  for (std::size_t s = 0; s < segments.size(); ++s) {
    const DicomSegment& seg = segments[s];
    const std::string diff = grid_difference(g, seg.mask.grid, 1e-4);
    LN_CHECK(diff.empty(), path, ": segment '", seg.label, "' is on another grid than the first (", diff, ")");
    LN_CHECK(seg.mask.v.size() == static_cast<std::size_t>(g.voxels()), path, ": segment '", seg.label,
             "' holds ", seg.mask.v.size(), " values for ", g.str());
    const int number = seg.number > 0 ? seg.number : static_cast<int>(s + 1);
    LN_CHECK(number <= 65535 && seen.insert(number).second, path, ": segment number ", number, " is used twice");
    numbers.push_back(number);
  }

  // Frames: (segment, slice) pairs where the segment has voxels.
  const std::size_t plane = static_cast<std::size_t>(g.size[0] * g.size[1]);
  std::vector<std::pair<std::size_t, std::int64_t>> frames;
  for (std::size_t s = 0; s < segments.size(); ++s)
    for (std::int64_t k = 0; k < g.size[2]; ++k) {
      const auto* m = segments[s].mask.v.data() + static_cast<std::size_t>(k) * plane;
      if (std::any_of(m, m + plane, [](std::uint8_t v) { return v != 0; })) frames.emplace_back(s, k);
    }
  if (frames.empty()) frames.emplace_back(0, 0);  // NumberOfFrames must be >= 1: one empty frame

  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    LN_CHECK(fs::is_directory(parent), path, ": cannot create the folder ", parent.string(), " (", ec.message(), ")");
  }
  DcmFileFormat ff;
  DcmDataset* ds = ff.getDataset();
  const std::string study = who.study_uid.empty() ? new_uid(SITE_STUDY_UID_ROOT) : who.study_uid;
  const std::string for_uid =
      who.frame_of_reference_uid.empty() ? new_uid(SITE_UID_ROOT ".1.5") : who.frame_of_reference_uid;
  put_common(ds, who, study, for_uid, new_uid(SITE_SERIES_UID_ROOT), "SEG", UID_SegmentationStorage, 100);
  put(ds, DCM_InstanceNumber, "1");
  put(ds, DCM_ImageType, "DERIVED\\PRIMARY");
  put(ds, DCM_ContentLabel, "SEGMENTATION");
  put(ds, DCM_ContentDescription, "");
  put(ds, DCM_ContentCreatorName, "");
  put(ds, DCM_DeviceSerialNumber, "1");
  put(ds, DCM_ManufacturerModelName, "livernet");
  put(ds, DCM_SoftwareVersions, "1");
  put16(ds, DCM_SamplesPerPixel, 1);
  put(ds, DCM_PhotometricInterpretation, "MONOCHROME2");
  put16(ds, DCM_Rows, static_cast<unsigned>(g.size[1]));
  put16(ds, DCM_Columns, static_cast<unsigned>(g.size[0]));
  put16(ds, DCM_BitsAllocated, 1);
  put16(ds, DCM_BitsStored, 1);
  put16(ds, DCM_HighBit, 0);
  put16(ds, DCM_PixelRepresentation, 0);
  put(ds, DCM_LossyImageCompression, "00");
  put(ds, DCM_SegmentationType, "BINARY");
  put(ds, DCM_NumberOfFrames, std::to_string(frames.size()));
  put(ds, DCM_ContentTime, "120000");

  // Referenced CT series.
  put(sub_item(ds, DCM_ReferencedSeriesSequence), DCM_SeriesInstanceUID, ct_series_uid);

  // Dimensions: segment number, then position.
  const std::string dim_uid = new_uid(SITE_UID_ROOT ".1.6");
  put(sub_item(ds, DCM_DimensionOrganizationSequence), DCM_DimensionOrganizationUID, dim_uid);
  const std::pair<DcmTagKey, DcmTagKey> dims[2] = {{DCM_ReferencedSegmentNumber, DCM_SegmentIdentificationSequence},
                                                   {DCM_ImagePositionPatient, DCM_PlanePositionSequence}};
  for (long d = 0; d < 2; ++d) {
    DcmItem* di = sub_item(ds, DCM_DimensionIndexSequence, d);
    put(di, DCM_DimensionOrganizationUID, dim_uid);
    for (const auto& [tag, key] : {std::pair{DCM_DimensionIndexPointer, dims[d].first},
                                   std::pair{DCM_FunctionalGroupPointer, dims[d].second}}) {
      const OFCondition c = di->putAndInsertTagKey(tag, key);
      LN_CHECK(c.good(), path, ": cannot write the dimension index (", c.text(), ")");
    }
  }

  // Segments.
  for (std::size_t s = 0; s < segments.size(); ++s) {
    DcmItem* it = sub_item(ds, DCM_SegmentSequence, static_cast<long>(s));
    put16(it, DCM_SegmentNumber, static_cast<unsigned>(numbers[s]));
    put(it, DCM_SegmentLabel, segments[s].label);
    put(it, DCM_SegmentAlgorithmType, "MANUAL");
    std::string lower = segments[s].label;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const bool liver = lower.find("liver") != std::string::npos;
    DcmItem* cat = sub_item(it, DCM_SegmentedPropertyCategoryCodeSequence);
    put(cat, DCM_CodeValue, liver ? "123037004" : "49755003");
    put(cat, DCM_CodingSchemeDesignator, "SCT");
    put(cat, DCM_CodeMeaning, liver ? "Anatomical Structure" : "Morphologically Altered Structure");
    DcmItem* typ = sub_item(it, DCM_SegmentedPropertyTypeCodeSequence);
    put(typ, DCM_CodeValue, liver ? "10200004" : "108369006");
    put(typ, DCM_CodingSchemeDesignator, "SCT");
    put(typ, DCM_CodeMeaning, liver ? "Liver" : "Neoplasm");
  }

  // Shared functional groups: orientation and pixel measures.
  DcmItem* shared = sub_item(ds, DCM_SharedFunctionalGroupsSequence);
  put(sub_item(shared, DCM_PlaneOrientationSequence), DCM_ImageOrientationPatient,
      ds_list({g.axes[0][0], g.axes[0][1], g.axes[0][2], g.axes[1][0], g.axes[1][1], g.axes[1][2]}));
  DcmItem* pm = sub_item(shared, DCM_PixelMeasuresSequence);
  put(pm, DCM_PixelSpacing, ds_list({g.spacing[1], g.spacing[0]}));
  put(pm, DCM_SliceThickness, ds_str(g.spacing[2]));
  put(pm, DCM_SpacingBetweenSlices, ds_str(g.spacing[2]));

  // Per-frame functional groups and the packed bits (frame after frame, no padding between frames).
  auto* per_frame = new DcmSequenceOfItems(DCM_PerFrameFunctionalGroupsSequence);
  LN_CHECK(ds->insert(per_frame, true).good(), path, ": cannot create the per-frame functional groups");
  std::vector<Uint8> bits((frames.size() * plane + 7) / 8, 0);
  for (std::size_t f = 0; f < frames.size(); ++f) {
    const auto [s, k] = frames[f];
    auto* item = new DcmItem();
    LN_CHECK(per_frame->append(item).good(), path, ": cannot append a per-frame item");
    const Vec3 ipp = g.to_lps(0, 0, static_cast<double>(k));
    DcmItem* fc = sub_item(item, DCM_FrameContentSequence);
    const std::string dim_values = str_cat(numbers[s], "\\", k + 1);
    const OFCondition c = fc->putAndInsertString(DcmTag(DCM_DimensionIndexValues), dim_values.c_str());
    LN_CHECK(c.good(), path, ": cannot write DimensionIndexValues (", c.text(), ")");
    put(sub_item(item, DCM_PlanePositionSequence), DCM_ImagePositionPatient, ds_list({ipp[0], ipp[1], ipp[2]}));
    put16(sub_item(item, DCM_SegmentIdentificationSequence), DCM_ReferencedSegmentNumber,
          static_cast<unsigned>(numbers[s]));
    const auto* m = segments[s].mask.v.data() + static_cast<std::size_t>(k) * plane;
    for (std::size_t q = 0; q < plane; ++q)
      if (m[q] != 0) {
        const std::size_t b = f * plane + q;
        bits[b >> 3] = static_cast<Uint8>(bits[b >> 3] | (1u << (b & 7)));
      }
  }
  if (bits.size() & 1) bits.push_back(0);
  const OFCondition c = ds->putAndInsertUint8Array(DCM_PixelData, bits.data(), static_cast<unsigned long>(bits.size()));
  LN_CHECK(c.good(), path, ": cannot set the pixel data (", c.text(), ")");
  save(ff, path);
}

}  // namespace livernet::io
