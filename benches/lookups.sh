#!/usr/bin/env bash
# The eligibility lookups (one `GET /users/{id}` per cohort member) at Alma's pace: `alma-cohort
# plan` of the "All users" report (every user is a cohort member, so every user is looked up)
# against the simulator with its 25 requests/s limit on and Alma-like answer times for users
# (USER_LATENCY_MS, default 200 ms ±50 %). Measured from the simulator's request log: the
# lookups' calls per second from the first to the last, against the 25/s pace (goal: ≥ 95 %), the
# 429s, and the plan's wall time against its API floor ((pages + lookups + 4) / 25), and peak RSS.
#
# Usage: benches/lookups.sh [USERS…] (default: 10000 100000). BIN (default
# target/release/alma-cohort, else target/debug/alma-cohort). Appends to
# benches/results/<date>-lookups.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
sizes=("${@:-10000 100000}")
[ $# -eq 0 ] && sizes=(10000 100000)
bin="${BIN:-$here/../target/release/alma-cohort}"
[ -x "$bin" ] || bin="$here/../target/debug/alma-cohort"
port="${PORT:-8097}"
latency="${USER_LATENCY_MS:-200}"
work="$(mktemp -d)"
sim_pid=
trap 'kill $sim_pid 2>/dev/null || true; rm -rf "$work"' EXIT
. "$here/sim.sh"

write_query "$work/q.toml" bench-lookups '"Primary Identifier" IS NOT NULL'

result="$here/results/$(date +%F)-lookups.md"
{
  echo "# Eligibility lookups at 25 requests/s"
  echo
  echo "$(date -u +%FT%TZ) · $(nproc) cores · commit $(git -C "$here" rev-parse --short HEAD) · $(free -g | awk '/Mem:/{print $2}') GiB · $(uname -sr) · \`benches/lookups.sh ${sizes[*]}\` · $(basename "$(dirname "$bin")") binary · user answers ${latency} ms ±50 %"
  echo
  echo "| users | lookups | 429s | lookups' span (s) | lookups/s | of 25/s | plan wall (s) | API floor (s) | wall / floor | peak RSS (MB) | left out |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
} >>"$result"

for users in "${sizes[@]}"; do
  start_sim "$port" "$work/sim.log" --users "$users" --rate-limit 25 --daily-quota 100000000 \
    --user-latency-ms "$latency"
  rm -rf "$work/state"
  ALMA_API_KEY=sim-rw /usr/bin/time -v "$bin" -q --base-url "http://127.0.0.1:$port" \
    --state-dir "$work/state" plan "$work/q.toml" --json 2>"$work/time.txt" >"$work/plan.json" || {
    cat "$work/time.txt" >&2
    exit 1
  }
  curl -sf "http://127.0.0.1:$port/_sim/requests" >"$work/requests.json"
  kill "$sim_pid"
  wait "$sim_pid" 2>/dev/null || true
  python3 - "$work/requests.json" "$work/plan.json" "$work/time.txt" "$users" <<'PY' | tee -a "$result"
import json, re, sys
from datetime import datetime

requests = json.load(open(sys.argv[1]))["requests"]
plan = [json.loads(l) for l in open(sys.argv[2]) if l.strip().startswith("{")][-1]
timing = open(sys.argv[3]).read()
users = sys.argv[4]

def t(r):
    return datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp()

m = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", timing)
wall = int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing).group(1)) / 1024
lookups = [r for r in requests if r["target"] == "user-get"]
ok = [r for r in lookups if r.get("status") == 200 or r.get("status") == 400]
throttled = sum(1 for r in requests if r.get("status") == 429)
span = t(lookups[-1]) - t(lookups[0])
rate = (len(lookups) - 1) / span if span > 0 else float("nan")
pages = [r for r in requests if r["target"] in ("analytics-first", "analytics-next")]
# Besides pages and lookups: the letter, the job list, the sets search and the key's test.
floor = len(requests) / 25
left = plan["eligibility"]["looked_up"] and len(plan["left_out"])
print(f"| {users} | {len(ok)} | {throttled} | {span:.1f} | {rate:.2f} | {rate / 25 * 100:.1f} % | "
      f"{wall:.1f} | {floor:.1f} | {wall / floor:.3f} | {rss:.0f} | {left} |")
PY
done
echo "written: $result"
