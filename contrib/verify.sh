#!/usr/bin/env bash
# Checks the shipped systemd units with `systemd-analyze verify` (where it is installed) and the
# shell scripts with `sh -n`. The units name /usr/local/bin/…; for the check those paths point at
# the scripts shipped beside them, so a unit naming a script we do not ship fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash -n "$here"/two-person-flow.sh
for script in "$here"/alma-cohort-scheduled "$here"/alma-cohort-notify; do
    sh -n "$script"
    [ -x "$script" ] || { echo "$script is not executable" >&2; exit 1; }
done
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "systemd-analyze not installed: the units were not verified"
    exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"
cp "$here"/alma-cohort-scheduled "$here"/alma-cohort-notify "$work/bin/"
for unit in "$here"/systemd/*; do
    sed "s|/usr/local/bin/|$work/bin/|g" "$unit" >"$work/$(basename "$unit")"
done
# Instances of the template unit are checked through an instance name.
cp "$work/alma-cohort-notify@.service" "$work/alma-cohort-notify@alma-cohort-term-start.service.service"
out="$(cd "$work" && systemd-analyze verify --man=no ./alma-cohort-term-start.service ./alma-cohort-term-start.timer ./alma-cohort-notify@alma-cohort-term-start.service.service 2>&1)" || {
    echo "$out" >&2
    exit 1
}
# verify exits 0 on some warnings: any line about our units is a failure.
if grep -E "alma-cohort" <<<"$out" >&2; then
    exit 1
fi
echo "systemd units verified: $(ls "$here"/systemd | tr '\n' ' ')"
