// train/run_lock.h: one owner per run directory. Within a process, across processes, and after the owner is
// killed while a child it forked (as the HDF5 check forks one) is still alive.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "test_util.h"
#include "train/run_lock.h"

using namespace livernet;
using livernet::testing::error_of;

namespace {

std::string temp_run_dir(const char* what) {
  const auto dir = std::filesystem::temp_directory_path() / (std::string("livernet_runlock_") + what + "_" +
                                                             std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace

TEST(RunLock, ASecondOwnerInTheSameProcessIsRefusedUntilTheFirstEnds) {
  const std::string dir = temp_run_dir("same");
  {
    train::RunLock first(dir);
    EXPECT_NE(error_of([&] { train::RunLock second(dir); }).find(dir + ": in use by process " + std::to_string(::getpid()) + " on "),
              std::string::npos);
    // The refusal must not have released the first lock (closing any descriptor of the file would).
    EXPECT_NE(error_of([&] { train::RunLock third(dir + "/."); }).find("in use by"), std::string::npos);
  }
  EXPECT_EQ(error_of([&] { train::RunLock again(dir); }), "(no error)");
  std::filesystem::remove_all(dir);
}

// The owner (A) forks a child (B) that lives on, as the HDF5 check's child does, and is then killed: the
// lock ends with A although B is alive (an flock would have stayed held by B).
TEST(RunLock, EndsWithItsOwnerEvenWhenTheOwnersChildLivesOn) {
  const std::string dir = temp_run_dir("fork");
  int pipe_fd[2];
  ASSERT_EQ(::pipe(pipe_fd), 0);
  const pid_t a = ::fork();
  ASSERT_GE(a, 0);
  if (a == 0) {
    ::close(pipe_fd[0]);
    try {
      train::RunLock lock(dir);
      const pid_t b = ::fork();
      if (b == 0) {
        for (;;) ::pause();
      }
      (void)!::write(pipe_fd[1], &b, sizeof b);
      for (;;) ::pause();
    } catch (...) {
      ::_exit(3);
    }
  }
  ::close(pipe_fd[1]);
  pid_t b = -1;
  ASSERT_EQ(::read(pipe_fd[0], &b, sizeof b), static_cast<ssize_t>(sizeof b)) << "the owner could not lock";
  ::close(pipe_fd[0]);
  EXPECT_NE(error_of([&] { train::RunLock mine(dir); }).find("in use by process " + std::to_string(a) + " on "),
            std::string::npos);
  ::kill(a, SIGKILL);
  ::waitpid(a, nullptr, 0);
  EXPECT_EQ(::kill(b, 0), 0) << "the owner's child should still be alive";
  EXPECT_EQ(error_of([&] { train::RunLock mine(dir); }), "(no error)");
  ::kill(b, SIGKILL);
  std::filesystem::remove_all(dir);
}
