#!/usr/bin/env bash
# End to end: `alma-cohort run --execute` against the simulator at Alma's pace (25 requests/s,
# the simulator's own limit on), with the wall time of each step next to the API floor — what
# the calls alone cost at that pace: (pages + lookups + batches + 2) / 25 + the job's duration
# (a lookup is one `GET /users/{id}` per cohort member, before the set).
#
# Usage: benches/execute.sh [USERS] [BINARY]   (default 200000 users, target/release/alma-cohort).
# The cohort is the UGRAD and GRAD students, active, INTERNAL accounts (about 46 % of the users).
# JOB_SECS (60) is the job's simulated duration, POLL (5) the client's first poll wait, ROUNDS (3).
# Appends to benches/results/<date>-execute.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
users="${1:-200000}"
bin="${2:-$here/../target/release/alma-cohort}"
port="${PORT:-8096}"
job_secs="${JOB_SECS:-60}"
poll="${POLL:-5}"
rounds="${ROUNDS:-3}"
work="$(mktemp -d)"
sim_pid=
trap 'kill $sim_pid 2>/dev/null || true; rm -rf "$work"' EXIT
. "$here/sim.sh"

write_student_query "$work/q.toml" bench-execute

result="$here/results/$(date +%F)-execute.md"
{
  echo "# run --execute: $users users, end to end at 25 requests/s"
  echo
  echo "$(date -u +%FT%TZ) · $(nproc) cores · commit $(git -C "$here" rev-parse --short HEAD) · $(free -g | awk '/Mem:/{print $2}') GiB · $(uname -sr) · \`benches/execute.sh $users\` (job ${job_secs} s, first poll wait ${poll} s)"
  echo
  echo "| round | cohort | pages | lookups | batches | extract+plan (s) | of which lookups (s) | set (s) | members (s) | job submit (s) | job followed (s) | wall (s) | API floor (s) | wall − floor (s) | peak RSS (MB) |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
} >>"$result"

for round in $(seq "$rounds"); do
  # A fresh institution each round: no set or instance of an earlier round in the way.
  start_sim "$port" "$work/sim.log" --users "$users" --rate-limit 25 --daily-quota 100000000 \
    --job-duration-secs "$job_secs"
  rm -rf "$work/state"
  ALMA_API_KEY=sim-rw /usr/bin/time -v "$bin" -q --base-url "http://127.0.0.1:$port" \
    --state-dir "$work/state" --poll-interval "$poll" \
    run "$work/q.toml" --execute --yes --json 2>"$work/time.txt" >"$work/run.json" || {
    cat "$work/time.txt" >&2
    exit 1
  }
  curl -sf "http://127.0.0.1:$port/_sim/requests" >"$work/requests.json"
  kill "$sim_pid"
  wait "$sim_pid" 2>/dev/null || true
  python3 - "$work/requests.json" "$work/run.json" "$work/time.txt" "$round" "$job_secs" <<'PY' | tee -a "$result"
import json, re, sys
from datetime import datetime

requests = json.load(open(sys.argv[1]))["requests"]
run = [json.loads(l) for l in open(sys.argv[2]) if l.strip().startswith("{")][-1]
timing = open(sys.argv[3]).read()
round_, job_secs = sys.argv[4], float(sys.argv[5])
assert run["state"] == "completed", run

def t(r):
    return datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp()

def span(targets):
    rs = [r for r in requests if r["target"] in targets]
    return rs, (t(rs[0]), t(rs[-1])) if rs else (None, None)

m = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", timing)
wall = int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing).group(1)) / 1024
first = t(requests[0])
pages, (_, pages_end) = span({"analytics-first", "analytics-next"})
lookups, (l0, l1) = span({"user-get"})
creates, (set_at, _) = span({"set-create"})
batches, (b0, b1) = span({"set-op"})
runs, (run_at, _) = span({"job-run"})
polls, (_, poll_end) = span({"job-instance"})
# The steps, by the simulator's clock: extract and plan until the set is asked for; the set;
# the members (first batch to the last); the set check and the job's submission; the following.
extract = set_at - first
set_step = b0 - set_at
members = b1 - b0
submit = run_at - b1
followed = poll_end - run_at
floor = (len(pages) + len(lookups) + len(batches) + 2) / 25 + job_secs
lookup_span = (l1 - l0) if lookups else 0.0
print(f"| {round_} | {run['cohort_size']} | {len(pages)} | {len(lookups)} | {len(batches)} | {extract:.1f} | {lookup_span:.1f} | {set_step:.2f} | "
      f"{members:.1f} | {submit:.2f} | {followed:.1f} | {wall:.1f} | {floor:.1f} | {wall - floor:.1f} | {rss:.0f} |")
PY
done
echo "written: $result"
