// MD5 of a file (RFC 1321), to recognise the known Keras weight files. Not for security.
#pragma once

#include <string>

namespace livernet::io {

// Lower-case hex digest of the file's bytes; throws Error when it cannot be read.
std::string md5_file(const std::string& path);
// Of a byte string (used by the tests with RFC 1321's examples).
std::string md5_bytes(const std::string& bytes);

}  // namespace livernet::io
