#!/usr/bin/env bash
# Wall time, rows/s and peak RSS of `alma-cohort extract` paging a report from the simulator with
# no latency, at Alma's pace and unpaced; then of `alma-cohort plan` on the same report unpaced
# (extract + the transform: a `where` over two columns, ID normalization, INTERNAL only, dedupe,
# the cohort written). Usage: benches/extract.sh [ROWS] [BINARY]   (default 1000000,
# target/release/alma-cohort). Appends to benches/results/<date>-extract.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
rows="${1:-1000000}"
bin="${2:-$here/../target/release/alma-cohort}"
port="${PORT:-8095}"
work="$(mktemp -d)"
sim_pid=
trap 'kill $sim_pid 2>/dev/null || true; rm -rf "$work"' EXIT
. "$here/sim.sh"
start_sim "$port" "$work/sim.log" --users "$rows" --rate-limit 0 --daily-quota 100000000

cat >"$work/q.toml" <<TOML
name = "bench-all-users"
[report]
path = "/shared/Example University/Reports/Password Resets/All users"
limit = 1000
[cohort]
id_column = "Primary Identifier"
[guard]
max_members = 100000000
TOML
# The plan: UGRAD and GRAD students, active, INTERNAL accounts only.
write_student_query "$work/plan.toml" bench-plan

# wall (s) and rss (MB) from /usr/bin/time -v's report in $work/time.txt.
read_time() {
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/{print $2}' "$work/time.txt" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(awk -F': ' '/Maximum resident set size/{printf "%.0f", $2/1024}' "$work/time.txt")
}

result="$here/results/$(date +%F)-extract.md"
{
  echo "# extract: $rows rows from the simulator, no latency"
  echo
  echo "$(date -u +%FT%TZ) · $(nproc) cores · commit $(git -C "$here" rev-parse --short HEAD) · $(free -g | awk '/Mem:/{print $2}') GiB · $(uname -sr) · \`benches/extract.sh $rows\`"
  echo
  echo "| command | pace (req/s) | wall (s) | rows/s | peak RSS (MB) | columnar (MB) | pages | output |"
  echo "|---|---|---|---|---|---|---|---|"
} >>"$result"
for pace in 25 10000; do
  for round in 1 2 3; do
    ALMA_API_KEY=sim-rw /usr/bin/time -v "$bin" --base-url "http://127.0.0.1:$port" --pace "$pace" \
      extract "$work/q.toml" --out "$work/out.parquet" 2>"$work/time.txt" >/dev/null
    read_time
    summary=$(grep '^extracted' "$work/time.txt" || true)
    pages=$(sed -n 's/.* from \([0-9]*\) pages.*/\1/p' <<<"$summary")
    columnar=$(sed -n 's/.*(\([0-9.]*\) MB in memory).*/\1/p' <<<"$summary")
    rate=$(awk -v r="$rows" -v w="$wall" 'BEGIN{printf "%.0f", r/w}')
    echo "| extract | $pace | $wall | $rate | $rss | $columnar | $pages | parquet (round $round) |" | tee -a "$result"
  done
done
for round in 1 2 3; do
  ALMA_API_KEY=sim-rw /usr/bin/time -v "$bin" -q --base-url "http://127.0.0.1:$port" --pace 10000 \
    --state-dir "$work/state" plan "$work/plan.toml" --json 2>"$work/time.txt" >"$work/plan.json"
  read_time
  read -r pages cohort < <(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(p["report"]["pages"], p["cohort_size"])' "$work/plan.json")
  rate=$(awk -v r="$rows" -v w="$wall" 'BEGIN{printf "%.0f", r/w}')
  echo "| plan | 10000 | $wall | $rate | $rss | – | $pages | cohort of $cohort, cohort.csv (round $round) |" | tee -a "$result"
done
echo "written: $result"
