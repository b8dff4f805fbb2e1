// DICOM readers: CT series, mask series, DICOM-SEG, and the scan of a folder tree (DCMTK).
#include "ct/dicom.h"

#include "ct/dicom_detail.h"

namespace livernet::io {

using namespace dicom_detail;

// ---- Readers ---------------------------------------------------------------------------------------------

Volume read_dicom_series(const std::string& dir, DicomSeriesInfo* info, const std::string& series_uid) {
  quiet_dcmtk();
  // Pass 1: headers of every image file, grouped by series.
  std::map<std::string, std::vector<SliceHeader>> by_series;
  for (const std::string& path : dicom_files_in(dir)) {
    DcmFileFormat ff;
    load(ff, path, true);
    if (!is_image_object(ff)) continue;
    const std::string uid = get_str(ff.getDataset(), DCM_SeriesInstanceUID);
    if (!series_uid.empty() && uid != series_uid) continue;
    by_series[uid].push_back(slice_header(ff, path));
  }
  if (!series_uid.empty())
    LN_CHECK(!by_series.empty(), dir, ": no DICOM image files of series ", series_uid);
  LN_CHECK(!by_series.empty(), dir, ": no DICOM image files");
  if (by_series.size() > 1) {
    std::string list;
    for (const auto& [uid, hs] : by_series)
      list += str_cat(list.empty() ? "" : ", ", uid.empty() ? "(no SeriesInstanceUID)" : printable(uid), " (", hs.size(), " files)");
    LN_FAIL(dir, ": ", by_series.size(), " DICOM series in one folder: ", list, "; name the one to read");
  }
  std::vector<SliceHeader> hs = std::move(by_series.begin()->second);
  LN_CHECK(hs.size() >= 2, dir, ": only one slice (", file_name(hs[0].path),
           "); a volume needs at least 2 to know its slice spacing");

  // One in-plane geometry for all.
  const SliceHeader& h0 = hs[0];
  for (const SliceHeader& h : hs) {
    LN_CHECK(h.format.rows == h0.format.rows && h.format.cols == h0.format.cols, dir, ": ", file_name(h.path),
             " has ", h.format.cols, "x", h.format.rows, " pixels, ", file_name(h0.path), " ", h0.format.cols, "x",
             h0.format.rows);
    LN_CHECK(close_vec(h.plane.row_dir, h0.plane.row_dir, 1e-3) && close_vec(h.plane.col_dir, h0.plane.col_dir, 1e-3),
             dir, ": ", file_name(h.path), " and ", file_name(h0.path), " have different ImageOrientationPatient");
    LN_CHECK(close_spacing(h.plane.ps_row, h0.plane.ps_row) && close_spacing(h.plane.ps_col, h0.plane.ps_col), dir,
             ": ", file_name(h.path), " and ", file_name(h0.path), " have different PixelSpacing");
  }

  // Sort along the normal; run against it when the instance numbers do.
  const Vec3 normal = unit(cross(h0.plane.row_dir, h0.plane.col_dir));
  std::vector<double> d(hs.size());
  std::stable_sort(hs.begin(), hs.end(),
                   [&](const SliceHeader& a, const SliceHeader& b) { return dot(normal, a.plane.ipp) < dot(normal, b.plane.ipp); });
  const bool all_numbered = std::all_of(hs.begin(), hs.end(), [](const SliceHeader& h) { return h.has_instance; });
  if (all_numbered && hs.front().instance > hs.back().instance) std::reverse(hs.begin(), hs.end());
  for (std::size_t s = 0; s < hs.size(); ++s) d[s] = dot(normal, hs[s].plane.ipp);
  const double dir_sign = d.back() >= d.front() ? 1.0 : -1.0;

  std::vector<double> gaps(hs.size() - 1);
  for (std::size_t s = 0; s + 1 < hs.size(); ++s) {
    gaps[s] = std::abs(d[s + 1] - d[s]);
    LN_CHECK(gaps[s] > 1e-3, dir, ": ", file_name(hs[s].path), " and ", file_name(hs[s + 1].path),
             " are at the same position ", position_label(normal, hs[s].plane.ipp), " mm (duplicate slices)");
  }
  std::vector<double> sorted_gaps = gaps;
  std::nth_element(sorted_gaps.begin(), sorted_gaps.begin() + static_cast<long>(sorted_gaps.size() / 2), sorted_gaps.end());
  const double median = sorted_gaps[sorted_gaps.size() / 2];
  for (std::size_t s = 0; s + 1 < hs.size(); ++s)
    LN_CHECK(gaps[s] <= 1.5 * median, dir, ": missing slice(s) between ", position_label(normal, hs[s].plane.ipp),
             " and ", position_label(normal, hs[s + 1].plane.ipp), " mm (", file_name(hs[s].path), ", ",
             file_name(hs[s + 1].path), "; ", num(gaps[s]), " mm apart, the series is spaced ", num(median), " mm)");
  const double spacing = std::abs(d.back() - d.front()) / static_cast<double>(hs.size() - 1);
  const double drift_tol = std::max(0.05, 0.1 * std::min(h0.plane.ps_row, h0.plane.ps_col));
  for (std::size_t s = 0; s < hs.size(); ++s) {
    const double expect = d.front() + dir_sign * spacing * static_cast<double>(s);
    LN_CHECK(std::abs(d[s] - expect) <= 0.05 * spacing, dir, ": non-uniform slice spacing: ", file_name(hs[s].path),
             " at ", position_label(normal, hs[s].plane.ipp), " mm is ", num(std::abs(d[s] - expect)),
             " mm off the even spacing of ", num(spacing), " mm");
    const Vec3 off = sub(hs[s].plane.ipp, hs[0].plane.ipp);
    const Vec3 sideways = sub(off, scaled(normal, dot(off, normal)));
    LN_CHECK(norm(sideways) <= drift_tol, dir, ": ", file_name(hs[s].path), " is shifted ", num(norm(sideways)),
             " mm sideways from the stack (gantry tilt?); tilted series are not supported");
  }

  Grid g;
  g.size = {h0.format.cols, h0.format.rows, static_cast<std::int64_t>(hs.size())};
  g.spacing = {h0.plane.ps_col, h0.plane.ps_row, spacing};
  g.axes = {h0.plane.row_dir, h0.plane.col_dir, scaled(normal, dir_sign)};
  g.origin = hs[0].plane.ipp;
  g.validate(dir);

  // Pass 2: pixels, rescaled per slice.
  Volume vol(g);
  const std::size_t plane = static_cast<std::size_t>(g.size[0] * g.size[1]);
  for (std::size_t s = 0; s < hs.size(); ++s) {
    DcmFileFormat ff;
    load(ff, hs[s].path, false);
    DcmDataset* ds = ff.getDataset();
    double slope = 1, intercept = 0;
    Float64 v = 0;
    if (ds->findAndGetFloat64(DCM_RescaleSlope, v).good()) slope = v;
    if (ds->findAndGetFloat64(DCM_RescaleIntercept, v).good()) intercept = v;
    LN_CHECK(std::isfinite(slope) && std::isfinite(intercept) && slope != 0, hs[s].path,
             ": invalid RescaleSlope/RescaleIntercept");
    const std::vector<std::int32_t> raw = stored_values(ds, hs[s].path);
    LN_CHECK(raw.size() == plane, hs[s].path, ": its pixel size changed while decoding");
    float* out = vol.v.data() + s * plane;
    for (std::size_t p = 0; p < plane; ++p) out[p] = static_cast<float>(slope * raw[p] + intercept);
  }

  if (info != nullptr) {
    info->series_uid = h0.series_uid;
    info->study_uid = h0.study_uid;
    info->frame_of_reference_uid = h0.for_uid;
    info->modality = h0.modality;
    info->files.clear();
    for (const SliceHeader& h : hs) info->files.push_back(h.path);
  }
  return vol;
}

Mask read_dicom_mask_series(const std::string& dir, const Grid& ct) {
  quiet_dcmtk();
  ct.validate(dir + ": the volume grid");
  Mask m(ct);
  const std::size_t plane = static_cast<std::size_t>(ct.size[0] * ct.size[1]);
  std::vector<std::string> owner(static_cast<std::size_t>(ct.size[2]));
  int used = 0;
  for (const std::string& path : dicom_files_in(dir)) {
    DcmFileFormat ff;
    load(ff, path, false);
    if (!is_image_object(ff)) continue;
    DcmDataset* ds = ff.getDataset();
    const PixelFormat f = pixel_format(ds);
    check_slice_format(f, path);
    const Plane p = plane_of(ds, ds, ds, f.rows, f.cols, path);
    const std::int64_t k = place_on_grid(ct, p, str_cat(dir, ": ", file_name(path)));
    std::string& prev = owner[static_cast<std::size_t>(k)];
    LN_CHECK(prev.empty(), dir, ": ", file_name(prev), " and ", file_name(path), " are both on slice ", k,
             " (", position_label(ct.axes[2], p.ipp), " mm)");
    prev = path;
    const std::vector<std::int32_t> raw = stored_values(ds, path);
    std::uint8_t* out = m.v.data() + static_cast<std::size_t>(k) * plane;
    for (std::size_t q = 0; q < plane; ++q) out[q] = raw[q] != 0 ? 1 : 0;
    ++used;
  }
  LN_CHECK(used > 0, dir, ": no DICOM mask slices");
  return m;
}

std::vector<DicomSegment> read_dicom_seg(const std::string& file, const Grid& ct) {
  quiet_dcmtk();
  ct.validate(file + ": the volume grid");
  std::error_code ec;
  LN_CHECK(fs::is_regular_file(file, ec), file, ": no such file");
  DcmFileFormat ff;
  load(ff, file, false);
  DcmDataset* ds = ff.getDataset();
  const std::string sop = sop_class_of(ff);
  LN_CHECK(sop == UID_SegmentationStorage, file, ": not a DICOM-SEG (SOP class ", sop.empty() ? "missing" : printable(sop), ")");
  const std::string type = get_str(ds, DCM_SegmentationType);
  LN_CHECK(type == "BINARY" || type == "FRACTIONAL", file, ": SegmentationType '", printable(type),
           "' is not supported (BINARY or FRACTIONAL)");
  const bool binary = type == "BINARY";
  long rows = 0, cols = 0, frames = 0, bits = 0, max_frac = 0;
  LN_CHECK(get_long(ds, DCM_Rows, rows) && get_long(ds, DCM_Columns, cols) && rows > 0 && cols > 0, file,
           ": no valid Rows/Columns");
  LN_CHECK(get_long(ds, DCM_NumberOfFrames, frames) && frames >= 1, file, ": no valid NumberOfFrames");
  LN_CHECK(get_long(ds, DCM_BitsAllocated, bits) && bits == (binary ? 1 : 8), file, ": BitsAllocated ", bits,
           " for a ", type, " segmentation (", binary ? 1 : 8, " expected)");
  if (!binary)
    LN_CHECK(get_long(ds, DCM_MaximumFractionalValue, max_frac) && max_frac >= 1 && max_frac <= 255, file,
             ": no valid MaximumFractionalValue");

  // Segments.
  std::vector<DicomSegment> segs;
  std::map<long, std::size_t> seg_index;
  DcmSequenceOfItems* seq = nullptr;
  LN_CHECK(ds->findAndGetSequence(DCM_SegmentSequence, seq).good() && seq != nullptr && seq->card() > 0, file,
           ": no SegmentSequence");
  for (DcmObject* o = seq->nextInContainer(nullptr); o != nullptr; o = seq->nextInContainer(o)) {
    auto* item = static_cast<DcmItem*>(o);
    long number = 0;
    LN_CHECK(get_long(item, DCM_SegmentNumber, number) && number >= 1, file, ": a segment without a valid SegmentNumber");
    LN_CHECK(seg_index.count(number) == 0, file, ": segment number ", number, " appears twice");
    seg_index[number] = segs.size();
    DicomSegment s;
    s.number = static_cast<int>(number);
    s.label = get_str(item, DCM_SegmentLabel);
    s.mask.grid = ct;  // voxels allocated below, for segments that have frames
    segs.push_back(std::move(s));
  }

  // Frames.
  DcmItem* shared = seq_item(ds, DCM_SharedFunctionalGroupsSequence);
  DcmSequenceOfItems* per_frame = nullptr;
  LN_CHECK(ds->findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, per_frame).good() && per_frame != nullptr, file,
           ": no PerFrameFunctionalGroupsSequence");
  LN_CHECK(static_cast<long>(per_frame->card()) == frames, file, ": NumberOfFrames is ", frames, " but ",
           per_frame->card(), " per-frame functional groups are present");
  const std::size_t plane = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
  const std::size_t total = plane * static_cast<std::size_t>(frames);
  const std::size_t need = binary ? (total + 7) / 8 : total;
  const Uint8* px = pixel_bytes(ds, file, need);
  auto group_of = [&](DcmItem* item, const DcmTagKey& tag) { return seq_item(seq_item(item, tag) != nullptr ? item : shared, tag); };
  // Which segments have frames, before any mask is allocated: a segment without frames keeps an empty mask,
  // and the masks of those with frames must fit the budget (a small file can list thousands of segments).
  std::vector<std::size_t> frame_segment;  // index into segs, per frame
  {
    std::set<std::size_t> with_frames;
    std::size_t f = 0;
    for (DcmObject* o = per_frame->nextInContainer(nullptr); o != nullptr; o = per_frame->nextInContainer(o), ++f) {
      const std::string what = str_cat(file, ": frame ", f + 1);
      long number = 0;
      LN_CHECK(get_long(group_of(static_cast<DcmItem*>(o), DCM_SegmentIdentificationSequence), DCM_ReferencedSegmentNumber, number),
               what, ": no ReferencedSegmentNumber");
      const auto it = seg_index.find(number);
      LN_CHECK(it != seg_index.end(), what, ": refers to segment ", number, ", which the SegmentSequence lacks");
      frame_segment.push_back(it->second);
      with_frames.insert(it->second);
    }
    const double bytes = static_cast<double>(with_frames.size()) * static_cast<double>(ct.voxels());
    LN_CHECK(bytes <= static_cast<double>(kMaxSegMaskBytes), file, ": ", with_frames.size(),
             " segments have frames; their masks on the ", ct.str(), " CT would need ",
             static_cast<long long>(bytes / (1 << 20)), " MiB (more than the ", kMaxSegMaskBytes >> 20, " MiB allowed)");
    for (std::size_t i : with_frames) segs[i].mask = Mask(ct);
  }
  std::size_t f = 0;
  for (DcmObject* o = per_frame->nextInContainer(nullptr); o != nullptr; o = per_frame->nextInContainer(o), ++f) {
    auto* item = static_cast<DcmItem*>(o);
    const std::string what = str_cat(file, ": frame ", f + 1);
    auto group = [&](const DcmTagKey& tag) { return group_of(item, tag); };
    DicomSegment& seg = segs[frame_segment[f]];
    DcmItem* pos = group(DCM_PlanePositionSequence);
    LN_CHECK(pos != nullptr, what, ": no PlanePositionSequence");
    const Plane p = plane_of(group(DCM_PlaneOrientationSequence), group(DCM_PixelMeasuresSequence), pos, rows, cols, what);
    const std::int64_t k = place_on_grid(ct, p, str_cat(what, " (segment ", seg.number, ")"));
    std::uint8_t* out = seg.mask.v.data() + static_cast<std::size_t>(k) * plane;
    const std::size_t base = f * plane;
    if (binary) {
      for (std::size_t q = 0; q < plane; ++q) {
        const std::size_t b = base + q;
        if ((px[b >> 3] >> (b & 7)) & 1) out[q] = 1;
      }
    } else {
      for (std::size_t q = 0; q < plane; ++q)
        if (2 * static_cast<long>(px[base + q]) >= max_frac) out[q] = 1;
    }
  }
  return segs;
}

