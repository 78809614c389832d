"""Start-up's largest ledger read, ``Ledger.versions()``, on a copy of a filled ledger: in SQLite (the copy as
it is) and in PostgreSQL (its versions copied into a throw-away server, bench/engines.py).

    python bench/ledger_versions.py bench/out/q100k/ledger.sqlite3     # the 100k store of query_latency.py
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select  # noqa: E402

from bench.engines import new_database, postgres  # noqa: E402
from kb.ledger import Ledger  # noqa: E402
from kb.schema import versions  # noqa: E402


def timed(ledger: Ledger, runs: int) -> tuple[int, float, float]:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        count = len(ledger.versions())
        seconds.append(time.perf_counter() - started)
    return count, min(seconds), statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ledger", type=Path, help="a ledger.sqlite3 (copied, never written)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kb-bench-ledger-"))
    try:
        copy = work / "ledger.sqlite3"
        shutil.copy(args.ledger, copy)
        sqlite = Ledger(copy)  # migrated on open, as kb would
        count, best, median = timed(sqlite, args.runs)
        print(f"SQLite:     {count:,} versions in {best:.2f} s (min of {args.runs}; median {median:.2f} s)")
        with postgres() as server:
            pg = Ledger(new_database(server, "versions"))
            rows = [dict(r._mapping) for r in sqlite._rows(select(versions))]
            with pg._transaction() as db:
                for start in range(0, len(rows), 5000):
                    db.execute(insert(versions), rows[start : start + 5000])
            count, best, median = timed(pg, args.runs)
            print(f"PostgreSQL: {count:,} versions in {best:.2f} s (min of {args.runs}; median {median:.2f} s)")
            pg.close()
        sqlite.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
