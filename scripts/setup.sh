#!/usr/bin/env bash
# Sets up a Debian 12 machine (as root) to build, run and test vigil:
# apt packages, npm ci, the BPF objects and the TypeScript build. Idempotent:
# a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "setup: run as root (vigil loads BPF programs; apt installs packages)" >&2
  exit 1
fi

# build: clang-19/llvm-19 (BPF objects), libbpf (runtime + headers for the C bench),
# gcc/g++/make/python3 (better-sqlite3 builds from source), bpftool (vmlinux.h, debugging);
# VM tests: qemu, busybox-static, cpio, xz, e2fsprogs, kmod;
# network sensor tests: dnsmasq-base (a resolver in a private namespace), iproute2, curl;
# fleet tests and bench: nats-server (JetStream, started on loopback by the tests).
# syslog output tests: rsyslog (started by the tests with a private config on loopback).
# web console tests: chromium (driven headless by playwright-core); systemd (systemd-analyze verify of packaging/vigil.service).
PKGS=(clang-19 llvm-19 libbpf1 libbpf-dev bpftool gcc g++ make python3 libc6-dev
      qemu-system-x86 busybox-static cpio xz-utils e2fsprogs kmod ca-certificates
      dnsmasq-base iproute2 curl nats-server rsyslog chromium systemd)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v npm >/dev/null 2>&1 || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; }

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "setup: Node.js $(node -v) is too old; vigil needs Node.js 20 or newer (better-sqlite3 12, vitest 4)." >&2
  echo "       Install a Node.js 20+ package (e.g. from the NodeSource repository) and run this again." >&2
  exit 1
fi

# filesystems the agent and tests use
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf || true
mountpoint -q /sys/kernel/security || mount -t securityfs securityfs /sys/kernel/security || true
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing || true

# npm: only better-sqlite3 may run its install script (package.json allowScripts)
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
echo "setup: done ($(node -v), $(clang-19 --version | head -1))"
