// SIGKILL at random moments: tools/train is killed over and over (at random times, and right while it
// writes a checkpoint or a result file), resumed each time with --resume, and must finish with exactly the
// predictions and metrics of an uninterrupted run; after every kill each file of the run directory must
// be complete (every .h5 opens, every .json parses, every .csv ends with a full line).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/philox.h"
#include "data/dataset.h"
#include "io/hdf5.h"
#include "io/md5.h"
#include "test_util.h"
#include "data/phantoms.h"

extern char** environ;

using namespace livernet;
namespace fs = std::filesystem;

namespace {

using livernet::testing::slurp;

pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

bool has_temporary(const std::string& dir) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->path().filename().string().find(".tmp.") != std::string::npos) return true;
  return false;
}

// Every visible file of the run directory is whole.
void expect_run_dir_consistent(const std::string& dir, int kill_no) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const std::string p = it->path().string(), n = it->path().filename().string();
    if (n[0] == '.') continue;  // a temporary of the killed write: never read
    if (n.ends_with(".h5")) {
      EXPECT_NO_THROW({
        io::H5File f = io::H5File::open(p);
        (void)f;
      }) << "kill " << kill_no << ": " << p;
    } else if (n.ends_with(".json")) {
      EXPECT_FALSE(nlohmann::json::parse(slurp(p), nullptr, false).is_discarded()) << "kill " << kill_no << ": " << p;
    } else if (n.ends_with(".csv")) {
      const std::string t = slurp(p);
      EXPECT_TRUE(!t.empty() && t.back() == '\n') << "kill " << kill_no << ": " << p;
    } else if (n == "config.yaml") {
      EXPECT_NE(slurp(p).find("runtime:"), std::string::npos) << "kill " << kill_no << ": " << p;
    }
  }
}

}  // namespace

// One uninterrupted reference run shared by the tests (its duration spreads the kills over a run).
class KillResume : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("livernet_killresume_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    data::PhantomConfig pc;
    pc.patients = 10;
    pc.max_lesions = 3;
    pc.size = 32;
    data::save_dataset_h5(data::make_phantoms(pc), str("d.h5"));
    std::ofstream(str("tiny.yaml")) << "data:\n  input_size: 75\n  augment:\n    enabled: true\nmodel:\n  head_hidden: [16]\n"
                                      "train:\n  batch_size: 4\n  epochs: 2\n  early_stopping_patience: 0\n"
                                      "cv:\n  folds: 2\nruntime:\n  device: cpu\n  loader_threads: 1\n";
    const auto t0 = std::chrono::steady_clock::now();
    const pid_t pid = spawn(command("ref"), str("ref.log"));
    int status = 0;
    if (pid > 0) waitpid(pid, &status, 0);
    ref_ok_ = pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    full_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }
  void SetUp() override {
    ASSERT_TRUE(ref_ok_) << "the reference run failed: " << slurp(str("ref.log"));
    fs::remove_all(str("runs/k"));
  }
  static std::string str(const std::string& n) { return (root_ / n).string(); }
  static std::vector<std::string> command(const std::string& name) {
    return {std::string(LIVERNET_TOOLS_DIR) + "/train", "-c", str("tiny.yaml"), "--data", str("d.h5"), "--runs-dir",
            str("runs"), "--name", name, "--force"};
  }
  static std::vector<std::string> resume_command() {
    return {std::string(LIVERNET_TOOLS_DIR) + "/train", "--resume", str("runs/k")};
  }
  static void expect_equals_reference(const std::string& run, const std::string& what) {
    EXPECT_EQ(slurp(run + "/predictions.csv"), slurp(str("runs/ref/predictions.csv"))) << what;
    EXPECT_EQ(slurp(run + "/metrics.json"), slurp(str("runs/ref/metrics.json"))) << what;
  }
  static inline fs::path root_;
  static inline bool ref_ok_ = false;
  static inline double full_ms_ = 0;
};

TEST_F(KillResume, TwentyKillsThenResumeEqualsAnUninterruptedRun) {
  const double full_ms = full_ms_;
  const std::vector<std::string> fresh = command("k"), resume = resume_command();
  const std::string run = str("runs/k");
  // Kill until 20 kills have happened; a run that reaches its end in between must match the reference and
  // is then started afresh; the last one is resumed to its end.
  int kills = 0, during_writes = 0, completed = 0, restarts = 0;
  std::uint64_t draw = 0;
  for (int attempt = 0; attempt < 200; ++attempt) {
    const bool started = fs::exists(run + "/config.yaml");
    if (!started) ++restarts;
    const pid_t pid = spawn(started ? resume : fresh, str("kill.log"));
    ASSERT_GT(pid, 0);
    int status = 0;
    bool killed = false;
    if (kills < 20) {
      // Odd kills land inside a write (a temporary file is present), even ones at a random time.
      const bool at_write = kills % 2 == 1;
      const double delay_ms = philox_uniform_at(2026, 11, draw++, 0.f, static_cast<float>(full_ms / 4));
      const auto start = std::chrono::steady_clock::now();
      bool in_write = false;
      while (true) {
        if (waitpid(pid, &status, WNOHANG) == pid) break;
        const double el = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        in_write = has_temporary(run);
        if ((at_write && in_write && el > 200) || (!at_write && el >= delay_ms)) {
          kill(pid, SIGKILL);
          waitpid(pid, &status, 0);
          killed = true;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(at_write ? 2 : 10));
      }
      if (killed) {
        ++kills;
        during_writes += in_write;
        expect_run_dir_consistent(run, kills);
        continue;
      }
    } else {
      waitpid(pid, &status, 0);
    }
    ASSERT_TRUE(WIFEXITED(status)) << "train died by itself: " << slurp(str("kill.log"));
    ASSERT_EQ(WEXITSTATUS(status), 0) << slurp(str("kill.log"));
    ++completed;
    EXPECT_FALSE(has_temporary(run)) << "temporaries of killed writes were not cleaned up on resume";
    expect_equals_reference(run, str_cat("completion ", completed));
    if (kills >= 20) break;
    fs::remove_all(run);
  }
  ASSERT_GE(completed, 1) << "the run never finished";
  EXPECT_GE(kills, 20);
  EXPECT_GE(during_writes, 5) << "too few kills landed inside a write";
  std::printf("[ kill-resume ] %d SIGKILLs (%d inside a write, %d runs started afresh), %d run(s) resumed to the end; "
              "predictions and metrics equal to the uninterrupted run's each time\n", kills, during_writes, restarts, completed);
}

