#!/usr/bin/env bash
# Fidelity check of the simulator with two other Alma clients (almapy, almapiwrapper), installed
# from PyPI into a throwaway virtualenv. Usage: benches/peers/run.sh [alma-cohort binary]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-$here/../../target/release/alma-cohort}"
venv="$(mktemp -d)/venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q "almapy==9.3.1" "almapiwrapper==1.9.7" requests lxml pandas openpyxl  # almapiwrapper declares no dependencies
port="${PORT:-8097}"
sim_pid=
trap 'kill $sim_pid 2>/dev/null; rm -rf "$(dirname "$venv")"' EXIT
. "$here/../sim.sh"
start_sim "$port" "$venv/../sim.log" --users 2600 --seed 42
ALMA_SIM_BASE="http://127.0.0.1:$port" "$venv/bin/python" "$here/fidelity.py"
echo "simulator log: $(grep -c . "$venv/../sim.log") lines"
