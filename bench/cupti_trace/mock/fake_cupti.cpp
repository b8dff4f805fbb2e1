// LOCAL TEST ONLY: a fake libcupti for driving kernel_trace.cpp end to end without a GPU (see e2e_test.cpp).
// Implements the handful of Activity API functions the tracer calls, with the real signatures (run_selftest.sh
// also compiles this file against CUDA's real cupti_activity.h to prove it), plus fake_cupti_* hooks the test
// uses to queue records, inject errors and count calls.
#include <cupti_activity.h>
#include <cupti_result.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

CUpti_BuffersCallbackRequestFunc g_request = nullptr;
CUpti_BuffersCallbackCompleteFunc g_complete = nullptr;
bool g_enabled[16] = {};
std::vector<std::vector<unsigned char>> g_pending;  // queued records, each padded to 8 bytes
std::uint64_t g_clock = 1000;
std::size_t g_dropped = 0;
int g_fail_enable = 0;
int g_calls_enable = 0, g_calls_disable = 0, g_calls_flush = 0;

int kind_slot(CUpti_ActivityKind k) { return static_cast<int>(k) & 15; }

template <typename T>
void queue(const T& rec) {
  std::vector<unsigned char> bytes(sizeof(T));
  std::memcpy(bytes.data(), &rec, sizeof(T));
  bytes.resize((bytes.size() + 7) / 8 * 8, 0);
  g_pending.push_back(bytes);
}

}  // namespace

