# SPDX-License-Identifier: MIT
# Helpers for the quorum-queue tests (test_quorum.py, test_quorum_faults.py):
# a 3-node target (a warren cluster from cluster.py, or an external cluster
# such as RabbitMQ's), and the fault tests' clients: publishers with
# confirms and a consumer with manual acks, each a thread that moves to
# another node when its node dies, and the end-of-test check that nothing
# confirmed was lost, nothing unpublished appeared and order held.
import os
import threading
import time
import types
import urllib.parse

import pika
import pika.exceptions as pex

from cluster import attempt
from conftest import Http
from helpers import connect, wait_for

PERSISTENT = pika.BasicProperties(delivery_mode=2)
QUORUM = {"x-queue-type": "quorum"}
# Generous: a cluster on 2 loaded cores elects, restarts and catches up slowly.
DEADLINE = 30.0


def _addrs(value):
    out = []
    for item in value.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError("expected host:port,host:port,..., got %r" % value)
        out.append((host, int(port)))
    return out


class Target:
    """Three nodes to test against: AMQP addresses, management APIs (or None)
    and each node's name as the management API spells it."""

    def __init__(self, amqp, mgmt=None):
        self.amqp = amqp
        self.mgmt = mgmt
        self.names = [self._name(i) for i in range(len(amqp))] if mgmt else None
        c = self.connect(0)
        props = c._impl.server_properties
        c.close()
        self.product = _text(props.get("product"))
        self.version = _text(props.get("version"))

    @classmethod
    def from_env(cls):
        """The external cluster named by WARREN_CLUSTER_BROKERS (and its APIs by
        WARREN_CLUSTER_MANAGEMENT), or None."""
        v = os.environ.get("WARREN_CLUSTER_BROKERS")
        if not v:
            return None
        m = os.environ.get("WARREN_CLUSTER_MANAGEMENT")
        return cls(_addrs(v), _addrs(m) if m else None)

    @classmethod
    def from_cluster(cls, cluster):
        nodes = list(cluster.nodes.values())
        return cls([("127.0.0.1", n.amqp_port) for n in nodes], [("127.0.0.1", n.mgmt_port) for n in nodes])

    @property
    def rabbitmq3(self):
        """RabbitMQ before 4.0, whose quorum queues differ in documented ways."""
        return self.product == "RabbitMQ" and self.version.startswith("3.")

    def connect(self, i, **kw):
        return connect(self.amqp[i][0], self.amqp[i][1], **kw)

    def http(self, i):
        return Http(*self.mgmt[i])

    def _name(self, i):
        r = self.http(i).get("/api/overview")
        assert r.status == 200, r
        return r.json["node"]

    def queue_info(self, i, queue):
        r = self.http(i).get("/api/queues/%2F/" + urllib.parse.quote(queue, safe=""))
        return r.json if r.status == 200 else None

    def attempt(self, i, fn):
        """fn(channel) on a new connection to node i; the broker's close, or None."""
        return attempt(types.SimpleNamespace(connect=lambda: self.connect(i)), fn)

    def declare(self, queue, node=0, arguments=None, timeout=DEADLINE):
        """Declares a durable quorum queue on node (again while a warren
        cluster's metadata has no leader: 541) and waits until every node
        knows it."""
        args = dict(QUORUM, **(arguments or {}))

        def declared():
            e = self.attempt(node, lambda ch: ch.queue_declare(queue, durable=True, arguments=args))
            assert e is None or e.reply_code == 541, e
            return e is None
        wait_for(declared, timeout, "the declare of %s to commit" % queue)
        for i in range(len(self.amqp)):
            wait_for(lambda: self.attempt(i, lambda ch: ch.queue_declare(queue, passive=True)) is None,
                     timeout, "node %d to know queue %s" % (i, queue))

    def delete(self, queue, node=0, timeout=DEADLINE):
        """Deletes queue if it exists (again while a warren cluster's metadata
        has no leader: 541)."""
        def deleted():
            e = self.attempt(node, lambda ch: ch.queue_delete(queue))
            assert e is None or e.reply_code in (404, 541), e
            return e is None or e.reply_code == 404
        wait_for(deleted, timeout, "the delete of %s to commit" % queue)


