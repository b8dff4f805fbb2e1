// Shared by the fuzz targets (fuzz/fuzz_<parser>.cpp): a per-process scratch folder for the inputs the
// parsers read from files, the multi-file input format, and the one rule every target enforces: bad input
// may only end in a livernet::Error whose message is one line naming the file. Anything else (another
// exception, a crash, a sanitizer report, a timeout, a huge allocation) is a bug in the parser.
//
// The same sources build two ways (fuzz/CMakeLists.txt): with clang + libFuzzer (scripts/fuzz.sh), and with
// any compiler + fuzz/regress_main.cpp as a replay of the corpus and of fuzz/regressions/ (ctest -L fuzz).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace lnfuzz {

namespace fs = std::filesystem;

// Inputs made of several files (a DICOM series, a manifest and its images) are the files' bytes joined by
// this line; fuzz/*.dict lists it so that libFuzzer keeps and inserts it.
inline constexpr std::string_view kNextFile = "\n--LIVERNET-FUZZ-NEXT-FILE--\n";

inline std::vector<std::string_view> split_files(const std::uint8_t* data, std::size_t size, std::size_t max_files) {
  std::vector<std::string_view> out;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  while (out.size() + 1 < max_files) {
    const std::size_t at = rest.find(kNextFile);
    if (at == std::string_view::npos) break;
    out.push_back(rest.substr(0, at));
    rest.remove_prefix(at + kNextFile.size());
  }
  out.push_back(rest);
  return out;
}

// <TMPDIR or /tmp>/livernet-fuzz-<pid>, created on first use and removed at exit.
class Scratch {
 public:
  static Scratch& get() {
    static Scratch s;
    return s;
  }
  const fs::path& root() const { return root_; }
  // An empty sub-folder `name` (emptied when it exists).
  fs::path fresh_dir(const std::string& name) const {
    const fs::path d = root_ / name;
    std::error_code ec;
    fs::remove_all(d, ec);
    fs::create_directories(d);
    return d;
  }
  // Writes bytes to `dir`/`name` and returns the path.
  static std::string write(const fs::path& dir, const std::string& name, std::string_view bytes) {
    const fs::path p = dir / name;
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::fprintf(stderr, "fuzz harness: cannot write %s\n", p.c_str());
      std::abort();
    }
    return p.string();
  }
  std::string write(const std::string& name, std::string_view bytes) const { return write(root_, name, bytes); }
  std::string write(const std::string& name, const std::uint8_t* data, std::size_t size) const {
    return write(root_, name, std::string_view(reinterpret_cast<const char*>(data), size));
  }

  ~Scratch() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

 private:
  Scratch() {
    const char* tmp = std::getenv("TMPDIR");
    root_ = fs::path(tmp && *tmp ? tmp : "/tmp") / ("livernet-fuzz-" + std::to_string(::getpid()));
    std::error_code ec;
    fs::remove_all(root_, ec);
    fs::create_directories(root_);
  }
  fs::path root_;
};

[[noreturn]] inline void bug(const std::string& what) {
  std::fprintf(stderr, "\n==== livernet fuzz: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// Runs `parse`. A livernet::Error is the expected outcome for bad input, but its message must be one line
// that names `names_file` (the path or source name the parser was given; empty = not checked). Any other
// exception escapes and libFuzzer (or the replay) reports it.
template <typename F>
void expect_clean(const std::string& names_file, F&& parse) {
  try {
    parse();
  } catch (const livernet::Error& e) {
    const std::string msg = e.what();
    static const bool verbose = std::getenv("LNFUZZ_VERBOSE") != nullptr;  // show the expected errors too
    if (verbose) std::fprintf(stderr, "  livernet::Error: %s\n", msg.c_str());
    if (msg.empty()) bug("empty error message");
    if (msg.find('\n') != std::string::npos || msg.find('\r') != std::string::npos)
      bug("error message is not one line: " + msg);
    if (!names_file.empty() && msg.find(names_file) == std::string::npos)
      bug("error message does not name '" + names_file + "': " + msg);
  }
}

}  // namespace lnfuzz
