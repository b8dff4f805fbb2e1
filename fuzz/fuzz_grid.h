// The small CT grid the DICOM seeds are made on (fuzz/make_corpus.cpp) and the mask / SEG readers are
// given: 8x8 pixels of 0.8 mm, 3 slices 2.5 mm apart, axial.
#pragma once

#include "ct/volume.h"

namespace lnfuzz {

inline livernet::io::Grid ct_grid() {
  livernet::io::Grid g;
  g.size = {8, 8, 3};
  g.spacing = {0.8, 0.8, 2.5};
  g.origin = {-3.2, -3.2, 10};
  return g;
}

}  // namespace lnfuzz
