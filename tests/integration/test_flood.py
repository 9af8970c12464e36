# SPDX-License-Identifier: MIT
# The flood test of docs/FLOW.md: publishers in confirm mode publish as fast
# as they can into a queue nobody consumes, on a broker with an absolute
# memory high watermark of 128 MiB and a queue memory budget large enough
# that paging alone would not keep memory down. The memory alarm blocks them
# (connection.blocked "low on memory"), the broker's peak RSS (VmHWM) stays
# bounded, consumers started afterwards drain the queue, which clears the
# alarm (connection.unblocked), the publishers finish, and every confirmed
# message is consumed exactly once.
import os
import threading
import time

import amqp_raw as raw
from helpers import params, wait_for

import pika

MiB = 1 << 20
WATERMARK = 128 * MiB
# The alarm is sampled every 100 ms and each blocked publisher may still have
# one message in flight: the peak may pass the watermark by what arrives
# between two samples plus the broker's buffers.
PEAK_MARGIN = 64 * MiB
PUBLISHERS = 4
BODY = 16 * 1024
# 4 x 3200 x 16 KiB = 200 MiB: well past the watermark.
PER_PUBLISHER = 3200
WINDOW = 4000  # unconfirmed messages per publisher: they are not what limits it

CONFIRM_SELECT = (85, 10)
CONFIRM_SELECT_OK = (85, 11)
CONNECTION_BLOCKED = (10, 60)
CONNECTION_UNBLOCKED = (10, 61)


def body(p, n):
    head = b"%d:%d:" % (p, n)
    return head + b"x" * (BODY - len(head))


class Publisher:
    """Publishes PER_PUBLISHER messages (transient, confirm mode) over a raw
    socket that advertises connection.blocked, pipelining up to WINDOW; a
    reader thread records confirms and blocked/unblocked, in order."""

    def __init__(self, b, queue, p):
        self.p = p
        self.queue = queue
        self.conn = raw.RawConnection(b.host, b.port, timeout=30)
        self.conn.handshake(client_properties={
            "product": "flood", "capabilities": {"connection.blocked": True,
                                                 "authentication_failure_close": True}})
        self.conn.open_channel(1)
        self.conn.send(raw.method_frame(1, CONFIRM_SELECT, [("b", False)]))
        self.conn.expect(CONFIRM_SELECT_OK, channel=1)
        self.confirmed = 0  # delivery tags 1..confirmed are acked (in order, single channel)
        self.events = []
        self.sent = 0
        self.error = None
        self.cv = threading.Condition()
        self.threads = [threading.Thread(target=self._send, daemon=True),
                        threading.Thread(target=self._read, daemon=True)]

    def start(self):
        for t in self.threads:
            t.start()

    def _send(self):
        try:
            for n in range(PER_PUBLISHER):
                with self.cv:
                    while self.sent - self.confirmed >= WINDOW and self.error is None:
                        self.cv.wait(1)
                b = body(self.p, n)
                self.conn.send(raw.basic_publish(1, "", self.queue) + raw.header_frame(1, len(b))
                               + raw.body_frame(1, b))
                with self.cv:
                    self.sent += 1
        except OSError as e:
            self.error = e

    def _read(self):
        try:
            while self.confirmed < PER_PUBLISHER:
                f = self.conn.read_method(timeout=60)
                with self.cv:
                    if f.method == raw.BASIC_ACK:
                        tag, multiple = f.args[0], f.args[1]
                        assert multiple or tag == self.confirmed + 1, f
                        self.confirmed = tag
                    elif f.method in (CONNECTION_BLOCKED, CONNECTION_UNBLOCKED):
                        self.events.append((f.method, f.args[0] if f.args else None))
                    else:
                        raise AssertionError("unexpected %r" % (f,))
                    self.cv.notify_all()
        except (raw.Closed, OSError, ValueError, AssertionError) as e:
            with self.cv:
                self.error = e
                self.cv.notify_all()

    def blocked(self):
        return any(m == CONNECTION_BLOCKED for m, _ in self.events)

    def join(self):
        for t in self.threads:
            t.join(30)
        self.conn.close()


