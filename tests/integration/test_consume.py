# SPDX-License-Identifier: MIT
# Consuming: basic.consume/cancel, exclusive consumers, no-ack, server-sent
# cancel, round-robin, basic.get, ack/nack/reject (multiple, requeue, order,
# redelivered), basic.recover, delivery-tag errors, basic.qos prefetch.
import pika
import pytest

import amqp_raw as raw
from helpers import Collector, channel_error, connection_error, wait_for, wait_queue_count


def make_queue(ch, name, n=0, prefix="m"):
    q = name("q")
    ch.queue_declare(q, exclusive=True)
    for i in range(n):
        ch.basic_publish("", q, b"%s%d" % (prefix.encode(), i))
    return q


def test_consume_server_tag(broker, name):
    """An empty consumer tag gets a server-generated amq.ctag-..., unique."""
    q = name("q")
    with broker.raw() as c:
        c.handshake()
        c.open_channel(1)
        c.send(raw.queue_declare(1, q, exclusive=True))
        c.expect(raw.QUEUE_DECLARE_OK)
        tags = set()
        for _ in range(3):
            c.send(raw.basic_consume(1, q))
            tag = c.expect((60, 21), channel=1).args[0]
            assert tag.startswith("amq.ctag-") and len(tag) > len("amq.ctag-") + 8, tag
            tags.add(tag)
        assert len(tags) == 3
        c.send(raw.basic_publish(1, "", q))
        c.send(raw.header_frame(1, 2))
        c.send(raw.body_frame(1, b"hi"))
        f = c.expect(raw.BASIC_DELIVER, channel=1)
        assert f.args[0] in tags and f.args[1:] == [1, False, "", q]


def test_consume_delivery_fields(conn, name):
    ch = conn.channel()
    q = make_queue(ch, name, 1)
    col = Collector()
    tag = ch.basic_consume(q, col, auto_ack=True)
    (m, p, b), = col.wait(conn, 1)
    assert m.consumer_tag == tag and m.delivery_tag == 1 and not m.redelivered
    assert (m.exchange, m.routing_key, b) == ("", q, b"m0")


def test_consume_client_tag_raw(broker, name):
    q = name("q")
    with broker.raw() as c:
        c.handshake()
        c.open_channel(1)
        c.send(raw.queue_declare(1, q, exclusive=True))
        c.expect(raw.QUEUE_DECLARE_OK)
        c.send(raw.basic_consume(1, q, "my-tag", no_ack=True))
        assert c.expect((60, 21), channel=1).args == ["my-tag"]
        c.send(raw.method_frame(1, (60, 30), [("s", "my-tag"), ("b", False)]))
        assert c.expect((60, 31), channel=1).args == ["my-tag"]


def test_consumer_tag_reuse_is_connection_error(broker, name):
    """Reusing a consumer tag on the same channel: 530 NOT_ALLOWED, a
    connection error (the same tag on another channel is fine)."""
    q = name("q")
    with broker.raw() as c:
        c.handshake()
        c.open_channel(1)
        c.open_channel(2)
        c.send(raw.queue_declare(1, q, exclusive=True))
        c.expect(raw.QUEUE_DECLARE_OK)

        c.send(raw.basic_consume(1, q, "dup"))
        c.expect((60, 21), channel=1)
        c.send(raw.basic_consume(2, q, "dup"))
        c.expect((60, 21), channel=2)
        c.send(raw.basic_consume(1, q, "dup"))
        assert c.expect_connection_close() == (
            530, "NOT_ALLOWED - attempt to reuse consumer tag 'dup'", 60, 20)


def test_cancel(conn, name):
    ch = conn.channel()
    q = make_queue(ch, name, 2)
    col = Collector()
    tag = ch.basic_consume(q, col, auto_ack=True)
    col.wait(conn, 2)
    ch.basic_cancel(tag)
    ch.basic_publish("", q, b"after-cancel")
    wait_queue_count(ch, q, 1)
    assert col.bodies == [b"m0", b"m1"]
    assert ch.queue_declare(q, passive=True).method.consumer_count == 0


def test_cancel_unknown_tag_is_ok(ch):
    assert ch.basic_cancel("it-no-such-consumer") == []


