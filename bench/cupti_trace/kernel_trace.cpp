// CUPTI kernel tracer for LD_PRELOAD into any CUDA program (build/tools/bench): where GPU time goes, per
// kernel name and per category.
//
//   extern "C" void livernet_trace_begin(const char* label);  // enable CONCURRENT_KERNEL, MEMCPY, MEMSET records
//   extern "C" void livernet_trace_end(void);                 // sync, flush, disable, aggregate, report
//
// The program looks both up with dlsym(RTLD_DEFAULT, ...) and calls them around the step(s) to profile. At
// `end` the context is synchronised (cuCtxSynchronize, found with dlsym: cuptiActivityFlushAll does not
// synchronise), CUPTI's buffers are flushed (forced) and the kinds disabled; the records whose start lies
// between the CUPTI timestamps taken at `begin` and `end` (all delivered records, with a note, if none does: a
// clock mismatch) are aggregated by kernel name and by category (bench/cupti_trace/categories.txt) into a text
// report and, when asked, one JSON line.
//
// Environment:
//   LIVERNET_TRACE_OUT         file the text report is appended to (default: stderr)
//   LIVERNET_TRACE_JSON        file one JSON line per label is appended to (default: none)
//   LIVERNET_TRACE_CATEGORIES  rules file (REGEX<TAB>CATEGORY lines); default: the built-in copy of categories.txt
//   LIVERNET_TRACE_STEPS       steps between begin and end, to report per step (default 1)
//   LIVERNET_TRACE_TOP         rows of the per-kernel table (default 40; 0 = all)
//   LIVERNET_TRACE_DISABLE=1   begin / end do nothing
//   LIVERNET_TRACE_KEEP_ENABLED=1  never call cuptiActivityDisable (a label is then cut out of the record stream by
//                              its timestamps alone); a workaround should disabling CONCURRENT_KERNEL hang, as
//                              CUPTI 13.0's release notes say it could before 13.0 Update 1
//   LIVERNET_TRACE_NO_SYNC=1   skip the cuCtxSynchronize at `end` (the caller synchronises)
//
// Any CUPTI error prints one line and turns tracing off for the rest of the process; it never aborts the program.
//
// Build (bench/cupti_trace/build.sh finds CUPTI and picks the record structs the header declares), by hand:
//   g++ -std=c++17 -O2 -fPIC -shared kernel_trace.cpp -I$CUPTI_INC -I/usr/local/cuda/include -L$CUPTI_LIB
//       -lcupti -ldl -o libkernel_trace.so
#include <cupti_activity.h>
#include <cupti_result.h>
#include <dlfcn.h>

#include <cxxabi.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

// trace_agg.h's own functions stay inside the .so even without -fvisibility=hidden (the system headers it uses are
// included above, outside the pragma).
#pragma GCC visibility push(hidden)
#include "trace_agg.h"
#pragma GCC visibility pop

// The activity record structs read. CUPTI writes the newest layout of its version; every CUpti_ActivityKernelN
// from 4 on starts with the same fields up to `name` (kind ... start, end ... correlationId, gridId, name), every
// CUpti_ActivityMemcpyN with kind, copyKind, srcKind, dstKind, flags, bytes, start, end, and every
// CUpti_ActivityMemsetN with kind, value, bytes, start, end; only those fields are read, so an older struct
// reads a newer record correctly. Defaults: the current structs of CUDA 13.0's cupti_activity.h
// (CUPTI_API_VERSION 130001). build.sh passes the newest ones the header in use declares.
#ifndef LIVERNET_CUPTI_KERNEL_RECORD
#define LIVERNET_CUPTI_KERNEL_RECORD CUpti_ActivityKernel10
#endif
#ifndef LIVERNET_CUPTI_MEMCPY_RECORD
#define LIVERNET_CUPTI_MEMCPY_RECORD CUpti_ActivityMemcpy6
#endif
#ifndef LIVERNET_CUPTI_MEMSET_RECORD
#define LIVERNET_CUPTI_MEMSET_RECORD CUpti_ActivityMemset4
#endif

