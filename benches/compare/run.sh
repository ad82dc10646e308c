#!/usr/bin/env bash
# Side-by-side comparison of `alma-cohort extract` with almapy and almapiwrapper, paging the same
# report from the simulator. Makes a throwaway virtualenv (never a project dependency).
#   benches/compare/run.sh                         # every profile, 5 rounds each
#   PROFILES="20k, no latency" ROUNDS=5 benches/compare/run.sh
# Env: ROUNDS, PROFILES (names joined by ';'), CLIENTS, CLIENT_TIMEOUT (s per run, default 300),
#      OUT, PORT, VENV (reuse a virtualenv), ALMA_COHORT_BIN (default target/release/alma-cohort).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${VENV:-$(mktemp -d)/venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    # almapiwrapper imports requests, lxml, pandas and openpyxl without declaring them.
    "$venv/bin/pip" install -q "almapy==9.3.1" "almapiwrapper==1.9.7" requests lxml pandas openpyxl
fi
exec "$venv/bin/python" "$here/compare.py"