def test_cancel_keeps_unacked(conn, name):
    """Cancelling a manual-ack consumer leaves its deliveries unacked on the
    channel; they can still be acked afterwards."""
    ch = conn.channel()
    q = make_queue(ch, name, 2)
    col = Collector()
    tag = ch.basic_consume(q, col)
    col.wait(conn, 2)
    ch.basic_cancel(tag)
    ch.basic_ack(col.deliveries[1][0].delivery_tag, multiple=True)
    wait_queue_count(ch, q, 0)
    ch.close()


def test_exclusive_consumer(conn, name):
    ch = conn.channel()
    q = make_queue(ch, name)
    ch.basic_consume(q, lambda *a: None, exclusive=True)
    text = "ACCESS_REFUSED - queue '%s' in vhost '/' in exclusive use" % q
    with channel_error(403, text):
        conn.channel().basic_consume(q, lambda *a: None)
    with channel_error(403, text):
        conn.channel().basic_consume(q, lambda *a: None, exclusive=True)


def test_exclusive_consumer_when_others_exist(conn, name):
    ch = conn.channel()
    q = make_queue(ch, name)
    ch.basic_consume(q, lambda *a: None)
    with channel_error(403, "ACCESS_REFUSED - queue '%s' in vhost '/' in exclusive use" % q):
        conn.channel().basic_consume(q, lambda *a: None, exclusive=True)


def test_no_ack_consumer(conn, name):
    ch = conn.channel()
    q = make_queue(ch, name, 3)
    col = Collector()
    ch.basic_consume(q, col, auto_ack=True)
    col.wait(conn, 3)
    ch.close()                   # nothing to requeue: they were auto-acked
    ch = conn.channel()
    assert ch.queue_declare(q, passive=True).method.message_count == 0


def test_consumer_cancel_notification_on_queue_delete(broker, name):
    """The consumer_cancel_notify capability: deleting the queue sends
    basic.cancel to its consumers."""
    c = broker.connect()
    ch = c.channel()
    q = name("q")
    ch.queue_declare(q)
    cancelled = []
    ch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    tag = ch.basic_consume(q, lambda *a: None)
    other = broker.connect()
    other.channel().queue_delete(q)
    wait_for(lambda: cancelled, what="basic.cancel from the broker", conn=c)
    assert cancelled == [tag]
    assert ch.is_open
    other.close()
    c.close()


@pytest.mark.parametrize("capable", [True, False])
def test_consumer_cancel_notification_raw(broker, name, capable):
    """basic.cancel (nowait set) is sent only to clients that announced the
    consumer_cancel_notify capability in start-ok."""
    q = name("q")
    caps = {"consumer_cancel_notify": True} if capable else {}
    with broker.raw() as c:
        c.handshake(client_properties={"capabilities": caps})
        c.open_channel(1)
        c.send(raw.queue_declare(1, q))
        c.expect(raw.QUEUE_DECLARE_OK)
        c.send(raw.basic_consume(1, q, "watch"))
        c.expect((60, 21), channel=1)
        c.open_channel(2)
        c.send(raw.method_frame(2, (50, 40), [("H", 0), ("s", q), ("b", False), ("b", False),
                                              ("b", False)]))
        seen = {}
        while (50, 41) not in seen or (capable and (60, 30) not in seen):
            f = c.read_method()
            seen[f.method] = f
        assert seen[(50, 41)].args == [0]
        if capable:
            cancel = seen[(60, 30)]
            assert cancel.channel == 1 and cancel.args == ["watch", True]
        else:
            assert (60, 30) not in seen
            # later traffic on channel 1 shows no cancel was queued before it
            c.send(raw.queue_declare(1, "", exclusive=True))
            f = c.read_method()
            assert f.method == raw.QUEUE_DECLARE_OK and f.channel == 1, f


