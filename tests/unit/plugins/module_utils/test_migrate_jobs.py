"""Unit tests for tier_migrate's jobs (_migrate_jobs.py): batches, the outcome, the batch limit."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_jobs as m_jobs


def test_batches():
    jobs = [SimpleNamespace(size=s) for s in (5, 5, 5, 20, 1)]
    sizes = [[j.size for j in b] for b in m_jobs.batches(jobs, max_files=2, max_bytes=12)]
    assert sizes == [[5, 5], [5], [20], [1]]


def test_outcome_counts_from_two_threads():
    outcome = m_jobs.Outcome()
    job = SimpleNamespace(src=b"/s", dst=b"/d", size=1)

    def report():
        for _ in range(2000):
            outcome.ok(job)
            outcome.skip(job, "r")

    threads = [threading.Thread(target=report) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcome.done_count == outcome.skipped_count == outcome.skipped["r"] == 8000


@pytest.mark.parametrize(
    ("sizes", "batch_bytes", "limit"),
    [
        ([16 << 20] * 16, 256 << 20, 64 << 20),  # 256 MiB of logs: four batches, not one and a bit
        ([256 << 20] * 10 + [40 << 10] * 20000, 256 << 20, 256 << 20),  # a big run keeps the limit
        ([100] * 5, 256 << 20, 16 << 20),  # a small run stays one batch
        ([64 << 20] * 2, 32 << 20, 32 << 20),  # never above batch_bytes
    ],
)
def test_batch_limit_cuts_a_small_run_in_about_four(sizes, batch_bytes, limit):
    jobs = [SimpleNamespace(size=size) for size in sizes]
    assert m_jobs.batch_limit(jobs, batch_bytes) == limit
