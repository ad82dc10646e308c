"""Side-by-side: alma-cohort extract against almapy and almapiwrapper, paging the same report from
the alma-cohort simulator. Run through benches/compare/run.sh (it makes the throwaway virtualenv).

For each profile it starts the simulator, then runs the clients alternating, ROUNDS times each,
and records wall time, rows/s, peak RSS (/usr/bin/time -v) and the API calls each made (from the
simulator's request log), checks every client got every row, and writes a Markdown table to
benches/results/<date>-compare.md.
"""
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("ALMA_COHORT_BIN", os.path.join(ROOT, "target", "release", "alma-cohort"))
PYTHON = sys.executable
ROUNDS = int(os.environ.get("ROUNDS", "5"))
TIMEOUT = int(os.environ.get("CLIENT_TIMEOUT", "300"))
REPORT = "/shared/Example University/Reports/Password Resets/All users"
PORT = int(os.environ.get("PORT", "8096"))
BASE = f"http://127.0.0.1:{PORT}"

# name, rows, first-page latency ms, page latency ms
PROFILES = [
    ("20k, no latency", 20_000, 0, 0),
    ("100k, no latency", 100_000, 0, 0),
    ("1M, no latency", 1_000_000, 0, 0),
    ("100k, Alma-like latency", 100_000, 2000, 300),
]

PEER = r'''
import asyncio, json, os, sys, tempfile
BASE, REPORT, CLIENT = sys.argv[1], sys.argv[2], sys.argv[3]
if CLIENT == "almapy":
    import niquests
    from almapy import AlmaClient
    async def main():
        session = niquests.AsyncSession(base_url=BASE + "/almaws/v1")
        client = AlmaClient("sim-rw", client=session)
        rows = await client.analytics.get_full_report(REPORT, limit=1000)
        await session.close()
        return [r.get("Primary Identifier") for r in rows]
    ids = asyncio.run(main())
else:
    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump({"SIM": [{"API_Key": "sim-rw", "Supported_APIs": [{"Area": "Analytics", "Permissions": "R", "Env": "P"}]}]}, f)
    f.close()
    os.environ["alma_api_keys"] = f.name
    from almapiwrapper.analytics import AnalyticsReport
    AnalyticsReport.api_base_url_analytics = BASE + "/almaws/v1/analytics/reports"
    df = AnalyticsReport(REPORT, "SIM").data
    ids = list(df["Primary Identifier"]) if df is not None else []
print(json.dumps({"ids": [str(i).strip().lower() for i in ids]}))
'''


def commit():
    """The checkout's commit, marked when it has uncommitted changes."""
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return head + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def sim_get(path):
    with urllib.request.urlopen(f"{BASE}/_sim/{path}", timeout=60) as r:
        return json.load(r)


def start_sim(rows, first_ms, page_ms):
    log = open(os.path.join(tempfile.gettempdir(), "compare-sim.log"), "w")
    proc = subprocess.Popen(
        [BIN, "sim", "--port", str(PORT), "--users", str(rows), "--rate-limit", "0", "--daily-quota", "1000000000",
         "--first-page-latency-ms", str(first_ms), "--page-latency-ms", str(page_ms)],
        stdout=log, stderr=log)
    for _ in range(600):
        try:
            sim_get("state")
            return proc
        except Exception:
            time.sleep(0.2)
    raise SystemExit("the simulator did not start")


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time -v in its own process group; returns (seconds, peak RSS MB,
    stdout, stderr, ok, timed_out). On timeout the whole group is killed, so that no client keeps
    paging behind the next one's back."""
    start = time.monotonic()
    p = subprocess.Popen(["/usr/bin/time", "-v"] + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env, start_new_session=True)
    try:
        out, err = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return TIMEOUT, None, "", "", False, True
    wall = time.monotonic() - start
    rss = None
    for line in err.splitlines():
        if "Maximum resident set size" in line:
            rss = int(line.split(":")[1]) / 1024
    return wall, rss, out, err, p.returncode == 0, False


def run_client(client, workdir, pace):
    """One run of one client: (wall, rss MB, ids, ok, timed_out, columnar MB or None)."""
    if client.startswith("alma-cohort"):
        q = os.path.join(workdir, "q.toml")
        with open(q, "w") as f:
            f.write(f'name = "compare"\n[report]\npath = "{REPORT}"\nlimit = 1000\n'
                    '[cohort]\nid_column = "Primary Identifier"\n[guard]\nmax_members = 100000000\n')
        out = os.path.join(workdir, "out.csv")
        env = dict(os.environ, ALMA_API_KEY="sim-rw")
        wall, rss, _, err, ok, timed_out = timed(
            [BIN, "--base-url", BASE, "--pace", str(pace), "extract", q, "--out", out], env)
        ids, columnar = [], None
        m = re.search(r"\(([0-9.]+) MB in memory\)", err)
        if m:
            columnar = float(m.group(1))
        if ok:
            with open(out) as f:
                next(f)
                ids = [line.split(",", 1)[0].strip().strip('"').lower() for line in f if line.strip()]
        return wall, rss, ids, ok, timed_out, columnar
    script = os.path.join(workdir, "peer.py")
    with open(script, "w") as f:
        f.write(PEER)
    wall, rss, stdout, _, ok, timed_out = timed([PYTHON, script, BASE, REPORT, client])
    ids = json.loads(stdout.strip().splitlines()[-1])["ids"] if ok and stdout.strip() else []
    return wall, rss, ids, ok, timed_out, None


