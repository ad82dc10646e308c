#!/usr/bin/env bash
# Alma as the ledger, measured the way cron and an operator meet it: each hole of issue 20 played
# against a fresh simulator by one binary, then counted in the simulator — sets, job instances,
# letters, and the most letters one user got (the busy jobs' one member left out).
#
# Usage: benches/ledger.sh holes [BINARY]        the five holes (300 users, no rate limit)
#        benches/ledger.sh lag [BINARY]          issue 31's holes: listings that lag, staff in
#                                                 Manage Sets (the simulator of this checkout)
#        benches/ledger.sh calls [BINARY] [USERS] what the lookups cost at Alma's pace (25/s),
#                                                 default 100000 users
# BINARY defaults to target/debug/alma-cohort. Appends to benches/results/<date>-ledger.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mode="${1:-holes}"
bin="$(realpath "${2:-$here/../target/debug/alma-cohort}")"
# The simulator is this checkout's (SIM_BIN), whichever binary is measured.
sim_bin="$(realpath "${SIM_BIN:-$here/../target/debug/alma-cohort}")"
users="${3:-100000}"
port="${PORT:-8097}"
work="$(mktemp -d)"
sim_pid=
trap 'kill $sim_pid 2>/dev/null || true; rm -rf "$work"' EXIT
. "$here/sim.sh"
base="http://127.0.0.1:$port"
export ALMA_API_KEY=sim-rw ALMA_COHORT_RETRY_DELAY=0 ALMA_COHORT_POLL_INTERVAL=0.2
unset ALMA_COHORT_STATE XDG_STATE_HOME ALMA_COHORT_PROFILE
result="$here/results/$(date +%F)-ledger.md"

# `query FILE NAME GROUPS`: students of GROUPS (SQL list), no account-type guard.
query() {
  write_query "$1" "$2" "\"User Group\" IN ($3)"
}

# `ac DIR ARGS…`: the binary run from DIR with HOME=$work/home (no --state-dir unless given).
ac() {
  local dir="$1"
  shift
  mkdir -p "$dir"
  (cd "$dir" && HOME="$work/home" "$bin" -q --base-url "$base" "$@" >/dev/null 2>>"$work/stderr.txt") && echo 0 || echo $?
}

# Sets, instances, letters, most letters to one user (leaving out $busy).
tally() {
  python3 - "$base" "${busy:-}" <<'PY'
import json, sys, urllib.request
base, busy = sys.argv[1], sys.argv[2].lower()
get = lambda p: json.load(urllib.request.urlopen(base + p))
state = get("/_sim/state")
letters = get("/_sim/outbox")
letters = letters.get("letters", letters) if isinstance(letters, dict) else letters
per = {}
for l in letters:
    u = l["user_primary_id"].lower()
    if u != busy:
        per[u] = per.get(u, 0) + 1
print(f'{len(state["sets"])} | {len(state["job_instances"])} | {sum(per.values())} | {max(per.values(), default=0)}')
PY
}

fresh() {
  kill "$sim_pid" 2>/dev/null || true
  wait "$sim_pid" 2>/dev/null || true
  rm -rf "$work/home" "$work/w"
  mkdir -p "$work/home" "$work/w"
  busy=
  bin="$sim_bin" start_sim "$port" "$work/sim.log" --rate-limit 0 "$@"
}

