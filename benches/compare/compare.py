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
TIMEOUT = int(os.environ.get("CLIENT_TIMEOUT", "900"))
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
    """Runs cmd under /usr/bin/time -v; returns (seconds, peak RSS MB, stdout, ok)."""
    start = time.monotonic()
    try:
        p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        return TIMEOUT, None, "", False
    wall = time.monotonic() - start
    rss = None
    for line in p.stderr.splitlines():
        if "Maximum resident set size" in line:
            rss = int(line.split(":")[1]) / 1024
    return wall, rss, p.stdout, p.returncode == 0


def run_client(client, workdir):
    if client == "alma-cohort":
        q = os.path.join(workdir, "q.toml")
        with open(q, "w") as f:
            f.write(f'name = "compare"\n[report]\npath = "{REPORT}"\nlimit = 1000\n'
                    '[cohort]\nid_column = "Primary Identifier"\n[guard]\nmax_members = 100000000\n')
        out = os.path.join(workdir, "out.csv")
        env = dict(os.environ, ALMA_API_KEY="sim-rw")
        wall, rss, _, ok = timed([BIN, "-q", "--base-url", BASE, "--pace", os.environ.get("PACE", "25"),
                                  "extract", q, "--out", out], env)
        ids = []
        if ok:
            with open(out) as f:
                next(f)
                ids = [line.split(",", 1)[0].strip().strip('"').lower() for line in f if line.strip()]
        return wall, rss, ids, ok
    script = os.path.join(workdir, "peer.py")
    with open(script, "w") as f:
        f.write(PEER)
    wall, rss, stdout, ok = timed([PYTHON, script, BASE, REPORT, client])
    ids = json.loads(stdout.strip().splitlines()[-1])["ids"] if ok and stdout.strip() else []
    return wall, rss, ids, ok


def main():
    profiles = PROFILES
    if os.environ.get("PROFILES"):
        wanted = os.environ["PROFILES"].split(";")
        profiles = [p for p in PROFILES if p[0] in wanted]
    clients = os.environ.get("CLIENTS", "alma-cohort,almapy,almapiwrapper").split(",")
    lines = [f"# extract side by side — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             f"{os.cpu_count()} cores · {platform.platform()} · `benches/compare/run.sh` · {ROUNDS} rounds each, "
             f"alternating · medians · alma-cohort at --pace {os.environ.get('PACE', '25')} · "
             f"per-run timeout {TIMEOUT} s", "",
             "| profile | client | wall (s) | rows/s | peak RSS (MB) | API calls | complete | runs |",
             "|---|---|---|---|---|---|---|---|"]
    for name, rows, first_ms, page_ms in profiles:
        sim = start_sim(rows, first_ms, page_ms)
        try:
            expected = sorted(u["primary_id"].strip().lower() for u in sim_get("users")["users"])
            results = {c: [] for c in clients}
            with tempfile.TemporaryDirectory() as workdir:
                for r in range(ROUNDS):
                    for client in clients:
                        before = sim_get("requests")["total"]
                        wall, rss, ids, ok = run_client(client, workdir)
                        calls = sim_get("requests")["total"] - before
                        complete = ok and sorted(ids) == expected
                        results[client].append((wall, rss, calls, complete, ok))
                        print(f"{name} round {r + 1} {client}: {wall:.2f} s, {rss} MB, {calls} calls, complete={complete}", flush=True)
            for client in clients:
                rs = results[client]
                done = [x for x in rs if x[4]]
                if done:
                    wall = statistics.median(x[0] for x in done)
                    rss = statistics.median(x[1] for x in done if x[1] is not None)
                    calls = statistics.median(x[2] for x in done)
                    lines.append(f"| {name} | {client} | {wall:.2f} | {rows / wall:,.0f} | {rss:.0f} | {calls:.0f} | "
                                 f"{sum(1 for x in rs if x[3])}/{len(rs)} | {len(done)}/{len(rs)} |")
                else:
                    lines.append(f"| {name} | {client} | > {TIMEOUT} (no run finished) | – | – | – | 0/{len(rs)} | 0/{len(rs)} |")
        finally:
            sim.terminate()
            sim.wait()
    out = os.path.join(ROOT, "benches", "results", time.strftime("%Y-%m-%d") + "-compare.md")
    with open(out, "a") as f:
        f.write("\n".join(lines) + "\n\n")
    print("\n".join(lines))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
