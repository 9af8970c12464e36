# SPDX-License-Identifier: MIT
# Shared by test_durability.py and test_crash.py: self-checking message
# bodies, a publisher that pipelines persistent messages in confirm mode over
# a raw socket (pika's blocking client waits for each confirm), and a consumer
# that acks as it goes; both keep running until the broker goes away.
import hashlib
import threading
import time

import pika
import pika.exceptions as pex

import amqp_raw as raw

CONFIRM_SELECT = (85, 10)
CONFIRM_SELECT_OK = (85, 11)
BASIC_NACK = (60, 120)
DELIVERY_MODE = 1 << 12  # the property flag; the property is one octet


def body(tag, n, size):
    """Message n of run `tag`: "tag:n:" then `size` bytes derived from both."""
    head = b"%s:%d:" % (tag.encode(), n)
    seed = hashlib.sha256(head).digest()
    return head + (seed * (size // len(seed) + 1))[:size]


def check_body(b):
    """(tag, n) of a body made by body(), or AssertionError if it is damaged."""
    tag, n, rest = b.split(b":", 2)
    want = body(tag.decode(), int(n), len(rest))
    assert b == want, "message %r:%s is corrupt" % (tag, n)
    return tag.decode(), int(n)


class ConfirmPublisher:
    """Publishes persistent messages body(tag, n, size(n)) for n = 0, 1, ...
    to `queue` (through the default exchange) in confirm mode, keeping at
    most `window` unconfirmed. confirmed and nacked hold message numbers."""

    def __init__(self, host, port, queue, tag, size=lambda n: 100, window=500):
        self.conn = raw.RawConnection(host, port, timeout=5)
        self.queue = queue
        self.tag = tag
        self.size = size
        self.window = window
        self.sent = 0
        self.confirmed = set()
        self.nacked = set()
        self.ack_frames = 0
        self.error = None
        self.stopping = False
        self.cv = threading.Condition()
        self.conn.handshake()
        self.conn.open_channel(1)
        self.conn.send(raw.method_frame(1, CONFIRM_SELECT, [("b", False)]))
        self.conn.expect(CONFIRM_SELECT_OK, channel=1)
        self.frame_max = self.conn.negotiated[1]
        self.threads = [threading.Thread(target=self._send, daemon=True),
                        threading.Thread(target=self._read, daemon=True)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _publish_frames(self, n):
        b = body(self.tag, n, self.size(n))
        out = [raw.basic_publish(1, "", self.queue),
               raw.header_frame(1, len(b), flags=DELIVERY_MODE, props=b"\x02")]
        step = self.frame_max - 8
        for i in range(0, len(b), step):
            out.append(raw.body_frame(1, b[i:i + step]))
        return b"".join(out)

    def _send(self):
        try:
            while True:
                with self.cv:
                    while (not self.stopping and self.error is None
                           and self.sent - len(self.confirmed) - len(self.nacked) >= self.window):
                        self.cv.wait(1)
                    if self.stopping or self.error is not None:
                        return
                    n = self.sent
                    self.sent += 1
                self.conn.send(self._publish_frames(n))
        except OSError as e:
            self._fail(e)

    def _settle(self, tag, multiple, into):
        # Delivery tag t confirms message t - 1.
        with self.cv:
            first = tag if not multiple else 1
            for t in range(first, tag + 1):
                n = t - 1
                if n not in self.confirmed and n not in self.nacked:
                    into.add(n)
            self.cv.notify_all()

    def _read(self):
        try:
            while True:
                f = self.conn.read_method(timeout=3600)
                if f.method == raw.BASIC_ACK:
                    self.ack_frames += 1
                    self._settle(f.args[0], f.args[1], self.confirmed)
                elif f.method == BASIC_NACK:
                    self._settle(f.args[0], f.args[1], self.nacked)
                else:
                    raise AssertionError("unexpected %r" % f)
        except (raw.Closed, OSError, ValueError) as e:
            self._fail(e)

    def _fail(self, e):
        with self.cv:
            if self.error is None:
                self.error = e
            self.cv.notify_all()

    def wait_confirmed(self, n, timeout=10.0):
        """Waits until n messages are confirmed (or the connection fails)."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while len(self.confirmed) < n and self.error is None:
                left = deadline - time.monotonic()
                assert left > 0, "only %d of %d messages confirmed" % (len(self.confirmed), n)
                self.cv.wait(left)

    def stop(self):
        """Stops publishing and closes the socket; returns the confirmed set."""
        with self.cv:
            self.stopping = True
            self.cv.notify_all()
        self.conn.close()
        for t in self.threads:
            t.join(10)
        return set(self.confirmed)


class AckingConsumer(threading.Thread):
    """Consumes `queue` with manual acks on a connection of its own, acking
    each message as it checks it; `acked` holds (tag, n) of the messages it
    tried to ack. Ends when the broker goes away or stop() is called; a
    damaged body ends it too, and stop() then fails the test."""

    def __init__(self, params, queue, prefetch=50):
        super().__init__(daemon=True)
        self.params = params
        self.queue = queue
        self.prefetch = prefetch
        self.acked = set()
        self.ready = threading.Event()
        self.stopping = False
        self.error = None

    def run(self):
        try:
            conn = pika.BlockingConnection(self.params)
            ch = conn.channel()
            ch.basic_qos(prefetch_count=self.prefetch)
            self.ready.set()
            for m, p, b in ch.consume(self.queue, inactivity_timeout=0.05):
                if self.stopping:
                    break
                if m is None:
                    continue
                # Recorded first: the ack may reach the broker even when
                # sending it raises because the broker died right after.
                self.acked.add(check_body(b))
                ch.basic_ack(m.delivery_tag)
            conn.close()
        except (pex.AMQPError, OSError):
            pass
        except (AssertionError, ValueError) as e:
            self.error = e
        finally:
            self.ready.set()

    def stop(self):
        self.stopping = True
        self.join(10)
        assert self.error is None, self.error


def drain(ch, queue):
    """Consumes the messages ready in queue (acking them) and returns the
    [(tag, n, redelivered)] in delivery order; every body must check."""
    out = []
    count = ch.queue_declare(queue, passive=True).method.message_count
    if count == 0:
        return out
    ch.basic_qos(prefetch_count=500)
    for m, p, b in ch.consume(queue, inactivity_timeout=10):
        assert m is not None, "%d of %d messages delivered" % (len(out), count)
        tag, n = check_body(b)
        out.append((tag, n, m.redelivered))
        if len(out) == count or len(out) % 100 == 0:
            ch.basic_ack(m.delivery_tag, multiple=True)
        if len(out) == count:
            break
    ch.cancel()
    return out

