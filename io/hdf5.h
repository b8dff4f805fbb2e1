// A small RAII layer over the HDF5 C API for livernet's files (weights, checkpoints, datasets, Keras
// imports, test fixtures). Every failure throws livernet::Error with one line that names the file and
// the object; the HDF5 library's own error printing is switched off.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace livernet::io {

struct H5DatasetInfo {
  Shape shape;
  DType dtype = DType::f32;  // the livernet dtype it reads as by default
  std::string type;          // HDF5 type description ("float32", "int64", "string", ...)
  bool numeric = true;
};

class H5File {
 public:
  // Opens an existing file read-only (or read-write). Clear errors for missing / non-HDF5 files.
  static H5File open(const std::string& path, bool writable = false);
  // Creates (truncates) a file.
  static H5File create(const std::string& path);
  H5File(H5File&&) noexcept;
  H5File& operator=(H5File&&) noexcept;
  ~H5File();
  void close();
  const std::string& path() const { return path_; }

  // Whether an object (group or dataset) exists at an absolute or relative path.
  bool exists(const std::string& object) const;
  bool is_dataset(const std::string& object) const;
  // Names of the direct children of a group.
  std::vector<std::string> children(const std::string& group = "/") const;
  // Paths of every dataset in the file (depth-first, sorted within each group), without a leading '/'.
  std::vector<std::string> datasets() const;
  H5DatasetInfo info(const std::string& dataset) const;

  // Reads a numeric dataset into a CPU tensor of dtype `as` (default: the dataset's own type, f64 -> f32).
  // Refuses datasets with more than max_elements elements before allocating anything.
  Tensor read(const std::string& dataset, std::optional<DType> as = std::nullopt,
              std::int64_t max_elements = std::int64_t{1} << 31) const;
  // Reads rows [start, start + count) of dimension 0.
  Tensor read_rows(const std::string& dataset, std::int64_t start, std::int64_t count,
                   std::optional<DType> as = std::nullopt) const;
  // Writes a tensor (any device; bf16/f16 are stored as float32), creating intermediate groups.
  void write(const std::string& dataset, const Tensor& t);
  // A 1-D dataset of strings (fixed or variable length on reading; variable-length UTF-8 on writing).
  std::vector<std::string> read_strings(const std::string& dataset, std::int64_t max_elements = 1 << 26) const;
  void write_strings(const std::string& dataset, const std::vector<std::string>& values);
  // Unlinks a dataset or group (the file keeps its space until rewritten); nothing when it does not exist.
  void remove(const std::string& object);

  // Attributes of an object ("/" for the file). Strings: fixed or variable length, scalar or 1-D.
  bool has_attr(const std::string& object, const std::string& name) const;
  std::string read_string_attr(const std::string& object, const std::string& name) const;
  std::vector<std::string> read_string_list_attr(const std::string& object, const std::string& name) const;
  std::int64_t read_int_attr(const std::string& object, const std::string& name) const;
  void write_string_attr(const std::string& object, const std::string& name, const std::string& value);
  void write_string_list_attr(const std::string& object, const std::string& name, const std::vector<std::string>& v);
  void write_int_attr(const std::string& object, const std::string& name, std::int64_t value);

  void flush();

 private:
  H5File(std::int64_t id, std::string path) : id_(id), path_(std::move(path)) {}
  std::int64_t id_ = -1;
  std::string path_;
};

// Writes a file atomically: `write` fills a temporary file beside `path`, which is then flushed and
// renamed over `path`. On any error the temporary file is removed and `path` is left as it was. A
// symbolic link is written through (the file it points to is replaced, the link stays); a device, FIFO or
// socket (/dev/null, /dev/stdout) is handed to `write` as it is, since there is no file to replace.
void write_file_atomically(const std::string& path, const std::function<void(const std::string& tmp_path)>& write);
// A text file written the same way.
void write_text_file_atomically(const std::string& path, const std::string& text);

}  // namespace livernet::io
