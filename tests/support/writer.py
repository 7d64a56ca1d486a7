#!/usr/bin/env python3
"""A real application writer for lifeboat's consistency tests and benchmark.

Keeps committing small transactions to a SQLite database until the stop file
appears, preserving two invariants that a torn copy would break:
  * the sum of accounts.balance never changes (transfers between accounts);
  * ledger holds exactly meta.transfers rows (each transfer inserts one).

Usage: writer.py DB STOP_FILE [--interval-ms N]
Prints one JSON object with commit latency statistics (milliseconds) and the
errors it saw, then exits 0 (1 if any transaction failed).
"""
import json, os, random, sqlite3, sys, time

def main():
    db, stop = sys.argv[1], sys.argv[2]
    interval = 0.002
    if "--interval-ms" in sys.argv:
        interval = float(sys.argv[sys.argv.index("--interval-ms") + 1]) / 1000
    conn = sqlite3.connect(db, timeout=30, isolation_level=None)
    n_accounts = conn.execute("SELECT count(*) FROM accounts").fetchone()[0]
    rng = random.Random(7)
    waits, errors, commits = [], [], 0
    ready = stop + ".ready"
    open(ready, "w").close()
    while not os.path.exists(stop):
        a, b = rng.randrange(n_accounts), rng.randrange(n_accounts)
        amount = rng.randrange(1, 100)
        t0 = time.monotonic()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE accounts SET balance = balance - ? WHERE id = ?", (amount, a))
            conn.execute("UPDATE accounts SET balance = balance + ? WHERE id = ?", (amount, b))
            conn.execute("INSERT INTO ledger(src, dst, amount, note) VALUES (?, ?, ?, ?)",
                         (a, b, amount, "transfer %d" % commits))
            conn.execute("UPDATE meta SET transfers = transfers + 1")
            conn.execute("COMMIT")
            commits += 1
        except Exception as e:  # recorded, and fails the run
            errors.append(str(e))
            try:
                conn.execute("ROLLBACK")
            except Exception:
                pass
        waits.append((time.monotonic() - t0) * 1000)
        time.sleep(interval)
    waits.sort()
    pct = lambda p: waits[min(len(waits) - 1, int(p * len(waits)))] if waits else 0.0
    print(json.dumps({"commits": commits, "errors": errors[:5], "error_count": len(errors),
                      "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": waits[-1] if waits else 0.0}))
    sys.exit(1 if errors else 0)

if __name__ == "__main__":
    main()
