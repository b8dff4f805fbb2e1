#include "core/isolate.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>

#if defined(__SANITIZE_ADDRESS__)
#define LN_ISOLATE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LN_ISOLATE_ASAN 1
#endif
#endif

// Sanitizer runtimes (and libFuzzer through them) call a death callback before a sanitizer-detected error
// ends the process; in the child it must not run (libFuzzer would save the parent's input as a crash).
extern "C" void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

namespace livernet {

std::string signal_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGABRT: return "SIGABRT";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    case SIGTRAP: return "SIGTRAP";
    case SIGSYS: return "SIGSYS";
    default: return "signal " + std::to_string(sig);
  }
}

namespace {

#if !defined(LN_ISOLATE_ASAN)
std::int64_t address_space_bytes() {
  std::ifstream statm("/proc/self/statm");
  long long pages = 0;
  if (!(statm >> pages)) return -1;
  return static_cast<std::int64_t>(pages) * sysconf(_SC_PAGESIZE);
}
#endif

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

[[noreturn]] void child_main(int out_fd, const std::function<std::string()>& fn, const IsolateLimits& limits) {
  if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(nullptr);
  for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGTRAP, SIGSYS}) ::signal(sig, SIG_DFL);
  ::signal(SIGPIPE, SIG_IGN);
  const int null_fd = ::open("/dev/null", O_RDWR);
  if (null_fd >= 0) {
    ::dup2(null_fd, 0);
    ::dup2(null_fd, 1);
    if (!limits.keep_stderr) ::dup2(null_fd, 2);
    if (null_fd > 2) ::close(null_fd);
  }
#if !defined(LN_ISOLATE_ASAN)
  if (limits.memory_budget_bytes > 0) {
    const std::int64_t now = address_space_bytes();
    if (now > 0) {
      rlimit rl{};
      rl.rlim_cur = rl.rlim_max = static_cast<rlim_t>(now + limits.memory_budget_bytes);
      ::setrlimit(RLIMIT_AS, &rl);
    }
  }
#endif
  std::string report;
  try {
    report = fn();
  } catch (const std::exception& e) {
    report = std::string("exception: ") + e.what();
  } catch (...) {
    report = "exception";
  }
  if (report.size() > (1u << 20)) report.resize(1u << 20);
  // "R" + the report: a child that dies before writing it (or mid-way) is told apart by the missing prefix.
  const std::string framed = "R" + report;
  const bool ok = write_all(out_fd, framed.data(), framed.size());
  ::_exit(ok ? 0 : 3);
}

}  // namespace

IsolatedRun run_isolated(const std::function<std::string()>& fn, const IsolateLimits& limits) {
  IsolatedRun run;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    run.detail = std::string("pipe: ") + std::strerror(errno);
    return run;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    run.detail = std::string("fork: ") + std::strerror(errno);
    ::close(fds[0]);
    ::close(fds[1]);
    return run;
  }
  if (pid == 0) {
    ::close(fds[0]);
    child_main(fds[1], fn, limits);
  }
  ::close(fds[1]);

  // Read until the child closes the pipe (it exits) or the time runs out.
  std::string got;
  bool timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(limits.timeout_s);
  char buf[65536];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    if (r == 0) continue;
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the child is gone (or closing)
    got.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    run.outcome = IsolatedRun::Outcome::timed_out;
    run.detail = "no result after " + std::to_string(static_cast<long long>(limits.timeout_s)) + " s";
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !got.empty() && got[0] == 'R') {
    run.outcome = IsolatedRun::Outcome::finished;
    run.report = got.substr(1);
  } else {
    run.outcome = IsolatedRun::Outcome::crashed;
    run.detail = WIFSIGNALED(status) ? signal_name(WTERMSIG(status))
                                     : "exit status " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  }
  return run;
}

}  // namespace livernet
