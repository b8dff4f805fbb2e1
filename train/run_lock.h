// One owner per run directory: tools/train holds a lock on RUN/.lock for as long as it writes the run.
// A second train, --resume or --force on a directory in use is refused with one line naming the owner.
//
// The lock is a POSIX record lock (fcntl F_SETLK), which belongs to the process: the kernel drops it when
// the process ends, however it ends (a SIGKILLed owner leaves no stale lock), and a child made by fork()
// does not inherit it (an flock would stay held by the HDF5 check's forked child, io/hdf5.cpp, after its
// parent was killed). A record lock is also dropped when the process closes any descriptor of the file,
// so the file is opened once per process: a second RunLock of the same directory in the same process is
// refused before it opens anything.
#pragma once

#include <string>

namespace livernet::train {

class RunLock {
 public:
  // Takes the lock of `run_dir` (which must exist), or throws Error: "RUN: in use by process PID on HOST
  // (since TIME); wait for it to end or stop it (a run directory has one writer at a time)".
  explicit RunLock(const std::string& run_dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  static constexpr const char* kFile = ".lock";

 private:
  std::string key_;  // the lock file's canonical path, registered while held
  int fd_ = -1;
};

}  // namespace livernet::train
