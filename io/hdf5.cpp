#define H5_USE_110_API 1
#include "io/hdf5.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <tuple>

#include <sys/stat.h>

#include "core/isolate.h"
#include "kernels/tensor_ops.h"

namespace livernet::io {

namespace {

namespace fs = std::filesystem;

void quiet_hdf5() {
  static std::once_flag once;
  std::call_once(once, [] {
    // No library shutdown at exit: after a failed write (disk full, file-size limit) HDF5 keeps the file
    // open and its exit-time flush of it crashes. Every file we write is closed explicitly before use.
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  });
}

// Owns an HDF5 identifier of any kind.
class Id {
 public:
  Id() = default;
  explicit Id(hid_t id) : id_(id) {}
  Id(Id&& o) noexcept : id_(o.id_) { o.id_ = -1; }
  Id& operator=(Id&& o) noexcept {
    reset();
    id_ = o.id_;
    o.id_ = -1;
    return *this;
  }
  ~Id() { reset(); }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0) {
      switch (H5Iget_type(id_)) {
        case H5I_FILE: H5Fclose(id_); break;
        case H5I_GROUP: H5Gclose(id_); break;
        case H5I_DATASET: H5Dclose(id_); break;
        case H5I_DATASPACE: H5Sclose(id_); break;
        case H5I_DATATYPE: H5Tclose(id_); break;
        case H5I_ATTR: H5Aclose(id_); break;
        case H5I_GENPROP_LST: H5Pclose(id_); break;
        default: H5Oclose(id_); break;
      }
    }
    id_ = -1;
  }

 private:
  hid_t id_ = -1;
};

std::string norm(const std::string& p) { return p.empty() ? "/" : p; }

hid_t mem_type(DType t) {
  switch (t) {
    case DType::f32: return H5T_NATIVE_FLOAT;
    case DType::i32: return H5T_NATIVE_INT32;
    case DType::i64: return H5T_NATIVE_INT64;
    case DType::u8: return H5T_NATIVE_UINT8;
    default: return -1;
  }
}

// A small file may declare a huge dataset whose chunks were never written (HDF5 would return fill values):
// true when it declares more than 64 MiB and stores less than 1/1024 of it (refused before allocating).
bool declared_but_not_stored(hid_t dataset, double* declared_out = nullptr, double* stored_out = nullptr) {
  const Id space(H5Dget_space(dataset)), type(H5Dget_type(dataset));
  const double declared = static_cast<double>(H5Sget_simple_extent_npoints(space.get())) * static_cast<double>(H5Tget_size(type.get()));
  const double stored = static_cast<double>(H5Dget_storage_size(dataset));
  if (declared_out) *declared_out = declared;
  if (stored_out) *stored_out = stored;
  return declared > (1 << 26) && stored * 1024 < declared;
}

}  // namespace

#define LN_H5_FAIL(...) LN_FAIL(path_, ": ", __VA_ARGS__)

namespace {

// HDF5 1.10's reader of global heap collections (where variable-length strings live) trusts their object
// headers: a free-space object of size 0 makes it loop forever, an object larger than its collection makes
// it copy past the end of its buffer (crashes found by fuzz/fuzz_dataset_h5 and fuzz/fuzz_weights). Such
// collections are looked for before the library parses anything: a "GCOL" signature, version 1, a size
// that fits the file (8-byte lengths, as livernet and h5py write), then the objects walked as the library
// walks them. Returns "" or what is wrong (with the collection's offset).
std::string damaged_global_heap(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::int64_t file_size = in.tellg();
  auto read_at = [&](std::int64_t at, unsigned char* dst, std::size_t n) {
    in.clear();
    in.seekg(at);
    in.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(n));
    return static_cast<std::size_t>(in.gcount()) == n;
  };
  auto le = [](const unsigned char* p, int n) {
    std::uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  };
  constexpr std::int64_t kHeader = 16, kObjHeader = 16;
  std::vector<unsigned char> buf(std::size_t{1} << 20);
  for (std::int64_t base = 0; base < file_size; base += static_cast<std::int64_t>(buf.size()) - 3) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::int64_t>(file_size - base, static_cast<std::int64_t>(buf.size())));
    if (!read_at(base, buf.data(), n)) return "";
    for (std::size_t i = 0; i + 4 <= n; ++i) {
      if (std::memcmp(buf.data() + i, "GCOL", 4) != 0) continue;
      const std::int64_t at = base + static_cast<std::int64_t>(i);
      unsigned char h[kHeader];
      if (!read_at(at, h, sizeof h) || h[4] != 1) continue;
      const std::uint64_t size = le(h + 8, 8);
      if (size < static_cast<std::uint64_t>(kHeader + kObjHeader) || size > static_cast<std::uint64_t>(file_size - at)) continue;
      const std::int64_t end = at + static_cast<std::int64_t>(size);
      for (std::int64_t p = at + kHeader; p + kObjHeader <= end;) {
        unsigned char o[kObjHeader];
        if (!read_at(p, o, sizeof o)) break;
        const std::uint64_t idx = le(o, 2), obj_size = le(o + 8, 8);
        const std::uint64_t room = static_cast<std::uint64_t>(end - p);
        if (idx > 0 && (obj_size > room || kObjHeader + ((obj_size + 7) & ~std::uint64_t{7}) > room))
          return str_cat("the global heap collection at byte ", at, " holds an object of ", obj_size, " bytes, more than its ",
                         size, " bytes");
        if (idx == 0 && (obj_size == 0 || obj_size > room))
          return str_cat("the global heap collection at byte ", at, " has a free space of ", obj_size, " bytes");
        p += idx > 0 ? kObjHeader + static_cast<std::int64_t>((obj_size + 7) & ~std::uint64_t{7}) : static_cast<std::int64_t>(obj_size);
      }
      in.clear();
    }
    if (n < buf.size()) break;
  }
  return "";
}

