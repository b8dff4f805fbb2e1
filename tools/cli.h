// What the command-line tools share: a main() wrapper that turns any error into one line on stderr
// and a non-zero exit code.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace livernet::tools {

// Parses argv with `app`, then runs `body`. livernet::Error and other exceptions become
// "<tool>: <message>" on stderr with exit code 1; bad arguments "<tool>: <CLI11's message> (see --help)",
// exit code 2. Either way one line.
int run(CLI::App& app, int argc, char** argv, const std::function<int()>& body);

}  // namespace livernet::tools
