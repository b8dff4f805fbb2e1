// Pseudonymous patient ids: HMAC-SHA-256 of the patient's folder under a secret key kept apart from the
// data (FIPS 180-4 SHA-256, RFC 2104 HMAC). The same key gives the same ids on every run, so datasets
// extracted at different times agree; without the key an id cannot be traced back to a folder name.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace livernet::data {

std::array<std::uint8_t, 32> sha256(const std::string& bytes);
std::array<std::uint8_t, 32> hmac_sha256(const std::string& key, const std::string& message);
std::string to_hex(const std::uint8_t* bytes, std::size_t n);

// The default key file: $LIVERNET_ID_KEY, else $XDG_CONFIG_HOME/livernet/id.key, else ~/.config/livernet/id.key.
std::string default_id_key_path();
// Reads the key (at least 16 bytes); when the file does not exist, creates it (mode 0600, 32 random bytes
// from /dev/urandom) and sets *created. Errors name the file.
std::string load_or_create_id_key(const std::string& path, bool* created = nullptr);

// "P" + the first 12 hex digits of HMAC-SHA-256(key, name): 48 bits, no collision in practice for the
// few thousand patients of a study (a collision is still checked for by the caller).
std::string pseudonym(const std::string& key, const std::string& name);

}  // namespace livernet::data