def stop_cluster(c):
    """cluster.stop_all (SIGTERM, a clean exit asserted), and kill -9 for any
    node still running when it fails part way, so no warrend outlives the test."""
    try:
        c.stop_all()
    finally:
        for n in c.nodes.values():
            if n.alive():
                c.kill(n.name)


def _text(v):
    return v.decode() if isinstance(v, bytes) else (v or "")


# ---- the fault tests' clients ----

def body(pid, seq, size=64):
    b = b"p%d:%d:" % (pid, seq)
    return b + b"." * max(0, size - len(b))


def parse(b):
    """(publisher id, seq) from a body, or None when it is not one of ours."""
    try:
        p, s, _ = b.split(b":", 2)
        if not p.startswith(b"p"):
            return None
        return int(p[1:]), int(s)
    except ValueError:
        return None


CLIENT_ERRORS = (pex.AMQPError, OSError)


class Client(threading.Thread):
    """A client thread bound to the nodes ports() lists (a callable, so the
    test can change them); it starts on nodes[prefer] and moves on to the
    next one when its connection fails."""

    def __init__(self, ports, prefer, queue):
        super().__init__(daemon=True)
        self.ports = ports
        self.at = prefer
        self.queue = queue
        self.stopping = threading.Event()
        self.conn = None
        self.reconnects = 0
        self.errors = []  # the last few connection errors, for failure messages

    def _open(self):
        ports = self.ports()
        port = ports[self.at % len(ports)]
        return connect("127.0.0.1", port, heartbeat=2, socket_timeout=3, stack_timeout=10,
                       blocked_connection_timeout=60)

    def _drop(self, exc):
        self.errors = (self.errors + [repr(exc)])[-5:]
        if self.conn is not None:
            try:
                if self.conn.is_open:
                    self.conn.close()
            except CLIENT_ERRORS:
                pass
        self.conn = None
        self.at += 1
        self.reconnects += 1
        self.stopping.wait(0.1)  # back-off before dialling the next node

    def stop(self, timeout=DEADLINE):
        self.stopping.set()
        self.join(timeout)
        assert not self.is_alive(), "%s did not stop: %s" % (self.name, self.errors)


class Publisher(Client):
    """Publishes body(pid, seq) for seq = 1, 2, ... as persistent messages
    with confirms and mandatory, one at a time, up to the budget grant()
    allows. A nack, a return or a lost connection means the same seq is sent
    again (on another node for a lost connection): at least once. While it
    has nothing to send it keeps its connection's heartbeats going."""

    def __init__(self, ports, prefer, queue, pid):
        super().__init__(ports, prefer, queue)
        self.pid = pid
        self.name = "publisher-%d" % pid
        self.confirmed = 0  # every seq up to this one was confirmed
        self.sent = 0  # highest seq sent at least once
        self.resends = 0
        self.budget = 0
        self._lock = threading.Lock()

    def grant(self, n):
        with self._lock:
            self.budget += n

    def _next(self):
        """The next seq to send, or None when stopping."""
        while not self.stopping.is_set():
            with self._lock:
                if self.confirmed < self.budget:
                    return self.confirmed + 1
            if self.conn is None:
                self.stopping.wait(0.05)
            else:
                self.conn.process_data_events(time_limit=0.05)
        return None

    def run(self):
        ch = None
        while True:
            try:
                seq = self._next()
                if seq is None:
                    break
                if self.conn is None:
                    self.conn = self._open()
                    ch = self.conn.channel()
                    ch.confirm_delivery()
                self.sent = max(self.sent, seq)
                ch.basic_publish("", self.queue, body(self.pid, seq), PERSISTENT, mandatory=True)
                with self._lock:
                    self.confirmed = seq
            except (pex.NackError, pex.UnroutableError):
                self.resends += 1
                self.stopping.wait(0.05)
            except CLIENT_ERRORS as e:
                self.resends += 1
                self._drop(e)
        self._drop("stopped")

    def wait_confirmed(self, n, timeout=DEADLINE):
        wait_for(lambda: self.confirmed >= n, timeout,
                 "%s to have %d confirmed (has %d; resends %d; errors %s)"
                 % (self.name, n, self.confirmed, self.resends, self.errors))


