#include "tools/cli.h"

#include <csignal>
#include <cstdio>
#include <exception>
#include <iostream>

#include "core/error.h"

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

}  // namespace livernet::tools
