#include "tools/common/tool.h"

#include <csignal>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>

#include "core/error.h"
#include "io/hdf5.h"

namespace livernet::tools {

int run(CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
  // A write past the file-size limit (ulimit -f, quota-like setups) then fails with EFBIG and is reported
  // like a full disk, instead of killing the process mid-write.
  std::signal(SIGXFSZ, SIG_IGN);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    // One line, like every other error (CLI11's own message adds "Run with --help ..." on a second line).
    std::string msg = e.what();
    for (char& c : msg)
      if (c == '\n') c = ' ';
    std::fprintf(stderr, "%s: %s (see --help)\n", app.get_name().c_str(), msg.c_str());
    return 2;
  }
  try {
    return body();
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: %s\n", app.get_name().c_str(), e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: out of host memory; try a smaller --batch\n", app.get_name().c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: unexpected error: %s\n", app.get_name().c_str(), e.what());
    return 1;
  }
}

Device resolve_device(const std::string& spec) {
  if (spec == "auto") return cuda_device_count() > 0 ? Device::cuda(0) : Device::cpu();
  const Device d = Device::parse(spec);
  require_device(d);
  return d;
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

void write_csv(const std::string& path, const std::vector<std::vector<std::string>>& rows) {
  auto emit = [&](std::ostream& os) {
    for (const auto& row : rows) {
      for (std::size_t i = 0; i < row.size(); ++i) os << (i ? "," : "") << csv_cell(row[i]);
      os << '\n';
    }
  };
  if (path == "-") {
    emit(std::cout);
    return;
  }
  io::write_file_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp);
    LN_CHECK(out, tmp, ": cannot create");
    emit(out);
    out.close();
    LN_CHECK(out.good(), path, ": write failed (disk full?)");
  });
}

}  // namespace livernet::tools