def pace_of(client, first_ms):
    """alma-cohort paces itself to Alma's 25 requests/s. Without latency the simulator's limit is
    off and the peers do not pace at all, so plain `alma-cohort` is lifted too (--pace 10000) and
    `alma-cohort@25` shows the cost of the pace."""
    if client == "alma-cohort@25" or first_ms > 0:
        return 25
    return 10000


def main():
    profiles = PROFILES
    if os.environ.get("PROFILES"):
        wanted = os.environ["PROFILES"].split(";")
        profiles = [p for p in PROFILES if p[0] in wanted]
    clients = os.environ.get("CLIENTS", "alma-cohort,alma-cohort@25,almapy,almapiwrapper").split(",")
    lines = [f"# extract side by side — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             f"{os.cpu_count()} cores · {platform.platform()} · commit {commit()} · `benches/compare/run.sh` · up to {ROUNDS} rounds "
             f"each, clients alternating · medians · per-run timeout {TIMEOUT} s (a client that times out is "
             f"not run again in that profile) · simulator without rate limit · alma-cohort at --pace 10000 "
             f"without latency (`alma-cohort@25`: at Alma's 25/s), at 25/s with latency", "",
             "| profile | client | wall (s) | rows/s | × alma-cohort's time | peak RSS (MB) | columnar (MB) | "
             "API calls | complete | runs |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for name, rows, first_ms, page_ms in profiles:
        sim = start_sim(rows, first_ms, page_ms)
        active = [c for c in clients if not (c == "alma-cohort@25" and first_ms > 0)]
        try:
            expected = sorted(u["primary_id"].strip().lower() for u in sim_get("users")["users"])
            results = {c: [] for c in active}
            with tempfile.TemporaryDirectory() as workdir:
                for r in range(ROUNDS):
                    for client in active:
                        if any(x["timed_out"] for x in results[client]):
                            continue
                        before = sim_get("requests")["total"]
                        wall, rss, ids, ok, timed_out, columnar = run_client(client, workdir, pace_of(client, first_ms))
                        calls = sim_get("requests")["total"] - before
                        complete = ok and sorted(ids) == expected
                        results[client].append(dict(wall=wall, rss=rss, calls=calls, complete=complete, ok=ok,
                                                     timed_out=timed_out, columnar=columnar))
                        print(f"{name} round {r + 1} {client}: {wall:.2f} s, {rss} MB, {calls} calls, "
                              f"complete={complete}{' TIMED OUT' if timed_out else ''}", flush=True)
            ours = [x["wall"] for x in results.get("alma-cohort", []) if x["ok"]]
            ours = statistics.median(ours) if ours else None
            pages = -(-rows // 1000)
            floor = (first_ms + (pages - 1) * page_ms) / 1000
            for client in active:
                rs = results[client]
                done = [x for x in rs if x["ok"]]
                full = f"{sum(1 for x in rs if x['complete'])}/{len(rs)}"
                if done:
                    wall = statistics.median(x["wall"] for x in done)
                    rss = statistics.median(x["rss"] for x in done if x["rss"] is not None)
                    calls = statistics.median(x["calls"] for x in done)
                    cols = [x["columnar"] for x in done if x["columnar"] is not None]
                    col = f"{statistics.median(cols):.0f}" if cols else "–"
                    ratio = f"{wall / ours:.1f}×" if ours else "–"
                    lines.append(f"| {name} | {client} | {wall:.2f} | {rows / wall:,.0f} | {ratio} | {rss:.0f} | {col} | "
                                 f"{calls:.0f} | {full} | {len(done)}/{len(rs)} |")
                    if floor > 0:
                        notes.append(f"- {name}: {client} took {wall / floor:.3f}× the latency floor "
                                     f"({first_ms / 1000:g} s + {pages - 1} × {page_ms / 1000:g} s = {floor:.1f} s)")
                    if cols:
                        limit = 3 * statistics.median(cols) + 50
                        notes.append(f"- {name}: {client} peak RSS {rss:.0f} MB against 3 × {statistics.median(cols):.0f} "
                                     f"MB columnar + 50 MB = {limit:.0f} MB ({rss / statistics.median(cols):.2f}× columnar)")
                else:
                    calls = max((x["calls"] for x in rs), default=0)
                    ratio = f"> {TIMEOUT / ours:.0f}×" if ours else "–"
                    lines.append(f"| {name} | {client} | > {TIMEOUT} (timed out after {calls} calls of {pages}) | "
                                 f"< {rows / TIMEOUT:,.0f} | {ratio} | – | – | {calls} | {full} | 0/{len(rs)} |")
        finally:
            sim.terminate()
            sim.wait()
    if notes:
        lines += [""] + notes
    out = os.environ.get("OUT") or os.path.join(ROOT, "benches", "results", time.strftime("%Y-%m-%d") + "-compare.md")
    with open(out, "a") as f:
        f.write("\n".join(lines) + "\n\n")
    print("\n".join(lines))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
