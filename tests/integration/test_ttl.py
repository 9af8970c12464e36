# SPDX-License-Identifier: MIT
# Message TTL and queue TTL (issue #7): x-message-ttl and the expiration
# property (the shorter wins), expired messages removed at the head and
# never delivered, dead-lettered as "expired" with original-expiration, and
# x-expires deleting a queue nobody uses. TTLs are tens of milliseconds;
# waiting is polling with a deadline, and "some time has passed on the
# broker" is a message with a known TTL expiring from a queue of its own.
import pika
import pytest

from test_dead_letter import LAST_DEATH, check_last_death
from helpers import channel_error, get_one, queue_counts, queue_exists, wait_for, wait_queue_count


@pytest.fixture
def ch(conn):
    """With confirms, a publish has reached its queues when it returns (on
    RabbitMQ a passive declare could otherwise overtake it)."""
    c = conn.channel()
    c.confirm_delivery()
    return c


def elapsed(ch, name, ms):
    """Returns once at least ms milliseconds have passed on the broker."""
    q = name("clock")
    ch = ch.connection.channel()
    ch.confirm_delivery()
    ch.queue_declare(q, arguments={"x-message-ttl": ms})
    ch.basic_publish("", q, b"tick")
    wait_queue_count(ch, q, 0)
    ch.queue_delete(q)
    ch.close()


def test_queue_ttl_removes_without_consumers(ch, name):
    q = name("ttl")
    ch.queue_declare(q, arguments={"x-message-ttl": 100})
    for i in range(3):
        ch.basic_publish("", q, b"m%d" % i)
    wait_queue_count(ch, q, 0)
    assert ch.basic_get(q, auto_ack=True)[0] is None
    ch.queue_delete(q)


def test_expired_never_delivered(ch, name):
    q = name("ttl")
    ch.queue_declare(q, arguments={"x-message-ttl": 100})
    ch.basic_publish("", q, b"old")
    wait_queue_count(ch, q, 0)
    ch.basic_publish("", q, b"new", pika.BasicProperties(expiration="60000"))
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(b), auto_ack=True)
    wait_for(lambda: got, what="a delivery", conn=ch.connection)
    assert got == [b"new"]
    ch.queue_delete(q)


def test_per_message_expiration(ch, name):
    q = name("exp")
    ch.queue_declare(q)
    ch.basic_publish("", q, b"short", pika.BasicProperties(expiration="50"))
    ch.basic_publish("", q, b"keep")
    wait_queue_count(ch, q, 1)
    m, p, body = ch.basic_get(q, auto_ack=True)
    assert body == b"keep" and p.expiration is None
    ch.queue_delete(q)


def test_expiry_at_head_only(ch, name):
    """An expired message behind a live one stays counted until it reaches
    the head; then it is dropped, not delivered."""
    q = name("exp")
    ch.queue_declare(q)
    ch.basic_publish("", q, b"keep")
    ch.basic_publish("", q, b"short", pika.BasicProperties(expiration="50"))
    elapsed(ch, name, 150)
    assert queue_counts(ch, q)[0] == 2
    m, _, body = ch.basic_get(q)
    assert body == b"keep"
    ch.basic_ack(m.delivery_tag)
    assert ch.basic_get(q)[0] is None
    assert queue_counts(ch, q)[0] == 0
    ch.queue_delete(q)


@pytest.mark.parametrize("queue_ttl,expiration", [(60000, "50"), (50, "60000")])
def test_shorter_ttl_wins(ch, name, queue_ttl, expiration):
    q = name("ttl")
    ch.queue_declare(q, arguments={"x-message-ttl": queue_ttl})
    ch.basic_publish("", q, b"m", pika.BasicProperties(expiration=expiration))
    wait_queue_count(ch, q, 0)
    ch.queue_delete(q)


