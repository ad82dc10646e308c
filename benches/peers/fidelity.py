"""Fidelity check: two other Alma clients from PyPI against the alma-cohort simulator.

Run by benches/peers/run.sh inside a throwaway virtualenv (never a project dependency).
Each client pages the "All users" report to the end and creates an itemized USER set with
members; the script compares what they got with what the simulator holds (via /_sim/*).
"""
import asyncio
import json
import os
import sys
import tempfile

import niquests
import requests

BASE = os.environ["ALMA_SIM_BASE"]
KEY = os.environ.get("ALMA_SIM_KEY", "sim-rw")
REPORT = "/shared/Example University/Reports/Password Resets/All users"
MEMBERS = int(os.environ.get("ALMA_SIM_MEMBERS", "150"))


def sim(path):
    return requests.get(f"{BASE}/_sim/{path}", timeout=30).json()


def expected_ids():
    return sorted(u["primary_id"].strip().lower() for u in sim("users")["users"])


def norm(ids):
    return sorted(str(i).strip().lower() for i in ids)


def check(name, ok, detail):
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")
    return ok


async def almapy_check(users, member_ids):
    from almapy import AlmaClient

    session = niquests.AsyncSession(base_url=f"{BASE}/almaws/v1")
    client = AlmaClient(KEY, client=session)
    rows = await client.analytics.get_full_report(REPORT, limit=1000)
    got = norm(r["Primary Identifier"] for r in rows)
    ok = check("almapy report", got == users, f"{len(rows)} rows, {len(set(got))} distinct ids, expected {len(users)}")
    created = await client.config.sets.create(
        {"name": "almapy fidelity set", "type": {"value": "ITEMIZED"}, "content": {"value": "USER"},
         "private": {"value": "false"}}
    )
    set_id = created["id"]
    await client.config.sets.manage_members(set_id, member_ids, op="add_members")
    members = sim(f"sets/{set_id}/members")["members"]
    ok &= check("almapy set", members == member_ids, f"set {set_id} has {len(members)} members, expected {len(member_ids)}")
    await session.close()
    return ok


def almapiwrapper_check(users, member_ids):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        grants = [{"Area": a, "Permissions": p, "Env": "P"} for a in ("Analytics", "Conf", "Users") for p in ("R", "RW")]
        json.dump({"SIM": [{"API_Key": KEY, "Supported_APIs": grants}]}, f)
    os.environ["alma_api_keys"] = f.name
    from almapiwrapper.analytics import AnalyticsReport
    from almapiwrapper.config import NewItemizedSet
    from almapiwrapper.record import Record

    Record.api_base_url = f"{BASE}/almaws/v1"
    AnalyticsReport.api_base_url_analytics = f"{BASE}/almaws/v1/analytics/reports"
    df = AnalyticsReport(REPORT, "SIM").data
    got = norm(df["Primary Identifier"])
    ok = check("almapiwrapper report", got == users, f"{len(df)} rows, {len(set(got))} distinct ids, expected {len(users)}")
    new_set = NewItemizedSet("SIM", name="almapiwrapper fidelity set", content="USER", private=False, members=member_ids).create()
    members = sim(f"sets/{new_set.set_id}/members")["members"]
    ok &= check("almapiwrapper set", members == member_ids, f"set {new_set.set_id} has {len(members)} members, expected {len(member_ids)}")
    os.unlink(f.name)
    return ok


def main():
    users = expected_ids()
    internal = [u["primary_id"] for u in sim("users")["users"] if u["account_type"] == "INTERNAL"]
    ok = asyncio.run(almapy_check(users, internal[:MEMBERS]))
    ok &= almapiwrapper_check(users, internal[MEMBERS:2 * MEMBERS])
    state = sim("state")
    print(f"simulator: {len(state['sets'])} sets, {sum(1 for r in sim('requests')['requests'])} requests logged")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
