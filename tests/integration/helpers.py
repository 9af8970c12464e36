# SPDX-License-Identifier: MIT
# Shared helpers for the integration tests: warrend's default test config,
# pika connection parameters, asserting broker-sent closes (code and text),
# waiting for a condition with a deadline.
import contextlib
import os
import random
import socket
import time

import pika
import pika.exceptions as pex


_free_ports_given = set()


def _port_range():
    """WARREN_TEST_PORTS=LO-HI: the only ports this process hands out. meson
    runs the suite as several pytest processes at once, each with its own
    range, so no two of them ever pick the same port; every range lies below
    Linux's ephemeral range (32768-60999), which outgoing connections take
    their local ports from. None when unset."""
    spec = os.environ.get("WARREN_TEST_PORTS")
    if not spec:
        return None
    lo, hi = (int(v) for v in spec.split("-"))
    return lo, hi


def port_free(port):
    """Whether a loopback port can be bound now."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _port_from_range(lo, hi):
    for port in range(lo, hi + 1):
        if port not in _free_ports_given and port_free(port):
            _free_ports_given.add(port)
            return port
    raise RuntimeError("no free port left in WARREN_TEST_PORTS=%d-%d" % (lo, hi))


def free_port():
    """A loopback port that was free a moment ago (bind to 0, read, close),
    never one this process was given before: two calls for one broker's
    listener and management port once returned the same port, and the
    broker refused its configuration. From WARREN_TEST_PORTS when set."""
    limits = _port_range()
    if limits:
        return _port_from_range(*limits)
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _free_ports_given:
            _free_ports_given.add(port)
            return port


def free_port_below_ephemeral():
    """A free loopback port below Linux's ephemeral range (32768-60999), for
    a port chosen before the process that listens on it starts while other
    processes dial out: an outgoing connection's local port (a cluster
    node dialling its peers) is never taken from below that range. From
    WARREN_TEST_PORTS when set."""
    limits = _port_range()
    if limits:
        return _port_from_range(*limits)
    for _ in range(200):
        port = random.randint(20000, 32000)
        if port_free(port):
            return port
    raise RuntimeError("no free port in 20000-32000")


def listening(port, host="127.0.0.1"):
    """Whether something accepts TCP connections on host:port."""
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def default_config(port):
    """warrend's config for the session broker: one loopback listener, the
    guest user on vhost "/"; limits stay at their defaults."""
    return {
        "listeners": [{"address": "127.0.0.1", "port": port}],
        "users": [{"name": "guest", "password": "guest", "vhosts": ["/"]}],
        "loopback_users": ["guest"],
        "vhosts": ["/"],
        "log": {"level": "info"},
    }


# How long a test waits for something the broker should do promptly.
DEADLINE = 10.0


def params(host, port, user="guest", password="guest", vhost="/", **kw):
    kw.setdefault("connection_attempts", 1)
    kw.setdefault("socket_timeout", 5)
    kw.setdefault("blocked_connection_timeout", 30)
    kw.setdefault("heartbeat", 0)
    return pika.ConnectionParameters(host=host, port=port, virtual_host=vhost,
                                     credentials=pika.PlainCredentials(user, password),
                                     **kw)


def connect(host, port, **kw):
    return pika.BlockingConnection(params(host, port, **kw))


def wait_for(cond, timeout=DEADLINE, what="condition", conn=None, step=0.02):
    """Polls cond() until truthy; with conn, keeps pumping its I/O meanwhile
    so callbacks run. Returns cond()'s value; fails the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        if conn is not None:
            conn.process_data_events(time_limit=step)
        else:
            time.sleep(step)


def _check(exc, code, text):
    assert exc.reply_code == code, "expected reply code %d, got %d (%r)" % (
        code, exc.reply_code, exc.reply_text)
    if text is not None:
        if callable(text):
            assert text(exc.reply_text), "unexpected reply text %r" % exc.reply_text
        elif text.endswith("*"):
            assert exc.reply_text.startswith(text[:-1]), \
                "expected reply text starting %r, got %r" % (text[:-1], exc.reply_text)
        else:
            assert exc.reply_text == text, \
                "expected reply text %r, got %r" % (text, exc.reply_text)


