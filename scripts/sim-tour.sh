#!/usr/bin/env bash
# A walk through the simulator with plain curl: a 3-page report, a set, members, the
# Update/Notify Users job to COMPLETED_SUCCESS, and the letters in the outbox.
# Usage: scripts/sim-tour.sh [PORT]   (with `alma-cohort sim --port PORT` running; `--users 60
# --job-duration-secs 3` makes it quick)
set -euo pipefail
port="${1:-8089}"
A='Authorization: apikey sim-rw'; J='Accept: application/json'; C='Content-Type: application/json'
B="http://127.0.0.1:$port/almaws/v1"
R='/shared/Example%20University/Reports/Password%20Resets/All%20users'
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

echo "== report page 1"
p1=$(curl -s -H "$A" "$B/analytics/reports?path=$R&limit=25&col_names=true")
T=$(grep -o '<ResumptionToken>[^<]*' <<<"$p1" | cut -d'>' -f2)
echo "token: ${T:0:16}… (${#T} chars)  schema: $(grep -c '<xsd:schema' <<<"$p1")  rows: $(grep -c '<Row>' <<<"$p1")  $(grep -o '<IsFinished>[a-z]*' <<<"$p1")"
for n in 2 3; do
  p=$(curl -s -H "$A" "$B/analytics/reports?token=$T")
  echo "== report page $n: token: $(grep -c ResumptionToken <<<"$p")  schema: $(grep -c '<xsd:schema' <<<"$p")  rows: $(grep -c '<Row>' <<<"$p")  $(grep -o '<IsFinished>[a-z]*' <<<"$p")"
done
echo "== a 4th call: $(curl -s -o /dev/null -w '%{http_code}' -H "$A" "$B/analytics/reports?token=$T") $(curl -s -H "$A" "$B/analytics/reports?token=$T" | grep -o '<errorCode>[0-9]*')"

echo "== create a set"
set=$(curl -s -H "$A" -H "$J" -H "$C" -d '{"name":"Tour set","type":{"value":"ITEMIZED"},"content":{"value":"USER"},"private":{"value":"false"}}' "$B/conf/sets")
S=$(json 'd["id"]' <<<"$set"); echo "set $S, members $(json 'd["number_of_members"]["value"]' <<<"$set")"

echo "== add members (5 internal, 2 external, 1 unknown, fail_on_invalid_id=false)"
ids=$(curl -s "http://127.0.0.1:$port/_sim/users" | python3 -c '
import json,sys; u=json.load(sys.stdin)["users"]
i=[x["primary_id"] for x in u if x["account_type"]=="INTERNAL"][:5]; e=[x["primary_id"] for x in u if x["account_type"]=="EXTERNAL"][:2]
print(json.dumps({"members":{"member":[{"id":x} for x in i+e+["NO-SUCH-USER"]]}}))')
curl -s -H "$A" -H "$J" -H "$C" -d "$ids" "$B/conf/sets/$S?op=add_members&fail_on_invalid_id=false" | json '"members now", d["number_of_members"]["value"]'

echo "== find Update/Notify Users among MANUAL jobs"
JOB=""; off=0
while [ -z "$JOB" ]; do
  JOB=$(curl -s -H "$A" -H "$J" "$B/conf/jobs?type=MANUAL&limit=100&offset=$off" | json 'next((j["id"] for j in d.get("job",[]) if j["name"]=="Update/Notify Users"), "")')
  off=$((off+100)); [ $off -gt 1000 ] && { echo "not found"; exit 1; }
done
echo "job $JOB (found at offset $((off-100)))"

echo "== run it"
body='{"parameter":[{"name":{"value":"set_id"},"value":"'$S'"},{"name":{"value":"job_name"},"value":"tour"},{"name":{"value":"SEND_Notification_To_User_Active"},"value":"true"},{"name":{"value":"SEND_Notification_To_User_Value"},"value":"NOTIFY_PASSWORD_CHANGE"}]}'
run=$(curl -s -H "$A" -H "$J" -H "$C" -d "$body" "$B/conf/jobs/$JOB?op=run")
L=$(json 'd["additional_info"]["link"]' <<<"$run"); echo "$(json 'd["additional_info"]["value"]' <<<"$run")"; echo "instance: $L"
last=""
# Until the job ends, whatever the simulator's --job-duration-secs (at most 5 minutes).
for _ in $(seq 1200); do
  st=$(curl -s -H "$A" -H "$J" "$L" | json 'd["status"]["value"]+" "+str(d["progress"])')
  [ "$st" != "$last" ] && echo "  $st"; last=$st
  case "$st" in COMPLETED*|FAILED*) break;; esac
  sleep 0.25
done
curl -s -H "$A" -H "$J" "$L" | json '"counters:", [(c["type"]["value"], c["value"]) for c in d.get("counter", [])], "alert:", [a["value"] for a in d.get("alert", [])]'
echo "== outbox"
curl -s "http://127.0.0.1:$port/_sim/outbox" | json '"\n".join("  %s %s password=%s" % (l["user_primary_id"], l["notification_type"], "*"*len(l["temp_password"] or "")) for l in d["letters"])'
