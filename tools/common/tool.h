// What the command-line tools share: a main() wrapper that turns any error into one line on stderr
// and a non-zero exit code, device selection, and CSV output.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

#include "core/device.h"

namespace livernet::tools {

// Parses argv with `app`, then runs `body`. livernet::Error and other exceptions become
// "<tool>: <message>" on stderr with exit code 1; bad arguments "<tool>: <CLI11's message> (see --help)",
// exit code 2. Either way one line.
int run(CLI::App& app, int argc, char** argv, const std::function<int()>& body);

// "auto" (the GPU when one is usable, else the CPU), "cpu", "cuda", "cuda:N".
Device resolve_device(const std::string& spec);

// RFC 4180 CSV cell quoting.
std::string csv_cell(const std::string& s);
// Writes rows (header first) to `path` atomically ("-" = stdout).
void write_csv(const std::string& path, const std::vector<std::vector<std::string>>& rows);

}  // namespace livernet::tools
