# SPDX-License-Identifier: MIT
# Runs docs/examples/retry_backoff.py (the retry-with-backoff pattern of
# docs/QUEUES.md) against the broker under test: the job must come back once
# per delay queue, each time after at least that queue's TTL, with the
# retry count and the delay queues visible in x-death.
import json
import os
import subprocess
import sys

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "examples",
                      "retry_backoff.py")
DELAYS = [50, 150, 400]


def test_retry_backoff_example(broker):
    out = subprocess.run([sys.executable, SCRIPT, broker.addr, "--delays", ",".join(map(str, DELAYS))],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    prefix = report["prefix"]
    assert [(a["retries"], a["routing_key"]) for a in report["attempts"]] == \
        [(0, "job"), (1, "job.r1"), (2, "job.r2"), (3, "job.r3")]
    # Each wait lasts at least its queue's TTL (a millisecond of timer
    # rounding allowed), so the delays grow.
    gaps = report["delays_ms"]
    assert len(gaps) == 3
    for gap, ttl in zip(gaps, DELAYS):
        assert gap >= ttl - 2, (gaps, DELAYS)
    deaths = [(d["queue"], d["reason"], d["count"]) for d in report["x-death"]]
    assert sorted(deaths) == sorted([(prefix + ".jobs", "rejected", 3), (prefix + ".delay.1", "expired", 1),
                                     (prefix + ".delay.2", "expired", 1), (prefix + ".delay.3", "expired", 1)])
    # The most recent death first: the last delay queue.
    assert deaths[0] == (prefix + ".delay.3", "expired", 1)
    for d in report["x-death"]:
        assert d["exchange"] == (prefix + ".retry" if d["reason"] == "expired" else prefix + ".work")
