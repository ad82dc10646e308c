#!/usr/bin/env bash
# Partitioned extraction against the simulator's real 25 requests/s limit and Alma-like latency
# (first page 2 s, then 300 ms): N rows read once sequentially and once in 8 partitions by
# expiry-date range (octiles of the users' expiry dates, so the partitions are of similar size, as
# an analyst would choose them). Reports wall time, calls, the request rate reached overall and
# while paging (token calls, from the simulator's request log), the 429s, and that both ways give
# the same rows. Usage: benches/partitions.sh [ROWS] [BINARY] (default 100000,
# target/release/alma-cohort). Appends to benches/results/<date>-partitions.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
rows="${1:-100000}"
bin="${2:-$here/../target/release/alma-cohort}"
port="${PORT:-8094}"
parts="${PARTS:-8}"
work="$(mktemp -d)"
sim_pid=
trap 'kill $sim_pid 2>/dev/null || true; rm -rf "$work"' EXIT
. "$here/sim.sh"
start_sim "$port" "$work/sim.log" --users "$rows" --rate-limit 25 --daily-quota 100000000 \
    --first-page-latency-ms 2000 --page-latency-ms 300
base="http://127.0.0.1:$port"

report="/shared/Example University/Reports/Password Resets/Users expiring in a date range"
# Octile bounds of the expiry dates: partition i holds (bound i, bound i+1].
mapfile -t bounds < <(curl -s "$base/_sim/users" | python3 -c '
import datetime, json, sys
parts = int(sys.argv[1])
dates = sorted(u["expiry_date"] for u in json.load(sys.stdin)["users"] if u.get("expiry_date"))
first = datetime.date.fromisoformat(dates[0]) - datetime.timedelta(days=1)
print(first.isoformat())
for i in range(1, parts):
    print(dates[len(dates) * i // parts])
print(dates[-1])' "$parts")
ns='xmlns:saw="com.siebel.analytics.web/report/v1.1" xmlns:sawx="com.siebel.analytics.web/expression/v1.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
col='<sawx:expr xsi:type="sawx:sqlExpression">"User Details"."Expiry Date"</sawx:expr>'
{
  printf 'name = "partitioned"\n[report]\npath = "%s"\nlimit = 1000\n' "$report"
  for i in $(seq 0 $((parts - 1))); do
    printf '<sawx:expr xsi:type="sawx:logical" op="and" %s><sawx:expr xsi:type="sawx:comparison" op="greater">%s<sawx:expr xsi:type="xsd:date">%s</sawx:expr></sawx:expr><sawx:expr xsi:type="sawx:comparison" op="lessOrEqual">%s<sawx:expr xsi:type="xsd:date">%s</sawx:expr></sawx:expr></sawx:expr>' \
      "$ns" "$col" "${bounds[$i]}" "$col" "${bounds[$((i+1))]}" > "$work/p$i.xml"
    printf '[[report.partitions]]\nname = "%s..%s"\nfilter = "p%s.xml"\n' "${bounds[$i]}" "${bounds[$((i+1))]}" "$i"
  done
  printf '[cohort]\nid_column = "Primary Identifier"\n[guard]\nmax_members = 100000000\n'
} > "$work/partitioned.toml"
printf 'name = "sequential"\n[report]\npath = "%s"\nlimit = 1000\n[cohort]\nid_column = "Primary Identifier"\n[guard]\nmax_members = 100000000\n' "$report" > "$work/sequential.toml"

# Calls, 429s, and the token calls' rate (calls after the first token call / seconds between the
# first and the last), for the log entries after sequence number $1.
calls() {
  curl -s "$base/_sim/requests" | python3 -c '
import datetime, json, sys
after = int(sys.argv[1])
log = [r for r in json.load(sys.stdin)["requests"] if r["seq"] > after]
ts = lambda r: datetime.datetime.fromisoformat(r["time"][:26].rstrip("Z"))
tok = [ts(r) for r in log if "token=" in r["query"]]
span = (tok[-1] - tok[0]).total_seconds() if len(tok) > 1 else 0
rate = (len(tok) - 1) / span if span > 0 else 0
last = max([r["seq"] for r in log], default=after)
print(len(log), sum(1 for r in log if r["status"] == 429), f"{rate:.2f}", last)' "$1"
}
last_seq() { curl -s "$base/_sim/requests" | python3 -c 'import json,sys; r=json.load(sys.stdin)["requests"]; print(max([x["seq"] for x in r], default=0))'; }
result="$here/results/$(date +%F)-partitions.md"
{
  echo "# partitioned extraction: $rows users, sim limit 25 req/s, first page 2 s, pages 300 ms"
  echo
  echo "$(date -u +%FT%TZ) · $(nproc) cores · commit $(git -C "$here" rev-parse --short HEAD) · \`benches/partitions.sh $rows\` · $parts partitions by expiry-date octile"
  echo
  echo "| mode | wall (s) | rows | API calls | calls/s overall | calls/s while paging | of 25/s | 429s |"
  echo "|---|---|---|---|---|---|---|---|"
} >>"$result"
for mode in sequential partitioned; do
  before=$(last_seq)
  start=$(date +%s.%N)
  ALMA_API_KEY=sim-rw "$bin" -q --base-url "$base" extract "$work/$mode.toml" --out "$work/$mode.csv"
  end=$(date +%s.%N)
  read -r made throttled paging _ < <(calls "$before")
  n=$(( $(wc -l < "$work/$mode.csv") - 1 ))
  wall=$(python3 -c "print(f'{$end - $start:.2f}')")
  rate=$(python3 -c "print(f'{$made / ($end - $start):.1f}')")
  share=$(python3 -c "print(f'{$paging / 25:.1%}')")
  echo "| $mode | $wall | $n | $made | $rate | $paging | $share | $throttled |" | tee -a "$result"
done
if cmp -s <(sort "$work/sequential.csv") <(sort "$work/partitioned.csv"); then
  echo "same rows both ways" | tee -a "$result"
else
  echo "THE ROWS DIFFER" | tee -a "$result"; exit 1
fi
echo >>"$result"