def test_round_robin(conn, name):
    """Two consumers on one queue share it one message each in turn."""
    ch = conn.channel()
    q = make_queue(ch, name)
    cols = [Collector(ack=True), Collector(ack=True)]
    for col in cols:
        conn.channel().basic_consume(q, col)
    n = 20
    for i in range(n):
        ch.basic_publish("", q, b"%d" % i)
    wait_for(lambda: sum(len(c.deliveries) for c in cols) == n, what="%d deliveries" % n,
             conn=conn)
    a, b = [[int(x) for x in c.bodies] for c in cols]
    assert len(a) == len(b) == n // 2
    assert sorted(a + b) == list(range(n))
    # strictly alternating: each consumer gets every other message, in order
    assert {tuple(a), tuple(b)} == {tuple(range(0, n, 2)), tuple(range(1, n, 2))}


def test_basic_get(ch, name):
    q = make_queue(ch, name, 3)
    counts = []
    for i in range(3):
        m, props, body = ch.basic_get(q, auto_ack=True)
        assert body == b"m%d" % i
        counts.append(m.message_count)
        assert (m.exchange, m.routing_key, m.redelivered) == ("", q, False)
    assert counts == [2, 1, 0]
    assert ch.basic_get(q) == (None, None, None)


def test_basic_get_empty_raw(broker, name):
    """get-empty carries an empty cluster-id."""
    q = name("q")
    with broker.raw() as c:
        c.handshake()
        c.open_channel(1)
        c.send(raw.queue_declare(1, q, exclusive=True))
        c.expect(raw.QUEUE_DECLARE_OK)
        c.send(raw.basic_get(1, q))
        f = c.expect(raw.BASIC_GET_EMPTY, channel=1)
        assert f.args == [""]


def test_basic_get_delivery_tags_increase(ch, name):
    q = make_queue(ch, name, 3)
    tags = [ch.basic_get(q)[0].delivery_tag for _ in range(3)]
    assert tags == [1, 2, 3]
    ch.basic_ack(3, multiple=True)
    wait_queue_count(ch, q, 0)


def _get_all(ch, q):
    out = []
    while True:
        m, p, b = ch.basic_get(q, auto_ack=True)
        if m is None:
            return out
        out.append((b, m.redelivered))


def test_requeue_keeps_place_and_sets_redelivered(conn, name):
    """Requeued messages go back to their original position, flagged
    redelivered: nack(requeue) of #2, then reject/nack-multiple of #1 and #3,
    leaves the queue as 1,2,3,4,5,6 again."""
    ch = conn.channel()
    q = make_queue(ch, name, 6)
    got = [ch.basic_get(q) for _ in range(3)]
    assert [g[2] for g in got] == [b"m0", b"m1", b"m2"]
    ch.basic_nack(got[1][0].delivery_tag, multiple=False, requeue=True)
    wait_queue_count(ch, q, 4)
    ch.basic_reject(got[0][0].delivery_tag, requeue=True)
    ch.basic_nack(got[2][0].delivery_tag, multiple=True, requeue=True)
    wait_queue_count(ch, q, 6)
    assert _get_all(ch, q) == [(b"m0", True), (b"m1", True), (b"m2", True),
                               (b"m3", False), (b"m4", False), (b"m5", False)]


def test_nack_multiple_requeue_to_consumer(conn, name):
    """A consumer nacks several deliveries at once with requeue: they are
    redelivered (to it) in their original order, redelivered=true."""
    ch = conn.channel()
    q = make_queue(ch, name, 4)
    col = Collector()
    ch.basic_consume(q, col)
    col.wait(conn, 4)
    ch.basic_nack(col.deliveries[2][0].delivery_tag, multiple=True, requeue=True)
    col.wait(conn, 7)
    redo = col.deliveries[4:7]
    assert [d[2] for d in redo] == [b"m0", b"m1", b"m2"]
    assert all(d[0].redelivered for d in redo)
    assert [d[0].delivery_tag for d in redo] == [5, 6, 7]
    ch.basic_ack(0, multiple=True)           # tag 0 + multiple: everything
    wait_queue_count(ch, q, 0)
    ch.close()
    assert conn.channel().queue_declare(q, passive=True).method.message_count == 0


def test_nack_and_reject_without_requeue_drop(ch, name):
    q = make_queue(ch, name, 4)
    got = [ch.basic_get(q)[0] for _ in range(4)]
    ch.basic_reject(got[0].delivery_tag, requeue=False)
    ch.basic_nack(got[2].delivery_tag, multiple=True, requeue=False)   # drops #2 and #3
    ch.basic_ack(got[3].delivery_tag)
    ch.basic_recover(requeue=True)             # nothing left unacked
    wait_queue_count(ch, q, 0)