def test_ttl_zero(ch, name):
    """x-message-ttl 0: delivered only if a consumer can take it at once."""
    q = name("ttl0")
    ch.queue_declare(q, arguments={"x-message-ttl": 0})
    ch.basic_publish("", q, b"nobody")
    wait_queue_count(ch, q, 0)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(b), auto_ack=True)
    ch.basic_publish("", q, b"taken")
    wait_for(lambda: got, what="a delivery", conn=ch.connection)
    assert got == [b"taken"]
    ch.queue_delete(q)


def test_expired_dead_lettered(ch, name):
    src, dlq = name("ttl-src"), name("ttl-dlq")
    ch.queue_declare(dlq)
    ch.queue_declare(src, arguments={"x-message-ttl": 50, "x-dead-letter-exchange": "",
                                     "x-dead-letter-routing-key": dlq})
    ch.queue_bind(src, "amq.topic", routing_key="a.b")
    ch.basic_publish("amq.topic", "a.b", b"late", pika.BasicProperties(headers={"h": "v"}))
    ch.basic_publish("", src, b"own", pika.BasicProperties(expiration="20", message_id="id-2"))
    got = [get_one(ch, dlq), get_one(ch, dlq)]
    (m1, p1, b1), (m2, p2, b2) = got
    assert (b1, b2) == (b"late", b"own")
    assert m1.exchange == "" and m1.routing_key == dlq
    assert list(p1.headers.keys()) == ["h", "x-death", "x-first-death-exchange", "x-first-death-queue",
                                       "x-first-death-reason"] + LAST_DEATH
    check_last_death(p1, "expired", src, "amq.topic")
    e = p1.headers["x-death"][0]
    assert list(e.keys()) == ["count", "reason", "queue", "time", "exchange", "routing-keys"]
    assert (e["count"], e["reason"], e["queue"], e["exchange"], e["routing-keys"]) == \
        (1, "expired", src, "amq.topic", ["a.b"])
    assert (p1.headers["x-first-death-reason"], p1.headers["x-first-death-queue"],
            p1.headers["x-first-death-exchange"]) == ("expired", src, "amq.topic")
    # Its own expiration is removed and kept in the entry.
    assert p2.expiration is None and p2.message_id == "id-2"
    e = p2.headers["x-death"][0]
    assert list(e.keys()) == ["count", "reason", "queue", "time", "exchange", "routing-keys",
                              "original-expiration"]
    assert (e["reason"], e["queue"], e["exchange"], e["routing-keys"], e["original-expiration"]) == \
        ("expired", src, "", [src], "20")
    ch.queue_delete(src)
    ch.queue_delete(dlq)


def test_queue_expires(conn, name):
    """x-expires: an unused queue is deleted, messages and all."""
    ch = conn.channel()
    q = name("expires")
    ch.queue_declare(q, arguments={"x-expires": 100})
    ch.basic_publish("", q, b"inside")
    wait_for(lambda: not queue_exists(conn, q), step=0.05, what="queue %s to expire" % q)
    with channel_error(404, "NOT_FOUND - no queue '%s' in vhost '/'" % q):
        conn.channel().queue_declare(q, passive=True)


def test_queue_expires_not_while_consumed(conn, name):
    ch = conn.channel()
    q = name("expires")
    ch.queue_declare(q, arguments={"x-expires": 100})
    tag = ch.basic_consume(q, lambda *a: None)
    elapsed(conn.channel(), name, 300)
    assert queue_exists(conn, q)
    ch.basic_cancel(tag)
    wait_for(lambda: not queue_exists(conn, q), step=0.05, what="queue %s to expire" % q)


def test_queue_expires_renewed_by_declare(conn, name):
    """Declaring the queue again starts its x-expires over: redeclared every
    200 ms it outlives several of its 1 s leases, then expires."""
    ch = conn.channel()
    q = name("expires")
    args = {"x-expires": 1000}
    ch.queue_declare(q, arguments=args)
    for _ in range(8):
        elapsed(ch, name, 200)
        ch.queue_declare(q, arguments=args)
    assert queue_exists(conn, q)
    wait_for(lambda: not queue_exists(conn, q), step=0.1, what="queue %s to expire" % q)
