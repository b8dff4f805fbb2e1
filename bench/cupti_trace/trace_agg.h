// Aggregation of GPU activity records for the CUPTI kernel tracer (kernel_trace.cpp): name demangling and
// shortening, the name -> category classifier (rules in categories.txt, built-in copy in
// categories_builtin.inc), busy time as the union of intervals, and the text and JSON reports. Header-only
// and free of CUPTI so that selftest.cpp can test it on any machine; bench/torch_profile.py mirrors the
// naming, classification and report format for PyTorch's profile of the same model.
#pragma once

#include <cxxabi.h>

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace livernet_trace {

enum class RecKind : std::uint8_t { kernel = 0, memcpy = 1, memset = 2 };

// One GPU activity: [start, end) in ns on CUPTI's clock; name_id indexes the tracer's name table (raw, mangled
// kernel names; "[memcpy HtoD]" / "[memset]" for copies and sets).
struct Record {
  RecKind kind;
  std::uint64_t start;
  std::uint64_t end;
  std::uint32_t name_id;
  std::uint64_t bytes;
};

struct Rule {
  std::string pattern;
  std::string category;
  std::regex re;
};

// The built-in copy of categories.txt.
inline const char* builtin_rules_text() {
  return
#include "categories_builtin.inc"
      ;
}

// Parses "REGEX<TAB>CATEGORY" lines; '#' comments and blank lines are skipped. A line without a tab or with a
// regex std::regex rejects is reported in *err (first one) and skipped.
inline std::vector<Rule> parse_rules(const std::string& text, std::string* err) {
  std::vector<Rule> rules;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const std::size_t tab = line.find('\t');
    if (tab == std::string::npos || tab == 0 || tab + 1 >= line.size()) {
      if (err && err->empty()) *err = "line " + std::to_string(lineno) + ": expected REGEX<TAB>CATEGORY";
      continue;
    }
    Rule r;
    r.pattern = line.substr(0, tab);
    r.category = line.substr(tab + 1);
    while (!r.category.empty() && (r.category.back() == ' ' || r.category.back() == '\t')) r.category.pop_back();
    try {
      r.re = std::regex(r.pattern, std::regex::ECMAScript | std::regex::icase | std::regex::optimize);
    } catch (const std::regex_error& e) {
      if (err && err->empty()) *err = "line " + std::to_string(lineno) + ": bad regex: " + e.what();
      continue;
    }
    rules.push_back(std::move(r));
  }
  return rules;
}

