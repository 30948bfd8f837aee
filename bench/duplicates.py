#!/usr/bin/env python3
"""find_duplicates at a million contacts (SPEC 5), on SQLite.

    python3 bench/duplicates.py

Builds the release binary, seeds 100,000 companies and 1,000,000 contacts through MCP (100 a
call, two client threads) with 1% planted duplicates (every hundredth contact repeats one
seeded just before it: a third by email in other letter case, a third by phone number in
another notation, a third by a misspelt first name at the same company), then through MCP,
one request at a time:

- the first page of contact groups (limit 100), five times;
- the whole walk, following `next_cursor` to the end (limit 100);
- how many planted pairs the walk found, and how many groups it gave in all;
- the server's peak RSS.

Targets (issue 23): first page under 2 s, whole walk under 60 s. Writes
docs/benchmarks-duplicates.md. Not run in CI. Every request goes to 127.0.0.1; the script
stops by itself and kills its server on exit. Knobs: BENCH_CONTACTS (1000000),
BENCH_COMPANIES (100000), BENCH_SKIP_BUILD, BENCH_KEEP (a directory: keep the seeded SQLite
file there and reuse it).
"""

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import million  # noqa: E402  (servers, the MCP client and the data generators)

from million import Client, die, log, peak_rss_mb, start, stop  # noqa: E402

CONTACTS = million.CONTACTS
COMPANIES = million.COMPANIES
FIRST_PAGE_TARGET_S = 2.0
WALK_TARGET_S = 60.0


