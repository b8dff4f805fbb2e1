#include "dist/comm.h"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <limits>
#include <memory>
#include <thread>

#include "core/error.h"

#ifdef LIVERNET_WITH_MPI
// The C API only: Open MPI's and MPICH's mpi.h otherwise pull in their deprecated C++ bindings.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace livernet::dist {

namespace {

class Done final : public Request {
 public:
  bool test() override { return true; }
  void wait() override {}
};

class Solo final : public Comm {
 public:
  std::unique_ptr<Request> all_reduce_sum_start(float*, std::size_t) override { return std::make_unique<Done>(); }
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void barrier() override {}
  std::string broadcast(const std::string& bytes, int) override { return bytes; }
  std::vector<std::string> all_gather(const std::string& bytes) override { return {bytes}; }
  [[noreturn]] void abort(int code) override { std::exit(code); }
  std::string describe() const override { return "one process"; }
};

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

// The first of these environment variables that holds a number, or -1.
int env_int(std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (const char* v = std::getenv(n)) {
      char* end = nullptr;
      const long x = std::strtol(v, &end, 10);
      if (end != v && *end == 0 && x >= 0 && x < 1000000) return static_cast<int>(x);
    }
  return -1;
}

#ifdef LIVERNET_WITH_MPI
void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  LN_FAIL("MPI ", what, " failed: ", std::string(msg, static_cast<std::size_t>(len)));
}

class MpiRequest final : public Request {
 public:
  explicit MpiRequest(MPI_Request r) : r_(r) {}
  ~MpiRequest() override {
    if (r_ != MPI_REQUEST_NULL) MPI_Wait(&r_, MPI_STATUS_IGNORE);  // MPI owns the buffer until then
  }
  bool test() override {
    if (r_ == MPI_REQUEST_NULL) return true;
    int done = 0;
    check(MPI_Test(&r_, &done, MPI_STATUS_IGNORE), "MPI_Test");
    return done != 0;
  }
  void wait() override {
    if (r_ != MPI_REQUEST_NULL) check(MPI_Wait(&r_, MPI_STATUS_IGNORE), "MPI_Wait");
  }

 private:
  MPI_Request r_;
};

class Mpi final : public Comm {
 public:
  Mpi() {
    int done = 0;
    MPI_Initialized(&done);
    if (!done) check(MPI_Init(nullptr, nullptr), "MPI_Init");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    std::atexit([] {
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (!finalized) MPI_Finalize();
    });
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void barrier() override {
    MPI_Request req;
    check(MPI_Ibarrier(MPI_COMM_WORLD, &req), "MPI_Ibarrier");
    for (auto pause = std::chrono::microseconds(50);; pause = std::min(pause * 2, std::chrono::microseconds(50000))) {
      int done = 0;
      check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test");
      if (done) return;
      std::this_thread::sleep_for(pause);
    }
  }
  std::string broadcast(const std::string& bytes, int root) override {
    std::uint64_t n = bytes.size();
    check(MPI_Bcast(&n, 1, MPI_UINT64_T, root, MPI_COMM_WORLD), "MPI_Bcast");
    std::string out = rank_ == root ? bytes : std::string(n, '\0');
    if (n) check(MPI_Bcast(out.data(), static_cast<int>(n), MPI_CHAR, root, MPI_COMM_WORLD), "MPI_Bcast");
    return out;
  }
  std::vector<std::string> all_gather(const std::string& bytes) override {
    const int n = static_cast<int>(bytes.size());
    std::vector<int> sizes(static_cast<std::size_t>(size_)), at(static_cast<std::size_t>(size_));
    check(MPI_Allgather(&n, 1, MPI_INT, sizes.data(), 1, MPI_INT, MPI_COMM_WORLD), "MPI_Allgather");
    int total = 0;
    for (int r = 0; r < size_; ++r) {
      at[static_cast<std::size_t>(r)] = total;
      total += sizes[static_cast<std::size_t>(r)];
    }
    std::string all(static_cast<std::size_t>(total), '\0');
    check(MPI_Allgatherv(bytes.data(), n, MPI_CHAR, all.data(), sizes.data(), at.data(), MPI_CHAR, MPI_COMM_WORLD),
          "MPI_Allgatherv");
    std::vector<std::string> out;
    for (int r = 0; r < size_; ++r)
      out.push_back(all.substr(static_cast<std::size_t>(at[static_cast<std::size_t>(r)]),
                               static_cast<std::size_t>(sizes[static_cast<std::size_t>(r)])));
    return out;
  }
  std::unique_ptr<Request> all_reduce_sum_start(float* data, std::size_t n) override {
    LN_CHECK(n <= static_cast<std::size_t>(std::numeric_limits<int>::max()), "MPI all-reduce of ", n,
             " values: more than one call can take");
    MPI_Request r = MPI_REQUEST_NULL;
    check(MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &r),
          "MPI_Iallreduce");
    return std::make_unique<MpiRequest>(r);
  }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::exit(code);
  }
  std::string describe() const override { return str_cat(mpi_library(), ": rank ", rank_, " of ", size_); }

 private:
  int rank_ = 0, size_ = 1;
};
#endif

}  // namespace

Comm& world() {
  static std::unique_ptr<Comm> w = []() -> std::unique_ptr<Comm> {
#ifdef LIVERNET_WITH_MPI
    if (launched_by_mpi()) return std::make_unique<Mpi>();
#else
    const int n = env_int({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"});
    LN_CHECK(
        !launched_by_mpi() || n <= 1, "started as one of ", n,
        " processes (mpirun, srun), but this livernet was "
        "built without MPI, so each would run alone: build it with MPI (Debian: libopenmpi-dev) or start one process");
#endif
    return std::make_unique<Solo>();
  }();
  return *w;
}

int local_rank() {
  const int r = env_int({"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "PMI_LOCAL_RANK"});
  return r < 0 ? 0 : r;
}

bool mpi_built() {
#ifdef LIVERNET_WITH_MPI
  return true;
#else
  return false;
#endif
}

std::string mpi_library() {
#ifdef LIVERNET_WITH_MPI
  char v[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(v, &len);
  std::string s(v, static_cast<std::size_t>(len));
  const auto cut = s.find_first_of(",\n");
  return cut == std::string::npos ? s : s.substr(0, cut);
#else
  return "not built (no MPI development files at configure time: install libopenmpi-dev and configure again)";
#endif
}

}  // namespace livernet::dist
