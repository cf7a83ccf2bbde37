#!/usr/bin/env bash
# Quick start, part 1: set everything up, then run the agent.
# Arguments are passed to `vigil run` (default: JSONL audit log in /var/log/vigil).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
if [ $# -eq 0 ]; then set -- --events-out /var/log/vigil/events.jsonl; fi
./bin/vigil doctor || true
exec ./bin/vigil run "$@"
