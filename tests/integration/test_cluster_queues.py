# SPDX-License-Identifier: MIT
# Classic queues used from every node of a real 3-node cluster
# (docs/CLUSTERING.md, "Queues have a home"): a queue declared on n1 lives
# there; publishes on n2 (with confirms) reach it and a consumer on n3 gets
# its messages with prefetch, acks and requeues as on one node. kill -9 of
# n1 mid-stream: n3's consumer is cancelled, n2's publishes are nacked or
# returned, nothing hangs, and once n1 is back every confirmed message is
# consumed. Every wait is a condition with a deadline.
# warren only (skips with WARREN_BROKER).
import threading

import pika
import pika.exceptions as pex

from cluster import DEADLINE, attempt
from helpers import channel_error, wait_for

PERSISTENT = pika.BasicProperties(delivery_mode=2)


def declared_everywhere(cluster, queue):
    """Declares a durable queue on n1 (again while the metadata group has no
    leader yet: 541) and waits until n2 and n3 know it."""
    def declared():
        e = attempt(cluster.nodes["n1"], lambda ch: ch.queue_declare(queue, durable=True))
        assert e is None or e.reply_code == 541, e
        return e is None
    wait_for(declared, DEADLINE, "the declare on n1 to commit")
    for n in ("n2", "n3"):
        node = cluster.nodes[n]
        wait_for(lambda: attempt(node, lambda ch: ch.queue_declare(queue, passive=True)) is None, DEADLINE,
                 "%s to know queue %s" % (n, queue))


class Consumer:
    """A manual-ack consumer with prefetch on one node: deliveries in order, and
    whether the broker cancelled it."""

    def __init__(self, node, queue, prefetch, ack=False):
        self.ack = ack  # ack each delivery as it arrives
        self.conn = node.connect()
        self.ch = self.conn.channel()
        self.ch.basic_qos(prefetch_count=prefetch)
        self.got = []  # (delivery_tag, body, redelivered)
        self.cancelled = False
        self.ch.add_on_cancel_callback(lambda frame: setattr(self, "cancelled", True))
        self.tag = self.ch.basic_consume(queue, self.on_message)

    def on_message(self, ch, method, props, body):
        self.got.append((method.delivery_tag, body, method.redelivered))
        if self.ack:
            ch.basic_ack(method.delivery_tag)

    def pump(self, seconds=0.05):
        self.conn.process_data_events(time_limit=seconds)

    def wait(self, cond, what):
        wait_for(cond, DEADLINE, what, conn=self.conn)


def test_publish_on_n2_consume_on_n3_with_prefetch_acks_and_requeue(cluster):
    declared_everywhere(cluster, "q")
    pub = cluster.nodes["n2"].connect()
    pch = pub.channel()
    pch.confirm_delivery()
    for i in range(20):
        pch.basic_publish("", "q", b"m%d" % i, PERSISTENT, mandatory=True)
    c = Consumer(cluster.nodes["n3"], "q", prefetch=5)
    c.wait(lambda: len(c.got) == 5, "5 deliveries")
    # A confirmed round trip later there are still exactly 5 in flight.
    pch.basic_publish("", "q", b"m20", PERSISTENT, mandatory=True)
    for _ in range(10):
        c.pump()
    assert [b for _, b, _ in c.got] == [b"m%d" % i for i in range(5)]
    # The home counts them as unacknowledged, the rest as ready.
    home = cluster.nodes["n1"].connect().channel()
    assert home.queue_declare("q", passive=True).method.message_count == 16
    # nack with requeue: the message comes back marked redelivered.
    c.ch.basic_nack(c.got[0][0], requeue=True)
    c.wait(lambda: any(r for _, _, r in c.got), "a redelivery")
    redelivered = [b for _, b, r in c.got if r]
    assert redelivered == [b"m0"]
    # Ack everything as it comes: all 21 are consumed, once each (plus the redelivery).
    def ack_all():
        for tag, _, _ in c.got[c.acked:]:
            c.ch.basic_ack(tag)
        c.acked = len(c.got)
        return sorted(set(b for _, b, _ in c.got)) == sorted(b"m%d" % i for i in range(21))
    c.acked = 1  # the nacked one
    c.wait(ack_all, "all 21 messages")
    assert len(c.got) == 22
    wait_for(lambda: home.queue_declare("q", passive=True).method.message_count == 0, DEADLINE,
             "the home queue to be empty")
    assert home.queue_declare("q", passive=True).method.consumer_count == 1


