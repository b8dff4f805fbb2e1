// DICOM input and output (DCMTK): CT series, mask series (3D-IRCADb MASKS_DICOM), DICOM-SEG, and a
// header-only scan of a folder tree. Volumes come back on a Grid in LPS millimetres (ct/volume.h).
//
// Reading: every regular file directly in a folder is sniffed; files without the "DICM" preamble whose
// first tag is not in group 0002/0008, dot-files and DICOMDIRs are ignored. Anything that looks like
// DICOM but cannot be read (truncated, no pixel data, unsupported format) is an error naming the file.
// Pixel formats: one sample per pixel, MONOCHROME1/2, 8 or 16 bits allocated, signed or unsigned (only
// the BitsStored bits below HighBit+1 are used); JPEG, JPEG-LS and RLE transfer syntaxes are decoded.
// HU = RescaleSlope * stored + RescaleIntercept, per slice (MONOCHROME1 is not inverted: it is a display
// matter). Masks use the stored values (no rescale): mask = stored != 0.
//
// Writing (synthetic data for tests and tools/make_phantoms): Explicit VR Little Endian, one file per
// slice, every file written atomically. Identity fields are written verbatim (SpecificCharacterSet
// ISO_IR 192, so UTF-8 text stays as given).
#pragma once

#include <string>
#include <vector>

#include "ct/volume.h"

namespace livernet::io {

struct DicomSeriesInfo {
  std::string series_uid, study_uid, frame_of_reference_uid, modality;
  std::vector<std::string> files;  // in slice order (k = 0, 1, ...)
};

// The image series in `dir` (not its subfolders) as HU. When the folder holds several image series
// (SEG, RTSTRUCT, SR and other objects without Rows are not counted) it is refused, naming them, unless
// `series_uid` picks one. Slices are sorted by position along the normal (row x column cosines), never by
// file name; the series runs the other way (axes[2] = -normal) when InstanceNumber falls along the normal,
// so a head-to-feet stack keeps its order. Refused: different orientations / sizes / pixel spacings, fewer
// than 2 slices, multiframe images, duplicate positions, a gap of more than 1.5x the median spacing
// ("missing slice(s) between z=... and z=... mm"), other non-uniform spacing, and slices that drift sideways
// (gantry tilt).
// Grid: axes[0] = ImageOrientationPatient[0..2] (the direction in which the column index i grows),
// axes[1] = IOP[3..5], axes[2] = the direction from slice 0 to slice 1, spacing = (PixelSpacing[1],
// PixelSpacing[0], slice spacing), origin = ImagePositionPatient of slice 0.
Volume read_dicom_series(const std::string& dir, DicomSeriesInfo* info = nullptr, const std::string& series_uid = "");

// A folder of mask slices (3D-IRCADb MASKS_DICOM/<structure>/) placed on the CT grid `ct`: every DICOM
// image file in `dir` is matched to the CT slice at its position (within 0.25 x slice spacing), with the
// same size, pixel spacing, orientation and in-plane origin (within 0.1 pixel), else "mask and volume grids
// differ: ..." naming the folder and the file. Two files on one slice are refused. CT slices without a
// mask slice stay 0. mask = stored pixel value != 0.
Mask read_dicom_mask_series(const std::string& dir, const Grid& ct);

struct DicomSegment {
  int number = 0;  // SegmentNumber (1, 2, ...); 0 when writing = "number it by its position"
  std::string label;
  Mask mask;
};

// A DICOM-SEG file (SOP class 1.2.840.10008.5.1.4.1.1.66.4), BINARY or FRACTIONAL (thresholded at half of
// MaximumFractionalValue), uncompressed or RLE: every segment of the SegmentSequence, in its order, with its
// mask on `ct`. Frames are placed by their per-frame PlanePositionSequence; orientation and pixel spacing
// come from the per-frame or shared functional groups and must match `ct` ("mask and volume grids differ:
// ..."); a frame off the CT slices is refused. Several frames of one segment on one slice are OR-ed.
// A segment without frames keeps an empty mask (mask.v empty, mask.grid = ct). The masks of the segments
// with frames may take at most kMaxSegMaskBytes (one byte per CT voxel each); a file needing more is refused
// before anything is allocated.
constexpr std::int64_t kMaxSegMaskBytes = std::int64_t{8} << 30;
std::vector<DicomSegment> read_dicom_seg(const std::string& file, const Grid& ct);

// The key facts of every DICOM file under `dir` (recursively, sorted by path), read without pixel data.
struct DicomFileFacts {
  std::string path, modality, sop_class_uid, series_uid, study_uid;
  std::vector<std::string> referenced_series;  // SEG etc.: ReferencedSeriesSequence > SeriesInstanceUID
};
std::vector<DicomFileFacts> scan_dicom_tree(const std::string& dir);

// Who the synthetic patient is. Empty UIDs are generated (a fresh one per call).
struct DicomIdentity {
  std::string patient_name, patient_id, birth_date, accession_number, institution, study_uid,
      frame_of_reference_uid;
};

// One CT Image Storage file per slice into `dir` (created if needed): int16 stored values with
// RescaleSlope 1 and RescaleIntercept -1024 when the HU (rounded to integers) fit, else a slope/intercept
// that covers their range. IPP of slice k = ct.grid.to_lps(0, 0, k); IOP = axes[0], axes[1]; PixelSpacing
// = (spacing[1], spacing[0]); SliceThickness = spacing[2]; InstanceNumber = k + 1. File names: `name_pattern`
// with "{}" replaced by the slice number, scrambled when `shuffle_names`. Returns the series UID.
std::string write_dicom_series(const std::string& dir, const Volume& ct, const DicomIdentity& who,
                               const std::string& name_pattern = "image_{}", bool shuffle_names = false);

// A mask series (stored 0 / 255) on the positions of mask.grid. modality "OT": Secondary Capture, 8 bits;
// "CT" (as 3D-IRCADb's masks): CT Image Storage, 16 bits unsigned, slope 1, intercept 0.
void write_dicom_mask_series(const std::string& dir, const Mask& mask, const DicomIdentity& who,
                             const std::string& name_pattern = "image_{}", const std::string& modality = "OT");

// A BINARY DICOM-SEG referencing the CT series `ct_series_uid`: one segment per entry (all masks on one
// grid; SegmentNumber = number, or its position + 1 when 0), frames only for slices where the segment is
// non-empty (ordered by segment, then slice), shared PlaneOrientation + PixelMeasures, per-frame
// FrameContent + PlanePosition + SegmentIdentification. A segment with no voxels gets no frames.
void write_dicom_seg(const std::string& path, const std::vector<DicomSegment>& segments,
                     const std::string& ct_series_uid, const DicomIdentity& who);

}  // namespace livernet::io
