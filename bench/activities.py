#!/usr/bin/env python3
"""A million activities over 100,000 contacts, on SQLite (issue 25).

    python3 bench/activities.py

Builds the release binary when missing, then in a fresh SQLite file: 100,000 contacts imported
from CSV (`rapport import contacts`) owned by five people, and 1,000,000 activities imported from
JSON lines (`rapport import activities`: calls, meetings, emails and messages over the last 120
days, each about a contact, a third with a second contact taking part), which keeps every
contact's `last_activity_at` in the import's transactions. Then, through MCP, one request at a
time over one keep-alive connection (server pinned to core 0, client to core 1), it measures:

- "contacts not contacted in 30 days", first page: `search_records` on contacts with
  `last_activity_at` older than 30 days or empty, sorted by `last_activity_at`;
- "this week's calls per person": `count_records` on activities, `kind` = call and
  `occurred_at` in the last 7 days, grouped by `owner_id`;
- the same count grouped by `kind` over the last 30 days.

Targets (issue 25): the first p99 under 50 ms, the grouped counts under 200 ms. Not run in CI:
the import alone takes minutes. Every request goes to 127.0.0.1; the script stops by itself and
kills its server on exit. Knobs: BENCH_CONTACTS (100000), BENCH_ACTIVITIES (1000000),
BENCH_SAMPLES (200).
"""

import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import million  # noqa: E402  (the server and MCP client helpers)

CONTACTS = int(os.environ.get("BENCH_CONTACTS", "100000"))
ACTIVITIES = int(os.environ.get("BENCH_ACTIVITIES", "1000000"))
SAMPLES = int(os.environ.get("BENCH_SAMPLES", "200"))
DAY_MS = 86_400_000
KINDS = [("call", ["connected", "no_answer", "voicemail"]), ("meeting", ["held", "no_show"]),
         ("email", ["sent", "replied"]), ("message", ["sent", "replied"])]


def rfc3339(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def run(env, *args):
    t0 = time.perf_counter()
    out = subprocess.run([million.RAPPORT, *args], env=env, capture_output=True, text=True)
    if out.returncode:
        million.die(f"rapport {' '.join(args)}: {out.stderr[-2000:]}")
    return out.stdout, time.perf_counter() - t0


def main():
    if not os.path.exists(million.RAPPORT) and not os.environ.get("BENCH_SKIP_BUILD"):
        subprocess.run(["cargo", "build", "--release"], cwd=million.ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="rapport-activities-")
    path = os.path.join(tmp, "bench.db")
    db_url = f"sqlite://{path}"
    env = million.env_for(db_url)
    run(env, "migrate")
    owners = []
    for i in range(5):
        run(env, "users", "create", "--email", f"seller{i}@example.com", "--role", "member")
        owners.append(f"seller{i}@example.com")
    rng = random.Random(25)
    contacts_csv = os.path.join(tmp, "contacts.csv")
    with open(contacts_csv, "w") as f:
        f.write("First Name,Last Name,Email\n")
        for i in range(CONTACTS):
            f.write(f"First{i},Last{i % 3000},person{i}@example{i % 500}.com\n")
    _, contacts_s = run(env, "import", "contacts", contacts_csv, "--json")
    db = sqlite3.connect(path)
    ids = [r[0] for r in db.execute("SELECT id FROM contacts ORDER BY id")]
    users = [r[0] for r in db.execute("SELECT id FROM users WHERE email LIKE 'seller%' ORDER BY email")]
    db.close()
    million.log(f"{len(ids)} contacts in {contacts_s:.0f} s; writing {ACTIVITIES} activities")
    now = int(time.time() * 1000)
    lines = os.path.join(tmp, "activities.jsonl")
    with open(lines, "w") as f:
        for i in range(ACTIVITIES):
            kind, outcomes = rng.choice(KINDS)
            a = {"kind": kind, "subject": f"{kind} {i}", "outcome": rng.choice(outcomes),
                 "occurred_at": rfc3339(now - rng.randrange(120 * DAY_MS)),
                 "record": {"entity": "contact", "id": rng.choice(ids)}, "owner_id": rng.choice(users)}
            if i % 3 == 0:
                a["participant_ids"] = [rng.choice(ids)]
            f.write(json.dumps(a) + "\n")
    out, import_s = run(env, "import", "activities", lines, "--json")
    report = json.loads(out)
    if report.get("failed"):
        million.die(f"activities failed to import: {json.dumps(report)[:2000]}")
    million.log(f"{report['created']} activities imported in {import_s:.0f} s")
    key = json.loads(run(env, "keys", "create", "--name", "bench", "--role", "owner", "--json")[0])["key"]
    server, base, _ = million.start(db_url, os.path.join(tmp, "serve.log"))
    os.sched_setaffinity(0, {1})
    client = million.Client(base, key)

    def quiet(i):
        return "search_records", {"entity": "contact", "limit": 25, "fields": ["first_name", "last_activity_at"],
                                   "filters": [{"any": [
                                       {"field": "last_activity_at", "op": "lt", "value": rfc3339(now - 30 * DAY_MS)},
                                       {"field": "last_activity_at", "op": "is_null"}]}],
                                   "sort": [{"field": "last_activity_at", "direction": "asc"}]}

    def calls_per_person(i):
        return "count_records", {"entity": "activity", "group_by": "owner_id", "filters": [
            {"field": "kind", "op": "eq", "value": "call"}, {"field": "occurred_at", "op": "in_last_days", "value": 7}]}

    def per_kind(i):
        return "count_records", {"entity": "activity", "group_by": "kind",
                                 "filters": [{"field": "occurred_at", "op": "in_last_days", "value": 30}]}

    page, _ = client.call(*quiet(0))
    got = page["items"]
    if len(got) != 25 or any(c.get("last_activity_at", "") >= rfc3339(now - 30 * DAY_MS) for c in got):
        million.die(f"the quiet contacts are wrong: {json.dumps(page)[:1000]}")
    counted, _ = client.call(*calls_per_person(0))
    million.log(f"this week's calls per person: {counted}")
    results = {}
    for name, make in [("not contacted in 30 days, first page", quiet),
                       ("this week's calls per person", calls_per_person),
                       ("activities per kind, 30 days", per_kind)]:
        million.measure(client, make, samples=20)  # warm
        results[name] = million.measure(client, make, samples=SAMPLES)
    rss = million.peak_rss_mb(server)
    million.stop(server)
    print(f"\n{len(ids)} contacts, {report['created']} activities; contacts import {contacts_s:.0f} s, "
          f"activities import {import_s:.0f} s ({report['created'] / import_s:.0f}/s); server peak RSS {rss:.0f} MB\n")
    print("| query | n | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for name, s in results.items():
        print(f"| {name} | {s['n']} | {s['p50']:.1f} | {s['p99']:.1f} | {s['max']:.1f} |")


if __name__ == "__main__":
    main()
