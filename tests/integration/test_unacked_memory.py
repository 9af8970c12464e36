# SPDX-License-Identifier: MIT
# Deliveries awaiting acknowledgement cost no body memory when their message
# is in the queue's log (docs/FLOW.md): a consumer with unlimited prefetch
# that never acks takes a paged backlog of 200 MiB from a durable queue with
# a 16 MiB memory budget, and the broker's RSS grows by far less than the
# backlog; acking everything then drains every message exactly once.
import os
import time

from helpers import wait_for

import pika

MiB = 1 << 20
BODY = 10 * 1024
COUNT = 20000  # 200 MiB
BUDGET = 16 * MiB
GROWTH_LIMIT = 80 * MiB


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def body(n):
    head = b"%d:" % n
    return head + b"x" * (BODY - len(head))


def test_unacked_paged_backlog_stays_bounded(dedicated_broker, name, monkeypatch):
    # Under ASan freed memory would sit in its quarantine: keep it small.
    monkeypatch.setenv("ASAN_OPTIONS", (os.environ.get("ASAN_OPTIONS", "")
                                        + ":quarantine_size_mb=4:allocator_release_to_os_interval_ms=50")
                       .lstrip(":"))
    b = dedicated_broker({"storage": {"queue_memory_budget": BUDGET}})
    pid = b.proc.pid
    q = name("unacked")
    conn = b.connect()
    ch = conn.channel()
    ch.queue_declare(q, durable=True)
    persistent = pika.BasicProperties(delivery_mode=2)
    for n in range(COUNT):
        ch.basic_publish("", q, body(n), persistent)
    wait_for(lambda: ch.queue_declare(q, passive=True).method.message_count == COUNT,
             timeout=120, what="the backlog queued")
    before = rss(pid)

    got, peak = {}, [before]

    def on_message(c, m, props, payload):
        n = int(payload.split(b":", 1)[0])
        got[n] = got.get(n, 0) + 1
        peak.append(rss(pid))
        peak[:] = [max(peak)]
        on_message.last_tag = m.delivery_tag

    cons = conn.channel()
    cons.basic_qos(prefetch_count=0)
    cons.basic_consume(q, on_message, auto_ack=False)
    t0 = time.monotonic()
    wait_for(lambda: len(got) == COUNT, timeout=180, what="every message delivered", conn=conn)
    growth = peak[0] - before
    print("unacked: %d MiB delivered unacked in %.1f s; RSS %.1f MiB before, growth %.1f MiB "
          "(budget %d MiB)" % (COUNT * BODY // MiB, time.monotonic() - t0, before / MiB,
                               growth / MiB, BUDGET // MiB))
    assert growth < GROWTH_LIMIT, "RSS grew by %.1f MiB" % (growth / MiB)

    # Closing the channel would requeue anything the ack missed.
    cons.basic_ack(on_message.last_tag, multiple=True)
    cons.close()
    assert ch.queue_declare(q, passive=True).method.message_count == 0
    assert sorted(got) == list(range(COUNT))
    assert set(got.values()) == {1}
    conn.close()
