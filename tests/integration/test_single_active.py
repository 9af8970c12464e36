# SPDX-License-Identifier: MIT
# Single active consumer (issue #7): with x-single-active-consumer one
# consumer, the first attached, receives everything; when it goes (cancel
# or channel close, its unacknowledged messages requeued) the next in
# attach order takes over.
import pytest

from helpers import queue_counts, wait_for


class Consumer:
    def __init__(self, ch, q, ack=False):
        self.ch = ch
        self.got = []
        self.tags = []
        self.tag = ch.basic_consume(q, self.on_message, auto_ack=ack)

    def on_message(self, ch, m, p, b):
        self.got.append((b, m.redelivered))
        self.tags.append(m.delivery_tag)


@pytest.fixture
def pub(conn):
    c = conn.channel()
    c.confirm_delivery()
    return c


def test_failover_on_channel_close(conn, pub, name):
    q = name("sac")
    pub.queue_declare(q, arguments={"x-single-active-consumer": True})
    c1 = Consumer(conn.channel(), q)
    c2 = Consumer(conn.channel(), q)
    assert queue_counts(pub, q)[1] == 2
    for i in range(4):
        pub.basic_publish("", q, b"m%d" % i)
    wait_for(lambda: len(c1.got) == 4, what="4 deliveries to the active consumer", conn=conn)
    c1.ch.basic_ack(c1.tags[1], multiple=True)
    # A round trip on the same connection, then whatever arrived before its
    # reply is dispatched: the ack freed nothing for the standby consumer.
    assert queue_counts(pub, q) == (0, 2)
    conn.process_data_events(time_limit=0)
    assert c2.got == []
    # m2, m3 unacked: requeued to the next consumer when the channel closes.
    c1.ch.close()
    wait_for(lambda: len(c2.got) == 2, what="the requeued messages on the new active consumer", conn=conn)
    assert c2.got == [(b"m2", True), (b"m3", True)]
    pub.basic_publish("", q, b"m4")
    wait_for(lambda: len(c2.got) == 3, what="a new message on the new active consumer", conn=conn)
    assert c2.got[2] == (b"m4", False)
    pub.queue_delete(q)


def test_failover_in_attach_order_on_cancel(conn, pub, name):
    q = name("sac")
    pub.queue_declare(q, arguments={"x-single-active-consumer": True})
    ch = conn.channel()
    cs = [Consumer(ch, q, ack=True) for _ in range(3)]
    pub.basic_publish("", q, b"one")
    wait_for(lambda: cs[0].got, what="a delivery to the first consumer", conn=conn)
    ch.basic_cancel(cs[0].tag)
    pub.basic_publish("", q, b"two")
    wait_for(lambda: cs[1].got, what="a delivery to the second consumer", conn=conn)
    pub.basic_publish("", q, b"three")
    wait_for(lambda: len(cs[1].got) == 2, what="another delivery to the second consumer", conn=conn)
    assert [b for b, _ in cs[1].got] == [b"two", b"three"] and cs[2].got == []
    assert queue_counts(pub, q)[1] == 2
    pub.queue_delete(q)


def test_without_single_active_round_robin(conn, pub, name):
    q = name("rr")
    pub.queue_declare(q)
    ch = conn.channel()
    cs = [Consumer(ch, q, ack=True) for _ in range(2)]
    for i in range(4):
        pub.basic_publish("", q, b"m%d" % i)
    wait_for(lambda: len(cs[0].got) + len(cs[1].got) == 4, what="4 deliveries", conn=conn)
    assert len(cs[0].got) == 2 and len(cs[1].got) == 2
    pub.queue_delete(q)
