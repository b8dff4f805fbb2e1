// run_isolated: a crash, an abort, a hang, a runaway allocation or an exit() in the child becomes an outcome
// in the caller, which keeps running; a normal return brings back what the child returned.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <thread>

#include "core/isolate.h"

using namespace livernet;
using Outcome = IsolatedRun::Outcome;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif
#else
constexpr bool kAsan = false;
#endif

TEST(Isolate, ReturnsWhatTheChildReturned) {
  const IsolatedRun r = run_isolated([] { return std::string("hello\nwith a second line\0and a NUL", 34); });
  ASSERT_EQ(r.outcome, Outcome::finished) << r.detail;
  EXPECT_EQ(r.report, std::string("hello\nwith a second line\0and a NUL", 34));
}

TEST(Isolate, BringsBackALargeReport) {
  const IsolatedRun r = run_isolated([] { return std::string(300000, 'x'); });
  ASSERT_EQ(r.outcome, Outcome::finished);
  EXPECT_EQ(r.report.size(), 300000u);
}

TEST(Isolate, TheChildWorksOnACopyOfTheCallersMemory) {
  int value = 41;
  const IsolatedRun r = run_isolated([&] {
    ++value;
    return std::to_string(value);
  });
  ASSERT_EQ(r.outcome, Outcome::finished);
  EXPECT_EQ(r.report, "42");
  EXPECT_EQ(value, 41);
}

TEST(Isolate, ASegfaultIsReportedNotFatal) {
  const IsolatedRun r = run_isolated([]() -> std::string {
    ::raise(SIGSEGV);
    return "survived";
  });
  EXPECT_EQ(r.outcome, Outcome::crashed);
  EXPECT_EQ(r.detail, "SIGSEGV");
}

TEST(Isolate, AnAbortIsReported) {
  const IsolatedRun r = run_isolated([]() -> std::string { std::abort(); });
  EXPECT_EQ(r.outcome, Outcome::crashed);
  EXPECT_EQ(r.detail, "SIGABRT");
}

TEST(Isolate, AnExitWithoutAReportIsACrash) {
  // A sanitizer's report ends the process with exit(1); so does a library calling exit().
  const IsolatedRun r = run_isolated([]() -> std::string { std::exit(0); });
  EXPECT_EQ(r.outcome, Outcome::crashed);
  EXPECT_EQ(r.detail, "exit status 0");
}

TEST(Isolate, AnExceptionIsReportedAsText) {
  const IsolatedRun r = run_isolated([]() -> std::string { throw std::runtime_error("bad"); });
  ASSERT_EQ(r.outcome, Outcome::finished);
  EXPECT_EQ(r.report, "exception: bad");
}

TEST(Isolate, AHangIsKilledAtTheTimeLimit) {
  IsolateLimits limits;
  limits.timeout_s = 0.5;
  const auto t0 = std::chrono::steady_clock::now();
  const IsolatedRun r = run_isolated([]() -> std::string {
    while (true) ::pause();
  }, limits);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.outcome, Outcome::timed_out);
  EXPECT_GE(s, 0.5);
  EXPECT_LT(s, 10.0);
}

TEST(Isolate, AllocationsBeyondTheBudgetFailInTheChild) {
  if (kAsan) GTEST_SKIP() << "no address-space limit under AddressSanitizer";
  IsolateLimits limits;
  limits.memory_budget_bytes = std::int64_t{256} << 20;
  const IsolatedRun r = run_isolated([]() -> std::string {
    void* small = std::malloc(std::size_t{64} << 20);
    void* big = std::malloc(std::size_t{4} << 30);
    const std::string out = std::string(small ? "small ok" : "small failed") + (big ? ", big ok" : ", big failed");
    std::free(small);
    std::free(big);
    return out;
  }, limits);
  ASSERT_EQ(r.outcome, Outcome::finished) << r.detail;
  EXPECT_EQ(r.report, "small ok, big failed");
}

TEST(Isolate, TheChildsOutputDoesNotReachTheCallersStreams) {
  testing::internal::CaptureStderr();
  testing::internal::CaptureStdout();
  const IsolatedRun r = run_isolated([] {
    std::fprintf(stderr, "child stderr\n");
    std::printf("child stdout\n");
    std::fflush(nullptr);
    return std::string("done");
  });
  const std::string err = testing::internal::GetCapturedStderr();
  const std::string out = testing::internal::GetCapturedStdout();
  ASSERT_EQ(r.outcome, Outcome::finished);
  EXPECT_EQ(err.find("child"), std::string::npos);
  EXPECT_EQ(out.find("child"), std::string::npos);
}

TEST(Isolate, WorksFromAThreadWhileOthersRun) {
  std::atomic<bool> stop{false};
  std::thread busy([&] {
    while (!stop) std::this_thread::yield();
  });
  IsolatedRun r;
  std::thread t([&] { r = run_isolated([] { return std::string("from a thread"); }); });
  t.join();
  stop = true;
  busy.join();
  ASSERT_EQ(r.outcome, Outcome::finished);
  EXPECT_EQ(r.report, "from a thread");
}

TEST(Isolate, SignalNames) {
  EXPECT_EQ(signal_name(SIGSEGV), "SIGSEGV");
  EXPECT_EQ(signal_name(SIGBUS), "SIGBUS");
  EXPECT_EQ(signal_name(64), "signal 64");
}

}  // namespace