namespace {

using KernelRecord = LIVERNET_CUPTI_KERNEL_RECORD;
using MemcpyRecord = LIVERNET_CUPTI_MEMCPY_RECORD;
using MemsetRecord = LIVERNET_CUPTI_MEMSET_RECORD;

// trace_agg.h names memcpy kinds by number; these are the header's values.
static_assert(CUPTI_ACTIVITY_MEMCPY_KIND_HTOD == 1 && CUPTI_ACTIVITY_MEMCPY_KIND_DTOH == 2 &&
                  CUPTI_ACTIVITY_MEMCPY_KIND_HTOA == 3 && CUPTI_ACTIVITY_MEMCPY_KIND_ATOH == 4 &&
                  CUPTI_ACTIVITY_MEMCPY_KIND_ATOA == 5 && CUPTI_ACTIVITY_MEMCPY_KIND_ATOD == 6 &&
                  CUPTI_ACTIVITY_MEMCPY_KIND_DTOA == 7 && CUPTI_ACTIVITY_MEMCPY_KIND_DTOD == 8 &&
                  CUPTI_ACTIVITY_MEMCPY_KIND_HTOH == 9 && CUPTI_ACTIVITY_MEMCPY_KIND_PTOP == 10,
              "CUpti_ActivityMemcpyKind values differ from trace_agg.h's memcpy_kind_name");

using livernet_trace::Record;
using livernet_trace::RecKind;

constexpr std::size_t kBufferBytes = std::size_t{8} << 20;  // 8 MiB per activity buffer
constexpr std::size_t kBufferAlign = 8;                      // CUPTI's ACTIVITY_RECORD_ALIGNMENT

const CUpti_ActivityKind kKinds[] = {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY,
                                     CUPTI_ACTIVITY_KIND_MEMSET};
const char* const kKindNames[] = {"CONCURRENT_KERNEL", "MEMCPY", "MEMSET"};

struct State {
  std::mutex ctl;   // serialises begin / end (never held by the buffer callback)
  std::mutex data;  // records, names, dropped: taken by the buffer callback
  std::vector<Record> records;
  std::vector<std::string> names;
  std::unordered_map<std::string, std::uint32_t> name_ids;
  std::unordered_map<const void*, std::uint32_t> name_ptr_ids;  // CUPTI shares one name string per kernel
  std::uint64_t dropped = 0;
  std::atomic<bool> broken{false};
  bool registered = false;
  bool enabled[3] = {false, false, false};
  bool active = false;
  bool rules_loaded = false;
  std::vector<livernet_trace::Rule> rules;
  std::string label;
  std::uint64_t t_begin = 0;
};

// Never destroyed: CUPTI's worker thread may still deliver a buffer while the process exits.
State& st() {
  static State* s = new State;
  return *s;
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

long env_long(const char* name, long dflt) {
  const char* v = std::getenv(name);
  if (v == nullptr || v[0] == '\0') return dflt;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  return end != v ? x : dflt;
}

void note(const char* msg) { std::fprintf(stderr, "[kernel_trace] %s\n", msg); }

std::string result_string(CUptiResult r) {
  const char* msg = nullptr;
  if (cuptiGetResultString(r, &msg) != CUPTI_SUCCESS || msg == nullptr) msg = "unknown CUPTI error";
  return std::string(msg) + " (" + std::to_string(static_cast<int>(r)) + ")";
}

// One line, then tracing is off for good.
bool check(CUptiResult r, const char* what) {
  if (r == CUPTI_SUCCESS) return true;
  std::fprintf(stderr, "[kernel_trace] %s failed: %s; tracing disabled\n", what, result_string(r).c_str());
  st().broken = true;
  return false;
}

// Caller holds st().data.
std::uint32_t intern_name(State& s, const char* name) {
  if (name == nullptr) name = "<unnamed>";
  const auto p = s.name_ptr_ids.find(name);
  if (p != s.name_ptr_ids.end() && s.names[p->second] == name) return p->second;
  auto it = s.name_ids.find(name);
  if (it == s.name_ids.end()) {
    s.names.emplace_back(name);
    it = s.name_ids.emplace(s.names.back(), static_cast<std::uint32_t>(s.names.size() - 1)).first;
  }
  s.name_ptr_ids[name] = it->second;
  return it->second;
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_num_records) {
  void* p = nullptr;
  if (posix_memalign(&p, kBufferAlign, kBufferBytes) != 0) p = nullptr;
  *buffer = static_cast<uint8_t*>(p);
  *size = p != nullptr ? kBufferBytes : 0;
  *max_num_records = 0;  // as many as fit
}

void CUPTIAPI buffer_completed(CUcontext context, uint32_t stream_id, uint8_t* buffer, size_t size, size_t valid_size) {
  (void)size;
  State& s = st();
  if (buffer == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(s.data);
    CUpti_Activity* rec = nullptr;
    for (;;) {
      const CUptiResult r = cuptiActivityGetNextRecord(buffer, valid_size, &rec);
      if (r == CUPTI_ERROR_MAX_LIMIT_REACHED) break;
      if (r != CUPTI_SUCCESS) {
        std::fprintf(stderr, "[kernel_trace] cuptiActivityGetNextRecord failed: %s; rest of buffer skipped\n",
                     result_string(r).c_str());
        break;
      }
      switch (rec->kind) {
        case CUPTI_ACTIVITY_KIND_KERNEL:
        case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
          const auto* k = reinterpret_cast<const KernelRecord*>(rec);
          s.records.push_back(Record{RecKind::kernel, k->start, k->end, intern_name(s, k->name), 0});
          break;
        }
        case CUPTI_ACTIVITY_KIND_MEMCPY: {
          const auto* m = reinterpret_cast<const MemcpyRecord*>(rec);
          const std::string name = std::string("[memcpy ") + livernet_trace::memcpy_kind_name(m->copyKind) + "]";
          s.records.push_back(Record{RecKind::memcpy, m->start, m->end, intern_name(s, name.c_str()), m->bytes});
          break;
        }
        case CUPTI_ACTIVITY_KIND_MEMSET: {
          const auto* m = reinterpret_cast<const MemsetRecord*>(rec);
          s.records.push_back(Record{RecKind::memset, m->start, m->end, intern_name(s, "[memset]"), m->bytes});
          break;
        }
        default:
          break;
      }
    }
    size_t dropped = 0;
    if (cuptiActivityGetNumDroppedRecords(context, stream_id, &dropped) == CUPTI_SUCCESS) s.dropped += dropped;
  }
  std::free(buffer);
}

void load_rules(State& s) {
  if (s.rules_loaded) return;
  s.rules_loaded = true;
  std::string text, err;
  const char* path = std::getenv("LIVERNET_TRACE_CATEGORIES");
  if (path != nullptr && path[0] != '\0') {
    if (livernet_trace::read_file(path, &text)) {
      s.rules = livernet_trace::parse_rules(text, &err);
      if (!err.empty()) std::fprintf(stderr, "[kernel_trace] %s: %s (line skipped)\n", path, err.c_str());
      if (!s.rules.empty()) return;
      std::fprintf(stderr, "[kernel_trace] %s: no rules; using the built-in ones\n", path);
    } else {
      std::fprintf(stderr, "[kernel_trace] cannot read %s; using the built-in rules\n", path);
    }
  }
  err.clear();
  s.rules = livernet_trace::parse_rules(livernet_trace::builtin_rules_text(), &err);
  if (!err.empty()) std::fprintf(stderr, "[kernel_trace] built-in rules: %s\n", err.c_str());
}

// cuCtxSynchronize from the driver the program already loaded (the tracer does not link libcuda).
void sync_context() {
  using SyncFn = int (*)(void);
  static SyncFn fn = reinterpret_cast<SyncFn>(dlsym(RTLD_DEFAULT, "cuCtxSynchronize"));
  if (fn == nullptr) {
    note("cuCtxSynchronize not found; records of unfinished work may be missing");
    return;
  }
  const int r = fn();
  if (r != 0) std::fprintf(stderr, "[kernel_trace] cuCtxSynchronize returned %d\n", r);
}

void disable_kinds(State& s, bool report) {
  for (int i = 0; i < 3; ++i) {
    if (!s.enabled[i]) continue;
    const CUptiResult r = cuptiActivityDisable(kKinds[i]);
    s.enabled[i] = false;
    if (r != CUPTI_SUCCESS && report) {
      std::string what = std::string("cuptiActivityDisable(") + kKindNames[i] + ")";
      check(r, what.c_str());
    }
  }
}

void write_reports(const livernet_trace::Summary& sum) {
  const long top = env_long("LIVERNET_TRACE_TOP", 40);
  const std::string text = livernet_trace::format_text(sum, top > 0 ? static_cast<std::size_t>(top) : 0);
  const char* out = std::getenv("LIVERNET_TRACE_OUT");
  FILE* f = (out != nullptr && out[0] != '\0') ? std::fopen(out, "a") : nullptr;
  if (out != nullptr && out[0] != '\0' && f == nullptr)
    std::fprintf(stderr, "[kernel_trace] cannot open %s; report on stderr\n", out);
  std::fputs(text.c_str(), f != nullptr ? f : stderr);
  if (f != nullptr) std::fclose(f);
  const char* json = std::getenv("LIVERNET_TRACE_JSON");
  if (json != nullptr && json[0] != '\0') {
    FILE* j = std::fopen(json, "a");
    if (j == nullptr) {
      std::fprintf(stderr, "[kernel_trace] cannot open %s\n", json);
    } else {
      std::fputs((livernet_trace::format_json(sum) + "\n").c_str(), j);
      std::fclose(j);
    }
  }
}

void end_locked(State& s) {
  if (!s.active) return;
  s.active = false;
  if (!env_flag("LIVERNET_TRACE_NO_SYNC")) sync_context();
  std::uint64_t t_end = 0;
  if (cuptiGetTimestamp(&t_end) != CUPTI_SUCCESS) t_end = 0;
  bool ok = check(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED), "cuptiActivityFlushAll(FORCED)");
  if (!env_flag("LIVERNET_TRACE_KEEP_ENABLED")) {
    disable_kinds(s, ok);
    // Records written between the flush and the disable arrive with this flush (outside the window if late).
    if (ok) ok = check(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED), "cuptiActivityFlushAll(FORCED)");
  }
  std::vector<Record> records;
  std::vector<std::string> names;
  std::uint64_t dropped = 0;
  {
    std::lock_guard<std::mutex> lock(s.data);
    records.swap(s.records);
    names = s.names;
    dropped = s.dropped;
    s.dropped = 0;
  }
  const long steps = env_long("LIVERNET_TRACE_STEPS", 1);
  const int nsteps = steps > 0 ? static_cast<int>(steps) : 1;
  livernet_trace::Summary sum =
      livernet_trace::summarize(s.label, nsteps, records, names, s.rules, dropped, s.t_begin, t_end);
  if (sum.kernels + sum.memcpys + sum.memsets == 0 && sum.outside > 0) {
    // Every record outside [begin, end] means the record clock and cuptiGetTimestamp disagree, not that nothing
    // ran: report them all rather than nothing.
    note("no record inside the begin/end timestamps (clock mismatch?): reporting every record delivered");
    sum = livernet_trace::summarize(s.label, nsteps, records, names, s.rules, dropped);
  }
  write_reports(sum);
  if (dropped != 0)
    std::fprintf(stderr, "[kernel_trace] %s: CUPTI dropped %llu records (buffers full); figures are low\n",
                 s.label.c_str(), static_cast<unsigned long long>(dropped));
  if (!ok) note("the report above may be incomplete");
}

}  // namespace

