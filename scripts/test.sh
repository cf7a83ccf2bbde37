#!/usr/bin/env bash
# Quick start, part 2: set everything up, then run every test:
#   typecheck, unit tests, kernel tests (real BPF on this machine),
#   and the privileged suite inside qemu VMs on Debian kernels (BPF LSM).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
npm test
