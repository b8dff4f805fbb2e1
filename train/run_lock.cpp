#include "train/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>

#include "core/error.h"

namespace livernet::train {

RunLock::RunLock(const std::string& run_dir) {
  const std::string path = run_dir + "/" + kFile;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  LN_CHECK(fd_ >= 0, path, ": cannot open the run's lock file (", std::strerror(errno), ")");
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char owner[256] = {};
    const ssize_t n = ::pread(fd_, owner, sizeof owner - 1, 0);
    ::close(fd_);
    fd_ = -1;
    std::string who(owner, n > 0 ? static_cast<std::size_t>(n) : 0);
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    LN_CHECK(err != EWOULDBLOCK, run_dir, ": in use by ", who.empty() ? std::string("another process") : who,
             "; wait for it to end or stop it (a run directory has one writer at a time)");
    LN_FAIL(path, ": cannot lock the run directory (", std::strerror(err), ")");
  }
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  char since[32] = {};
  const std::time_t t = std::time(nullptr);
  std::strftime(since, sizeof since, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  const std::string me = str_cat("process ", ::getpid(), " on ", host, " (since ", since, ")\n");
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, me.data(), me.size(), 0);
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock; the file stays (removing it would race a new owner)
}

}  // namespace livernet::train