def test_ack_multiple(ch, name):
    q = make_queue(ch, name, 5)
    tags = [ch.basic_get(q)[0].delivery_tag for _ in range(5)]
    ch.basic_ack(tags[2], multiple=True)       # 1..3
    ch.basic_nack(tags[4], multiple=True, requeue=True)   # 4..5 back
    wait_queue_count(ch, q, 2)
    assert [b for b, _ in _get_all(ch, q)] == [b"m3", b"m4"]


def test_unacked_requeued_when_channel_closes(conn, name):
    ch = conn.channel()
    q = make_queue(ch, name, 3)
    ch2 = conn.channel()
    ch2.basic_get(q)
    ch2.basic_get(q)
    ch2.close()
    wait_queue_count(ch, q, 3)
    assert _get_all(ch, q) == [(b"m0", True), (b"m1", True), (b"m2", False)]


def test_unacked_requeued_when_connection_closes(broker, name):
    c = broker.connect()
    ch = c.channel()
    q = name("q")
    ch.queue_declare(q, auto_delete=False)
    for i in range(3):
        ch.basic_publish("", q, b"m%d" % i)
    other = broker.connect()
    och = other.channel()
    wait_queue_count(och, q, 3)
    assert och.basic_get(q)[2] == b"m0"
    other.close()
    wait_queue_count(ch, q, 3)
    assert _get_all(ch, q) == [(b"m0", True), (b"m1", False), (b"m2", False)]
    ch.queue_delete(q)
    c.close()


def test_basic_recover(conn, name):
    ch = conn.channel()
    q = make_queue(ch, name, 3)
    col = Collector()
    ch.basic_consume(q, col)
    col.wait(conn, 3)
    ch.basic_ack(col.deliveries[0][0].delivery_tag)
    ch.basic_recover(requeue=True)
    col.wait(conn, 5)
    redo = col.deliveries[3:]
    assert [d[2] for d in redo] == [b"m1", b"m2"]
    assert all(d[0].redelivered for d in redo)
    assert [d[0].delivery_tag for d in redo] == [4, 5]
    ch.basic_ack(5, multiple=True)
    wait_queue_count(ch, q, 0)


def test_basic_recover_no_requeue_not_implemented(broker):
    c = broker.connect()
    with connection_error(540, "NOT_IMPLEMENTED - requeue=false"):
        c.channel().basic_recover(requeue=False)


@pytest.mark.parametrize("case", ["unknown", "double-ack", "ack-after-nack", "reject-unknown",
                                  "nack-unknown-multiple", "ack-zero", "ack-no-ack-delivery",
                                  "multiple-beyond"])
def test_delivery_tag_errors(conn, name, case):
    """Every flavour of bad delivery tag: 406 "PRECONDITION_FAILED - unknown
    delivery tag N" (class 60 and the method that carried it)."""
    ch = conn.channel()
    q = make_queue(ch, name, 2)
    if case == "unknown":
        tag, op = 99, lambda: ch.basic_ack(99)
    elif case == "double-ack":
        t = ch.basic_get(q)[0].delivery_tag
        ch.basic_ack(t)
        tag, op = t, lambda: ch.basic_ack(t)
    elif case == "ack-after-nack":
        t = ch.basic_get(q)[0].delivery_tag
        ch.basic_nack(t, requeue=True)
        tag, op = t, lambda: ch.basic_ack(t)
    elif case == "reject-unknown":
        tag, op = 7, lambda: ch.basic_reject(7)
    elif case == "nack-unknown-multiple":
        tag, op = 3, lambda: ch.basic_nack(3, multiple=True)
    elif case == "ack-zero":
        tag, op = 0, lambda: ch.basic_ack(0)
    elif case == "ack-no-ack-delivery":
        t = ch.basic_get(q, auto_ack=True)[0].delivery_tag
        tag, op = t, lambda: ch.basic_ack(t)
    else:
        t = ch.basic_get(q)[0].delivery_tag
        tag, op = t + 5, lambda: ch.basic_ack(t + 5, multiple=True)
    with channel_error(406, "PRECONDITION_FAILED - unknown delivery tag %d" % tag):
        op()
        ch.queue_declare(q, passive=True)      # round trip surfaces the close
    assert conn.is_open


