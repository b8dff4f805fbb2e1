// CSV output (RFC 4180): what the tools and the trainer write for spreadsheets.
#pragma once

#include <string>
#include <vector>

namespace livernet::io {

// One cell, quoted when it holds a comma, a quote or a line break.
std::string csv_cell(const std::string& s);
// Writes rows (header first) to `path` atomically ("-" = stdout).
void write_csv(const std::string& path, const std::vector<std::vector<std::string>>& rows);

}  // namespace livernet::io
