# SPDX-License-Identifier: MIT
# Priority queues (issue #7): x-max-priority orders ready messages by their
# priority property (above the maximum counts as the maximum, none as 0),
# first in first out inside a priority, and a requeued message goes back to
# its place among those of its priority.
import pika
import pytest

from helpers import drain, wait_for


@pytest.fixture
def ch(conn):
    c = conn.channel()
    c.confirm_delivery()
    return c


def publish(ch, q, items):
    for body, prio in items:
        ch.basic_publish("", q, body, pika.BasicProperties(priority=prio))


def test_priority_order(ch, name):
    q = name("prio")
    ch.queue_declare(q, arguments={"x-max-priority": 10})
    publish(ch, q, [(b"p1a", 1), (b"p5a", 5), (b"p3", 3), (b"none", None), (b"p5b", 5), (b"p10", 10),
                    (b"p0", 0), (b"p1b", 1)])
    assert drain(ch, q) == [b"p10", b"p5a", b"p5b", b"p3", b"p1a", b"p1b", b"none", b"p0"]
    ch.queue_delete(q)


def test_priority_consumer_order(ch, name):
    q = name("prio")
    ch.queue_declare(q, arguments={"x-max-priority": 3})
    publish(ch, q, [(b"low", 0), (b"high", 3), (b"mid", 2)])
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(b), auto_ack=True)
    wait_for(lambda: len(got) == 3, conn=ch.connection, what="3 deliveries")
    assert got == [b"high", b"mid", b"low"]
    ch.queue_delete(q)


def test_priority_above_max_is_max(ch, name):
    q = name("prio")
    ch.queue_declare(q, arguments={"x-max-priority": 3})
    publish(ch, q, [(b"a", 7), (b"b", 3), (b"lo", 2), (b"c", 255)])
    assert drain(ch, q) == [b"a", b"b", b"c", b"lo"]
    ch.queue_delete(q)


def test_priority_requeue_keeps_place(ch, name):
    q = name("prio")
    ch.queue_declare(q, arguments={"x-max-priority": 5})
    publish(ch, q, [(b"lo1", 1), (b"hi1", 5), (b"lo2", 1), (b"hi2", 5)])
    m1, _, b1 = ch.basic_get(q)
    m2, _, b2 = ch.basic_get(q)
    m3, _, b3 = ch.basic_get(q)
    assert (b1, b2, b3) == (b"hi1", b"hi2", b"lo1")
    ch.basic_nack(m3.delivery_tag, multiple=True, requeue=True)
    got = []
    for _ in range(4):
        m, _, b = ch.basic_get(q, auto_ack=True)
        got.append((b, m.redelivered))
    assert got == [(b"hi1", True), (b"hi2", True), (b"lo1", True), (b"lo2", False)]
    ch.queue_delete(q)


def test_not_a_priority_queue(ch, name):
    for args in ({}, {"x-max-priority": 0}):
        q = name("fifo")
        ch.queue_declare(q, arguments=args)
        publish(ch, q, [(b"a", 0), (b"b", 9), (b"c", 5)])
        assert drain(ch, q) == [b"a", b"b", b"c"]
        ch.queue_delete(q)