// A full disk (here: a file-size limit, as a quota would impose) while a checkpoint is written: one clear
// line naming the checkpoint, exit code 1, the previous checkpoint untouched, no temporary left; resumed
// with room again, the run ends exactly as an uninterrupted one.
TEST_F(KillResume, DiskFullKeepsThePreviousCheckpoint) {
  const std::string run = str("runs/k"), ckpt = run + "/fold_1/checkpoint.h5";
  // Run until the first checkpoint is complete, then kill.
  pid_t pid = spawn(command("k"), str("disk.log"));
  ASSERT_GT(pid, 0);
  int status = 0;
  while (!(fs::exists(ckpt) && !has_temporary(run))) {
    ASSERT_NE(waitpid(pid, &status, WNOHANG), pid) << "finished before a checkpoint: " << slurp(str("disk.log"));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  const std::string before = io::md5_file(ckpt);
  // Resume with room for the small files but not for the next checkpoint (the first one's size less 1 MB).
  const auto limit = static_cast<rlim_t>(fs::file_size(ckpt) - (1 << 20));
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit lim = old;
  lim.rlim_cur = limit;
  std::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
  fs::remove(str("full.log"));
  pid = spawn(resume_command(), str("full.log"));
  setrlimit(RLIMIT_FSIZE, &old);
  ASSERT_GT(pid, 0);
  waitpid(pid, &status, 0);
  const std::string log = slurp(str("full.log"));
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status) << ": " << log;
  EXPECT_EQ(WEXITSTATUS(status), 1) << log;
  const std::string last = log.substr(log.rfind('\n', log.size() - 2) + 1);
  EXPECT_NE(last.find("train: " + run), std::string::npos) << last;
  EXPECT_NE(last.find("checkpoint.h5: cannot write"), std::string::npos) << last;
  EXPECT_NE(last.find("(disk full?)"), std::string::npos) << last;
  EXPECT_EQ(last.find(".tmp."), std::string::npos) << "the message should name the checkpoint, not its temporary: " << last;
  EXPECT_EQ(io::md5_file(ckpt), before) << "the previous checkpoint changed";
  EXPECT_FALSE(has_temporary(run));
  // With room again.
  pid = spawn(resume_command(), str("disk.log"));
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << slurp(str("disk.log"));
  expect_equals_reference(run, "after the disk-full failure");
}

// One owner per run directory (#19): while a train writes the run, a second train --resume, or a fresh
// train with --force on the same directory, is refused with one line naming the owner and changes nothing;
// once the owner is killed (SIGKILL: no cleanup) the run resumes and ends as an uninterrupted one.
TEST_F(KillResume, ASecondTrainOnARunInUseIsRefused) {
  const std::string run = str("runs/k");
  const pid_t owner = spawn(command("k"), str("owner.log"));
  ASSERT_GT(owner, 0);
  int status = 0;
  while (!fs::exists(run + "/config.yaml")) {
    ASSERT_NE(waitpid(owner, &status, WNOHANG), owner) << "finished before it could be interrupted: " << slurp(str("owner.log"));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const std::string config = slurp(run + "/config.yaml");
  for (const auto& args : {resume_command(), command("k")}) {
    fs::remove(str("second.log"));
    const pid_t second = spawn(args, str("second.log"));
    ASSERT_GT(second, 0);
    waitpid(second, &status, 0);
    const std::string log = slurp(str("second.log"));
    ASSERT_TRUE(WIFEXITED(status)) << log;
    EXPECT_EQ(WEXITSTATUS(status), 1) << log;
    EXPECT_NE(log.find(run + ": in use by process " + std::to_string(owner) + " on "), std::string::npos) << log;
    EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << "one line: " << log;
  }
  EXPECT_EQ(waitpid(owner, &status, WNOHANG), 0) << "the owner should still be running: " << slurp(str("owner.log"));
  EXPECT_EQ(slurp(run + "/config.yaml"), config);
  kill(owner, SIGKILL);
  waitpid(owner, &status, 0);
  const pid_t resumed = spawn(resume_command(), str("resumed.log"));
  waitpid(resumed, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << slurp(str("resumed.log"));
  expect_equals_reference(run, "resumed after the owner was killed");
}
