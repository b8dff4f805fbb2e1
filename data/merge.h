// Merging lesion datasets from several sources (e.g. 3D-IRCADb-01 for cysts and TCIA Colorectal-Liver-
// Metastases for metastases) into one training set, with what makes the merge safe checked first: the
// same patch size and spacing, class names matched by name, patients kept apart, a source per lesion.
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"

namespace livernet::data {

// The source a sample came from: the part of its `source` entry before the first ':' ("ircadb" of
// "ircadb:livertumor01"); what follows is detail (the structures its mask came from). Empty when unknown.
std::string source_name(const std::string& source_entry);
// Whether `name` can be a source name: 1-40 characters of letters, digits, '_', '-', '.'.
bool valid_source_name(const std::string& name);
// The distinct source names of a dataset's samples, in order of first appearance (empty when it has none).
std::vector<std::string> source_names(const Dataset& d);

struct MergeOptions {
  // One per input: the source name its samples get ("" keeps what the file says; a file without sources
  // gets its file name's stem).
  std::vector<std::string> source_names;
  // The merged class order; every input's classes must be in it. Empty: the classes in order of first
  // appearance (the first input's order, then what later inputs add).
  std::vector<std::string> classes;
  // Patient ids become SOURCE/ID, so equal ids from different sources stay two patients.
  bool prefix_ids = false;
};

// Merges the datasets (each already loaded and valid). Throws Error naming the input and the problem when
// patch sizes or spacings differ, a class is not in `classes`, a patient id is in two inputs (without
// prefix_ids), or a source name is invalid. `notes` gets what the caller should print (e.g. spacing not
// checked for inputs that do not record it).
Dataset merge_datasets(const std::vector<Dataset>& inputs, const MergeOptions& options, std::vector<std::string>* notes);

}  // namespace livernet::data
