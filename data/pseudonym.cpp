#include "data/pseudonym.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "io/hdf5.h"

namespace livernet::data {

namespace {

constexpr std::uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
    0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
    0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
    0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

void compress(std::uint32_t h[8], const std::uint8_t* block) {
  std::uint32_t w[64];
  for (int t = 0; t < 16; ++t)
    w[t] = (std::uint32_t{block[4 * t]} << 24) | (std::uint32_t{block[4 * t + 1]} << 16) |
           (std::uint32_t{block[4 * t + 2]} << 8) | std::uint32_t{block[4 * t + 3]};
  for (int t = 16; t < 64; ++t) {
    const std::uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
    const std::uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
  for (int t = 0; t < 64; ++t) {
    const std::uint32_t t1 = k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + kRound[t] + w[t];
    const std::uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
  }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

}  // namespace

std::array<std::uint8_t, 32> sha256(const std::string& bytes) {
  std::uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::string m = bytes;
  const std::uint64_t bits = static_cast<std::uint64_t>(bytes.size()) * 8;
  m.push_back(static_cast<char>(0x80));
  while (m.size() % 64 != 56) m.push_back('\0');
  for (int i = 7; i >= 0; --i) m.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
  for (std::size_t off = 0; off < m.size(); off += 64) compress(h, reinterpret_cast<const std::uint8_t*>(m.data() + off));
  std::array<std::uint8_t, 32> out{};
  for (int i = 0; i < 8; ++i)
    for (int b = 0; b < 4; ++b) out[4 * i + b] = static_cast<std::uint8_t>(h[i] >> (24 - 8 * b));
  return out;
}

std::array<std::uint8_t, 32> hmac_sha256(const std::string& key, const std::string& message) {
  std::string k = key;
  if (k.size() > 64) {
    const auto d = sha256(k);
    k.assign(d.begin(), d.end());
  }
  k.resize(64, '\0');
  std::string inner(64, '\0'), outer(64, '\0');
  for (int i = 0; i < 64; ++i) {
    inner[i] = static_cast<char>(k[i] ^ 0x36);
    outer[i] = static_cast<char>(k[i] ^ 0x5c);
  }
  const auto ih = sha256(inner + message);
  return sha256(outer + std::string(ih.begin(), ih.end()));
}

std::string to_hex(const std::uint8_t* bytes, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += digits[bytes[i] >> 4], s += digits[bytes[i] & 15];
  return s;
}

std::string default_id_key_path() {
  if (const char* p = std::getenv("LIVERNET_ID_KEY"); p && *p) return p;
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) return str_cat(x, "/livernet/id.key");
  const char* home = std::getenv("HOME");
  return str_cat(home && *home ? home : ".", "/.config/livernet/id.key");
}

std::string load_or_create_id_key(const std::string& path, bool* created) {
  namespace fs = std::filesystem;
  if (created) *created = false;
  if (!fs::exists(path)) {
    std::ifstream rnd("/dev/urandom", std::ios::binary);
    std::string key(32, '\0');
    LN_CHECK(rnd.read(key.data(), 32), "cannot read /dev/urandom to make a pseudonymisation key");
    std::error_code ec;
    if (fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path(), ec);
    io::write_file_atomically(path, [&](const std::string& tmp) {
      std::ofstream f(tmp, std::ios::binary);
      f.write(key.data(), static_cast<std::streamsize>(key.size()));
      f.close();
      LN_CHECK(f, path, ": cannot write the pseudonymisation key");
      ::chmod(tmp.c_str(), 0600);
    });
    if (created) *created = true;
  }
  std::ifstream f(path, std::ios::binary);
  LN_CHECK(f, path, ": cannot read the pseudonymisation key (", std::strerror(errno), ")");
  std::string key((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  LN_CHECK(key.size() >= 16, path, ": a pseudonymisation key needs at least 16 bytes, the file has ", key.size());
  return key;
}

std::string pseudonym(const std::string& key, const std::string& name) {
  const auto mac = hmac_sha256(key, name);
  return str_cat("P", to_hex(mac.data(), 6));
}

PathRedactor::PathRedactor(const std::string& root, std::string key, std::vector<std::string> patients)
    : key_(std::move(key)), patients_(std::move(patients)) {
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  prefix_ = r == "/" ? r : r + "/";
  std::sort(patients_.begin(), patients_.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string PathRedactor::redact_relative(const std::string& rel) const {
  // Already a pseudonym ("P" + 12 hex digits, then the end, '/' or '.'): text redacted once stays as it is.
  if (rel.size() >= 13 && rel[0] == 'P' && (rel.size() == 13 || rel[13] == '/' || rel[13] == '.') &&
      std::all_of(rel.begin() + 1, rel.begin() + 13, [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }))
    return rel;
  for (const std::string& p : patients_) {
    if (p.empty() || rel.compare(0, p.size(), p) != 0) continue;
    if (rel.size() == p.size()) return id(p);
    if (rel[p.size()] == '.' && rel.find('/', p.size()) == std::string::npos) return id(p) + rel.substr(p.size());  // p.nii.gz
    if (rel[p.size()] != '/') continue;
    const std::string inside = rel.substr(p.size() + 1);
    const auto slash = inside.rfind('/');
    return id(p) + (slash == std::string::npos ? "/" + inside : "/.../" + inside.substr(slash + 1));
  }
  return pseudonym(key_, rel);
}

std::string PathRedactor::operator()(const std::string& text) const {
  std::string out;
  std::size_t pos = 0;
  while (true) {
    const std::size_t at = text.find(prefix_, pos);
    if (at == std::string::npos) break;
    const std::size_t start = at + prefix_.size();
    std::size_t end = text.size();
    for (const char* stop : {": ", "'", "\"", ", ", "; ", ")", "\n"}) end = std::min(end, text.find(stop, start));
    out += text.substr(pos, start - pos);
    if (end > start) out += redact_relative(text.substr(start, end - start));
    pos = end;
  }
  return out + text.substr(pos);
}

}  // namespace livernet::data