extern "C" {

CUptiResult CUPTIAPI cuptiGetResultString(CUptiResult result, const char** str) {
  if (str == nullptr) return CUPTI_ERROR_INVALID_PARAMETER;
  switch (result) {
    case CUPTI_SUCCESS: *str = "CUPTI_SUCCESS"; break;
    case CUPTI_ERROR_MAX_LIMIT_REACHED: *str = "CUPTI_ERROR_MAX_LIMIT_REACHED"; break;
    case CUPTI_ERROR_NOT_INITIALIZED: *str = "CUPTI_ERROR_NOT_INITIALIZED"; break;
    default: *str = "CUPTI_ERROR_UNKNOWN"; break;
  }
  return CUPTI_SUCCESS;
}

CUptiResult CUPTIAPI cuptiGetTimestamp(uint64_t* timestamp) {
  *timestamp = g_clock;
  return CUPTI_SUCCESS;
}

CUptiResult CUPTIAPI cuptiActivityEnable(CUpti_ActivityKind kind) {
  ++g_calls_enable;
  if (g_fail_enable) return CUPTI_ERROR_NOT_INITIALIZED;
  g_enabled[kind_slot(kind)] = true;
  return CUPTI_SUCCESS;
}

CUptiResult CUPTIAPI cuptiActivityDisable(CUpti_ActivityKind kind) {
  ++g_calls_disable;
  g_enabled[kind_slot(kind)] = false;
  return CUPTI_SUCCESS;
}

CUptiResult CUPTIAPI cuptiActivityGetNumDroppedRecords(CUcontext, uint32_t, size_t* dropped) {
  *dropped = g_dropped;
  g_dropped = 0;
  return CUPTI_SUCCESS;
}

CUptiResult CUPTIAPI cuptiActivityGetNextRecord(uint8_t* buffer, size_t validBufferSizeBytes, CUpti_Activity** record) {
  if (buffer == nullptr) return CUPTI_ERROR_INVALID_PARAMETER;
  std::size_t off = 0;
  if (*record != nullptr) {
    off = static_cast<std::size_t>(reinterpret_cast<uint8_t*>(*record) - buffer);
    std::size_t sz = 0;
    switch ((*record)->kind) {
      case CUPTI_ACTIVITY_KIND_KERNEL:
      case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: sz = sizeof(CUpti_ActivityKernel10); break;
      case CUPTI_ACTIVITY_KIND_MEMCPY: sz = sizeof(CUpti_ActivityMemcpy6); break;
      case CUPTI_ACTIVITY_KIND_MEMSET: sz = sizeof(CUpti_ActivityMemset4); break;
      default: return CUPTI_ERROR_UNKNOWN;
    }
    off += (sz + 7) / 8 * 8;
  }
  if (off >= validBufferSizeBytes) return CUPTI_ERROR_MAX_LIMIT_REACHED;
  *record = reinterpret_cast<CUpti_Activity*>(buffer + off);
  return CUPTI_SUCCESS;
}

CUptiResult CUPTIAPI cuptiActivityRegisterCallbacks(CUpti_BuffersCallbackRequestFunc funcBufferRequested,
                                                    CUpti_BuffersCallbackCompleteFunc funcBufferCompleted) {
  if (funcBufferRequested == nullptr || funcBufferCompleted == nullptr) return CUPTI_ERROR_INVALID_PARAMETER;
  g_request = funcBufferRequested;
  g_complete = funcBufferCompleted;
  return CUPTI_SUCCESS;
}

// Delivers the queued records in buffers from the client's request callback, as many as fit in each.
CUptiResult CUPTIAPI cuptiActivityFlushAll(uint32_t) {
  ++g_calls_flush;
  if (g_request == nullptr) return CUPTI_ERROR_NOT_INITIALIZED;
  std::size_t next = 0;
  while (next < g_pending.size()) {
    uint8_t* buf = nullptr;
    size_t size = 0, max_records = 0;
    g_request(&buf, &size, &max_records);
    if (buf == nullptr || size == 0) return CUPTI_ERROR_UNKNOWN;
    if ((reinterpret_cast<std::uintptr_t>(buf) & 7) != 0) return CUPTI_ERROR_UNKNOWN;  // must be 8-aligned
    std::size_t used = 0;
    while (next < g_pending.size() && used + g_pending[next].size() <= size) {
      std::memcpy(buf + used, g_pending[next].data(), g_pending[next].size());
      used += g_pending[next].size();
      ++next;
    }
    g_complete(nullptr, 0, buf, size, used);
  }
  g_pending.clear();
  return CUPTI_SUCCESS;
}

// ---- test hooks ----
void fake_cupti_set_clock(uint64_t t) { g_clock = t; }
void fake_cupti_set_dropped(size_t n) { g_dropped = n; }
void fake_cupti_fail_enable(int on) { g_fail_enable = on; }
int fake_cupti_enabled(int kind) { return g_enabled[kind & 15] ? 1 : 0; }
int fake_cupti_calls(const char* which) {
  if (std::strcmp(which, "enable") == 0) return g_calls_enable;
  if (std::strcmp(which, "disable") == 0) return g_calls_disable;
  return g_calls_flush;
}

// Queued only while the kind is enabled, as CUPTI records only enabled kinds.
void fake_cupti_kernel(const char* name, uint64_t start, uint64_t end) {
  if (!g_enabled[kind_slot(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL)]) return;
  CUpti_ActivityKernel10 k;
  std::memset(&k, 0, sizeof k);
  k.kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
  k.start = start;
  k.end = end;
  k.name = name;
  queue(k);
}

void fake_cupti_memcpy(int copy_kind, uint64_t start, uint64_t end, uint64_t bytes) {
  if (!g_enabled[kind_slot(CUPTI_ACTIVITY_KIND_MEMCPY)]) return;
  CUpti_ActivityMemcpy6 m;
  std::memset(&m, 0, sizeof m);
  m.kind = CUPTI_ACTIVITY_KIND_MEMCPY;
  m.copyKind = static_cast<uint8_t>(copy_kind);
  m.start = start;
  m.end = end;
  m.bytes = bytes;
  queue(m);
}

void fake_cupti_memset(uint64_t start, uint64_t end, uint64_t bytes) {
  if (!g_enabled[kind_slot(CUPTI_ACTIVITY_KIND_MEMSET)]) return;
  CUpti_ActivityMemset4 m;
  std::memset(&m, 0, sizeof m);
  m.kind = CUPTI_ACTIVITY_KIND_MEMSET;
  m.start = start;
  m.end = end;
  m.bytes = bytes;
  queue(m);
}

}  // extern "C"
