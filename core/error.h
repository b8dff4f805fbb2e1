// Errors: one exception type whose message is a single readable line.
#pragma once

#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace livernet {

// Control characters in `s` escaped as \xNN, so that text from a file cannot break a message over lines or
// move the terminal's cursor.
inline std::string escape_control(const std::string& s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

// The message is always one line: whatever a caller quoted into it (a value from a config file, a file name),
// control characters come out escaped.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(escape_control(msg)) {}
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

// v with `digits` digits after the point ("%.*f"): numbers in messages, tables and CSV cells.
inline std::string str_fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// Text taken from a file for an error message: control characters escaped as \xNN (the message stays one
// line) and at most `max` characters, then "...".
inline std::string printable(const std::string& s, std::size_t max = 60) {
  if (s.size() <= max) return escape_control(s);
  return escape_control(s.substr(0, max)) + "...";
}

}  // namespace livernet

// Throws livernet::Error with the concatenated message when cond is false.
#define LN_CHECK(cond, ...)                                        \
  do {                                                             \
    if (!(cond)) throw ::livernet::Error(::livernet::str_cat(__VA_ARGS__)); \
  } while (0)

#define LN_FAIL(...) throw ::livernet::Error(::livernet::str_cat(__VA_ARGS__))