holes() {
  local version
  version="$("$bin" --version)"
  {
    echo
    echo "## $version ($bin; simulator $sim_bin)"
    echo
    echo "$(date -u +%FT%TZ) · $(nproc) cores · \`benches/ledger.sh holes\` · 300 users"
    echo
    echo "| hole | what cron and the operator did | exits | sets | instances | letters | most letters to one user |"
    echo "|---|---|---|---|---|---|---|"
  } >>"$result"
  query "$work/q.toml" everyone "'UGRAD', 'GRAD', 'FACULTY', 'STAFF'"
  query "$work/ugrad.toml" undergraduates "'UGRAD'"
  query "$work/students.toml" all-students "'UGRAD', 'GRAD'"
  local p=(--period 2027-spring --execute --yes) a b

  fresh --users 300
  a=$(ac "$work/w/srv" run "$work/q.toml" "${p[@]}")
  b=$(ac "$work/w/home" run "$work/q.toml" "${p[@]}")
  echo "| 1 working folder | the same command from /srv (cron) and from a home folder, no --state-dir | $a, $b | $(tally) |" >>"$result"

  fresh --users 300
  a=$(ac "$work/w" --state-dir "$work/w/a" run "$work/q.toml" "${p[@]}")
  b=$(ac "$work/w" --state-dir "$work/w/b" run "$work/q.toml" "${p[@]}")
  echo "| 2 second installation | the same command with a second state dir | $a, $b | $(tally) |" >>"$result"

  fresh --users 300
  a=$(ac "$work/w" --state-dir "$work/w/a" run "$work/q.toml" --period 2027-Spring --execute --yes)
  b=$(ac "$work/w" --state-dir "$work/w/a" run "$work/q.toml" --period "2027-spring " --execute --yes)
  echo "| 3 period as typed | \`--period 2027-Spring\`, then \`--period '2027-spring '\` | $a, $b | $(tally) |" >>"$result"

  fresh --users 300
  a=$(ac "$work/w" --state-dir "$work/w/a" run "$work/ugrad.toml" "${p[@]}")
  b=$(ac "$work/w" --state-dir "$work/w/a" run "$work/students.toml" "${p[@]}")
  echo "| 4 overlapping queries | undergraduates, then all students, same period, one journal | $a, $b | $(tally) |" >>"$result"
  fresh --users 300
  a=$(ac "$work/w" --state-dir "$work/w/a" run "$work/ugrad.toml" "${p[@]}")
  b=$(ac "$work/w" --state-dir "$work/w/b" run "$work/students.toml" "${p[@]}")
  echo "| 4b overlapping queries | the same from two state dirs | $a, $b | $(tally) |" >>"$result"

  # 5: three jobs of 2 s keep the API threshold (402222) busy; the run stops before its job.
  fresh --users 300 --job-duration-secs 2
  local h=(-s -H "Authorization: apikey sim-rw" -H "Accept: application/json" -H "Content-Type: application/json")
  local job member set i
  job=$(curl "${h[@]}" "$base/almaws/v1/conf/jobs?type=MANUAL&limit=100&offset=100" | python3 -c 'import json,sys; print([j["id"] for j in json.load(sys.stdin)["job"] if j["name"]=="Update/Notify Users"][0])')
  member=$(curl -s "$base/_sim/users" | python3 -c 'import json,sys; u=json.load(sys.stdin); u=u.get("users",u); print([x["primary_id"] for x in u if x["account_type"] == "INTERNAL"][0])')
  busy="$member"
  for i in 1 2 3; do
    set=$(curl "${h[@]}" -d '{"name":"busy '$i'","type":{"value":"ITEMIZED"},"content":{"value":"USER"}}' "$base/almaws/v1/conf/sets" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    curl "${h[@]}" -d '{"members":{"member":[{"id":"'"$member"'"}]}}' "$base/almaws/v1/conf/sets/$set?op=add_members" >/dev/null
    curl "${h[@]}" -d '{"parameter":[{"name":{"value":"set_id"},"value":"'"$set"'"},{"name":{"value":"job_name"},"value":"busy"},{"name":{"value":"SEND_Notification_To_User_Active"},"value":"true"},{"name":{"value":"SEND_Notification_To_User_Value"},"value":"NOTIFY_PASSWORD_CHANGE"}]}' "$base/almaws/v1/conf/jobs/$job?op=run" >/dev/null
  done
  a=$(ac "$work/w" --state-dir "$work/w/a" run "$work/q.toml" "${p[@]}" --json)
  local run_id run_set
  run_id=$(HOME="$work/home" "$bin" -q --state-dir "$work/w/a" runs --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["run_id"])')
  run_set=$(HOME="$work/home" "$bin" -q --state-dir "$work/w/a" runs --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["set_id"])')
  sleep 2.5
  curl -s -X POST "$base/_sim/jobs/run-from-ui?set_id=$run_set" >/dev/null
  b=$(ac "$work/w" --state-dir "$work/w/a" resume "$run_id")
  sleep 2.5
  local c d
  c=$(ac "$work/w" --state-dir "$work/w/a" resume "$run_id")
  d=$(ac "$work/w" --state-dir "$work/w/a" resume "$run_id")
  echo "| 5 a UI job on the run's set | threshold stop; staff run the job on the set from the UI; resume (the UI job running), resume twice after it ended | $a, $b, $c, $d | $(tally) |" >>"$result"
  tail -n 9 "$result"
}

# Issue 31: the ledger when Alma's listings lag and staff tidy up in Manage Sets.
lag() {
  local version
  version="$("$bin" --version)"
  {
    echo
    echo "## $version ($bin; simulator $sim_bin)"
    echo
    echo "$(date -u +%FT%TZ) · $(nproc) cores · \`benches/ledger.sh lag\`"
    echo
    echo "| hole | what cron, the operator and staff did | exits | sets | instances | letters | most letters to one user |"
    echo "|---|---|---|---|---|---|---|"
  } >>"$result"
  query "$work/q.toml" everyone "'UGRAD', 'GRAD', 'FACULTY', 'STAFF'"
  query "$work/ugrad.toml" undergraduates "'UGRAD'"
  query "$work/students.toml" all-students "'UGRAD', 'GRAD'"
  local p=(--period 2027-spring --execute --yes) a b c set_id run_id user
  local stop=(--fault "5xx@job-instances,count=1000000,after=set-op")
  set_of() { curl -s "$base/_sim/state" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sets"][0]["id"])'; }
  run_of() { HOME="$work/home" "$bin" -q --state-dir "$1" runs --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["run_id"])'; }

  # 1: stopped before its job, the set eight days older, resumed; another installation's
  # overlapping query of the same period.
  fresh --users 300 "${stop[@]}"
  a=$(ac "$work/w" --state-dir "$work/w/a" run "$work/ugrad.toml" "${p[@]}")
  set_id=$(set_of)
  curl -s -X POST "$base/_sim/sets/$set_id/age?days=8" >/dev/null
  curl -s -X POST "$base/_sim/faults/clear" >/dev/null
  b=$(ac "$work/w" --state-dir "$work/w/a" resume "$(run_of "$work/w/a")")
  c=$(ac "$work/w" --state-dir "$work/w/b" run "$work/students.toml" "${p[@]}")
  echo "| 1 set older than its letters | undergraduates stop before the job; the set 8 days older; resume; all students from a second state dir | $a, $b, $c | $(tally) |" >>"$result"

  # 2: two servers, copies of one query with different [set] name, at once; listings 20 s late.
  fresh --users 300 --set-listing-lag-secs 20 --instance-listing-lag-secs 20
  mkdir -p "$work/w/one" "$work/w/two"
  sed 's/^\[cohort\]/[set]\nname = "User Password Reset {query} {period}"\n[cohort]/' "$work/q.toml" >"$work/w/one/q.toml"
  sed 's/^\[cohort\]/[set]\nname = "Term start {period}: {query}"\n[cohort]/' "$work/q.toml" >"$work/w/two/q.toml"
  local pa pb
  (ac "$work/w" --state-dir "$work/w/one/state" run "$work/w/one/q.toml" "${p[@]}" >"$work/a.code") &
  pa=$!
  (ac "$work/w" --state-dir "$work/w/two/state" run "$work/w/two/q.toml" "${p[@]}" >"$work/b.code") &
  pb=$!
  wait "$pa" "$pb"
  echo "| 2 edited copies at once | two servers' copies of a query, \`[set] name\` differing, at once; set and instance lists 20 s late | $(cat "$work/a.code"), $(cat "$work/b.code") | $(tally) |" >>"$result"

  # 3: the quota spent between two add_members calls; staff take a user out; resume.
  fresh --users 2600 --fault "daily@set-op,skip=1,count=1000000"
  a=$(ac "$work/w" --state-dir "$work/w/a" run "$work/q.toml" --execute --yes)
  set_id=$(set_of)
  user=$(curl -s "$base/_sim/sets/$set_id/members" | python3 -c 'import json,sys; m=json.load(sys.stdin); m=m.get("members",m); print(m[3] if isinstance(m[3], str) else m[3]["id"])')
  curl -s -X DELETE "$base/_sim/sets/$set_id/members/$user" >/dev/null
  curl -s -X POST "$base/_sim/faults/clear" >/dev/null
  b=$(ac "$work/w" --state-dir "$work/w/a" resume "$(run_of "$work/w/a")")
  c=$(curl -s "$base/_sim/outbox" | python3 -c 'import json,sys; l=json.load(sys.stdin); l=l.get("letters",l) if isinstance(l,dict) else l; print(sum(1 for x in l if x["user_primary_id"].lower()=="'"${user,,}"'"))')
  echo "| 3 taken out by staff | the daily quota stops the run between two add_members calls; staff take one user out; resume (letters to that user: $c) | $a, $b | $(tally) |" >>"$result"

  # 4: a completed run's set deleted by staff; the same period and an overlapping query from
  # other state dirs.
  fresh --users 300
  a=$(ac "$work/w" --state-dir "$work/w/a" run "$work/q.toml" "${p[@]}")
  curl -s -X DELETE "$base/_sim/sets/$(set_of)" >/dev/null
  b=$(ac "$work/w" --state-dir "$work/w/b" run "$work/q.toml" "${p[@]}")
  c=$(ac "$work/w" --state-dir "$work/w/c" run "$work/students.toml" "${p[@]}")
  echo "| 4 set deleted by staff | a completed period run's set deleted; the same period, then all students, from other state dirs | $a, $b, $c | $(tally) |" >>"$result"

  # 5: a journal copied to a second state dir while its run waits before the job.
  fresh --users 300 "${stop[@]}"
  a=$(ac "$work/w" --state-dir "$work/w/a" run "$work/q.toml" "${p[@]}")
  curl -s -X POST "$base/_sim/faults/clear" >/dev/null
  cp -r "$work/w/a" "$work/w/b"
  run_id=$(run_of "$work/w/a")
  b=$(ac "$work/w" --state-dir "$work/w/b" resume "$run_id")
  c=$(ac "$work/w" --state-dir "$work/w/a" resume "$run_id")
  echo "| 5 copied journal | the run stops before its job; its state dir copied; resume from the copy, then from the original | $a, $b, $c | $(tally) |" >>"$result"
  tail -n 7 "$result"
}

calls() {
  {
    echo
    echo "## What the lookups cost: $users users at 25 requests/s ($("$bin" --version))"
    echo
    echo "$(date -u +%FT%TZ) · $(nproc) cores · commit $(git -C "$here" rev-parse --short HEAD) · \`benches/ledger.sh calls $bin $users\`"
    echo
  } >>"$result"
  query "$work/ugrad.toml" undergraduates "'UGRAD'"
  query "$work/students.toml" all-students "'UGRAD', 'GRAD'"
  kill "$sim_pid" 2>/dev/null || true
  bin="$sim_bin" start_sim "$port" "$work/sim.log" --users "$users" --rate-limit 25 --daily-quota 100000000 --job-duration-secs 5
  local t0 t1 t2
  t0=$(date +%s.%N)
  HOME="$work/home" ALMA_COHORT_POLL_INTERVAL=2 "$bin" -q --base-url "$base" --state-dir "$work/a" \
    run "$work/ugrad.toml" --period 2027-spring --execute --yes --json >/dev/null
  t1=$(date +%s.%N)
  # The same period's next query from a second state dir: the first run's set (its members) is read.
  HOME="$work/home" ALMA_COHORT_POLL_INTERVAL=2 "$bin" -q --base-url "$base" --state-dir "$work/b" \
    run "$work/students.toml" --period 2027-spring --execute --yes --json >/dev/null
  t2=$(date +%s.%N)
  curl -sf "$base/_sim/requests" >"$work/requests.json"
  python3 - "$work/requests.json" "$t0" "$t1" "$t2" <<'PY' | tee -a "$result"
import json, sys
from datetime import datetime
reqs = json.load(open(sys.argv[1]))["requests"]
t0, t1, t2 = map(float, sys.argv[2:5])
ts = lambda r: datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp()
first = [r for r in reqs if ts(r) < t1]
second = [r for r in reqs if ts(r) >= t1]
lookups = {"set-list", "set-get", "job-instances", "set-members"}
def count(rs, targets):
    return sum(1 for r in rs if r["target"] in targets)
print("| run | wall (s) | all calls | report pages | add-members | set lookups (list + get) | instance lists | members pages read for the cooldown | lookup calls | at 25/s (s) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for name, rs, wall in [("undergraduates, first installation", first, t1 - t0), ("all students, second installation", second, t2 - t1)]:
    n = count(rs, lookups)
    print(f"| {name} | {wall:.1f} | {len(rs)} | {count(rs, {'analytics-first', 'analytics-next'})} | {count(rs, {'set-op'})} "
          f"| {count(rs, {'set-list', 'set-get'})} | {count(rs, {'job-instances'})} | {count(rs, {'set-members'})} | {n} | {n / 25:.2f} |")
PY
}

"$mode"