std::vector<DicomFileFacts> scan_dicom_tree(const std::string& dir) {
  quiet_dcmtk();
  std::error_code ec;
  LN_CHECK(fs::is_directory(dir, ec), dir, ": no such folder");
  std::vector<std::string> paths;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code type_ec;
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory(type_ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(type_ec) && !ignored_name(name) && looks_like_dicom(it->path())) paths.push_back(it->path().string());
  }
  LN_CHECK(!ec, dir, ": cannot walk the folder tree (", ec.message(), ")");
  std::sort(paths.begin(), paths.end());
  std::vector<DicomFileFacts> out;
  for (const std::string& path : paths) {
    DcmFileFormat ff;
    load(ff, path, true);
    DcmDataset* ds = ff.getDataset();
    DicomFileFacts f;
    f.path = path;
    f.sop_class_uid = sop_class_of(ff);
    if (f.sop_class_uid == UID_MediaStorageDirectoryStorage) continue;
    f.modality = get_str(ds, DCM_Modality);
    f.series_uid = get_str(ds, DCM_SeriesInstanceUID);
    f.study_uid = get_str(ds, DCM_StudyInstanceUID);
    DcmSequenceOfItems* refs = nullptr;
    if (ds->findAndGetSequence(DCM_ReferencedSeriesSequence, refs).good() && refs != nullptr)
      for (DcmObject* o = refs->nextInContainer(nullptr); o != nullptr; o = refs->nextInContainer(o)) {
        const std::string uid = get_str(static_cast<DcmItem*>(o), DCM_SeriesInstanceUID);
        if (!uid.empty()) f.referenced_series.push_back(uid);
      }
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace livernet::io
