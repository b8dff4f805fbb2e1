// Pseudonymous patient ids: HMAC-SHA-256 of the patient's folder under a secret key kept apart from the
// data (FIPS 180-4 SHA-256, RFC 2104 HMAC). The same key gives the same ids on every run, so datasets
// extracted at different times agree; without the key an id cannot be traced back to a folder name.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

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

// Text for the terminal and logs with the paths under a data root pseudonymised: hospital exports often name
// folders and files after patients. In a path ROOT/REL (ROOT as the tools were given it; REL ends at ": ",
// a quote, ", ", "; ", ")", a line break or the end), a REL inside a known patient's folder or file
// becomes that patient's id ("P3f2a9c0d1e4b" for the folder, "P3f2a9c0d1e4b/.../image_12" for a file in it,
// "P3f2a9c0d1e4b.nii.gz" for a file named after the patient); any other REL becomes the pseudonym of REL
// itself. Names printed by themselves go through id(). Redacting redacted text changes nothing.
class PathRedactor {
 public:
  // `patients`: the patients' names as find_patients gives them (paths relative to the root).
  PathRedactor(const std::string& root, std::string key, std::vector<std::string> patients);
  std::string operator()(const std::string& text) const;
  // The patient's id (what extract_lesions stores).
  std::string id(const std::string& patient_name) const { return pseudonym(key_, patient_name); }

 private:
  std::string redact_relative(const std::string& rel) const;
  std::string prefix_;  // ROOT + "/"
  std::string key_;
  std::vector<std::string> patients_;  // longest first
};

}  // namespace livernet::data
