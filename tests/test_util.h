// Helpers shared by the tests.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/error.h"
#include "core/tensor.h"
#include "data/phantom_volumes.h"
#include "models/config.h"

namespace livernet::testing {

inline bool has_cuda() { return cuda_device_count() > 0; }

// Skips the current test, with the reason, when no CUDA device can run it.
#define LN_REQUIRE_CUDA()                                                                          \
  do {                                                                                             \
    if (!::livernet::testing::has_cuda())                                                          \
      GTEST_SKIP() << "no CUDA device: " << ::livernet::cuda_unavailable_reason();                 \
  } while (0)

// max_i |a_i - b_i| / max(max_i |b_i|, floor): the error relative to the reference's scale.
inline double max_rel_error(const std::vector<double>& a, const std::vector<double>& ref, double floor = 1e-12) {
  double diff = 0, scale = floor;
  const std::size_t n = std::min(a.size(), ref.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (std::isnan(a[i]) != std::isnan(ref[i])) return INFINITY;
    if (std::isnan(ref[i])) continue;
    if (std::isinf(ref[i]) || std::isinf(a[i])) {
      if (a[i] != ref[i]) return INFINITY;
      continue;
    }
    diff = std::max(diff, std::fabs(a[i] - ref[i]));
    scale = std::max(scale, std::fabs(ref[i]));
  }
  return a.size() == ref.size() ? diff / scale : INFINITY;
}

// mse(a, ref) / mse(ref, 0), as ggml's test-backend-ops reports it.
inline double normalized_mse(const std::vector<double>& a, const std::vector<double>& ref) {
  double num = 0, den = 1e-300;
  for (std::size_t i = 0; i < std::min(a.size(), ref.size()); ++i) {
    num += (a[i] - ref[i]) * (a[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return num / den;
}

inline std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }

// A fresh directory per test (named after the process and the test), removed afterwards.
class TempDir {
 public:
  TempDir()
      : path_(std::filesystem::temp_directory_path() /
              ("livernet_test_" + std::to_string(::getpid()) + "_" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string str(const std::string& name = "") const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// The whole file as bytes ("" when it cannot be read).
inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A small two-class model configuration (cyst, metastasis; one hidden layer of 8) for tools tests.
inline ModelConfig two_class_config(int input_size) {
  ModelConfig cfg;
  cfg.head_hidden = {8};
  cfg.num_classes = 2;
  cfg.class_names = {"cyst", "metastasis"};
  cfg.input_size = input_size;
  return cfg;
}

// Small phantom CT volumes (80x72x24 voxels of 0.8x0.8x2.5 mm, 2-3 lesions of 7-12 mm) in `layout`.
inline data::VolumePhantomConfig small_phantoms(const std::string& layout, int patients = 3) {
  data::VolumePhantomConfig c;
  c.patients = patients;
  c.min_lesions = 2;
  c.max_lesions = 3;
  c.size = {80, 72, 24};
  c.spacing = {0.8, 0.8, 2.5};
  c.min_diameter = 7;
  c.max_diameter = 12;
  c.layout = layout;
  c.seed = 7;
  return c;
}

// The rows of a CSV text whose cells hold no comma (what the tools write for ids and numbers).
inline std::vector<std::vector<std::string>> read_csv_text(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> row;
    std::stringstream ls(line);
    std::string cell;
    while (std::getline(ls, cell, ',')) row.push_back(cell);
    rows.push_back(row);
  }
  return rows;
}

// The message of the livernet::Error that fn throws, or "(no error)".
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Why reference data made by a Python oracle (tests/*.py) is missing: the text its maker left in
// `skip_file` (e.g. "PyTorch is not installed"), else `fallback`; "" when `data` exists.
inline std::string missing_reference_data(const std::string& data, const std::string& skip_file,
                                          const std::string& fallback) {
  if (std::filesystem::exists(data)) return "";
  std::ifstream why(skip_file);
  std::string reason((std::istreambuf_iterator<char>(why)), std::istreambuf_iterator<char>());
  return reason.empty() ? fallback : reason;
}

}  // namespace livernet::testing

// Skips the test, with the reason, when the reference data `data` was not made (missing_reference_data).
#define LN_REQUIRE_REFERENCE_DATA(data, skip_file, fallback)                                       \
  do {                                                                                             \
    const std::string ln_missing_ = ::livernet::testing::missing_reference_data(data, skip_file, fallback); \
    if (!ln_missing_.empty()) GTEST_SKIP() << ln_missing_;                                         \
  } while (0)
