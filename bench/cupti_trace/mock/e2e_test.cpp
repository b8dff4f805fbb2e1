// LOCAL TEST ONLY: drives kernel_trace.cpp end to end against fake_cupti.cpp (no GPU, no CUPTI): records go
// through the real buffer callbacks (several 8 MiB buffers), the begin / end window, the text and JSON reports,
// the dropped-record count, LIVERNET_TRACE_KEEP_ENABLED, LIVERNET_TRACE_CATEGORIES, the cuCtxSynchronize call,
// and an enable failure that must switch tracing off with one line instead of aborting. Built and run by
// run_selftest.sh:
//   g++ -std=c++17 -Imock -I. mock/e2e_test.cpp kernel_trace.cpp mock/fake_cupti.cpp -rdynamic -ldl
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "check.h"

extern "C" {
void livernet_trace_begin(const char* label);
void livernet_trace_end(void);
void fake_cupti_set_clock(unsigned long t);
void fake_cupti_set_dropped(size_t n);
void fake_cupti_fail_enable(int on);
int fake_cupti_enabled(int kind);
int fake_cupti_calls(const char* which);
void fake_cupti_kernel(const char* name, unsigned long start, unsigned long end);
void fake_cupti_memcpy(int copy_kind, unsigned long start, unsigned long end, unsigned long bytes);
void fake_cupti_memset(unsigned long start, unsigned long end, unsigned long bytes);

// Found by the tracer with dlsym(RTLD_DEFAULT, "cuCtxSynchronize") (the binary is linked -rdynamic).
int g_sync_calls = 0;
__attribute__((visibility("default"))) int cuCtxSynchronize(void) {
  ++g_sync_calls;
  return 0;
}
}

namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

