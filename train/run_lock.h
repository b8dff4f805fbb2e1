// One owner per run directory: tools/train holds RUN/.lock (an flock, which the kernel drops when the
// process ends, however it ends: a SIGKILLed owner leaves no stale lock) for as long as it writes the run.
// A second train, --resume or --force on a directory in use is refused with one line naming the owner.
#pragma once

#include <string>

namespace livernet::train {

class RunLock {
 public:
  // Takes the lock of `run_dir` (which must exist), or throws Error: "RUN: in use by process PID on HOST
  // (since TIME); wait for it to end or stop it".
  explicit RunLock(const std::string& run_dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  static constexpr const char* kFile = ".lock";

 private:
  int fd_ = -1;
};

}  // namespace livernet::train
