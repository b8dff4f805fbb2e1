#include "io/csv.h"

#include <fstream>
#include <iostream>

#include "core/error.h"
#include "io/hdf5.h"

namespace livernet::io {

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

}  // namespace livernet::io