extern "C" __attribute__((visibility("default"))) void livernet_trace_begin(const char* label) {
  State& s = st();
  if (env_flag("LIVERNET_TRACE_DISABLE") || s.broken) return;
  std::lock_guard<std::mutex> lock(s.ctl);
  if (s.active) {
    note("livernet_trace_begin while a trace is open: ending it first");
    end_locked(s);
    if (s.broken) return;
  }
  load_rules(s);
  if (!s.registered) {
    if (!check(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed), "cuptiActivityRegisterCallbacks"))
      return;
    s.registered = true;
  }
  {
    std::lock_guard<std::mutex> dl(s.data);
    s.records.clear();
    s.dropped = 0;
  }
  std::uint64_t t0 = 0;
  if (cuptiGetTimestamp(&t0) != CUPTI_SUCCESS) t0 = 0;  // 0: no window, every record delivered counts
  for (int i = 0; i < 3; ++i) {
    if (s.enabled[i]) continue;
    const std::string what = std::string("cuptiActivityEnable(") + kKindNames[i] + ")";
    if (!check(cuptiActivityEnable(kKinds[i]), what.c_str())) {
      disable_kinds(s, false);
      return;
    }
    s.enabled[i] = true;
  }
  s.label = label != nullptr && label[0] != '\0' ? label : "trace";
  s.t_begin = t0;
  s.active = true;
}

extern "C" __attribute__((visibility("default"))) void livernet_trace_end(void) {
  State& s = st();
  if (env_flag("LIVERNET_TRACE_DISABLE")) return;
  std::lock_guard<std::mutex> lock(s.ctl);
  if (!s.active) return;
  if (s.broken) {
    s.active = false;
    return;
  }
  end_locked(s);
}
