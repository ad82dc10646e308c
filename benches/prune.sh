#!/usr/bin/env bash
# Retention: a state dir with RUNS old runs (default 100), each a completed run of the benches'
# student query against a simulator of USERS users (default 5000), then `prune`: the files and
# bytes it removes, its time, and that the journal keeps every run.
#
# Usage: benches/prune.sh [RUNS] [USERS] [BINARY]   (default target/debug/alma-cohort)
# Appends to benches/results/<date>-prune.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
runs="${1:-100}"
users="${2:-5000}"
bin="${3:-$here/../target/debug/alma-cohort}"
port="${PORT:-8098}"
work="$(mktemp -d)"
sim_pid=
trap 'kill $sim_pid 2>/dev/null || true; rm -rf "$work"' EXIT
. "$here/sim.sh"
write_student_query "$work/q.toml" bench-prune
echo 'cooldown_days = 0' >>"$work/q.toml"
export ALMA_API_KEY=sim-rw
cohort=(--base-url "http://127.0.0.1:$port" --state-dir "$work/state" --poll-interval 0.2 -q)
for i in $(seq "$runs"); do
  # Alma runs a job at most 5 times an hour: a fresh simulated institution every 5 runs.
  if [ $(((i - 1) % 5)) -eq 0 ]; then
    [ -n "$sim_pid" ] && { kill "$sim_pid"; wait "$sim_pid" 2>/dev/null || true; }
    start_sim "$port" "$work/sim.log" --users "$users" --job-duration-secs 1
  fi
  "$bin" "${cohort[@]}" run "$work/q.toml" --period "p$i" --execute --yes >/dev/null
done
# Every run ended 100 days ago.
python3 - "$work/state/journal.sqlite" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE runs SET started_at = '2026-08-01T02:00:00Z', finished_at = '2026-08-01T02:05:00Z'")
db.commit()
PY
before_files=$(find "$work/state/runs" -type f | wc -l)
before_bytes=$(du -sb "$work/state/runs" | cut -f1)
start=$(date +%s.%N)
"$bin" "${cohort[@]}" prune --json >"$work/prune.json"
end=$(date +%s.%N)
after_files=$(find "$work/state/runs" -type f | wc -l)
kept=$("$bin" "${cohort[@]}" runs --json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
python3 - "$work/prune.json" "$runs" "$users" "$before_files" "$before_bytes" "$after_files" "$kept" "$start" "$end" <<'PY' | tee -a "$here/results/$(date +%F)-prune.md"
import json, sys, subprocess, datetime
p = json.load(open(sys.argv[1]))
runs, users, bf, bb, af, kept, start, end = sys.argv[2:10]
commit = subprocess.run(["git", "-C", sys.argv[0].rsplit("/", 1)[0] if "/" in sys.argv[0] else ".", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
print(f"# prune: {runs} runs ended 100 days ago, {users}-user simulator\n")
print(f"{datetime.datetime.utcnow():%Y-%m-%dT%H:%M:%SZ} · `benches/prune.sh {runs} {users}` · retention 90 days\n")
print("| runs' files before | bytes before | runs pruned | files removed | bytes removed | files after | runs in the journal after | prune wall (s) |")
print("|---|---|---|---|---|---|---|---|")
print(f"| {bf} | {bb} | {len(p['runs'])} | {p['files']} | {p['bytes']} | {af} | {kept} | {float(end) - float(start):.2f} |\n")
PY