inline bool read_file(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

// First matching rule's category, "other" when none matches.
inline std::string classify(const std::vector<Rule>& rules, const std::string& name) {
  for (const Rule& r : rules)
    if (std::regex_search(name, r.re)) return r.category;
  return "other";
}

// Itanium-demangled name, or the name itself when it is not a mangled C++ name (cuDNN / cuBLAS kernels with C
// linkage) or does not demangle.
inline std::string demangle(const char* raw) {
  if (raw == nullptr) return "<unnamed>";
  if (raw[0] != '_' || raw[1] != 'Z') return raw;
  int status = 0;
  char* d = abi::__cxa_demangle(raw, nullptr, nullptr, &status);
  if (status != 0 || d == nullptr) {
    std::free(d);
    return raw;
  }
  std::string s(d);
  std::free(d);
  return s;
}

// "void ns::f<T>(int, T)" -> "ns::f<T>": drops a leading "void " and the trailing parameter list (the last
// balanced "(...)"; parentheses inside template arguments such as "(anonymous namespace)" are left alone).
inline std::string strip_params(std::string s) {
  if (s.compare(0, 5, "void ") == 0) s.erase(0, 5);
  while (!s.empty() && s.back() == ' ') s.pop_back();
  if (!s.empty() && s.back() == ')') {
    int depth = 0;
    for (std::size_t i = s.size(); i-- > 0;) {
      if (s[i] == ')') ++depth;
      else if (s[i] == '(') {
        if (--depth == 0) {
          if (i > 0) s.erase(i);
          break;
        }
      }
    }
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

inline void replace_all(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  std::size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

// A readable name for the tables: namespaces of livernet and PyTorch dropped, float types abbreviated, cut to
// max_len characters ("..." at the end). Same steps as bench/torch_profile.py's shorten().
inline std::string shorten(const std::string& stripped, std::size_t max_len) {
  std::string s = stripped;
  static const char* const kDrop[] = {"(anonymous namespace)::", "livernet::kernels::cuda::", "livernet::kernels::",
                                      "livernet::", "at::native::", "at::cuda::"};
  for (const char* d : kDrop) replace_all(s, d, "");
  replace_all(s, "c10::BFloat16", "bf16");
  replace_all(s, "__nv_bfloat16", "bf16");
  replace_all(s, "c10::Half", "f16");
  replace_all(s, "__half", "f16");
  replace_all(s, " >", ">");
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\n' || c == '\t') c = ' ';
    if (c == ' ' && !out.empty() && out.back() == ' ') continue;
    out.push_back(c);
  }
  if (max_len >= 4 && out.size() > max_len) out = out.substr(0, max_len - 3) + "...";
  return out;
}

// CUpti_ActivityMemcpyKind values (cupti_activity.h; kernel_trace.cpp static_asserts them against the header).
inline const char* memcpy_kind_name(unsigned kind) {
  switch (kind) {
    case 1: return "HtoD";
    case 2: return "DtoH";
    case 3: return "HtoA";
    case 4: return "AtoH";
    case 5: return "AtoA";
    case 6: return "AtoD";
    case 7: return "DtoA";
    case 8: return "DtoD";
    case 9: return "HtoH";
    case 10: return "PtoP";
    default: return "unknown";
  }
}

// Total length of the union of the intervals [start, end) (empty or inverted ones ignored).
inline double union_ns(std::vector<std::pair<std::uint64_t, std::uint64_t>> iv) {
  iv.erase(std::remove_if(iv.begin(), iv.end(), [](const auto& p) { return p.second <= p.first; }), iv.end());
  std::sort(iv.begin(), iv.end());
  double total = 0;
  std::uint64_t cs = 0, ce = 0;
  bool open = false;
  for (const auto& p : iv) {
    if (!open) {
      cs = p.first;
      ce = p.second;
      open = true;
    } else if (p.first <= ce) {
      ce = std::max(ce, p.second);
    } else {
      total += static_cast<double>(ce - cs);
      cs = p.first;
      ce = p.second;
    }
  }
  if (open) total += static_cast<double>(ce - cs);
  return total;
}

struct NameStat {
  std::string name;  // shortened, for display
  std::string category;
  std::uint64_t count = 0;
  double total_ns = 0;
};

struct CatStat {
  std::string category;
  std::uint64_t count = 0;
  double total_ns = 0;
};

struct Summary {
  std::string tool = "livernet-cupti";
  std::string label;
  int steps = 1;
  std::uint64_t kernels = 0, memcpys = 0, memsets = 0;
  std::uint64_t incomplete = 0;  // records without usable timestamps (not counted anywhere else)
  std::uint64_t outside = 0;     // records outside [window_begin, window_end] (dropped from the summary)
  std::uint64_t dropped = 0;     // CUPTI's dropped-record count
  double busy_ns = 0, span_ns = 0, sum_ns = 0;
  std::vector<NameStat> by_name;  // by total time, descending
  std::vector<CatStat> by_cat;    // by total time, descending
};

// Aggregates records (raw names in `names`, indexed by Record::name_id). Records with zero or inverted
// timestamps count as incomplete; with window_begin / window_end nonzero, records starting outside the window
// are left out. Kernels are grouped by their demangled, parameter-stripped name, which is also what the rules
// classify.
inline Summary summarize(const std::string& label, int steps, const std::vector<Record>& records,
                         const std::vector<std::string>& names, const std::vector<Rule>& rules, std::uint64_t dropped,
                         std::uint64_t window_begin = 0, std::uint64_t window_end = 0, std::size_t name_len = 300) {
  Summary s;
  s.label = label;
  s.steps = steps > 0 ? steps : 1;
  s.dropped = dropped;
  std::vector<int> group_of(names.size(), -1);  // name_id -> index in s.by_name
  std::unordered_map<std::string, int> group_index;  // stripped full name -> index
  std::vector<std::pair<std::uint64_t, std::uint64_t>> iv;
  iv.reserve(records.size());
  std::uint64_t first = UINT64_MAX, last = 0;
  for (const Record& r : records) {
    if (r.start == 0 || r.end < r.start) {
      ++s.incomplete;
      continue;
    }
    if ((window_begin != 0 && r.start < window_begin) || (window_end != 0 && r.start > window_end)) {
      ++s.outside;
      continue;
    }
    if (r.name_id >= names.size()) continue;
    int& g = group_of[r.name_id];
    if (g < 0) {
      const std::string full = strip_params(demangle(names[r.name_id].c_str()));
      auto it = group_index.find(full);
      if (it == group_index.end()) {
        NameStat ns;
        ns.name = shorten(full, name_len);
        ns.category = classify(rules, full);
        s.by_name.push_back(ns);
        it = group_index.emplace(full, static_cast<int>(s.by_name.size()) - 1).first;
      }
      g = it->second;
    }
    const double d = static_cast<double>(r.end - r.start);
    s.by_name[g].count += 1;
    s.by_name[g].total_ns += d;
    s.sum_ns += d;
    switch (r.kind) {
      case RecKind::kernel: ++s.kernels; break;
      case RecKind::memcpy: ++s.memcpys; break;
      case RecKind::memset: ++s.memsets; break;
    }
    iv.emplace_back(r.start, r.end);
    first = std::min(first, r.start);
    last = std::max(last, r.end);
  }
  s.busy_ns = union_ns(std::move(iv));
  s.span_ns = last > first ? static_cast<double>(last - first) : 0.0;
  std::map<std::string, CatStat> cats;
  for (const NameStat& n : s.by_name) {
    CatStat& c = cats[n.category];
    c.category = n.category;
    c.count += n.count;
    c.total_ns += n.total_ns;
  }
  for (auto& kv : cats) s.by_cat.push_back(kv.second);
  auto by_total = [](const auto& a, const auto& b) {
    return a.total_ns != b.total_ns ? a.total_ns > b.total_ns : a.count > b.count;
  };
  std::stable_sort(s.by_name.begin(), s.by_name.end(), by_total);
  std::stable_sort(s.by_cat.begin(), s.by_cat.end(), by_total);
  return s;
}

inline std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
inline std::string fmt(const char* f, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

// A per-step count: whole numbers without decimals, fractions with one.
inline std::string count_str(double v) {
  if (v == static_cast<double>(static_cast<long long>(v))) return fmt("%lld", static_cast<long long>(v));
  return fmt("%.1f", v);
}

// The text report; `top` limits the kernel table (0: every name). bench/torch_profile.py's format_text()
// prints the same layout.
inline std::string format_text(const Summary& s, std::size_t top, std::size_t name_width = 110) {
  const double n = s.steps;
  std::string o;
  o += fmt("== %s %s: %d step(s); times per step ==\n", s.tool.c_str(), s.label.c_str(), s.steps);
  o += fmt("GPU busy %.3f ms (union of kernel/memcpy/memset intervals), span %.3f ms (first start to last end), "
           "sum of durations %.3f ms\n",
           s.busy_ns / n / 1e6, s.span_ns / n / 1e6, s.sum_ns / n / 1e6);
  o += "records: kernels " + count_str(s.kernels / n) + ", memcpy " + count_str(s.memcpys / n) + ", memset " +
       count_str(s.memsets / n) + fmt(" per step; dropped %llu, incomplete %llu, outside window %llu (whole run)\n",
                                       static_cast<unsigned long long>(s.dropped),
                                       static_cast<unsigned long long>(s.incomplete),
                                       static_cast<unsigned long long>(s.outside));
  o += fmt("%-14s %10s %10s %7s\n", "category", "ms", "count", "share");
  for (const CatStat& c : s.by_cat)
    o += fmt("%-14s %10.3f %10s %6.1f%%\n", c.category.c_str(), c.total_ns / n / 1e6, count_str(c.count / n).c_str(),
             s.sum_ns > 0 ? 100.0 * c.total_ns / s.sum_ns : 0.0);
  o += fmt("%-14s %10.3f %10s %6.1f%%\n", "total", s.sum_ns / n / 1e6,
           count_str((s.kernels + s.memcpys + s.memsets) / n).c_str(), s.sum_ns > 0 ? 100.0 : 0.0);
  const std::size_t shown = top == 0 ? s.by_name.size() : std::min(top, s.by_name.size());
  o += fmt("kernels by total time (%zu of %zu names)\n", shown, s.by_name.size());
  o += fmt("%10s %8s %10s %7s  %-14s %s\n", "ms", "count", "mean_us", "share", "category", "name");
  for (std::size_t i = 0; i < shown; ++i) {
    const NameStat& k = s.by_name[i];
    std::string name = k.name;
    if (name_width >= 4 && name.size() > name_width) name = name.substr(0, name_width - 3) + "...";
    o += fmt("%10.3f %8s %10.2f %6.1f%%  %-14s ", k.total_ns / n / 1e6, count_str(k.count / n).c_str(),
             k.count ? k.total_ns / static_cast<double>(k.count) / 1e3 : 0.0,
             s.sum_ns > 0 ? 100.0 * k.total_ns / s.sum_ns : 0.0, k.category.c_str());
    o += name + "\n";
  }
  return o;
}

inline std::string json_escape(const std::string& in) {
  std::string o;
  o.reserve(in.size() + 2);
  for (unsigned char c : in) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\r': o += "\\r"; break;
      case '\t': o += "\\t"; break;
      default:
        if (c < 0x20) o += fmt("\\u%04x", c);
        else o.push_back(static_cast<char>(c));
    }
  }
  return o;
}

// One JSON object on one line (totals over the whole window, not per step: readers divide by "steps").
inline std::string format_json(const Summary& s) {
  std::string o = "{";
  o += "\"tool\":\"" + json_escape(s.tool) + "\",\"label\":\"" + json_escape(s.label) + "\"";
  o += fmt(",\"steps\":%d,\"busy_us\":%.3f,\"span_us\":%.3f,\"sum_us\":%.3f", s.steps, s.busy_ns / 1e3,
           s.span_ns / 1e3, s.sum_ns / 1e3);
  o += fmt(",\"kernels\":%llu,\"memcpys\":%llu,\"memsets\":%llu,\"dropped\":%llu,\"incomplete\":%llu,\"outside\":%llu",
           static_cast<unsigned long long>(s.kernels), static_cast<unsigned long long>(s.memcpys),
           static_cast<unsigned long long>(s.memsets), static_cast<unsigned long long>(s.dropped),
           static_cast<unsigned long long>(s.incomplete), static_cast<unsigned long long>(s.outside));
  o += ",\"categories\":[";
  for (std::size_t i = 0; i < s.by_cat.size(); ++i) {
    const CatStat& c = s.by_cat[i];
    o += fmt("%s{\"category\":\"%s\",\"count\":%llu,\"total_us\":%.3f}", i ? "," : "",
             json_escape(c.category).c_str(), static_cast<unsigned long long>(c.count), c.total_ns / 1e3);
  }
  o += "],\"names\":[";
  for (std::size_t i = 0; i < s.by_name.size(); ++i) {
    const NameStat& k = s.by_name[i];
    o += std::string(i ? "," : "") + "{\"name\":\"" + json_escape(k.name) + "\",\"category\":\"" +
         json_escape(k.category) + "\"" +
         fmt(",\"count\":%llu,\"total_us\":%.3f}", static_cast<unsigned long long>(k.count), k.total_ns / 1e3);
  }
  o += "]}";
  return o;
}

}  // namespace livernet_trace