class Consumer(threading.Thread):
    """Consumes with manual acks (prefetch 200) until stopped; records the
    (publisher, n) of every delivery."""

    def __init__(self, b, queue):
        super().__init__(daemon=True)
        self.params = params(b.host, b.port)
        self.queue = queue
        self.got = []
        self.stopping = False
        self.error = None

    def run(self):
        try:
            conn = pika.BlockingConnection(self.params)
            ch = conn.channel()
            ch.basic_qos(prefetch_count=200)
            for m, _, b in ch.consume(self.queue, inactivity_timeout=0.05):
                if self.stopping:
                    break
                if m is None:
                    continue
                p, n, _ = b.split(b":", 2)
                self.got.append((int(p), int(n)))
                ch.basic_ack(m.delivery_tag)
            conn.close()
        except Exception as e:  # reported by the test
            self.error = e


def status(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no %s" % field)


def test_flood_is_bounded_by_the_memory_alarm(dedicated_broker, name, monkeypatch):
    # Under ASan, freed memory sits in its quarantine and its allocator's
    # free lists, so the RSS would not fall as the queue drains: keep the
    # quarantine small and have free pages handed back promptly.
    monkeypatch.setenv("ASAN_OPTIONS", (os.environ.get("ASAN_OPTIONS", "")
                                        + ":quarantine_size_mb=4:allocator_release_to_os_interval_ms=50")
                       .lstrip(":"))
    b = dedicated_broker({"memory_high_watermark": {"absolute": WATERMARK},
                          "storage": {"queue_memory_budget": 1 << 30}})
    pid = b.proc.pid
    q = name("flood")
    c = b.connect()
    c.channel().queue_declare(q)
    c.close()
    t0 = time.monotonic()
    pubs = [Publisher(b, q, p) for p in range(PUBLISHERS)]
    for p in pubs:
        p.start()
    # Nobody consumes: every publisher ends up blocked, short of its total.
    wait_for(lambda: all(p.blocked() or p.error for p in pubs), timeout=20,
             what="every publisher blocked")
    assert [p.error for p in pubs] == [None] * PUBLISHERS
    assert all(p.events[0] == (CONNECTION_BLOCKED, "low on memory") for p in pubs), \
        [p.events for p in pubs]
    confirmed_when_blocked = sum(p.confirmed for p in pubs)
    assert confirmed_when_blocked < PUBLISHERS * PER_PUBLISHER
    assert "memory resource limit alarm set on node" in b.log()

    consumers = [Consumer(b, q) for _ in range(2)]
    for cons in consumers:
        cons.start()
    wait_for(lambda: all(p.confirmed == PER_PUBLISHER or p.error for p in pubs), timeout=30,
             what="every publisher confirmed")
    assert [p.error for p in pubs] == [None] * PUBLISHERS
    for p in pubs:
        assert (CONNECTION_UNBLOCKED, None) in p.events, p.events
    total = PUBLISHERS * PER_PUBLISHER
    wait_for(lambda: sum(len(cons.got) for cons in consumers) >= total, timeout=30,
             what="every message consumed")
    for cons in consumers:
        cons.stopping = True
        cons.join(10)
        assert cons.error is None, cons.error
    got = [m for cons in consumers for m in cons.got]
    assert len(got) == total and set(got) == {(p, n) for p in range(PUBLISHERS)
                                               for n in range(PER_PUBLISHER)}
    peak = status(pid, "VmHWM")
    print("flood: %d MiB published in %.1f s; %d messages confirmed when all were blocked; "
          "peak RSS %.1f MiB (watermark %d MiB); events %s"
          % (total * BODY // MiB, time.monotonic() - t0, confirmed_when_blocked, peak / MiB,
             WATERMARK // MiB, [len(p.events) for p in pubs]))
    assert peak < WATERMARK + PEAK_MARGIN, "peak RSS %.1f MiB" % (peak / MiB)
    assert "memory resource limit alarm cleared on node" in b.log()
    for p in pubs:
        p.join()
