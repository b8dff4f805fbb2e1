#!/usr/bin/env bash
# A new user's first steps in a bare Debian 12 root: installs what the README's commands install, builds,
# runs tools/info and a tiny end-to-end training (phantoms, 2 folds x 1 epoch at 75x75). Catches an install
# step that only a developer's machine (where packages pile up) makes unnecessary: that happened once with
# OpenCL (libdnnl-dev's CMake config needs ocl-icd-opencl-dev, which Debian only recommends).
#
#   scripts/check_fresh.sh [--rev REV | --worktree] [--full | --steps 'COMMANDS'] [--keep]
#
# --rev REV    check that commit (default HEAD: what a clone gets); --worktree: the working tree as it is
# --full       run the README's two commands, scripts/demo.sh and scripts/test.sh, instead of the short check
# --steps CMDS run these shell commands in the source folder instead (e.g. the test dependencies alone:
#              --steps 'scripts/setup.sh --deps-only --test-deps && ...')
# --keep       leave the root in /var/tmp for a look (its path is printed)
# Needs root (or sudo) and apt. The bare root (mmdebstrap --variant=minbase bookworm, ~40 MB) is cached in
# ~/.cache/livernet-fresh between runs; each run unpacks a fresh copy, so nothing persists. The CPU build
# is checked (there is no CUDA toolkit in a bare Debian root, and the README says so).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
args=("$@")
rev=HEAD worktree=0 full=0 keep=0 steps=""
. "$here/scripts/lib/options.sh"
parse_options "rev steps" "worktree full keep" "$@"
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "check_fresh.sh: needs root (or sudo) for chroot and mounts" >&2; exit 1; }
  exec sudo -E "$0" "${args[@]}"
fi
command -v mmdebstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null; }

t0=$(date +%s)
say() { echo "[check_fresh +$(( $(date +%s) - t0 ))s] $*"; }
cache="${XDG_CACHE_HOME:-$HOME/.cache}/livernet-fresh"
base="$cache/bookworm-minbase.tar"
mkdir -p "$cache"
if [[ ! -s $base ]]; then
  say "making a bare Debian 12 root (cached in $base)"
  mmdebstrap --quiet --variant=minbase --format=tar --include=ca-certificates bookworm "$base.tmp" http://deb.debian.org/debian
  mv "$base.tmp" "$base"
fi

root=$(mktemp -d /var/tmp/livernet-fresh.XXXXXX)
mounted=()
cleanup() {
  local m
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do m=${mounted[i]}; umount -R "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  # Never remove through a mount that is still there.
  if ((keep)) || grep -q " $root/" /proc/mounts; then
    echo "check_fresh.sh: root left at $root"
  else
    rm -rf --one-file-system "$root"
  fi
}
trap cleanup EXIT
tar -C "$root" -xf "$base"
mkdir -p "$root/src"
if ((worktree)); then
  (cd "$here" && git ls-files -z --cached --others --exclude-standard | tar -cf - --null -T -) | tar -C "$root/src" -xf -
else
  git -C "$here" archive "$rev" | tar -C "$root/src" -xf -
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The machine's own network set-up goes in with it, as resolv.conf does: local CA certificates (an intercepting
# proxy's, a company's), without which HTTPS (pip) fails in the root where it works outside.
local_cas=(/usr/local/share/ca-certificates/*.crt)
if [[ -e ${local_cas[0]} ]]; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp "${local_cas[@]}" "$root/usr/local/share/ca-certificates/"
fi
for d in proc sys dev; do
  mkdir -p "$root/$d"
  if [[ $d == proc ]]; then mount -t proc proc "$root/proc"; else mount --rbind "/$d" "$root/$d"; mount --make-rslave "$root/$d"; fi
  mounted+=("$root/$d")
done

custom_steps=$steps
if [[ -n $steps ]]; then
  :
elif ((full)); then
  steps='scripts/demo.sh && scripts/test.sh'
else
  # What the README's first command starts with (scripts/setup.sh: packages, configure, build), then the
  # programs a user runs first, on a dataset small enough for seconds.
  steps='scripts/setup.sh --cuda AUTO &&
    build/tools/info &&
    build/tools/make_phantoms -o /tmp/ph.h5 --patients 10 --max-lesions 3 --size 40 --seed 1 &&
    build/tools/train -c configs/demo_cpu.yaml --data /tmp/ph.h5 --output /tmp/run --folds 2 --epochs 1 --size 75 --device cpu &&
    test -s /tmp/run/metrics.json && test -s /tmp/run/report.html'
fi
say "checking $( ((worktree)) && echo 'the working tree' || git -C "$here" rev-parse --short "$rev") in $root: $(tr -s ' \n' ' ' <<< "$steps")"
set +e
chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  DEBIAN_FRONTEND=noninteractive /bin/bash -c "set -euo pipefail; update-ca-certificates > /dev/null; cd /src; $steps"
rc=$?
set -e
passed="a bare Debian 12 root installs, builds and trains"
[[ -n ${custom_steps:-} ]] && passed="the steps ran in a bare Debian 12 root"
if ((rc == 0)); then say "PASS: $passed"; else say "FAIL (exit $rc)"; fi
exit "$rc"