def test_basic_get_on_another_node(cluster):
    declared_everywhere(cluster, "g")
    pub = cluster.nodes["n1"].connect().channel()
    for body in (b"a", b"b", b"c"):
        pub.basic_publish("", "g", body, PERSISTENT)
    ch = cluster.nodes["n3"].connect().channel()
    m, _, body = ch.basic_get("g")
    assert body == b"a" and not m.redelivered and m.message_count == 2
    ch.basic_nack(m.delivery_tag, requeue=True)
    m, _, body = ch.basic_get("g")
    assert body == b"a" and m.redelivered
    ch.basic_ack(m.delivery_tag)
    m, _, body = ch.basic_get("g", auto_ack=True)
    assert body == b"b"
    m, _, body = ch.basic_get("g")
    assert body == b"c" and m.message_count == 0
    assert ch.basic_get("g") == (None, None, None)
    ch.basic_ack(m.delivery_tag)
    home = cluster.nodes["n1"].connect().channel()
    wait_for(lambda: home.queue_declare("g", passive=True).method.message_count == 0, DEADLINE, "g to be empty")
    # The management API's get on n3 asks the home too (until session 18 it showed []).
    home.confirm_delivery()
    home.basic_publish("", "g", b"d", PERSISTENT)
    r = cluster.nodes["n3"].http().post("/api/queues/%2F/g/get",
                                        {"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto"})
    assert r.status == 200 and [(m["payload"], m["message_count"]) for m in r.json] == [("d", 0)], r
    assert ch.basic_get("g", auto_ack=True)[2] == b"d"


def test_purge_on_another_node_counts_what_the_home_dropped(cluster):
    """queue.purge on n2 of a queue whose home is n1: purge-ok comes once the
    home purged, with the count it dropped (until session 18 the proxy said 0
    at once), and what a get holds stays with it."""
    declared_everywhere(cluster, "pg")
    pub = cluster.nodes["n1"].connect().channel()
    pub.confirm_delivery()
    for i in range(5):
        pub.basic_publish("", "pg", b"m%d" % i, PERSISTENT)
    ch = cluster.nodes["n2"].connect().channel()
    m, _, body = ch.basic_get("pg")
    assert body == b"m0"
    assert ch.queue_purge("pg").method.message_count == 4
    assert ch.basic_get("pg") == (None, None, None)
    ch.basic_nack(m.delivery_tag, requeue=True)
    m, _, body = ch.basic_get("pg", auto_ack=True)
    assert body == b"m0" and m.redelivered and m.message_count == 0


def test_home_down_cancels_nacks_and_nothing_is_lost(cluster):
    declared_everywhere(cluster, "q")
    confirmed, refused, stop = [], [], threading.Event()

    def publisher():
        conn = cluster.nodes["n2"].connect()
        ch = conn.channel()
        ch.confirm_delivery()
        i = 0
        while not stop.is_set():
            body = b"m%d" % i
            try:
                ch.basic_publish("", "q", body, PERSISTENT, mandatory=True)
                confirmed.append(body)
            except (pex.NackError, pex.UnroutableError):
                refused.append(body)
            i += 1
        conn.close()

    c = Consumer(cluster.nodes["n3"], "q", prefetch=50, ack=True)
    t = threading.Thread(target=publisher, daemon=True)
    t.start()
    c.wait(lambda: len(c.got) >= 100 and len(confirmed) >= 100, "100 confirms and deliveries before the kill")
    consumed = set(b for _, b, _ in c.got)
    cluster.kill("n1")
    c.wait(lambda: c.cancelled, "n3's consumer to be cancelled")
    wait_for(lambda: len(refused) >= 10, DEADLINE, "n2's publishes to be refused while n1 is down")
    # While n1 is down, consuming from its queue is refused as RabbitMQ does.
    with channel_error(404, "NOT_FOUND - home node 'n1' of durable queue 'q' in vhost '/' is down or "
                            "inaccessible"):
        c.conn.channel().basic_consume("q", lambda *a: None)
    # And so is a purge (until session 18 it was dropped and purge-ok said 0).
    with channel_error(404, "NOT_FOUND - home node 'n1' of durable queue 'q' in vhost '/' is down or "
                            "inaccessible"):
        c.conn.channel().queue_purge("q")
    stop.set()
    t.join(DEADLINE)
    assert not t.is_alive(), "the publisher hung"
    consumed |= set(b for _, b, _ in c.got)
    c.conn.close()
    cluster.start("n1")
    cluster.wait_all_up()
    # Every confirmed message comes back (the unacknowledged ones redelivered).
    c = Consumer(cluster.nodes["n3"], "q", prefetch=100, ack=True)

    def all_confirmed():
        consumed.update(b for _, b, _ in c.got)
        return set(confirmed) <= consumed
    c.wait(all_confirmed, "every confirmed message (%d) to be consumed" % len(confirmed))


def test_fast_publisher_without_confirms_loses_nothing(cluster):
    """A publisher on n2 without confirms outruns the peer link to the
    queue's home n1: it is held by flow (as by a slow disk) instead of having
    messages dropped, so every message it sent arrives."""
    declared_everywhere(cluster, "fast")
    count, body = 2000, b"x" * 16384
    conn = cluster.nodes["n2"].connect()
    ch = conn.channel()
    for i in range(count):
        ch.basic_publish("", "fast", body)
    conn.close()
    n1 = cluster.nodes["n1"].connect()
    ch1 = n1.channel()
    wait_for(lambda: ch1.queue_declare("fast", passive=True).method.message_count == count, DEADLINE,
             "all %d messages on n1" % count, conn=n1)
    n1.close()
