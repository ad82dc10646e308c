#!/usr/bin/env bash
# docs/scheduling.md's "Two people" section, run as written by three OS accounts with sudo against
# the simulator: the analyst plans through `sudo -u alma-cohort`, the head of systems signs the
# plan's text with their own SSH key as themselves and records the signature through sudo, and the
# service account (the timer) applies it. Then the same plan cannot be applied twice, and a second
# plan signed by a key allowed_signers does not list is never applied.
#
# It creates accounts, a sudoers rule and /etc/alma-cohort, /var/lib/alma-cohort and
# /srv/alma-cohort-review, and removes them all at the end: run it only as root on a machine you
# may change that way (CI's throwaway machine). Anywhere else it says why it does not run, exit 0.
#
#   contrib/two-person-flow.sh [BINARY]        (default: target/debug/alma-cohort)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin_src="${1:-$here/../target/debug/alma-cohort}"

skip() { echo "two-person flow: not run: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "it creates OS accounts, so it runs only as root"
for path in /etc/alma-cohort /var/lib/alma-cohort /srv/alma-cohort-review /etc/sudoers.d/alma-cohort-flow; do
    [ ! -e "$path" ] || skip "$path exists: this machine is not a throwaway one"
done
for user in alma-cohort ac-analyst ac-head; do
    ! id "$user" >/dev/null 2>&1 || skip "the account $user exists"
done
command -v useradd >/dev/null || skip "no useradd"
command -v ssh-keygen >/dev/null || skip "no ssh-keygen"
if ! command -v sudo >/dev/null; then
    command -v apt-get >/dev/null || skip "no sudo, and no apt-get to install it"
    echo "two-person flow: installing sudo (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sudo >/dev/null 2>&1 || skip "sudo could not be installed"
fi
[ -x "$bin_src" ] || { echo "two-person flow: no binary at $bin_src (cargo build first)" >&2; exit 2; }

work="$(mktemp -d)"
sim_pid=""
cleanup() {
    [ -z "$sim_pid" ] || kill "$sim_pid" 2>/dev/null || true
    userdel -r ac-analyst >/dev/null 2>&1 || true
    userdel -r ac-head >/dev/null 2>&1 || true
    userdel alma-cohort >/dev/null 2>&1 || true
    groupdel alma-reviewers >/dev/null 2>&1 || true
    rm -rf /etc/alma-cohort /var/lib/alma-cohort /srv/alma-cohort-review /etc/sudoers.d/alma-cohort-flow "$work"
}
trap cleanup EXIT
fail() { echo "two-person flow: FAILED: $*" >&2; exit 1; }
step() { echo "== $*"; }

# The binary where every account may run it.
install -d -m 755 "$work/bin"
install -m 755 "$bin_src" "$work/bin/alma-cohort"
ac="$work/bin/alma-cohort"
chmod 755 "$work"

# The simulator (root's; the accounts reach it over loopback).
"$ac" sim --port 0 --port-file "$work/port" --users 2000 >"$work/sim.log" 2>&1 &
sim_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || fail "the simulator did not start: $(cat "$work/sim.log")"
base="http://127.0.0.1:$(cat "$work/port")"

step "setup, as root: the accounts, the fixed places, the reviewers' group"
groupadd alma-reviewers
useradd --system --user-group --home-dir /var/lib/alma-cohort --shell /usr/sbin/nologin alma-cohort
useradd --create-home --shell /bin/bash ac-analyst
useradd --create-home --shell /bin/bash --groups alma-reviewers ac-head
cat >/etc/sudoers.d/alma-cohort-flow <<EOF
ac-analyst ALL=(alma-cohort) NOPASSWD: $ac
ac-head ALL=(alma-cohort) NOPASSWD: $ac
EOF
chmod 440 /etc/sudoers.d/alma-cohort-flow
install -d -m 755 /etc/alma-cohort /etc/alma-cohort/queries
install -d -m 700 -o alma-cohort -g alma-cohort /var/lib/alma-cohort
install -d -m 2750 -o alma-cohort -g alma-reviewers /srv/alma-cohort-review
printf 'sim-rw\n' >/etc/alma-cohort/alma-api.key
chown alma-cohort:alma-cohort /etc/alma-cohort/alma-api.key
chmod 600 /etc/alma-cohort/alma-api.key
sed -e "s|^region = \"eu\"|base_url = \"$base\"|" "$here/alma-cohort.toml" >/etc/alma-cohort/alma-cohort.toml
runuser -u ac-head -- ssh-keygen -q -t ed25519 -N '' -C head -f /home/ac-head/.ssh/id_ed25519
printf 'head@example.edu namespaces="alma-cohort" %s\n' "$(cut -d' ' -f1,2 /home/ac-head/.ssh/id_ed25519.pub)" >/etc/alma-cohort/allowed_signers
chmod 644 /etc/alma-cohort/allowed_signers /etc/alma-cohort/alma-cohort.toml
cp "$here/../queries/staff-reset.toml" "$here/../queries/protected-staff.txt" /etc/alma-cohort/queries/
printf '[approval]\nrequired = 1\napprover_not_planner = true\nallowed_signers = "/etc/alma-cohort/allowed_signers"\n' >>/etc/alma-cohort/queries/staff-reset.toml
chmod 644 /etc/alma-cohort/queries/*
q=/etc/alma-cohort/queries/staff-reset.toml
# Each account starts in its home, with no ALMA_* in its environment.
as() { local who="$1"; shift; (cd "$(getent passwd "$who" | cut -d: -f6)" && env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME="$(getent passwd "$who" | cut -d: -f6)" runuser -u "$who" -- "$@"); }

step "the analyst plans (Monday)"
out="$(as ac-analyst sudo -u alma-cohort "$ac" --profile main plan "$q" --period 2026-09 --save)" || fail "plan: $out"
P="$(sed -n 's/^saved plan \([0-9A-Za-z-]*\):.*/\1/p' <<<"$out")"
[ -n "$P" ] || fail "no plan id in: $out"
grep -q '^digest:  sha256:' <<<"$out" || fail "no digest in: $out"
grep -q '^approvals: signed' <<<"$out" || fail "not signed approvals: $out"
echo "saved plan $P"

step "the analyst cannot walk around the approval"
own="$work/own-query.toml"
printf 'name = "own"\n[report]\npath = "/shared/Example University/Reports/Password Resets/Active internal users"\n[cohort]\nid_column = "Primary Identifier"\n[guard]\nmax_members = 3000\n' >"$own"
chmod 644 "$own"
for attempt in "run $own --execute --yes" "plan $own --save" "--base-url https://elsewhere.example.invalid plan $q --save"; do
    set +e
    out="$(as ac-analyst sudo -u alma-cohort "$ac" --profile main $attempt 2>&1)"
    code=$?
    set -e
    [ "$code" = 4 ] || fail "'$attempt' ended $code: $out"
done

step "the head of systems reads the review folder, signs as themselves, records it through sudo"
as ac-head test -r "/srv/alma-cohort-review/$P-report.html" || fail "the reviewer cannot read report.html"
as ac-head test -r "/srv/alma-cohort-review/$P-plan.txt" || fail "the reviewer cannot read plan.txt"
! as ac-analyst test -r "/srv/alma-cohort-review/$P-plan.txt" || fail "someone outside the reviewers' group reads plan.txt"
! as ac-head test -r /var/lib/alma-cohort/journal.sqlite || fail "the reviewer reads the journal"
as ac-head bash -c "cp /srv/alma-cohort-review/$P-plan.txt ~/$P.txt && ssh-keygen -q -Y sign -n alma-cohort -f ~/.ssh/id_ed25519 ~/$P.txt"
out="$(as ac-head bash -c "sudo -u alma-cohort $ac --profile main approve $P --signature - < ~/$P.txt.sig")" || fail "approve: $out"
grep -q "approved by head@example.edu (signed with SHA256:" <<<"$out" || fail "approve said: $out"
# The analyst's own approval (SUDO_USER by hand, or unsigned) does not count.
if out="$(as ac-analyst sudo -u alma-cohort "$ac" --profile main approve "$P" 2>&1)"; then fail "an unsigned approval was recorded: $out"; fi

step "the timer applies it (Tuesday night), as the service account"
out="$(as alma-cohort "$ac" --profile main apply --query "$q" --period 2026-09 --execute --yes --json)" || fail "apply: $out"
grep -q '"state":"completed"' <<<"$out" || fail "apply said: $out"
show="$(as ac-head sudo -u alma-cohort "$ac" --profile main plans show "$P")"
grep -q '^planned by: ac-analyst' <<<"$show" || fail "show: $show"
grep -q '^approved by: head@example.edu at .*, signed with SHA256:' <<<"$show" || fail "show: $show"
grep -q '^applied by: alma-cohort' <<<"$show" || fail "show: $show"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
sets="$(curl -s "$base/_sim/state" | json 'len(d["sets"])')"
jobs="$(curl -s "$base/_sim/state" | json 'len(d["job_instances"])')"
[ "$sets" = 1 ] && [ "$jobs" = 1 ] || fail "Alma holds $sets sets and $jobs job runs"
cohort="$(sed -n 's/^cohort: \([0-9]*\) IDs$/\1/p' "/srv/alma-cohort-review/$P-plan.txt")"
letters="$(curl -s "$base/_sim/resets" | json 'd["letters"]')"
locked="$(curl -s "$base/_sim/resets" | json 'd["locked_out"]')"
once="$(curl -s "$base/_sim/outbox" | json 'len(d["letters"]) == len({l["user_primary_id"] for l in d["letters"]})')"
[ "$letters" -le "$cohort" ] && [ "$letters" -gt 0 ] && [ "$locked" = 0 ] && [ "$once" = True ] \
    || fail "$letters letters (one each: $once), $locked locked out, for a cohort of $cohort"

step "the timer fires again: nothing more"
set +e
out="$(as alma-cohort "$ac" --profile main apply --query "$q" --period 2026-09 --execute --yes --json 2>&1)"
code=$?
set -e
[ "$code" = 4 ] || fail "a second firing ended $code: $out"
[ "$(curl -s "$base/_sim/state" | json 'len(d["job_instances"])')" = 1 ] || fail "a second job"
echo "two-person flow: passed (plan $P: $cohort IDs, $letters letters, 1 set, 1 job)"
