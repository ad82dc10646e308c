#!/usr/bin/env bash
# Partitioned extraction against the simulator's real 25 requests/s limit and Alma-like latency
# (first page 2 s, then 300 ms): N rows read once sequentially and once in 8 partitions by
# expiry-date range. Reports wall time, calls, the request rate reached, and 429s.
# Usage: benches/partitions.sh [ROWS] [BINARY]   (default 100000, target/release/alma-cohort)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
rows="${1:-100000}"
bin="${2:-$here/../target/release/alma-cohort}"
port="${PORT:-8094}"
work="$(mktemp -d)"
trap 'kill $sim_pid 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin" sim --port "$port" --users "$rows" --rate-limit 25 --daily-quota 100000000 \
    --first-page-latency-ms 2000 --page-latency-ms 300 >"$work/sim.log" 2>&1 &
sim_pid=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/_sim/state" >/dev/null && break; sleep 0.2; done

report="/shared/Example University/Reports/Password Resets/Users expiring in a date range"
ns='xmlns:saw="com.siebel.analytics.web/report/v1.1" xmlns:sawx="com.siebel.analytics.web/expression/v1.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
col='<sawx:expr xsi:type="sawx:sqlExpression">"User Details"."Expiry Date"</sawx:expr>'
bounds=(2025-12-31 2026-05-18 2026-10-03 2027-02-18 2027-07-06 2027-11-21 2028-04-07 2028-08-23 2029-12-31)
{
  printf 'name = "partitioned"\n[report]\npath = "%s"\nlimit = 1000\n' "$report"
  for i in $(seq 0 7); do
    printf '<sawx:expr xsi:type="sawx:logical" op="and" %s><sawx:expr xsi:type="sawx:comparison" op="greater">%s<sawx:expr xsi:type="xsd:date">%s</sawx:expr></sawx:expr><sawx:expr xsi:type="sawx:comparison" op="lessOrEqual">%s<sawx:expr xsi:type="xsd:date">%s</sawx:expr></sawx:expr></sawx:expr>' \
      "$ns" "$col" "${bounds[$i]}" "$col" "${bounds[$((i+1))]}" > "$work/p$i.xml"
    printf '[[report.partitions]]\nname = "%s..%s"\nfilter = "p%s.xml"\n' "${bounds[$i]}" "${bounds[$((i+1))]}" "$i"
  done
  printf '[cohort]\nid_column = "Primary Identifier"\n[guard]\nmax_members = 100000000\n'
} > "$work/partitioned.toml"
printf 'name = "sequential"\n[report]\npath = "%s"\nlimit = 1000\n[cohort]\nid_column = "Primary Identifier"\n[guard]\nmax_members = 100000000\n' "$report" > "$work/sequential.toml"

calls() { curl -s "http://127.0.0.1:$port/_sim/requests" | python3 -c 'import json,sys; r=json.load(sys.stdin)["requests"]; print(len(r), sum(1 for x in r if x["status"]==429))'; }
result="$here/results/$(date +%F)-partitions.md"
{
  echo "# partitioned extraction: $rows users, sim limit 25 req/s, first page 2 s, pages 300 ms"
  echo
  echo "$(date -u +%FT%TZ) · $(nproc) cores · \`benches/partitions.sh $rows\`"
  echo
  echo "| mode | wall (s) | rows | API calls | calls/s | 429s |"
  echo "|---|---|---|---|---|---|"
} >"$result"
for mode in sequential partitioned; do
  read -r before _ < <(calls)
  start=$(date +%s.%N)
  ALMA_API_KEY=sim-rw "$bin" -q --base-url "http://127.0.0.1:$port" extract "$work/$mode.toml" --out "$work/$mode.csv"
  end=$(date +%s.%N)
  read -r after throttled < <(calls)
  n=$(( $(wc -l < "$work/$mode.csv") - 1 ))
  made=$(( after - before ))
  wall=$(python3 -c "print(f'{$end - $start:.2f}')")
  rate=$(python3 -c "print(f'{$made / ($end - $start):.1f}')")
  echo "| $mode | $wall | $n | $made | $rate | $throttled |" | tee -a "$result"
done
cmp <(sort "$work/sequential.csv") <(sort "$work/partitioned.csv") && echo "same rows both ways" | tee -a "$result"
