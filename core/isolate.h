// Running risky work (a third-party parser on an untrusted file) in a child process, so that a crash, a
// hang or a runaway allocation inside it becomes an error message in the caller instead of the end of the
// caller's process. The child is a fork() of the caller: it sees the caller's memory as it was, runs one
// function, reports through a pipe and ends with _exit (no destructors, no atexit handlers, no flushing of
// the caller's open files). The function must not use threads pools the caller started (OpenMP) or a GPU.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace livernet {

struct IsolatedRun {
  enum class Outcome {
    finished,    // fn returned; `report` is what it returned
    crashed,     // killed by a signal, or exited without reporting (a sanitizer's report, abort, exit())
    timed_out,   // still running after the time limit: killed
    not_started  // fork/pipe failed; `detail` says why
  };
  Outcome outcome = Outcome::not_started;
  std::string report;  // fn's return value (finished)
  std::string detail;  // the signal ("SIGSEGV"), the exit status, or the system error
};

struct IsolateLimits {
  double timeout_s = 60;
  // Added to the child's address space as it was at fork (RLIMIT_AS): allocations beyond it fail inside the
  // child (malloc returns NULL, new throws) instead of exhausting the machine. 0: no limit. Not applied in
  // builds with AddressSanitizer (its shadow memory makes address-space limits meaningless).
  std::int64_t memory_budget_bytes = std::int64_t{2} << 30;
  // The child's stderr stays the caller's (for diagnosing); otherwise /dev/null.
  bool keep_stderr = false;
};

// Runs fn in a child process with stdin, stdout (and stderr unless keep_stderr) on /dev/null and the default action for fatal
// signals. fn's return value (any bytes, up to 1 MiB) travels back through a pipe.
IsolatedRun run_isolated(const std::function<std::string()>& fn, const IsolateLimits& limits = {});

// "SIGSEGV", "SIGKILL", ... or "signal N".
std::string signal_name(int sig);

}  // namespace livernet
