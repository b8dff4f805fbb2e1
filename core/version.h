// Version and build configuration of this livernet.
#pragma once

#include <string>

namespace livernet {

const char* version();
// Multi-line description: version, compiler, CUDA backend and architectures, libraries, devices.
std::string build_info();

}  // namespace livernet
