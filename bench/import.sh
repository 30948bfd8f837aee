#!/usr/bin/env bash
# A million contacts naming 100,000 companies, imported from CSV by the release binary into a
# fresh SQLite database (SPEC 13, issue 24): wall time and peak RSS (/usr/bin/time), then an
# import killed with SIGKILL halfway and run again, checked for no row lost or stored twice.
#
#   bash bench/import.sh [ROWS]        # default 1000000
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROWS="${1:-1000000}"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/rapport"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release)
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
python3 - "$ROWS" "$WORK/contacts.csv" <<'PY'
import csv, random, sys
rows, path = int(sys.argv[1]), sys.argv[2]
random.seed(7)
titles = ["CTO", "CEO", "Engineer", "Sales Manager", "Designer", "Intern", "VP Marketing", "Board Member"]
tags = ["lead", "customer", "vip", "churned", "partner", "investor"]
with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["First Name", "Last Name", "Email Address", "Company", "Phone Number", "Job Title", "Tags"])
    for i in range(rows):
        w.writerow([f"First{i}", f"Last{i % 5000}", f"person{i}@example{i % 1000}.com",
                    f"Company {random.randrange(max(rows // 10, 1))}", f"+1 555 {i:07d}",
                    random.choice(titles), ",".join(random.sample(tags, random.randrange(3)))])
PY
echo "file: $(du -h "$WORK/contacts.csv" | cut -f1), $ROWS rows"
export RAPPORT_DATABASE_URL="sqlite://$WORK/one.db" RAPPORT_LOG=warn
"$BIN" migrate > /dev/null
/usr/bin/time -f "%e s wall, %M KB peak RSS" "$BIN" import contacts "$WORK/contacts.csv" --json > "$WORK/report.json" 2> "$WORK/time.txt"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('import:', {k: r[k] for k in ['state','created','failed','companies_created']})" "$WORK/report.json"
echo "import: $(tail -1 "$WORK/time.txt")"

# Killed halfway, then the same command again.
export RAPPORT_DATABASE_URL="sqlite://$WORK/two.db"
"$BIN" migrate > /dev/null
"$BIN" import contacts "$WORK/contacts.csv" --match email > /dev/null 2>&1 &
PID=$!
while :; do
    DONE="$(sqlite3 "$WORK/two.db" "SELECT COALESCE(MAX(rows_done), 0) FROM imports" 2>/dev/null || echo 0)"
    [ "$DONE" -ge $((ROWS / 2)) ] && break
    sleep 0.2
done
kill -9 "$PID"; wait "$PID" 2>/dev/null || true
echo "killed at row $DONE"
"$BIN" import contacts "$WORK/contacts.csv" --match email --json > "$WORK/rerun.json"
sqlite3 "$WORK/two.db" "SELECT 'rerun: ' || COUNT(*) || ' contacts, ' || COUNT(DISTINCT email) || ' distinct emails, ' || (SELECT COUNT(*) FROM companies) || ' companies' FROM contacts"