def test_delivery_tag_error_raw_ids(broker):
    with broker.raw() as c:
        c.handshake()
        c.open_channel(1)
        c.send(raw.method_frame(1, raw.BASIC_ACK, [("Q", 42), ("b", False)]))
        assert c.expect_channel_close(1) == (
            406, "PRECONDITION_FAILED - unknown delivery tag 42", 60, 80)
        c.open_channel(1)
        c.send(raw.method_frame(1, (60, 90), [("Q", 43), ("b", True)]))
        assert c.expect_channel_close(1) == (
            406, "PRECONDITION_FAILED - unknown delivery tag 43", 60, 90)
        c.open_channel(1)
        c.send(raw.method_frame(1, (60, 120), [("Q", 44), ("b", False), ("b", True)]))
        assert c.expect_channel_close(1) == (
            406, "PRECONDITION_FAILED - unknown delivery tag 44", 60, 120)


def test_ack_zero_multiple_with_nothing_outstanding(ch, name):
    q = make_queue(ch, name)
    ch.basic_ack(0, multiple=True)
    ch.queue_declare(q, passive=True)


def test_delivery_tags_are_per_channel(conn, name):
    a, b = conn.channel(), conn.channel()
    q = make_queue(a, name, 4)
    assert a.basic_get(q)[0].delivery_tag == 1
    assert b.basic_get(q)[0].delivery_tag == 1
    assert a.basic_get(q)[0].delivery_tag == 2
    with channel_error(406, "PRECONDITION_FAILED - unknown delivery tag 2"):
        b.basic_ack(2)
        b.queue_declare(q, passive=True)
    a.basic_ack(2, multiple=True)


# ------------------------------------------------------------------ QoS

def _qos_setup(conn, name, queues, per_queue):
    pub = conn.channel()
    qs = [make_queue(pub, name, per_queue) for _ in range(queues)]
    for q in qs:
        wait_queue_count(pub, q, per_queue)
    return pub, qs


def _ready(pub, qs):
    return [pub.queue_declare(q, passive=True).method.message_count for q in qs]


def _stable(conn, pub, qs, cols, delivered, ready_total):
    """Waits until the consumers hold `delivered` deliveries (a list, one per
    collector) and the queues `ready_total` ready messages, then checks once
    more after another round trip that nothing else was delivered."""
    def ok():
        return ([len(c.deliveries) for c in cols] == delivered
                and sum(_ready(pub, qs)) == ready_total)
    wait_for(ok, what="deliveries %r / %d ready (have %r / %r)" % (
        delivered, ready_total, [len(c.deliveries) for c in cols], _ready(pub, qs)),
        conn=conn)
    conn.process_data_events(time_limit=0)
    assert [len(c.deliveries) for c in cols] == delivered
    assert sum(_ready(pub, qs)) == ready_total


def test_qos_per_consumer(conn, name):
    """basic.qos(prefetch_count=2, global=false): each consumer on the
    channel may hold 2 unacked deliveries; acking one releases one more."""
    pub, (q1, q2) = _qos_setup(conn, name, 2, 10)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=2, global_qos=False)
    c1, c2 = Collector(), Collector()
    ch.basic_consume(q1, c1)
    ch.basic_consume(q2, c2)
    _stable(conn, pub, [q1, q2], [c1, c2], [2, 2], 16)
    ch.basic_ack(c1.deliveries[0][0].delivery_tag)
    _stable(conn, pub, [q1, q2], [c1, c2], [3, 2], 15)
    assert c1.bodies == [b"m0", b"m1", b"m2"]


def test_qos_per_consumer_two_consumers_one_queue(conn, name):
    pub, (q,) = _qos_setup(conn, name, 1, 10)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=3)
    c1, c2 = Collector(), Collector()
    ch.basic_consume(q, c1)
    ch.basic_consume(q, c2)
    _stable(conn, pub, [q], [c1, c2], [3, 3], 4)