class _Box:
    exc = None


@contextlib.contextmanager
def channel_error(code, text=None):
    """Asserts that the block ends with the broker closing the channel with
    `code` and `text` (exact, or a prefix when text ends with '*', or a
    predicate)."""
    box = _Box()
    try:
        yield box
    except pex.ChannelClosedByBroker as e:
        box.exc = e
        _check(e, code, text)
        return
    raise AssertionError("expected channel close %d, but the block succeeded" % code)


@contextlib.contextmanager
def connection_error(code, text=None):
    """As channel_error, for connection.close sent by the broker."""
    box = _Box()
    try:
        yield box
    except pex.ConnectionClosedByBroker as e:
        box.exc = e
        _check(e, code, text)
        return
    raise AssertionError("expected connection close %d, but the block succeeded" % code)


def drain(ch, queue, limit=10000):
    """basic.get with auto-ack until get-empty; returns the bodies."""
    out = []
    for _ in range(limit):
        m, p, b = ch.basic_get(queue, auto_ack=True)
        if m is None:
            return out
        out.append(b)
    raise AssertionError("queue %s did not drain" % queue)


def get_one(ch, queue, timeout=DEADLINE):
    """basic.get (no auto-ack) until a message arrives; (method, props, body)."""
    box = []

    def got():
        m, p, b = ch.basic_get(queue)
        if m is not None:
            box.append((m, p, b))
        return bool(box)
    wait_for(got, timeout, "a message in %s" % queue)
    return box[0]


def queue_counts(ch, queue):
    """(message_count, consumer_count) from a passive declare."""
    ok = ch.queue_declare(queue, passive=True)
    return ok.method.message_count, ok.method.consumer_count


def wait_queue_count(ch, queue, expected, timeout=DEADLINE):
    """Waits until the queue holds exactly `expected` ready messages."""
    last = [None]

    def cond():
        last[0] = queue_counts(ch, queue)[0]
        return last[0] == expected
    try:
        wait_for(cond, timeout, "queue %s to hold %d messages" % (queue, expected))
    except AssertionError:
        raise AssertionError("queue %s holds %s messages, expected %d"
                             % (queue, last[0], expected))


class Collector:
    """A consumer callback that records deliveries in order."""

    def __init__(self, ack=False):
        self.ack = ack
        self.deliveries = []  # (method, properties, body)

    def __call__(self, ch, method, props, body):
        self.deliveries.append((method, props, body))
        if self.ack:
            ch.basic_ack(method.delivery_tag)

    @property
    def bodies(self):
        return [d[2] for d in self.deliveries]

    def wait(self, conn, n, timeout=DEADLINE):
        wait_for(lambda: len(self.deliveries) >= n, timeout,
                 "%d deliveries (have %d)" % (n, len(self.deliveries)), conn=conn)
        return self.deliveries


def assert_serves(broker):
    """The broker still accepts and serves a fresh, well-behaved client."""
    c = broker.connect()
    try:
        ch = c.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, b"still alive")
        m, _, body = ch.basic_get(q, auto_ack=True)
        assert body == b"still alive"
    finally:
        c.close()


def queue_exists(conn, queue):
    """Whether queue exists, without using it (a passive declare would renew
    its x-expires): a mandatory publish with confirms, on a channel of its
    own, comes back unroutable from a missing queue."""
    ch = conn.channel()
    ch.confirm_delivery()
    try:
        ch.basic_publish("", queue, b"probe", mandatory=True)
        return True
    except pex.UnroutableError:
        return False
    finally:
        ch.close()


def wait_queue_gone(conn, queue, timeout=DEADLINE):
    """Waits until a passive declare of `queue` gets 404 (each attempt on a
    fresh channel of conn); any other error fails the test."""
    def gone():
        ch = conn.channel()
        try:
            ch.queue_declare(queue, passive=True)
        except pex.ChannelClosedByBroker as e:
            assert e.reply_code == 404, "passive declare of %s: %r" % (queue, e)
            assert e.reply_text == "NOT_FOUND - no queue '%s' in vhost '/'" % queue
            return True
        ch.close()
        return False
    wait_for(gone, timeout, "queue %s to be deleted" % queue)
