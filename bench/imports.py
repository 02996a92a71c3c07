"""
CSV import of customers: customers_import reading a file as the API does, against
PostgreSQL's COPY of the same file into a bare table (the best a DBA would do).
"""

import csv
import time
from pathlib import Path


def csv_write(path: Path, *, count: int) -> Path:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "name", "locale", "external_id", "plan", "seats"])
        for i in range(count):
            writer.writerow(
                [
                    f"import{i}@bench.example.com",
                    f"Customer {i}",
                    "ko" if i % 5 == 0 else "en",
                    f"imp-{i}",
                    "pro" if i % 2 else "basic",
                    i % 50,
                ]
            )
    return path


def _peak_rss_kb(*, reset: bool = False) -> int:
    """The process's peak resident memory (VmHWM) in kB; reset first if asked
    (Linux: writing 5 to clear_refs restarts the high-water mark)."""
    if reset:
        Path("/proc/self/clear_refs").write_text("5")
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def service_import(path: Path):
    """
    Returns (seconds, result, the process's resident memory before, and its peak
    during the import, in kB). Memory is the kernel's high-water mark, restarted
    before the import: tracing Python's allocations instead would slow the import
    it measures several times over.
    """
    from cxm.customers.csvfiles import CSVRows
    from cxm.customers.services import CUSTOMER_COLUMNS, customers_import

    before = _peak_rss_kb(reset=True)
    started = time.monotonic()
    with path.open("rb") as binary:
        rows = CSVRows(binary, known=set(CUSTOMER_COLUMNS), required={"email"})
        result = customers_import(rows=rows)
        rows.detach()
    seconds = time.monotonic() - started
    return seconds, result, before, _peak_rss_kb()


def copy_import(path: Path) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_customer_copy (email text, name text, "
            "locale text, external_id text, plan text, seats int)"
        )
        started = time.monotonic()
        with path.open("rb") as binary:
            with cursor.copy(
                "COPY bench_customer_copy FROM STDIN WITH (FORMAT csv, HEADER true)"
            ) as copy:
                while chunk := binary.read(1 << 16):
                    copy.write(chunk)
        return time.monotonic() - started