// The file's global heaps checked here, then the whole file read by a child process (defined with the
// reading helpers below); once per (device, inode, size, modification time).
void check_untrusted(const std::string& path);

}  // namespace

H5File H5File::open(const std::string& path, bool writable) {
  quiet_hdf5();
  std::error_code ec;
  LN_CHECK(fs::exists(path, ec), path, ": no such file");
  LN_CHECK(fs::is_regular_file(path, ec), path, ": not a regular file");
  LN_CHECK(H5Fis_hdf5(path.c_str()) > 0, path, ": not an HDF5 file (or truncated)");
  check_untrusted(path);  // once per file version and process
  const hid_t id = H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT);
  LN_CHECK(id >= 0, path, ": cannot open as HDF5 (damaged or truncated file?)");
  return H5File(id, path);
}

H5File H5File::create(const std::string& path) {
  quiet_hdf5();
  const hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  LN_CHECK(id >= 0, path, ": cannot create the file (does the directory exist and is it writable?)");
  return H5File(id, path);
}

H5File::H5File(H5File&& o) noexcept : id_(o.id_), path_(std::move(o.path_)) { o.id_ = -1; }
H5File& H5File::operator=(H5File&& o) noexcept {
  close();
  id_ = o.id_;
  path_ = std::move(o.path_);
  o.id_ = -1;
  return *this;
}
H5File::~H5File() { close(); }

void H5File::close() {
  if (id_ >= 0) H5Fclose(id_);
  id_ = -1;
}

void H5File::flush() {
  if (id_ >= 0 && H5Fflush(id_, H5F_SCOPE_GLOBAL) < 0) LN_H5_FAIL("flush failed (disk full?)");
}

