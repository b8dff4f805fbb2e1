// Tests of the tracer's CUPTI-free half (trace_agg.h): rules file and built-in copy, demangling and name
// shortening, the classifier on real livernet kernel names and on cuDNN / cuBLAS / PyTorch names, busy-time
// union, aggregation and the reports. No GPU or CUPTI needed.
//
//   g++ -std=c++17 -O1 -Wall -Wextra bench/cupti_trace/selftest.cpp -o selftest
//   ./selftest [DIR_OF_categories.txt] [--json-out FILE]   (DIR defaults to this source's folder)
//
// --json-out writes the JSON line of a synthetic summary, for bench/trace_compare.py's test.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "check.h"
#include "trace_agg.h"

#ifndef LIVERNET_TRACE_SRC_DIR
#define LIVERNET_TRACE_SRC_DIR "bench/cupti_trace"
#endif

namespace {

#define CHECK_EQ(a, b)                                                                              \
  do {                                                                                              \
    const auto& _a = (a);                                                                           \
    const auto& _b = (b);                                                                           \
    if (_a == _b) {                                                                                 \
      ++g_passed;                                                                                   \
    } else {                                                                                        \
      ++g_failed;                                                                                   \
      std::fprintf(stderr, "FAIL %s:%d: %s == %s\n  got:      %s\n  expected: %s\n", __FILE__, __LINE__, \
                   #a, #b, to_s(_a).c_str(), to_s(_b).c_str());                                     \
    }                                                                                               \
  } while (0)

std::string to_s(const std::string& s) { return s; }
template <typename T>
std::string to_s(const T& v) {
  return std::to_string(v);
}

using namespace livernet_trace;

void test_rules(const std::string& dir) {
  std::string file;
  CHECK(read_file(dir + "/categories.txt", &file));
  CHECK_EQ(std::string(builtin_rules_text()), file);  // categories_builtin.inc is categories.txt
  std::string err;
  const std::vector<Rule> rules = parse_rules(file, &err);
  CHECK_EQ(err, std::string());
  CHECK(rules.size() >= 10);
  err.clear();
  const std::vector<Rule> bad = parse_rules("# c\n\nno tab here\n([\tx\nok\ty\n", &err);
  CHECK_EQ(bad.size(), std::size_t{1});
  CHECK(err.find("line 3") != std::string::npos);
  CHECK_EQ(classify(bad, "OK!"), std::string("y"));  // case-insensitive
  CHECK_EQ(classify(bad, "nothing"), std::string("other"));
}

void test_names() {
  CHECK_EQ(strip_params("void a::b<int, (anonymous namespace)::X>(long, (anonymous namespace)::X)"),
           std::string("a::b<int, (anonymous namespace)::X>"));
  CHECK_EQ(strip_params("sm90_xmma_fprop_implicit_gemm_kernel"), std::string("sm90_xmma_fprop_implicit_gemm_kernel"));
  CHECK_EQ(strip_params("Memcpy HtoD (Pageable -> Device)"), std::string("Memcpy HtoD"));
  CHECK_EQ(strip_params("(weird)"), std::string("(weird)"));
  CHECK_EQ(demangle("not_mangled"), std::string("not_mangled"));
  CHECK_EQ(demangle("_Zgarbage"), std::string("_Zgarbage"));
  const char* bn = "_ZN8livernet7kernels4cuda37_GLOBAL__N__6da094a6_5_nn_cu_2607325410vec_kernelILi8ENS2_9BnApplyFnINS_4bf16EEEEEvlT0_";
  const std::string full = strip_params(demangle(bn));
  CHECK_EQ(full, std::string("livernet::kernels::cuda::(anonymous namespace)::vec_kernel<8, "
                             "livernet::kernels::cuda::(anonymous namespace)::BnApplyFn<livernet::bf16> >"));
  CHECK_EQ(shorten(full, 300), std::string("vec_kernel<8, BnApplyFn<bf16>>"));
  CHECK_EQ(shorten("at::native::reduce_kernel<512, 1, at::native::ReduceOp<c10::BFloat16, float> >", 300),
           std::string("reduce_kernel<512, 1, ReduceOp<bf16, float>>"));
  CHECK_EQ(shorten("abcdefghij", 8), std::string("abcde..."));
  CHECK_EQ(std::string(memcpy_kind_name(1)), std::string("HtoD"));
  CHECK_EQ(std::string(memcpy_kind_name(8)), std::string("DtoD"));
  CHECK_EQ(std::string(memcpy_kind_name(77)), std::string("unknown"));
}

// Every line of a testdata file (expected<TAB>name) classifies as expected.
void test_classify_file(const std::vector<Rule>& rules, const std::string& path) {
  std::ifstream f(path);
  CHECK(static_cast<bool>(f));
  std::string line;
  int n = 0;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t tab = line.find('\t');
    if (tab == std::string::npos) continue;
    const std::string expected = line.substr(0, tab);
    const std::string raw = line.substr(tab + 1);
    const std::string got = classify(rules, strip_params(demangle(raw.c_str())));
    if (got != expected) {
      ++g_failed;
      std::fprintf(stderr, "FAIL classify %s: got %s, expected %s\n  %s\n", path.c_str(), got.c_str(),
                   expected.c_str(), shorten(strip_params(demangle(raw.c_str())), 200).c_str());
    } else {
      ++g_passed;
    }
    ++n;
  }
  CHECK(n > 10);
}

void test_union() {
  using V = std::vector<std::pair<std::uint64_t, std::uint64_t>>;
  CHECK_EQ(union_ns(V{}), 0.0);
  CHECK_EQ(union_ns(V{{10, 20}}), 10.0);
  CHECK_EQ(union_ns(V{{10, 20}, {15, 30}, {40, 50}}), 30.0);  // overlap + gap
  CHECK_EQ(union_ns(V{{10, 100}, {20, 30}, {40, 50}}), 90.0);  // nested
  CHECK_EQ(union_ns(V{{40, 50}, {10, 20}, {20, 40}}), 40.0);   // unsorted, touching
  CHECK_EQ(union_ns(V{{10, 10}, {30, 20}}), 0.0);              // empty and inverted ignored
}

Summary synthetic(const std::vector<Rule>& rules) {
  // Two steps of: fprop conv 100 ns, BN apply 20 ns (two kernels overlapping the conv on another stream), a
  // dgrad 50 ns, a DtoD copy 10 ns and a memset 5 ns; plus an incomplete record and one before the window.
  const std::vector<std::string> names = {
      "sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc_kernel__5x_cudnn",
      "_ZN8livernet7kernels4cuda37_GLOBAL__N__6da094a6_5_nn_cu_2607325410vec_kernelILi8ENS2_9BnApplyFnINS_4bf16EEEEEvlT0_",
      "sm90_xmma_dgrad_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc_kernel__5x_cudnn", "[memcpy DtoD]", "[memset]",
      "weird \"quoted\"\tname"};
  std::vector<Record> r;
  for (std::uint64_t base : {1000ull, 2000ull}) {
    r.push_back({RecKind::kernel, base, base + 100, 0, 0});
    r.push_back({RecKind::kernel, base + 50, base + 60, 1, 0});
    r.push_back({RecKind::kernel, base + 95, base + 105, 1, 0});
    r.push_back({RecKind::kernel, base + 200, base + 250, 2, 0});
    r.push_back({RecKind::memcpy, base + 300, base + 310, 3, 4096});
    r.push_back({RecKind::memset, base + 400, base + 405, 4, 64});
  }
  r.push_back({RecKind::kernel, 0, 0, 0, 0});       // incomplete
  r.push_back({RecKind::kernel, 500, 600, 5, 0});   // before the window
  return summarize("train", 2, r, names, rules, 3, 900, 5000);
}

void test_summary(const std::vector<Rule>& rules, const std::string& json_out) {
  const Summary s = synthetic(rules);
  CHECK_EQ(s.kernels, std::uint64_t{8});
  CHECK_EQ(s.memcpys, std::uint64_t{2});
  CHECK_EQ(s.memsets, std::uint64_t{2});
  CHECK_EQ(s.incomplete, std::uint64_t{1});
  CHECK_EQ(s.outside, std::uint64_t{1});
  CHECK_EQ(s.dropped, std::uint64_t{3});
  CHECK_EQ(s.sum_ns, 2.0 * (100 + 10 + 10 + 50 + 10 + 5));
  CHECK_EQ(s.busy_ns, 2.0 * (105 + 50 + 10 + 5));  // the BN kernels overlap the conv except for 5 ns
  CHECK_EQ(s.span_ns, 2405.0 - 1000.0);
  CHECK_EQ(s.by_name.size(), std::size_t{5});
  CHECK_EQ(s.by_name[0].category, std::string("conv_fwd"));
  CHECK_EQ(s.by_name[0].count, std::uint64_t{2});
  CHECK_EQ(s.by_name[1].category, std::string("conv_dgrad"));
  CHECK_EQ(s.by_name[2].name, std::string("vec_kernel<8, BnApplyFn<bf16>>"));
  CHECK_EQ(s.by_name[2].category, std::string("batchnorm"));
  CHECK_EQ(s.by_cat.size(), std::size_t{4});  // conv_fwd, conv_dgrad, batchnorm + copy (memcpy and memset)
  CHECK_EQ(s.by_cat[0].category, std::string("conv_fwd"));
  CHECK_EQ(s.by_cat[3].category, std::string("copy"));
  CHECK_EQ(s.by_cat[3].count, std::uint64_t{4});
  CHECK_EQ(s.by_cat[3].total_ns, 30.0);
  const std::string text = format_text(s, 3);
  CHECK(text.find("== livernet-cupti train: 2 step(s)") != std::string::npos);
  CHECK(text.find("kernels by total time (3 of 5 names)") != std::string::npos);
  CHECK(text.find("conv_fwd") != std::string::npos);
  CHECK(text.find("kernels 4, memcpy 1, memset 1 per step; dropped 3, incomplete 1, outside window 1") !=
        std::string::npos);
  const std::string json = format_json(s);
  CHECK(json.find("\"label\":\"train\"") != std::string::npos);
  CHECK(json.find("\"steps\":2") != std::string::npos);
  CHECK(json.find("{\"category\":\"conv_fwd\",\"count\":2,\"total_us\":0.200}") != std::string::npos);
  CHECK(json.find('\n') == std::string::npos);
  CHECK_EQ(json_escape("a\"b\\c\td\x01"), std::string("a\\\"b\\\\c\\td\\u0001"));
  CHECK_EQ(count_str(3.0), std::string("3"));
  CHECK_EQ(count_str(2.5), std::string("2.5"));
  if (!json_out.empty()) {
    std::ofstream o(json_out);
    o << json << "\n";
  }
  std::fputs(text.c_str(), stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = LIVERNET_TRACE_SRC_DIR, json_out;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json-out" && i + 1 < argc) json_out = argv[++i];
    else dir = a;
  }
  test_rules(dir);
  std::string file, err;
  read_file(dir + "/categories.txt", &file);
  const std::vector<Rule> rules = parse_rules(file, &err);
  test_names();
  test_classify_file(rules, dir + "/testdata/livernet_kernels.tsv");
  test_classify_file(rules, dir + "/testdata/library_kernels.tsv");
  test_union();
  test_summary(rules, json_out);
  std::printf("selftest: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