const char* kConv = "sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc_kernel__5x_cudnn";
const char* kBn = "_ZN8livernet7kernels4cuda37_GLOBAL__N__6da094a6_5_nn_cu_2607325410vec_kernelILi8ENS2_9BnApplyFnINS_4bf16EEEEEvlT0_";

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "/tmp";
  // "custom": LIVERNET_TRACE_CATEGORIES names a rules file mapping fprop -> mine_conv, bnapply -> mine_bn.
  const bool custom = argc > 2 && std::string(argv[2]) == "custom";
  const std::string bn_cat = custom ? "mine_bn" : "batchnorm", conv_cat = custom ? "mine_conv" : "conv_fwd";
  const std::string out = dir + "/e2e_trace.txt", json = dir + "/e2e_trace.jsonl";
  std::remove(out.c_str());
  std::remove(json.c_str());
  setenv("LIVERNET_TRACE_OUT", out.c_str(), 1);
  setenv("LIVERNET_TRACE_JSON", json.c_str(), 1);
  setenv("LIVERNET_TRACE_STEPS", "2", 1);

  // 1. A records emitted before begin are not recorded (kinds disabled).
  fake_cupti_kernel(kConv, 10, 20);
  CHECK(!fake_cupti_enabled(10));

  // 2. A two-step window with enough records for several 8 MiB buffers.
  fake_cupti_set_clock(1000);
  livernet_trace_begin("train");
  CHECK(fake_cupti_enabled(10) && fake_cupti_enabled(1) && fake_cupti_enabled(2));
  const int n_bn = 150000;  // ~150k records * 112 bytes: 2 full buffers and a partial one
  for (int i = 0; i < n_bn; ++i) fake_cupti_kernel(kBn, 2000 + 10ul * i, 2000 + 10ul * i + 5);
  fake_cupti_kernel(kConv, 1500, 1600);
  fake_cupti_kernel(kConv, 1550, 1700);  // overlaps the previous one
  fake_cupti_memcpy(2, 1800, 1810, 4);   // DtoH
  fake_cupti_memset(1900, 1905, 64);
  fake_cupti_kernel(kConv, 0, 0);        // incomplete
  fake_cupti_kernel(kConv, 900, 950);    // starts before begin's timestamp
  fake_cupti_set_dropped(7);
  fake_cupti_set_clock(10000000);
  livernet_trace_end();
  CHECK(!fake_cupti_enabled(10) && !fake_cupti_enabled(1) && !fake_cupti_enabled(2));
  CHECK(g_sync_calls == 1);
  std::string text = slurp(out);
  CHECK(has(text, "== livernet-cupti train: 2 step(s)"));
  CHECK(has(text, "records: kernels 75001, memcpy 0.5, memset 0.5 per step; dropped 7, incomplete 1, outside window 1"));
  CHECK(has(text, "vec_kernel<8, BnApplyFn<bf16>>"));
  CHECK(has(text, bn_cat));
  CHECK(has(text, conv_cat));
  std::string js = slurp(json);
  CHECK(has(js, "\"label\":\"train\""));
  CHECK(has(js, "\"kernels\":150002"));
  CHECK(has(js, "\"dropped\":7"));
  CHECK(has(js, "{\"category\":\"" + bn_cat + "\",\"count\":150000,\"total_us\":750.000}"));
  CHECK(has(js, std::string("{\"category\":\"") + (custom ? "other" : "copy") + "\",\"count\":2,\"total_us\":0.015}"));
  // busy: BN 150000 * 5 ns + conv union [1500, 1700) + memcpy 10 + memset 5 = 750000 + 200 + 15 ns
  CHECK(has(js, "\"busy_us\":750.215"));

  // 3. Keep-enabled mode: kinds stay on, records from before the next begin fall outside its window.
  setenv("LIVERNET_TRACE_KEEP_ENABLED", "1", 1);
  setenv("LIVERNET_TRACE_STEPS", "1", 1);
  setenv("LIVERNET_TRACE_NO_SYNC", "1", 1);
  fake_cupti_set_clock(20000000);
  livernet_trace_begin("infer");
  fake_cupti_kernel(kConv, 20000100, 20000200);
  fake_cupti_set_clock(20001000);
  livernet_trace_end();
  CHECK(fake_cupti_enabled(10));
  CHECK(g_sync_calls == 1);  // LIVERNET_TRACE_NO_SYNC
  fake_cupti_kernel(kConv, 20002000, 20002100);  // between labels: delivered with the next flush, outside
  fake_cupti_set_clock(30000000);
  livernet_trace_begin("infer2");
  fake_cupti_kernel(kBn, 30000100, 30000110);
  fake_cupti_set_clock(30001000);
  livernet_trace_end();
  js = slurp(json);
  CHECK(has(js, "\"label\":\"infer\",\"steps\":1,\"busy_us\":0.100"));
  CHECK(has(js, "\"label\":\"infer2\",\"steps\":1,\"busy_us\":0.010"));
  CHECK(has(js, "\"outside\":1,\"categories\":[{\"category\":\"" + bn_cat + "\""));
  unsetenv("LIVERNET_TRACE_KEEP_ENABLED");

  // 4. A begin while a trace is open ends that trace first.
  livernet_trace_begin("nested-a");
  fake_cupti_kernel(kConv, 30002000, 30002100);
  fake_cupti_set_clock(30003000);
  livernet_trace_begin("nested-b");
  livernet_trace_end();
  js = slurp(json);
  CHECK(has(js, "\"label\":\"nested-a\""));
  CHECK(has(js, "\"label\":\"nested-b\""));
  CHECK(!fake_cupti_enabled(10));

  // 5. Records all outside the window (a clock mismatch): reported anyway, not dropped.
  fake_cupti_set_clock(5000000000ul);
  livernet_trace_begin("clock-mismatch");
  fake_cupti_kernel(kConv, 100, 200);
  fake_cupti_kernel(kBn, 300, 310);
  fake_cupti_set_clock(6000000000ul);
  livernet_trace_end();
  js = slurp(json);
  CHECK(has(js, "\"label\":\"clock-mismatch\",\"steps\":1,\"busy_us\":0.110"));
  CHECK(has(js, "\"kernels\":2,\"memcpys\":0,\"memsets\":0,\"dropped\":0,\"incomplete\":0,\"outside\":0"));

  // 6. Enable failure: one line, tracing off for good, no crash; later calls do nothing.
  fake_cupti_fail_enable(1);
  livernet_trace_begin("broken");
  livernet_trace_end();
  const int enables = fake_cupti_calls("enable");
  fake_cupti_fail_enable(0);
  livernet_trace_begin("after-broken");
  livernet_trace_end();
  CHECK(fake_cupti_calls("enable") == enables);
  js = slurp(json);
  CHECK(!has(js, "\"label\":\"broken\""));
  CHECK(!has(js, "after-broken"));

  std::printf("e2e_test: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
