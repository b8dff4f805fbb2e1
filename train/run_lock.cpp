#include "train/run_lock.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>

#include "core/error.h"

namespace livernet::train {

namespace {

// The lock files this process holds (a record lock cannot refuse its own process).
std::mutex& held_mutex() {
  static std::mutex m;
  return m;
}
std::set<std::string>& held() {
  static std::set<std::string> s;
  return s;
}

std::string in_use(const std::string& run_dir, const std::string& owner) {
  return str_cat(run_dir, ": in use by ", owner.empty() ? std::string("another process") : owner,
                 "; wait for it to end or stop it (a run directory has one writer at a time)");
}

std::string this_process() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  char since[32] = {};
  const std::time_t t = std::time(nullptr);
  std::tm local{};
  ::localtime_r(&t, &local);
  std::strftime(since, sizeof since, "%Y-%m-%d %H:%M:%S", &local);
  return str_cat("process ", ::getpid(), " on ", host, " (since ", since, ")");
}

}  // namespace

RunLock::RunLock(const std::string& run_dir) {
  const std::string path = run_dir + "/" + kFile;
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::canonical(run_dir, ec);
  LN_CHECK(!ec, run_dir, ": cannot lock the run directory (", ec.message(), ")");
  key_ = (dir / kFile).string();
  {
    std::lock_guard<std::mutex> g(held_mutex());
    if (!held().insert(key_).second) throw Error(in_use(run_dir, this_process()));
  }
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    const int err = errno;
    std::lock_guard<std::mutex> g(held_mutex());
    held().erase(key_);
    LN_FAIL(path, ": cannot open the run's lock file (", std::strerror(err), ")");
  }
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;  // the whole file
  if (::fcntl(fd_, F_SETLK, &fl) != 0) {
    const int err = errno;
    char owner[256] = {};
    const ssize_t n = ::pread(fd_, owner, sizeof owner - 1, 0);
    ::close(fd_);
    fd_ = -1;
    {
      std::lock_guard<std::mutex> g(held_mutex());
      held().erase(key_);
    }
    std::string who(owner, n > 0 ? static_cast<std::size_t>(n) : 0);
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    LN_CHECK(err != EACCES && err != EAGAIN, in_use(run_dir, who));
    LN_FAIL(path, ": cannot lock the run directory (", std::strerror(err), ")");
  }
  const std::string me = this_process() + "\n";
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, me.data(), me.size(), 0);
}

RunLock::~RunLock() {
  if (fd_ < 0) return;
  ::close(fd_);  // releases the lock; the file stays (removing it would race a new owner)
  std::lock_guard<std::mutex> g(held_mutex());
  held().erase(key_);
}

}  // namespace livernet::train
