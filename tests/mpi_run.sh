#!/usr/bin/env bash
# mpirun -np N PROGRAM ARGS..., as the tests run it: one thread per process, over loopback, as root where the
# tests run as root (CI), more processes than cores allowed. Exit 77 (ctest: skipped) without mpirun.
set -euo pipefail
n=$1
shift
command -v mpirun > /dev/null || { echo "skipped: no mpirun (Debian: apt-get install openmpi-bin libopenmpi-dev)"; exit 77; }
export OMP_NUM_THREADS=1 OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
opts=(--bind-to none -x OMP_NUM_THREADS)
[[ $(id -u) -eq 0 ]] && opts+=(--allow-run-as-root)
exec mpirun -np "$n" "${opts[@]}" "$@"
