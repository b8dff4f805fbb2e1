// LOCAL TEST ONLY: prints the offsets of the record fields kernel_trace.cpp reads; run_selftest.sh builds it
// against mock/ and against the real CUPTI headers and requires the same output.
#include <cupti_activity.h>

#include <cstddef>
#include <cstdio>

#define OFF(T, f) std::printf("%s.%s %zu\n", #T, #f, offsetof(T, f))

int main() {
  OFF(CUpti_Activity, kind);
  OFF(CUpti_ActivityKernel10, kind);
  OFF(CUpti_ActivityKernel10, start);
  OFF(CUpti_ActivityKernel10, end);
  OFF(CUpti_ActivityKernel10, correlationId);
  OFF(CUpti_ActivityKernel10, name);
  OFF(CUpti_ActivityMemcpy6, kind);
  OFF(CUpti_ActivityMemcpy6, copyKind);
  OFF(CUpti_ActivityMemcpy6, bytes);
  OFF(CUpti_ActivityMemcpy6, start);
  OFF(CUpti_ActivityMemcpy6, end);
  OFF(CUpti_ActivityMemset4, kind);
  OFF(CUpti_ActivityMemset4, bytes);
  OFF(CUpti_ActivityMemset4, start);
  OFF(CUpti_ActivityMemset4, end);
#ifndef LIVERNET_MOCK_CUPTI
  // The older layouts share the prefix (what lets an older struct read a newer record).
  OFF(CUpti_ActivityKernel4, start);
  OFF(CUpti_ActivityKernel4, end);
  OFF(CUpti_ActivityKernel4, name);
  OFF(CUpti_ActivityKernel9, name);
  OFF(CUpti_ActivityMemcpy5, start);
  OFF(CUpti_ActivityMemset3, start);
#endif
  return 0;
}
