# SPDX-License-Identifier: MIT
# Crash safety of durable queues, against the real warrend: a publisher
# pipelines persistent messages in confirm mode (and, every other cycle, a
# consumer acks as it goes) while the broker is killed with SIGKILL at a
# random moment, then restarted on the same data_dir, 25 times. After each
# restart every confirmed message is there unless it was acked, every
# message is intact (each body carries its own checksum), none was nacked,
# the broker's log reports no unreadable record, and the queue still works.
# Small segments and a small memory budget put segment rolls, compaction,
# checkpoints and paging in the way of the kills.
# WARREN_CRASH_SEED=N replays a run; WARREN_CRASH_CYCLES=N runs longer,
# WARREN_CRASH_MINUTES=M runs for M minutes instead, WARREN_CRASH_SEGMENT=B
# sets the segment size, and WARREN_CRASH_SUMMARY=PATH writes the figures
# (cycles, confirmed, consumed, lost, corrupt) there as JSON, also on a
# failure (scripts/soak-crash).
import json
import os
import random
import re
import signal
import time

from durability import AckingConsumer, ConfirmPublisher, drain

CYCLES = int(os.environ.get("WARREN_CRASH_CYCLES", "25"))
MINUTES = float(os.environ.get("WARREN_CRASH_MINUTES", "0"))
SEGMENT = int(os.environ.get("WARREN_CRASH_SEGMENT", "262144"))
# Torn tails are what a kill leaves; these are damage to what was stored.
DAMAGE = re.compile(r"cannot (be )?read back|record\(s\) lost there|has a corrupt header")


def _more(cycle, deadline):
    return time.monotonic() < deadline if MINUTES > 0 else cycle < CYCLES


def _summary(stats):
    path = os.environ.get("WARREN_CRASH_SUMMARY")
    if path:
        with open(path, "w") as f:
            json.dump(stats, f)


def _cycle(dedicated_broker, b, q, rng, cycle, seed, acked, stats):
    """One publish (and consume) run, a kill, a restart and the check; returns the new broker."""
    what = "seed %d, cycle %d" % (seed, cycle)
    tag = "c%d" % cycle
    pub = ConfirmPublisher(b.host, b.port, q, tag, size=lambda n: (n * 7919) % 3000,
                           window=rng.choice([10, 100, 1000])).start()
    consumer = None
    if cycle % 2:
        consumer = AckingConsumer(b.params(), q, prefetch=rng.choice([1, 50, 500]))
        consumer.start()
        assert consumer.ready.wait(10), what
    # The kill lands right after a random confirm, with more in flight.
    pub.wait_confirmed(rng.randint(1, 3000), timeout=30)
    b = dedicated_broker.restart(b, signal.SIGKILL)
    confirmed = pub.stop()
    stats["confirmed"] += len(confirmed)
    assert not pub.nacked, what
    if consumer is not None:
        consumer.stop()
        acked |= consumer.acked
        stats["consumed"] += len(consumer.acked)
    c = b.connect()
    ch = c.channel()
    try:
        drained = drain(ch, q)
    except AssertionError as e:
        if "corrupt" in str(e):
            stats["corrupt"] += 1
        raise
    stats["consumed"] += len(drained)
    present = {(t, n) for t, n, r in drained}
    missing = sorted(n for n in confirmed if (tag, n) not in present | acked)
    stats["lost"] += len(missing)
    assert not missing, "%s: %d confirmed messages lost, first %s" % (what, len(missing), missing[:10])
    ch.basic_publish("", q, b"probe")
    m, p, data = ch.basic_get(q, auto_ack=True)
    assert data == b"probe", what
    c.close()
    return b


def test_kill9_under_load_keeps_every_confirmed_message(dedicated_broker, name):
    seed = int(os.environ.get("WARREN_CRASH_SEED", time.time()))
    rng = random.Random(seed)
    deadline = time.monotonic() + MINUTES * 60
    b = dedicated_broker({"storage": {"segment_size": SEGMENT, "queue_memory_budget": 131072}})
    q = name("crash")
    c = b.connect()
    c.channel().queue_declare(q, durable=True)
    c.close()
    acked = set()  # (tag, n) acked by a consumer: gone, or back after a crash
    stats = {"seed": seed, "cycles": 0, "confirmed": 0, "consumed": 0, "lost": 0, "corrupt": 0}
    try:
        while _more(stats["cycles"], deadline):
            b = _cycle(dedicated_broker, b, q, rng, stats["cycles"], seed, acked, stats)
            stats["cycles"] += 1
    finally:
        damage = [line for line in b.log().splitlines() if DAMAGE.search(line)]
        stats["corrupt"] += len(damage)
        _summary(stats)
    assert not damage, "seed %d: the broker reported damage:\n%s" % (seed, "\n".join(damage[:20]))
    assert stats["confirmed"] >= stats["cycles"]
