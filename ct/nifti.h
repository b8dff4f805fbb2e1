// NIfTI-1 and NIfTI-2 single-file images (.nii, .nii.gz): our own reader and writer (zlib for gzip).
//
// Geometry: NIfTI world coordinates are RAS+, our Grid is LPS (ct/volume.h), so the x and y rows of the
// affine are negated on reading and on writing. The orientation comes from the sform when
// sform_code > 0, else from the qform when qform_code > 0, else (Analyze style, both codes 0) the
// spacing from pixdim with identity axes and origin 0 (NiftiInfo::no_orientation tells the caller to warn).
// Sheared or non-orthogonal sforms are refused. Either byte order is read (detected from sizeof_hdr);
// gzip is detected from the file's magic bytes, not its name. Writers pick gzip by a ".gz" extension,
// write native byte order and both the qform (with qfac = -1 for left-handed grids) and the sform.
//
// Every error is a livernet::Error whose one-line message names the file and the problem.
#pragma once

#include <string>

#include "ct/volume.h"

namespace livernet::io {

struct NiftiInfo {
  int version = 1;          // 1 or 2
  std::string datatype;     // "int16", "float32", ...
  int qform_code = 0, sform_code = 0;
  double scl_slope = 1, scl_inter = 0;  // as applied: a slope of 0 or non-finite ("not set") reads as 1, 0
  bool used_sform = false;              // the geometry came from the sform (else the qform, or neither)
  bool no_orientation = false;          // both codes 0: axes identity, origin 0, spacing from pixdim
  std::string description;              // descrip, without trailing NULs
};

// A CT volume in HU: any numeric datatype (uint8, int8, int16, uint16, int32, uint32, int64, uint64,
// float32, float64) with scl_slope/scl_inter applied, as float. Non-finite voxels are refused.
Volume read_nifti_volume(const std::string& path, NiftiInfo* info = nullptr);

// A label map: integer datatypes, or float data whose values (after scl) are all integers in int32 range
// (else an error naming the first offending value and voxel).
LabelVolume read_nifti_labels(const std::string& path, NiftiInfo* info = nullptr);

struct NiftiWriteOptions {
  int version = 1;                  // 1 or 2 (dimensions above 32767 need 2)
  std::string datatype = "int16";   // any datatype the readers accept, e.g. "float32", "uint8", "int32"
  int qform_code = 1, sform_code = 1;
  float scl_slope = 1, scl_inter = 0;  // stored = round((value - scl_inter) / scl_slope) (not rounded for floats)
};

// .nii or .nii.gz by the path's extension, written atomically. Values that do not fit the datatype after
// scaling (or are not finite) are refused with the voxel, value and range.
void write_nifti(const std::string& path, const Volume& v, const NiftiWriteOptions& o = {});
void write_nifti(const std::string& path, const LabelVolume& v, const NiftiWriteOptions& o = {});

}  // namespace livernet::io
