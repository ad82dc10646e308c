#!/usr/bin/env python3
"""Checks the workspace's boundaries (docs/architecture.md); run by CI. Exit 1 on a breach.

- at least three members, and the README's `cargo nextest run` takes them all (default-members);
- alma-sim depends on no crate of the workspace (it and the client must not agree by
  construction), and only the binary (`demo`, `sim`, its tests) depends on it;
- alma-client's whole tree (`cargo tree -p alma-client`) holds no polars, rusqlite, axum or clap;
- polars is a direct dependency of exactly one member (alma-cohort-core);
- clap is a direct dependency only of the binary and of alma-sim (its `cli` feature);
- no circle between the files of any crate (scripts/module-cycles.py).
"""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cargo(*args):
    return subprocess.run(["cargo", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def main():
    meta = json.loads(cargo("metadata", "--format-version", "1", "--no-deps"))
    members = {p["id"]: p for p in meta["packages"] if p["id"] in meta["workspace_members"]}
    names = {p["name"] for p in members.values()}
    problems = []
    if len(members) < 3:
        problems.append(f"the workspace has {len(members)} members; at least three were asked")
    if set(meta.get("workspace_default_members", [])) != set(meta["workspace_members"]):
        problems.append("default-members leaves a member out: the README's `cargo nextest run` would not test it")

    def direct(pkg, dep):
        return [d for d in pkg["dependencies"] if d["name"] == dep]

    by_name = {p["name"]: p for p in members.values()}
    sim = by_name.get("alma-sim")
    if sim is None:
        problems.append("no alma-sim member")
    else:
        ours = [d["name"] for d in sim["dependencies"] if d["name"] in names]
        if ours:
            problems.append(f"alma-sim depends on {', '.join(ours)}: it must depend on no crate of ours")
    users = sorted(p["name"] for p in members.values() if direct(p, "alma-sim"))
    if users not in ([], ["alma-cohort"]):
        problems.append(f"{', '.join(users)} depend on alma-sim: only the binary (demo, sim) and its tests may")
    tree = cargo("tree", "-p", "alma-client", "-e", "normal,build,dev", "--prefix", "none", "--format", "{p}")
    crates = {line.split(" ")[0] for line in tree.splitlines() if line.strip()}
    for banned in ("polars", "rusqlite", "axum", "clap"):
        if banned in crates:
            problems.append(f"alma-client's tree holds {banned}")
    polars = [p["name"] for p in members.values() if direct(p, "polars")]
    if polars != ["alma-cohort-core"]:
        problems.append(f"polars is a direct dependency of {polars or 'no member'}; exactly alma-cohort-core was asked")
    clap = sorted(p["name"] for p in members.values() if direct(p, "clap"))
    if not set(clap) <= {"alma-cohort", "alma-sim"}:
        problems.append(f"clap is a direct dependency of {', '.join(clap)}; only the binary and alma-sim may use it")
    if sim is not None and any(not d.get("optional") for d in direct(sim, "clap")):
        problems.append("alma-sim's clap is not optional: the library must build without it (feature cli)")
    cycles = subprocess.run([sys.executable, str(ROOT / "scripts/module-cycles.py")], cwd=ROOT)
    if cycles.returncode != 0:
        problems.append("circles between files (above)")
    for p in problems:
        print(f"error: {p}")
    if not problems:
        print(f"ok: {len(members)} members ({', '.join(sorted(names))}); alma-sim uses none of ours; "
              "alma-client without polars, rusqlite, axum, clap; polars only in alma-cohort-core; "
              f"clap only in {', '.join(clap)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
