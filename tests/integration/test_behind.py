# SPDX-License-Identifier: MIT
# A connection that publishes into a queue whose consumers are behind (at
# least 10,000 messages ready, broker/queue/queue.h WR_QUEUE_BEHIND) is read
# after the acks and deliveries that let them catch up (base/loop.h,
# WR_PRIO_BEHIND). That order must never become a hold: with the loop idle
# such a publisher is read at once (its consumer here never acks, so a
# credit that waited for the backlog would never confirm), and with the loop
# kept busy by another connection's flood it still gets a read every
# BEHIND_WAIT_MS (20 ms, broker/amqp/conn.c) instead of waiting out the flood.
# The management API shows such a publisher in "flow", as RabbitMQ shows a
# connection its credit flow holds, and the consumer "running". A publisher
# over TLS, whose reads go through the bufferevent, is ordered the same way.
import socket
import threading
import time

import amqp_raw as raw
from conftest import Http
from helpers import free_port, params, wait_for
from test_tls import certs  # noqa: F401 (the fixture, for the TLS case)
from test_tls import tls_config, tls_params

import pika
import pytest

BEHIND = 10000
CONFIRMS = 20
FLOOD_BODY = b"f" * 64


class Flooder:
    """Publishes to `queue` as fast as the broker reads, over a raw socket
    (no confirms, nothing to read back), until stopped."""

    def __init__(self, b, queue):
        self.conn = raw.RawConnection(b.host, b.port, timeout=30)
        self.conn.handshake()
        self.conn.open_channel(1)
        one = raw.basic_publish(1, "", queue) + raw.header_frame(1, len(FLOOD_BODY)) + raw.body_frame(1, FLOOD_BODY)
        self.chunk = one * 1000
        self.sent = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            while not self.stopped.is_set():
                self.conn.sock.sendall(self.chunk)
                self.sent += len(self.chunk)
        except OSError:
            pass

    def start(self):
        self.thread.start()

    def stop(self):
        self.stopped.set()
        self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.thread.join(30)
        self.conn.sock.close()


def confirmed_publishes(ch, queue, n):
    """Seconds that n publishes, each waiting for its confirm, take."""
    t = time.monotonic()
    for _ in range(n):
        ch.basic_publish("", queue, b"late")
    return time.monotonic() - t


def conn_states(b):
    """The state of each connection in /api/connections, by client port."""
    r = Http("127.0.0.1", b.config["management"]["port"]).get("/api/connections")
    assert r.status == 200, r
    return {c["peer_port"]: c["state"] for c in r.json}


def port_of(conn):
    return conn._impl._transport._sock.getsockname()[1]


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_publisher_into_a_queue_that_is_behind_is_never_held(dedicated_broker, request, transport):
    if transport == "tls":
        pki = request.getfixturevalue("certs")
        tls_port = free_port()
        cfg = tls_config(pki, tls_port)
    else:
        cfg = {"users": [{"name": "guest", "password": "guest", "vhosts": ["/"]}]}
    cfg["users"][0]["tags"] = ["administrator"]
    cfg["management"] = {"address": "127.0.0.1", "port": free_port()}
    b = dedicated_broker(cfg)
    consumer = pika.BlockingConnection(params(b.host, b.port))
    if transport == "tls":
        publisher = pika.BlockingConnection(tls_params(tls_port, pki.client_context()))
    else:
        publisher = pika.BlockingConnection(params(b.host, b.port))
    try:
        cch = consumer.channel()
        cch.queue_declare("behind")
        cch.queue_declare("flood", arguments={"x-max-length": 1000})
        cch.basic_qos(prefetch_count=1)
        cch.basic_consume("behind", lambda *a: None)  # takes one, never acks
        pch = publisher.channel()
        for _ in range(BEHIND - 10):
            pch.basic_publish("", "behind", b"backlog")
        pch.confirm_delivery()
        pch.basic_publish("", "behind", b"last")
        # Below the mark: nobody is behind yet.
        assert conn_states(b)[port_of(publisher)] == "running"
        for _ in range(20):
            pch.basic_publish("", "behind", b"backlog")
        assert pch.queue_declare("behind", passive=True).method.message_count >= BEHIND
        states = conn_states(b)
        assert states[port_of(publisher)] == "flow", states
        assert states[port_of(consumer)] == "running", states

        idle = confirmed_publishes(pch, "behind", CONFIRMS)
        assert idle < 5, "%d confirms took %.1f s with the loop idle" % (CONFIRMS, idle)

        flood = Flooder(b, "flood")
        flood.start()
        try:
            wait_for(lambda: flood.sent >= 8 * len(flood.chunk), timeout=30, what="the broker to read the flood")
            busy = confirmed_publishes(pch, "behind", CONFIRMS)
        finally:
            flood.stop()
        # Without the bound each confirm waited for a gap in the flood (1-2 s).
        assert busy < 10, "%d confirms took %.1f s while the loop was flooded" % (CONFIRMS, busy)
    finally:
        publisher.close()
        consumer.close()