bool H5File::exists(const std::string& object) const {
  const std::string p = norm(object);
  if (p == "/") return true;
  // Check each prefix: H5Lexists fails on a path whose intermediate groups are missing.
  std::size_t pos = p[0] == '/' ? 1 : 0;
  while (true) {
    const std::size_t next = p.find('/', pos);
    const std::string prefix = p.substr(0, next);
    if (H5Lexists(id_, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (next == std::string::npos) break;
    Id o(H5Oopen(id_, prefix.c_str(), H5P_DEFAULT));
    if (!o.ok() || H5Iget_type(o.get()) != H5I_GROUP) return false;
    pos = next + 1;
  }
  Id o(H5Oopen(id_, p.c_str(), H5P_DEFAULT));
  return o.ok();
}

bool H5File::is_dataset(const std::string& object) const {
  if (!exists(object)) return false;
  Id o(H5Oopen(id_, norm(object).c_str(), H5P_DEFAULT));
  return o.ok() && H5Iget_type(o.get()) == H5I_DATASET;
}

std::vector<std::string> H5File::children(const std::string& group) const {
  Id g(H5Gopen2(id_, norm(group).c_str(), H5P_DEFAULT));
  if (!g.ok()) LN_H5_FAIL("no group '", group, "'");
  std::vector<std::string> names;
  auto cb = [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->push_back(name);
    return 0;
  };
  if (H5Literate(g.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, cb, &names) < 0) LN_H5_FAIL("cannot list '", group, "'");
  return names;
}

std::vector<std::string> H5File::datasets() const {
  std::vector<std::string> out;
  // Hard links can make a group reachable twice, or form cycles (a group holding its parent): each group is
  // walked once (a second link to it is refused), and no deeper than any real file nests.
  std::set<haddr_t> seen;
  {
    Id root(H5Oopen(id_, "/", H5P_DEFAULT));
    H5O_info_t oi{};
    if (root.ok() && H5Oget_info2(root.get(), &oi, H5O_INFO_BASIC) >= 0) seen.insert(oi.addr);
  }
  std::function<void(const std::string&, int)> walk = [&](const std::string& group, int depth) {
    if (depth > 32) LN_H5_FAIL("groups nested more than 32 deep (", group.substr(0, 100), "...)");
    for (const std::string& name : children(group)) {
      const std::string full = group == "/" ? name : group + "/" + name;
      Id o(H5Oopen(id_, full.c_str(), H5P_DEFAULT));
      if (!o.ok()) continue;
      const H5I_type_t t = H5Iget_type(o.get());
      if (t == H5I_DATASET) {
        out.push_back(full);
      } else if (t == H5I_GROUP) {
        H5O_info_t oi{};
        if (H5Oget_info2(o.get(), &oi, H5O_INFO_BASIC) < 0) LN_H5_FAIL("cannot inspect group '", full.substr(0, 100), "'");
        if (!seen.insert(oi.addr).second)
          LN_H5_FAIL("group '", full.substr(0, 100), "' is a second link to a group already seen (a cycle of links?)");
        walk(full, depth + 1);
      }
    }
  };
  walk("/", 0);
  return out;
}

H5DatasetInfo H5File::info(const std::string& dataset) const {
  if (!exists(dataset)) LN_H5_FAIL("no dataset '", dataset, "'");
  Id d(H5Dopen2(id_, dataset.c_str(), H5P_DEFAULT));
  if (!d.ok()) LN_H5_FAIL("'", dataset, "' is not a dataset");
  Id space(H5Dget_space(d.get()));
  Id type(H5Dget_type(d.get()));
  const int nd = H5Sget_simple_extent_ndims(space.get());
  if (nd < 0 || nd > Shape::kMaxDims) LN_H5_FAIL("dataset '", dataset, "' has an unsupported number of dimensions");
  hsize_t dims[Shape::kMaxDims] = {};
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  H5DatasetInfo info;
  for (int i = 0; i < nd; ++i) {
    if (dims[i] > static_cast<hsize_t>(INT64_MAX / 2)) LN_H5_FAIL("dataset '", dataset, "' declares an absurd extent");
    info.shape.push_back(static_cast<std::int64_t>(dims[i]));
  }
  const H5T_class_t cls = H5Tget_class(type.get());
  const std::size_t size = H5Tget_size(type.get());
  if (cls == H5T_FLOAT) {
    info.dtype = DType::f32;
    info.type = "float" + std::to_string(size * 8);
  } else if (cls == H5T_INTEGER) {
    const bool is_signed = H5Tget_sign(type.get()) == H5T_SGN_2;
    info.type = std::string(is_signed ? "int" : "uint") + std::to_string(size * 8);
    info.dtype = (!is_signed && size == 1) ? DType::u8 : (size <= 4 && !(size == 4 && !is_signed)) ? DType::i32 : DType::i64;
  } else if (cls == H5T_STRING) {
    info.numeric = false;
    info.type = "string";
  } else {
    info.numeric = false;
    info.type = "unsupported type class " + std::to_string(static_cast<int>(cls));
  }
  return info;
}

Tensor H5File::read(const std::string& dataset, std::optional<DType> as, std::int64_t max_elements) const {
  const H5DatasetInfo inf = info(dataset);
  if (!inf.numeric) LN_H5_FAIL("dataset '", dataset, "' is ", inf.type, ", not numeric");
  if (inf.shape.numel() > max_elements)
    LN_H5_FAIL("dataset '", dataset, "' declares ", inf.shape.numel(), " elements (", inf.shape.str(),
               "), more than the ", max_elements, " allowed");
  const DType want = as.value_or(inf.dtype);
  const DType load = mem_type(want) >= 0 ? want : DType::f32;
  if (inf.shape.numel() > 0) {
    Id d(H5Dopen2(id_, dataset.c_str(), H5P_DEFAULT));
    double declared = 0, stored = 0;
    if (declared_but_not_stored(d.get(), &declared, &stored))
      LN_H5_FAIL("dataset '", dataset, "' declares ", inf.shape.str(), " (", static_cast<long long>(declared / (1 << 20)),
                 " MiB) but the file stores ", static_cast<long long>(stored / (1 << 20)), " MiB of it (corrupt or truncated file)");
  }
  Tensor t = Tensor::empty(inf.shape, load);
  if (t.numel() > 0) {
    Id d(H5Dopen2(id_, dataset.c_str(), H5P_DEFAULT));
    if (H5Dread(d.get(), mem_type(load), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) < 0)
      LN_H5_FAIL("cannot read dataset '", dataset, "' (", inf.type, ") as ", dtype_name(load), " (truncated file?)");
  }
  return load == want ? t : to_dtype(t, want);
}

Tensor H5File::read_rows(const std::string& dataset, std::int64_t start, std::int64_t count,
                         std::optional<DType> as) const {
  const H5DatasetInfo inf = info(dataset);
  if (!inf.numeric) LN_H5_FAIL("dataset '", dataset, "' is ", inf.type, ", not numeric");
  if (inf.shape.size() < 1 || start < 0 || count < 0 || start + count > inf.shape[0])
    LN_H5_FAIL("rows [", start, ", ", start + count, ") out of range for dataset '", dataset, "' ", inf.shape.str());
  const DType want = as.value_or(inf.dtype);
  const DType load = mem_type(want) >= 0 ? want : DType::f32;
  Shape s = inf.shape;
  s[0] = count;
  Tensor t = Tensor::empty(s, load);
  if (t.numel() > 0) {
    Id d(H5Dopen2(id_, dataset.c_str(), H5P_DEFAULT));
    Id fspace(H5Dget_space(d.get()));
    std::vector<hsize_t> off(static_cast<std::size_t>(s.size()), 0), cnt(static_cast<std::size_t>(s.size()));
    off[0] = static_cast<hsize_t>(start);
    for (int i = 0; i < s.size(); ++i) cnt[i] = static_cast<hsize_t>(s[i]);
    H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, off.data(), nullptr, cnt.data(), nullptr);
    Id mspace(H5Screate_simple(s.size(), cnt.data(), nullptr));
    if (H5Dread(d.get(), mem_type(load), mspace.get(), fspace.get(), H5P_DEFAULT, t.data_ptr()) < 0)
      LN_H5_FAIL("cannot read rows of dataset '", dataset, "' (truncated file?)");
  }
  return load == want ? t : to_dtype(t, want);
}

namespace {
// Link-creation property list that creates missing intermediate groups.
Id intermediate_groups() {
  Id lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  return lcpl;
}
}  // namespace

void H5File::write(const std::string& dataset, const Tensor& t_in) {
  LN_CHECK(t_in.defined(), path_, ": writing an undefined tensor to '", dataset, "'");
  Tensor t = t_in.to(Device::cpu());
  if (t.dtype() == DType::bf16 || t.dtype() == DType::f16) t = to_dtype(t, DType::f32);
  const hid_t mt = mem_type(t.dtype());
  if (exists(dataset)) H5Ldelete(id_, dataset.c_str(), H5P_DEFAULT);
  std::vector<hsize_t> dims;
  for (std::int64_t d : t.shape()) dims.push_back(static_cast<hsize_t>(d));
  Id space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  const hid_t file_type = t.dtype() == DType::f32 ? H5T_IEEE_F32LE
                          : t.dtype() == DType::i32 ? H5T_STD_I32LE
                          : t.dtype() == DType::i64 ? H5T_STD_I64LE
                                                    : H5T_STD_U8LE;
  Id lcpl = intermediate_groups();
  Id d(H5Dcreate2(id_, dataset.c_str(), file_type, space.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!d.ok()) LN_H5_FAIL("cannot create dataset '", dataset, "'");
  if (t.numel() > 0 && H5Dwrite(d.get(), mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) < 0)
    LN_H5_FAIL("cannot write dataset '", dataset, "' (disk full?)");
}

namespace {
// Reads `n` strings of a dataset or attribute whose file type is `type` via `reader(memtype, buffer)`.
std::vector<std::string> read_string_values(hid_t type, std::size_t n, hid_t space,
                                            const std::function<herr_t(hid_t, void*)>& reader, bool* ok) {
  std::vector<std::string> out;
  *ok = false;
  if (H5Tget_class(type) != H5T_STRING) return out;
  Id mt(H5Tcopy(H5T_C_S1));
  H5Tset_cset(mt.get(), H5Tget_cset(type));
  if (H5Tis_variable_str(type) > 0) {
    H5Tset_size(mt.get(), H5T_VARIABLE);
    std::vector<char*> buf(n, nullptr);
    if (n > 0 && reader(mt.get(), buf.data()) < 0) return out;
    for (char* s : buf) out.emplace_back(s ? s : "");
    if (n > 0) H5Dvlen_reclaim(mt.get(), space, H5P_DEFAULT, buf.data());
  } else {
    const std::size_t len = H5Tget_size(type);
    H5Tset_size(mt.get(), len);
    H5Tset_strpad(mt.get(), H5Tget_strpad(type));  // NULLPAD (numpy 'S') must not become NULLTERM: that drops a character
    std::vector<char> buf(n * len + 1, '\0');
    if (n > 0 && reader(mt.get(), buf.data()) < 0) return out;
    for (std::size_t i = 0; i < n; ++i) {
      std::string s(buf.data() + i * len, len);
      const std::size_t end = s.find('\0');
      if (end != std::string::npos) s.resize(end);
      while (!s.empty() && s.back() == ' ') s.pop_back();
      out.push_back(s);
    }
  }
  *ok = true;
  return out;
}

Id vlen_utf8() {
  Id t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}
}  // namespace

// ---- Checking a file in a child process before this process parses it ----
//
// libhdf5 1.10 (Debian 12) can crash, hang or allocate gigabytes on a crafted file (fuzz/regressions/*/libhdf5-*.h5).
// Before a file is opened here, a forked child opens it and touches what any reader of ours could touch:
// every group, link, object header, attribute (opened by position and by name, values read, variable-length
// strings included), a lookup of an absent name in each, and every dataset (read whole through each memory
// type our readers use, or by rows when too large to hold at once). If the child crashes, hangs or runs out of its memory budget, the file is
// refused with one line; otherwise this process reads it. libhdf5 is deterministic, so what the child survived
// this process survives -- as far as the child took the same paths through the library, which is why it
// mirrors our readers' calls and not just the file's contents (a heap-use-after-free that CI's fuzzer met in
// this process on 2026-11-30, after the child had read every dataset as doubles by rows).
namespace {

// Whether the error stack holds "out of memory" (a failed allocation under the child's memory budget).
bool stack_says_out_of_memory() {
  bool oom = false;
  auto cb = [](unsigned, const H5E_error2_t* e, void* data) -> herr_t {
    if (e->maj_num == H5E_RESOURCE || e->min_num == H5E_CANTALLOC || e->min_num == H5E_NOSPACE)
      *static_cast<bool*>(data) = true;
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, cb, &oom);
  return oom;
}

// A name no file of ours holds, looked up in every group and object.
constexpr const char* kAbsentName = "livernet-absent-name";

struct Prober {
  bool out_of_memory = false;
  bool verbose = false;
  std::set<haddr_t> seen;

  // After a failed call: a failed allocation leaves ENOMEM in errno (malloc and mmap set it; libhdf5 does
  // not always put it on its error stack, e.g. in variable-length conversions).
  void failed() {
    if (verbose) H5Eprint2(H5E_DEFAULT, stderr);
    if (errno == ENOMEM || stack_says_out_of_memory()) out_of_memory = true;
    errno = 0;
    H5Eclear2(H5E_DEFAULT);
  }
  template <typename T>
  bool ok(T r) {
    if (r < 0) failed();
    return r >= 0;
  }

  // Reads `npoints` values of `type` through `reader` as our readers would: strings as strings, numbers as
  // native doubles (every integer/float conversion path), in blocks of rows for datasets.
  void read_values(hid_t type, hssize_t npoints, const std::function<herr_t(hid_t, void*)>& reader, hid_t space) {
    if (npoints <= 0) return;
    const H5T_class_t cls = H5Tget_class(type);
    if (cls == H5T_STRING) {
      if (npoints > (1 << 26)) return;
      bool read_ok = false;
      read_string_values(type, static_cast<std::size_t>(npoints), space, reader, &read_ok);
      if (!read_ok) failed();
    } else if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
      if (npoints > (1 << 24)) return;  // attributes only; datasets go through read_dataset
      std::vector<double> v(static_cast<std::size_t>(npoints));
      ok(reader(H5T_NATIVE_DOUBLE, v.data()));
    }
  }

  void attributes(hid_t obj) {
    H5O_info_t oi{};
    if (!ok(H5Oget_info2(obj, &oi, H5O_INFO_NUM_ATTRS))) return;
    ok(H5Aexists(obj, kAbsentName));  // a lookup that fails, as ours do for optional attributes
    for (hsize_t i = 0; i < oi.num_attrs && i < 4096; ++i) {
      Id a(H5Aopen_by_idx(obj, ".", H5_INDEX_CRT_ORDER, H5_ITER_INC, i, H5P_DEFAULT, H5P_DEFAULT));
      if (!a.ok()) a = Id(H5Aopen_by_idx(obj, ".", H5_INDEX_NAME, H5_ITER_INC, i, H5P_DEFAULT, H5P_DEFAULT));
      if (!a.ok()) {
        failed();
        continue;
      }
      // Our readers open attributes by name (a lookup in the name index, which opening by position skips).
      char name[256] = {};
      const htri_t named = H5Aget_name(a.get(), sizeof name, name) >= 0 ? H5Aexists(obj, name) : 0;
      if (ok(named) && named > 0) {
        Id by_name(H5Aopen_by_name(obj, ".", name, H5P_DEFAULT, H5P_DEFAULT));
        if (by_name.ok()) a = std::move(by_name);
        else failed();
      }
      Id type(H5Aget_type(a.get()));
      Id space(H5Aget_space(a.get()));
      if (!type.ok() || !space.ok()) {
        failed();
        continue;
      }
      read_values(type.get(), H5Sget_simple_extent_npoints(space.get()),
                  [&](hid_t mt, void* buf) { return H5Aread(a.get(), mt, buf); }, space.get());
    }
  }

  void dataset(hid_t d) {
    attributes(d);
    Id type(H5Dget_type(d));
    Id space(H5Dget_space(d));
    if (!type.ok() || !space.ok()) return failed();
    // What H5File::read refuses before reading (declared but not stored, or too many elements) is not read.
    if (H5Sget_simple_extent_npoints(space.get()) > (std::int64_t{1} << 31) || declared_but_not_stored(d)) return;
    const H5T_class_t cls = H5Tget_class(type.get());
    const int nd = H5Sget_simple_extent_ndims(space.get());
    if (nd < 0 || nd > 32) return failed();
    hsize_t dims[32] = {};
    H5Sget_simple_extent_dims(space.get(), dims, nullptr);
    if (cls == H5T_STRING || nd == 0) {
      return read_values(type.get(), H5Sget_simple_extent_npoints(space.get()),
                         [&](hid_t mt, void* buf) { return H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf); },
                         space.get());
    }
    if (cls != H5T_INTEGER && cls != H5T_FLOAT) return;  // our readers refuse other classes before reading
    const hssize_t npoints = H5Sget_simple_extent_npoints(space.get());
    if (npoints <= 0) return;
    // The memory types and selections our readers use, because libhdf5 takes a different path for each: a
    // read without conversion goes straight into the caller's buffer, one with conversion through its own
    // buffers, a whole-dataset read and a read by rows walk the chunks differently. H5File::read reads the
    // whole dataset as float32 (weights, images), as int64 (labels) or as its own type; read_rows reads rows.
    std::vector<hid_t> types{H5T_NATIVE_FLOAT};
    Id native;
    if (cls == H5T_INTEGER && npoints <= (1 << 20)) {
      types.push_back(H5T_NATIVE_INT64);
      native = Id(H5Tget_native_type(type.get(), H5T_DIR_ASCEND));
      if (native.ok() && H5Tequal(native.get(), H5T_NATIVE_INT64) <= 0) types.push_back(native.get());
    }
    std::vector<std::int64_t> buf;  // 8-byte elements: room for any of the types above
    if (npoints <= (1 << 24)) {
      buf.resize(static_cast<std::size_t>(npoints));
      for (hid_t mt : types) ok(H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()));
      return;
    }
    // Larger than the child's memory allows at once: rows of dimension 0 in blocks of at most 8 Mi values,
    // as float32 (as H5File::read_rows reads).
    double row = 1;
    for (int i = 1; i < nd; ++i) row *= static_cast<double>(dims[i]);
    if (row > 0 && dims[0] > 0 && row <= double(1 << 23)) {  // a longer row is more than any reader of ours accepts
      const hsize_t rows = std::max<hsize_t>(1, static_cast<hsize_t>(double(1 << 23) / row));
      for (hsize_t start = 0; start < dims[0]; start += rows) {
        hsize_t off[32] = {}, cnt[32] = {};
        off[0] = start;
        cnt[0] = std::min(rows, dims[0] - start);
        for (int i = 1; i < nd; ++i) cnt[i] = dims[i];
        buf.resize(static_cast<std::size_t>(static_cast<double>(cnt[0]) * row));
        Id fspace(H5Dget_space(d));
        if (!ok(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, off, nullptr, cnt, nullptr))) break;
        Id mspace(H5Screate_simple(nd, cnt, nullptr));
        if (!ok(H5Dread(d, H5T_NATIVE_FLOAT, mspace.get(), fspace.get(), H5P_DEFAULT, buf.data()))) break;
      }
    }
  }

  void group(hid_t g, int depth) {
    attributes(g);
    if (depth > 32) return;
    std::vector<std::string> names;
    auto cb = [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
      auto* v = static_cast<std::vector<std::string>*>(data);
      if (v->size() >= 100000) return 1;
      v->push_back(name);
      return 0;
    };
    ok(H5Lexists(g, kAbsentName, H5P_DEFAULT));  // a lookup that fails, as ours do for optional datasets
    if (!ok(H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, nullptr, cb, &names))) {
      // Partly listed groups are still walked.
    }
    for (const std::string& name : names) {
      ok(H5Lexists(g, name.c_str(), H5P_DEFAULT));
      Id o(H5Oopen(g, name.c_str(), H5P_DEFAULT));
      if (!o.ok()) {
        failed();
        continue;
      }
      H5O_info_t oi{};
      if (!ok(H5Oget_info2(o.get(), &oi, H5O_INFO_BASIC))) continue;
      if (!seen.insert(oi.addr).second) continue;
      const H5I_type_t t = H5Iget_type(o.get());
      if (t == H5I_GROUP) group(o.get(), depth + 1);
      else if (t == H5I_DATASET) dataset(o.get());
    }
  }
};