def test_qos_global(conn, name):
    """basic.qos(prefetch_count=3, global=true): the channel as a whole may
    hold 3 unacked deliveries, shared by its consumers."""
    pub, (q1, q2) = _qos_setup(conn, name, 2, 10)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=3, global_qos=True)
    c1, c2 = Collector(), Collector()
    ch.basic_consume(q1, c1)
    ch.basic_consume(q2, c2)
    wait_for(lambda: len(c1.deliveries) + len(c2.deliveries) == 3
             and sum(_ready(pub, [q1, q2])) == 17, what="3 deliveries in total", conn=conn)
    conn.process_data_events(time_limit=0)
    assert len(c1.deliveries) + len(c2.deliveries) == 3
    assert sum(_ready(pub, [q1, q2])) == 17
    first = (c1.deliveries + c2.deliveries)[0][0]
    ch.basic_ack(first.delivery_tag)
    wait_for(lambda: len(c1.deliveries) + len(c2.deliveries) == 4
             and sum(_ready(pub, [q1, q2])) == 16, what="one more delivery", conn=conn)


def test_qos_global_and_per_consumer(conn, name):
    """Both limits at once: per consumer 2, channel 3."""
    pub, (q1, q2) = _qos_setup(conn, name, 2, 10)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=2, global_qos=False)
    ch.basic_qos(prefetch_count=3, global_qos=True)
    c1 = Collector()
    ch.basic_consume(q1, c1)
    _stable(conn, pub, [q1, q2], [c1], [2], 18)       # per-consumer limit binds
    c2 = Collector()
    ch.basic_consume(q2, c2)
    _stable(conn, pub, [q1, q2], [c1, c2], [2, 1], 17)   # channel limit binds


def test_qos_applies_to_new_consumers(conn, name):
    """global=false qos changes affect consumers created afterwards only."""
    pub, (q1, q2) = _qos_setup(conn, name, 2, 10)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=1)
    c1 = Collector()
    ch.basic_consume(q1, c1)
    _stable(conn, pub, [q1, q2], [c1], [1], 19)
    ch.basic_qos(prefetch_count=4)
    c2 = Collector()
    ch.basic_consume(q2, c2)
    _stable(conn, pub, [q1, q2], [c1, c2], [1, 4], 15)


def test_qos_zero_is_unlimited(conn, name):
    pub, (q,) = _qos_setup(conn, name, 1, 50)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=0)
    c1 = Collector()
    ch.basic_consume(q, c1)
    _stable(conn, pub, [q], [c1], [50], 0)


def test_qos_ignored_for_no_ack_and_get(conn, name):
    pub, (q1, q2) = _qos_setup(conn, name, 2, 5)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=1, global_qos=True)
    c1 = Collector()
    ch.basic_consume(q1, c1, auto_ack=True)
    c1.wait(conn, 5)
    got = [ch.basic_get(q2)[2] for _ in range(5)]
    assert got == [b"m%d" % i for i in range(5)]


def test_qos_prefetch_size_not_implemented(broker):
    c = broker.connect()
    with connection_error(540, "NOT_IMPLEMENTED - prefetch_size!=0 (1)"):
        c.channel().basic_qos(prefetch_size=1)


def test_consume_with_arguments_and_priority(conn, name):
    """x-priority (consumer_priorities): the higher-priority consumer gets
    the messages while it has capacity."""
    ch = conn.channel()
    q = make_queue(ch, name)
    lo, hi = Collector(ack=True), Collector(ack=True)
    conn.channel().basic_consume(q, lo, arguments={"x-priority": 1})
    conn.channel().basic_consume(q, hi, arguments={"x-priority": 10})
    for i in range(6):
        ch.basic_publish("", q, b"%d" % i)
    wait_for(lambda: len(lo.deliveries) + len(hi.deliveries) == 6, conn=conn, what="6")
    assert len(hi.deliveries) == 6 and not lo.deliveries


def test_deliver_properties_pika(conn, name):
    ch = conn.channel()
    q = make_queue(ch, name)
    col = Collector()
    ch.basic_consume(q, col, auto_ack=True)
    ch.basic_publish("", q, b"p", pika.BasicProperties(priority=3, headers={"h": "v"}))
    (m, p, b), = col.wait(conn, 1)
    assert p.priority == 3 and p.headers == {"h": "v"}