def misspelt(name):
    """One letter gone from the middle of a name: Kelber -> Kelbr."""
    return name[: len(name) // 2] + name[len(name) // 2 + 1:] if len(name) > 3 else name + "e"


def batch(start_at, total, company_ids):
    """Contacts start_at.. (100 at most), every hundredth a duplicate of the one 50 before it."""
    out = []
    planted = []
    for i in range(start_at, min(start_at + 100, total)):
        c = million.contact(i, company_ids)
        c["phone"] = f"+1 555 {i:07d}"
        if i % 100 == 99:
            twin = out[i - start_at - 50]
            kind = (i // 100) % 3
            if kind == 0:
                c["email"] = twin["email"].upper()
            elif kind == 1:
                c["phone"] = "001-555-" + twin["phone"].rsplit(" ", 1)[1]
            else:
                c["first_name"], c["last_name"] = misspelt(twin["first_name"]), twin["last_name"]
                if "company_id" in twin:
                    c["company_id"] = twin["company_id"]
                else:
                    c.pop("company_id", None)
            planted.append((i - 50, i, kind))
        out.append(c)
    return out, planted


def seed(base, key):
    """Seeds companies and contacts; answers the planted pairs as (id, id, kind)."""
    lock = threading.Lock()
    company_ids = []
    pairs = []
    errors = []

    def companies(mine):
        client = Client(base, key)
        for s in mine:
            with lock:
                items = [million.company(i) for i in range(s, min(s + 100, COMPANIES))]
            got, _ = client.call("create_companies", {"companies": items})
            with lock:
                company_ids.extend(it["id"] for it in got["items"])

    def contacts(mine):
        client = Client(base, key)
        for s in mine:
            with lock:
                items, planted = batch(s, CONTACTS, company_ids)
            got, _ = client.call("create_contacts", {"contacts": items})
            ids = [it["id"] for it in got["items"]]
            with lock:
                pairs.extend((ids[a - s], ids[b - s], kind) for a, b, kind in planted)

    for name, work, total in [("companies", companies, COMPANIES), ("contacts", contacts, CONTACTS)]:
        t0 = time.time()
        batches = list(range(0, total, 100))

        def guarded(mine, work=work):
            try:
                work(mine)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=guarded, args=(batches[k::2],)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            die(f"seeding {name} failed: {errors[0]}")
        log(f"seeded {total} {name} in {time.time() - t0:.0f} s")
    return pairs


def main():
    if not os.environ.get("BENCH_SKIP_BUILD"):
        log("building the release binary")
        subprocess.run(["cargo", "build", "--release", "--bin", "rapport"], cwd=million.ROOT, check=True)
    keep = os.environ.get("BENCH_KEEP")
    work = keep or tempfile.mkdtemp(prefix="rapport-duplicates-")
    os.makedirs(work, exist_ok=True)
    db = os.path.join(work, "rapport.db")
    pairs_file = os.path.join(work, "planted.tsv")
    db_url = f"sqlite://{db}"
    fresh = not (keep and os.path.exists(pairs_file))
    if fresh and os.path.exists(db):
        os.remove(db)
    key = subprocess.run([million.RAPPORT, "keys", "create", "--name", "bench", "--role", "owner", "--json"],
                         env=million.env_for(db_url), capture_output=True, text=True, check=True).stdout
    key = __import__("json").loads(key)["key"]
    server, base, _ = start(db_url, os.path.join(work, "serve.log"))
    if fresh:
        pairs = seed(base, key)
        with open(pairs_file, "w") as f:
            f.writelines(f"{a}\t{b}\t{k}\n" for a, b, k in pairs)
    else:
        pairs = [tuple(line.split("\t")[:2]) + (int(line.split("\t")[2]),) for line in open(pairs_file)]
        log(f"reusing {db} with {len(pairs)} planted pairs")
    client = Client(base, key)

    firsts = []
    for _ in range(5):
        page, ms = client.call("find_duplicates", {"entity": "contact", "limit": 100})
        firsts.append(ms / 1000)
    log(f"first page: {len(page['groups'])} groups, median {statistics.median(firsts):.3f} s")

    t0 = time.perf_counter()
    groups = []
    cursor = None
    pages = 0
    slowest = 0.0
    while True:
        page, ms = client.call("find_duplicates", {"entity": "contact", "limit": 100, "cursor": cursor})
        pages += 1
        slowest = max(slowest, ms / 1000)
        groups.extend(page["groups"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    walk = time.perf_counter() - t0
    rss = peak_rss_mb(server)
    stop(server)
    found = {frozenset(g["ids"]) for g in groups}
    in_groups = [set(g["ids"]) for g in groups]
    hit = {0: 0, 1: 0, 2: 0}
    for a, b, kind in pairs:
        if any(a in g and b in g for g in in_groups if len(g) <= 3) or frozenset((a, b)) in found:
            hit[kind] += 1
    planted = {k: sum(1 for *_, kind in pairs if kind == k) for k in hit}
    recall = sum(hit.values()) / max(1, len(pairs))
    log(f"walk: {pages} pages, {len(groups)} groups in {walk:.1f} s (slowest page {slowest:.2f} s); "
        f"found {sum(hit.values())} of {len(pairs)} planted pairs; peak RSS {rss:.0f} MB")

    ok_first = statistics.median(firsts) < FIRST_PAGE_TARGET_S
    ok_walk = walk < WALK_TARGET_S
    mark = lambda ok: "met" if ok else "**missed**"  # noqa: E731
    report = f"""# find_duplicates at a million contacts (SQLite)

Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with `python3 bench/duplicates.py` (release
build, server on core 0, one client on core 1, 127.0.0.1): {COMPANIES:,} companies and {CONTACTS:,}
contacts seeded through MCP, 1% of the contacts planted as duplicates of one seeded just before
(a third by email in other letter case, a third by phone in another notation, a third by a
misspelt first name at the same company).

| | figure | target |
|---|---:|---|
| first page of groups (limit 100), median of 5 | {statistics.median(firsts):.3f} s | under {FIRST_PAGE_TARGET_S:.0f} s: {mark(ok_first)} |
| whole walk ({pages} pages of 100) | {walk:.1f} s | under {WALK_TARGET_S:.0f} s: {mark(ok_walk)} |
| slowest page | {slowest:.2f} s | |
| groups found | {len(groups):,} | |
| planted pairs found: same email | {hit[0]:,} of {planted[0]:,} | |
| planted pairs found: same phone | {hit[1]:,} of {planted[1]:,} | |
| planted pairs found: similar name at the same company | {hit[2]:,} of {planted[2]:,} | |
| server peak RSS | {rss:.0f} MB | |

Recall {recall:.1%}. The groups beyond the planted ones are names that happen to be alike at
one company among the random ones (the same last name and a first name close enough).
"""
    out = os.path.join(million.ROOT, "docs", "benchmarks-duplicates.md")
    with open(out, "w") as f:
        f.write(report)
    print(report)
    if not (ok_first and ok_walk):
        sys.exit(1)


if __name__ == "__main__":
    main()
