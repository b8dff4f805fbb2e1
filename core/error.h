// Errors: one exception type whose message is a single readable line.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace livernet {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// Raised when a device (or the CPU) cannot provide the memory an operation asked for.
class OutOfMemoryError : public Error {
 public:
  explicit OutOfMemoryError(const std::string& msg) : Error(msg) {}
};

// Concatenates any streamable values into one string.
template <typename... Args>
std::string str_cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

}  // namespace livernet

// Throws livernet::Error with the concatenated message when cond is false.
#define LN_CHECK(cond, ...)                                        \
  do {                                                             \
    if (!(cond)) throw ::livernet::Error(::livernet::str_cat(__VA_ARGS__)); \
  } while (0)

#define LN_FAIL(...) throw ::livernet::Error(::livernet::str_cat(__VA_ARGS__))