class Consumer(Client):
    """A manual-ack consumer with prefetch; records every delivery as
    (pid, seq, redelivered) or the raw body when it is not one of ours, and
    acks it. A lost connection or a broker cancel means consuming again (on
    another node for a lost connection)."""

    def __init__(self, ports, prefer, queue, prefetch=20):
        super().__init__(ports, prefer, queue)
        self.name = "consumer"
        self.prefetch = prefetch
        self.deliveries = []
        self.cancelled = 0
        self._lock = threading.Lock()

    def _on_message(self, ch, method, props, b):
        with self._lock:
            self.deliveries.append((parse(b) or b, method.redelivered))
        ch.basic_ack(method.delivery_tag)

    def _on_cancel(self, frame):
        self.cancelled += 1
        self._active = False

    def _consume(self):
        if self.conn is None:
            self.conn = self._open()
        ch = self.conn.channel()
        ch.basic_qos(prefetch_count=self.prefetch)
        ch.add_on_cancel_callback(self._on_cancel)
        ch.basic_consume(self.queue, self._on_message)
        self._active = True

    def run(self):
        self._active = False
        while not self.stopping.is_set():
            try:
                if not self._active:
                    self._consume()
                self.conn.process_data_events(time_limit=0.1)
            except CLIENT_ERRORS as e:
                self._active = False
                self._drop(e)
        self._drop("stopped")

    def seen(self):
        with self._lock:
            return {d for d, _ in self.deliveries if isinstance(d, tuple)}

    def count(self):
        with self._lock:
            return len(self.deliveries)


def check_delivered(publishers, consumer):
    """The end-of-test invariants: lost = confirmed - consumed is empty, every
    delivery is a message some publisher sent, and each publisher's messages
    were first delivered in its order: among deliveries the broker did not
    flag redelivered (one to a consumer whose connection died before the
    client read it comes back flagged, and may come back late)."""
    sent = {p.pid: p.sent for p in publishers}
    last = {p.pid: 0 for p in publishers}
    seen = set()
    with consumer._lock:
        deliveries = list(consumer.deliveries)
    for d, redelivered in deliveries:
        assert isinstance(d, tuple) and d[0] in sent and 1 <= d[1] <= sent[d[0]], \
            "delivered a message never published: %r" % (d,)
        if d in seen or redelivered:
            seen.add(d)
            continue
        seen.add(d)
        assert d[1] > last[d[0]], "publisher %d: seq %d first delivered after seq %d" % (d[0], d[1], last[d[0]])
        last[d[0]] = d[1]
    lost = sorted((p.pid, s) for p in publishers for s in range(1, p.confirmed + 1) if (p.pid, s) not in seen)
    assert not lost, "%d confirmed messages lost, first %r" % (len(lost), lost[:10])
    return len(seen), len(deliveries)


def drain_and_check(publishers, consumer, queue_count, timeout=60.0):
    """Stops the publishers once every granted message is confirmed, waits
    until the consumer has every confirmed one and queue_count() (the ready
    count on a live node) is 0, stops it and checks; returns (distinct
    messages, deliveries)."""
    for p in publishers:
        p.wait_confirmed(p.budget, timeout)
        p.stop()
    want = {(p.pid, s) for p in publishers for s in range(1, p.confirmed + 1)}

    def drained():
        missing = want - consumer.seen()
        return not missing and queue_count() == 0
    try:
        wait_for(drained, timeout, "the consumer to get every confirmed message")
    except AssertionError:
        check_delivered(publishers, consumer)
        raise
    consumer.stop()
    return check_delivered(publishers, consumer)


def holds_for(cond, seconds, what):
    """Asserts that cond() stays true for `seconds` (checked every 50 ms):
    for what must not happen, where no event can end the wait sooner."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert cond(), what
        time.sleep(0.05)


def wait_progress(publishers, consumer, n, timeout=DEADLINE):
    """Waits until every publisher has n more confirmed and the consumer n
    more deliveries than now."""
    goal = [(p, p.confirmed + n) for p in publishers]
    got = consumer.count() + n
    for p, g in goal:
        p.wait_confirmed(g, timeout)
    wait_for(lambda: consumer.count() >= got, timeout,
             "the consumer to get %d more (has %d; cancelled %d times; reconnects %d; errors %s)"
             % (n, consumer.count(), consumer.cancelled, consumer.reconnects, consumer.errors))
