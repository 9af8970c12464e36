# SPDX-License-Identifier: MIT
# Crash safety of durable queues, against the real warrend: a publisher
# pipelines persistent messages in confirm mode (and, every other cycle, a
# consumer acks as it goes) while the broker is killed with SIGKILL at a
# random moment, then restarted on the same data_dir, 25 times. After each
# restart every confirmed message is there unless it was acked, every
# message is intact (each body carries its own checksum), none was nacked,
# and the queue still works. Small segments and a small memory budget put
# segment rolls, compaction, checkpoints and paging in the way of the kills.
# WARREN_CRASH_SEED=N replays a run; WARREN_CRASH_CYCLES=N runs longer
# (scripts/soak-crash).
import os
import random
import signal
import time

from durability import AckingConsumer, ConfirmPublisher, drain

CYCLES = int(os.environ.get("WARREN_CRASH_CYCLES", "25"))


def test_kill9_under_load_keeps_every_confirmed_message(dedicated_broker, name):
    seed = int(os.environ.get("WARREN_CRASH_SEED", time.time()))
    rng = random.Random(seed)
    b = dedicated_broker({"storage": {"segment_size": 262144, "queue_memory_budget": 131072}})
    q = name("crash")
    c = b.connect()
    c.channel().queue_declare(q, durable=True)
    c.close()
    acked = set()       # (tag, n) acked by a consumer: gone, or back after a crash
    confirmed_total = 0
    for cycle in range(CYCLES):
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
        confirmed_total += len(confirmed)
        assert not pub.nacked, what
        if consumer is not None:
            consumer.stop()
            acked |= consumer.acked
        c = b.connect()
        ch = c.channel()
        present = {(t, n) for t, n, r in drain(ch, q)}
        missing = sorted(n for n in confirmed if (tag, n) not in present | acked)
        assert not missing, "%s: %d confirmed messages lost, first %s" % (what, len(missing), missing[:10])
        ch.basic_publish("", q, b"probe")
        m, p, data = ch.basic_get(q, auto_ack=True)
        assert data == b"probe", what
        c.close()
    assert confirmed_total >= CYCLES
