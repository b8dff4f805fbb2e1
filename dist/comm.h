// The processes of one job. Started by mpirun or srun in a build with MPI (Open MPI or MPICH, found at
// configure time), a job is MPI's world; otherwise it is this process alone. The parallel tools need little
// of it: rank and size, a barrier that does not spin, bytes broadcast from one rank or gathered from all,
// and an abort that ends every rank. docs/distributed.md.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace livernet::dist {

// A collective operation that was started and has not necessarily finished.
class Request {
 public:
  virtual ~Request() = default;
  // Whether it has finished (and lets it progress: MPI moves a non-blocking collective on inside its calls).
  virtual bool test() = 0;
  // Returns when it has finished.
  virtual void wait() = 0;
};

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Waits until every rank has called it, sleeping between checks (a rank that finished its share of the
  // work does not take a core from the others while it waits).
  virtual void barrier() = 0;
  // `bytes` of rank `root`, on every rank.
  virtual std::string broadcast(const std::string& bytes, int root) = 0;
  // Every rank's `bytes`, in rank order, on every rank.
  virtual std::vector<std::string> all_gather(const std::string& bytes) = 0;
  // Starts summing `n` floats of host memory over the ranks, in place: when the request has finished, `data`
  // holds on every rank the sum of every rank's values (the same bits on every rank). `data` must stay alive
  // and untouched until then. Every rank starts the same collectives in the same order.
  virtual std::unique_ptr<Request> all_reduce_sum_start(float* data, std::size_t n) = 0;
  void all_reduce_sum(float* data, std::size_t n) { all_reduce_sum_start(data, n)->wait(); }
  // Ends every rank of the job with exit code `code` (the caller prints why first).
  [[noreturn]] virtual void abort(int code) = 0;
  // "Open MPI v4.1.4: rank 0 of 2", or "one process".
  virtual std::string describe() const = 0;
};

// The job of this process: MPI's world when livernet was built with MPI and a launcher started the process
// (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK in the environment: mpirun, mpiexec, srun), initialised on first
// use and finalised at exit; else a job of one process. A launcher that starts several processes of a build
// without MPI is refused (Error): each would think it ran alone.
Comm& world();
// This process's index among the processes of the job on its machine (the launcher's local rank: Open MPI,
// Slurm, MPICH), 0 when none says; for one GPU per process.
int local_rank();
// Whether livernet was built with MPI, and the library ("Open MPI v4.1.4, ...") or why there is none.
bool mpi_built();
std::string mpi_library();

}  // namespace livernet::dist