// In the child: "" when the walk finished, "out-of-memory" when an allocation failed on the way.
std::string probe_hdf5(const std::string& path, bool verbose) {
  errno = 0;
  const hid_t fid = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (fid < 0) return errno == ENOMEM || stack_says_out_of_memory() ? "out-of-memory" : "";
  Id f(fid);
  Prober p;
  p.verbose = verbose;
  {
    Id root(H5Oopen(fid, "/", H5P_DEFAULT));
    if (root.ok()) {
      H5O_info_t oi{};
      if (H5Oget_info2(root.get(), &oi, H5O_INFO_BASIC) >= 0) p.seen.insert(oi.addr);
      p.group(root.get(), 0);
    }
  }
  return p.out_of_memory ? "out-of-memory" : "";
}

// LIVERNET_HDF5_CHECK: unset/"on" (check), "off"/"0" (trusted files: no child process), "verbose" (the
// child's HDF5 error stacks on stderr).
std::string hdf5_check_mode() {
  const char* env = std::getenv("LIVERNET_HDF5_CHECK");
  if (!env || !*env) return "on";
  return std::strcmp(env, "0") == 0 ? "off" : env;
}

// Files already checked by this process (device, inode, size, modification time): reopening a file does
// not check it again unless it changed.
using FileKey = std::tuple<std::uint64_t, std::uint64_t, std::int64_t, std::int64_t, std::int64_t>;
std::optional<FileKey> file_key(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileKey{st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
}

void check_untrusted(const std::string& path) {
  static std::mutex mu;
  static std::set<FileKey> checked;
  const std::optional<FileKey> key = file_key(path);
  {
    std::lock_guard<std::mutex> lock(mu);
    if (key && checked.count(*key)) return;
  }
  const std::string bad_heap = damaged_global_heap(path);
  LN_CHECK(bad_heap.empty(), path, ": damaged HDF5 file (", bad_heap, ")");
  const std::string mode = hdf5_check_mode();
  const bool verbose = mode == "verbose";
  if (mode == "off") {
    std::lock_guard<std::mutex> lock(mu);
    if (key) checked.insert(*key);
    return;
  }
  const double size_mb = key ? static_cast<double>(std::get<2>(*key)) / (1 << 20) : 0;
  IsolateLimits limits;
  limits.timeout_s = 60 + size_mb / 20;  // 20 MB/s: a slow network disk
  // Reading in blocks of 64 MiB, a sound file needs far less; libhdf5 allocates what crafted sizes say.
  limits.memory_budget_bytes = std::int64_t{1} << 30;
  limits.keep_stderr = verbose;
  const IsolatedRun run = run_isolated([&] { return probe_hdf5(path, verbose); }, limits);
  switch (run.outcome) {
    case IsolatedRun::Outcome::finished:
      LN_CHECK(run.report.empty(), path, ": damaged HDF5 file (reading its structure needs more than ",
               limits.memory_budget_bytes >> 30, " GiB of memory: crafted sizes?)");
      break;
    case IsolatedRun::Outcome::crashed:
      LN_FAIL(path, ": damaged HDF5 file (the HDF5 library crashed reading it: ", run.detail, ")");
    case IsolatedRun::Outcome::timed_out:
      LN_FAIL(path, ": damaged HDF5 file (the HDF5 library did not finish reading it: ", run.detail, ")");
    case IsolatedRun::Outcome::not_started:
      LN_FAIL(path, ": cannot check the file in a child process (", run.detail,
              "); LIVERNET_HDF5_CHECK=off reads it without the check");
  }
  std::lock_guard<std::mutex> lock(mu);
  if (key) checked.insert(*key);
}

}  // namespace

std::vector<std::string> H5File::read_strings(const std::string& dataset, std::int64_t max_elements) const {
  if (!exists(dataset)) LN_H5_FAIL("no dataset '", dataset, "'");
  Id d(H5Dopen2(id_, dataset.c_str(), H5P_DEFAULT));
  if (!d.ok()) LN_H5_FAIL("'", dataset, "' is not a dataset");
  Id space(H5Dget_space(d.get()));
  Id type(H5Dget_type(d.get()));
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0 || n > max_elements) LN_H5_FAIL("dataset '", dataset, "' declares ", n, " strings, more than allowed");
  bool ok = false;
  auto v = read_string_values(type.get(), static_cast<std::size_t>(n), space.get(),
                              [&](hid_t mt, void* buf) { return H5Dread(d.get(), mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf); },
                              &ok);
  if (!ok) LN_H5_FAIL("dataset '", dataset, "' is not a string dataset (or cannot be read)");
  return v;
}

void H5File::remove(const std::string& object) {
  if (exists(object) && H5Ldelete(id_, norm(object).c_str(), H5P_DEFAULT) < 0) LN_H5_FAIL("cannot remove '", object, "'");
}

void H5File::write_strings(const std::string& dataset, const std::vector<std::string>& values) {
  if (exists(dataset)) H5Ldelete(id_, dataset.c_str(), H5P_DEFAULT);
  const hsize_t n = values.size();
  Id space(H5Screate_simple(1, &n, nullptr));
  Id type = vlen_utf8();
  Id lcpl = intermediate_groups();
  Id d(H5Dcreate2(id_, dataset.c_str(), type.get(), space.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!d.ok()) LN_H5_FAIL("cannot create dataset '", dataset, "'");
  std::vector<const char*> ptrs;
  for (const auto& s : values) ptrs.push_back(s.c_str());
  if (n > 0 && H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
    LN_H5_FAIL("cannot write dataset '", dataset, "' (disk full?)");
}

bool H5File::has_attr(const std::string& object, const std::string& name) const {
  if (!exists(object)) return false;
  return H5Aexists_by_name(id_, norm(object).c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

std::vector<std::string> H5File::read_string_list_attr(const std::string& object, const std::string& name) const {
  if (!has_attr(object, name)) LN_H5_FAIL("'", object, "' has no attribute '", name, "'");
  Id a(H5Aopen_by_name(id_, norm(object).c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT));
  Id space(H5Aget_space(a.get()));
  Id type(H5Aget_type(a.get()));
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0 || n > (1 << 24)) LN_H5_FAIL("attribute '", name, "' of '", object, "' is too large");
  if (n == 0) return {};  // e.g. Keras' empty weight_names, whatever its element type
  bool ok = false;
  auto v = read_string_values(type.get(), static_cast<std::size_t>(n), space.get(),
                              [&](hid_t mt, void* buf) { return H5Aread(a.get(), mt, buf); }, &ok);
  if (!ok) LN_H5_FAIL("attribute '", name, "' of '", object, "' is not a string");
  return v;
}

std::string H5File::read_string_attr(const std::string& object, const std::string& name) const {
  auto v = read_string_list_attr(object, name);
  if (v.size() != 1) LN_H5_FAIL("attribute '", name, "' of '", object, "' holds ", v.size(), " strings, expected one");
  return v[0];
}

std::int64_t H5File::read_int_attr(const std::string& object, const std::string& name) const {
  if (!has_attr(object, name)) LN_H5_FAIL("'", object, "' has no attribute '", name, "'");
  Id a(H5Aopen_by_name(id_, norm(object).c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT));
  Id type(H5Aget_type(a.get()));
  Id space(H5Aget_space(a.get()));
  if (H5Tget_class(type.get()) != H5T_INTEGER || H5Sget_simple_extent_npoints(space.get()) != 1)
    LN_H5_FAIL("attribute '", name, "' of '", object, "' is not an integer");
  std::int64_t v = 0;
  if (H5Aread(a.get(), H5T_NATIVE_INT64, &v) < 0) LN_H5_FAIL("cannot read attribute '", name, "' of '", object, "'");
  return v;
}

namespace {
void delete_attr_if_exists(hid_t file, const std::string& object, const std::string& name) {
  if (H5Aexists_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT) > 0)
    H5Adelete_by_name(file, object.c_str(), name.c_str(), H5P_DEFAULT);
}
}  // namespace

void H5File::write_string_attr(const std::string& object, const std::string& name, const std::string& value) {
  const std::string o = norm(object);
  if (!exists(o)) LN_H5_FAIL("no object '", object, "' to attach attribute '", name, "' to");
  delete_attr_if_exists(id_, o, name);
  Id space(H5Screate(H5S_SCALAR));
  Id type = vlen_utf8();
  Id a(H5Acreate_by_name(id_, o.c_str(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  const char* p = value.c_str();
  if (!a.ok() || H5Awrite(a.get(), type.get(), &p) < 0) LN_H5_FAIL("cannot write attribute '", name, "'");
}

void H5File::write_string_list_attr(const std::string& object, const std::string& name,
                                    const std::vector<std::string>& v) {
  const std::string o = norm(object);
  if (!exists(o)) LN_H5_FAIL("no object '", object, "' to attach attribute '", name, "' to");
  delete_attr_if_exists(id_, o, name);
  const hsize_t n = v.size();
  Id space(H5Screate_simple(1, &n, nullptr));
  Id type = vlen_utf8();
  Id a(H5Acreate_by_name(id_, o.c_str(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  std::vector<const char*> ptrs;
  for (const auto& s : v) ptrs.push_back(s.c_str());
  if (!a.ok() || (n > 0 && H5Awrite(a.get(), type.get(), ptrs.data()) < 0))
    LN_H5_FAIL("cannot write attribute '", name, "'");
}

void H5File::write_int_attr(const std::string& object, const std::string& name, std::int64_t value) {
  const std::string o = norm(object);
  if (!exists(o)) LN_H5_FAIL("no object '", object, "' to attach attribute '", name, "' to");
  delete_attr_if_exists(id_, o, name);
  Id space(H5Screate(H5S_SCALAR));
  Id a(H5Acreate_by_name(id_, o.c_str(), name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (!a.ok() || H5Awrite(a.get(), H5T_NATIVE_INT64, &value) < 0) LN_H5_FAIL("cannot write attribute '", name, "'");
}

void write_file_atomically(const std::string& path_in, const std::function<void(const std::string&)>& write) {
  std::error_code ec;
  // A symbolic link is written through (its target replaced, the link kept), and a device, FIFO or socket
  // (-o /dev/null, /dev/stdout, a pipe) is written in place: renaming over it would replace, as root, the
  // system's /dev/null with a regular file.
  const fs::file_status status = fs::status(path_in, ec);  // of what a link points to
  LN_CHECK(!fs::is_directory(status), path_in, ": is a directory");
  if (fs::exists(status) && !fs::is_regular_file(status)) {
    write(path_in);
    return;
  }
  std::string path = path_in;
  if (fs::is_symlink(fs::symlink_status(path_in, ec))) path = fs::weakly_canonical(path_in, ec).string();
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  LN_CHECK(fs::is_directory(dir, ec), path, ": directory ", dir.string(), " does not exist");
  const std::string tmp = (dir / ("." + target.filename().string() + ".tmp." + std::to_string(::getpid()))).string();
  try {
    write(tmp);
    // Make the bytes durable before the rename makes them visible.
    const int fd = ::open(tmp.c_str(), O_RDONLY);
    LN_CHECK(fd >= 0, path, ": cannot reopen the temporary file ", tmp);
    const int rc = ::fsync(fd);
    ::close(fd);
    LN_CHECK(rc == 0, path, ": fsync failed (disk full?)");
    LN_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, path, ": cannot replace the file (", std::strerror(errno), ")");
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  } catch (const Error& e) {
    fs::remove(tmp, ec);
    // Name the file the user asked for, not the temporary.
    std::string msg = e.what();
    for (std::size_t at; (at = msg.find(tmp)) != std::string::npos;) msg.replace(at, tmp.size(), path_in);
    throw Error(msg);
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
}

void write_text_file_atomically(const std::string& path, const std::string& text) {
  write_file_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp);
    LN_CHECK(out, tmp, ": cannot create");
    out << text;
    out.close();
    LN_CHECK(out.good(), path, ": write failed (disk full?)");
  });
}

}  // namespace livernet::io
