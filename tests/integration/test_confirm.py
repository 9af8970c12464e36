# SPDX-License-Identifier: MIT
# Publisher confirms: confirm.select, basic.ack with delivery tags (multiple
# allowed), return-then-ack for mandatory unroutable messages.
import pika
import pika.exceptions as pex
import pytest

import amqp_raw as raw
from helpers import channel_error

CONFIRM_SELECT = (85, 10)
CONFIRM_SELECT_OK = (85, 11)


def confirm_channel(c, ch=1, nowait=False):
    c.open_channel(ch)
    c.send(raw.method_frame(ch, CONFIRM_SELECT, [("b", nowait)]))
    if not nowait:
        c.expect(CONFIRM_SELECT_OK, channel=ch)


def publish(c, ch, exchange, key, body, mandatory=False):
    c.send(raw.basic_publish(ch, exchange, key, mandatory))
    c.send(raw.header_frame(ch, len(body)))
    if body:
        c.send(raw.body_frame(ch, body))


def collect_acks(c, ch, n):
    """Reads basic.ack frames until tags 1..n are all confirmed; returns the
    (tag, multiple) list as sent. Fails on nack or anything unexpected."""
    acked = set()
    frames = []
    while len(acked) < n:
        f = c.read_method()
        assert f.channel == ch and f.method == raw.BASIC_ACK, "expected basic.ack, got %r" % f
        tag, multiple = f.args
        frames.append((tag, multiple))
        new = set(range(1, tag + 1)) - acked if multiple else {tag}
        assert tag not in acked, "tag %d confirmed twice: %r" % (tag, frames)
        acked |= new
    assert acked == set(range(1, n + 1)), frames
    tags = [t for t, _ in frames]
    assert tags == sorted(tags), "confirms out of order: %r" % frames
    return frames


def test_confirm_select_ok(broker):
    with broker.raw() as c:
        c.handshake()
        confirm_channel(c)
        confirm_channel(c, 2, nowait=True)
        # selecting again is harmless
        c.send(raw.method_frame(1, CONFIRM_SELECT, [("b", False)]))
        c.expect(CONFIRM_SELECT_OK, channel=1)


def test_confirm_delivery_tags(broker, name):
    """Each publish on a confirm channel gets tag 1, 2, 3, ... and every tag
    is confirmed exactly once (individually or by a multiple ack)."""
    q = name("q")
    n = 200
    with broker.raw() as c:
        c.handshake()
        confirm_channel(c)
        c.send(raw.queue_declare(1, q, exclusive=True))
        c.expect(raw.QUEUE_DECLARE_OK)
        for i in range(n):
            publish(c, 1, "", q, b"%d" % i)
        collect_acks(c, 1, n)
        c.send(raw.queue_declare(1, q, passive=True))
        assert c.expect(raw.QUEUE_DECLARE_OK).args[1] == n


def test_confirm_unroutable_and_empty(broker, name):
    """Unroutable (non-mandatory) messages and empty bodies are confirmed
    too; tags are per channel."""
    with broker.raw() as c:
        c.handshake()
        confirm_channel(c, 1)
        confirm_channel(c, 2)
        publish(c, 1, "amq.direct", "it-nobody-bound-" + name("k"), b"lost")
        publish(c, 1, "", name("no-queue"), b"")
        collect_acks(c, 1, 2)
        publish(c, 2, "amq.fanout", "", b"x")
        collect_acks(c, 2, 1)


def test_confirm_after_mandatory_return(broker, name):
    """Mandatory and unroutable on a confirm channel: basic.return (312
    NO_ROUTE, with the content) first, then basic.ack for its tag."""
    q = name("q")
    with broker.raw() as c:
        c.handshake()
        confirm_channel(c)
        c.send(raw.queue_declare(1, q, exclusive=True))
        c.expect(raw.QUEUE_DECLARE_OK)
        publish(c, 1, "", q, b"routed", mandatory=True)          # tag 1
        publish(c, 1, "amq.direct", "nobody", b"bounced", mandatory=True)   # tag 2
        publish(c, 1, "", q, b"routed2", mandatory=True)         # tag 3
        events = []
        acked = set()
        while len(acked) < 3:
            f = c.read_method()
            if f.method == (60, 50):
                assert f.args == [312, "NO_ROUTE", "amq.direct", "nobody"]
                h = c.read_frame()
                b = c.read_frame()
                assert h.type == raw.FRAME_HEADER and (b.type, b.payload) == (raw.FRAME_BODY,
                                                                              b"bounced")
                events.append("return")
            else:
                assert f.method == raw.BASIC_ACK, f
                tag, multiple = f.args
                new = set(range(1, tag + 1)) - acked if multiple else {tag}
                acked |= new
                if 2 in new:
                    events.append("ack2")
        assert events == ["return", "ack2"]


def test_pika_confirm_delivery(conn, name):
    ch = conn.channel()
    ch.confirm_delivery()
    q = name("q")
    ch.queue_declare(q, exclusive=True)
    for i in range(20):
        ch.basic_publish("", q, b"%d" % i, pika.BasicProperties(delivery_mode=2))
    assert ch.queue_declare(q, passive=True).method.message_count == 20
    with pytest.raises(pex.UnroutableError) as ei:
        ch.basic_publish("amq.direct", name("nobody"), b"x", mandatory=True)
    (ret,) = ei.value.messages
    assert ret.method.reply_code == 312 and ret.method.reply_text == "NO_ROUTE"
    assert ret.body == b"x"
    ch.basic_publish("", q, b"after")        # the channel carries on


def test_confirm_publish_missing_exchange(conn, name):
    ch = conn.channel()
    ch.confirm_delivery()
    x = name("x")
    with channel_error(404, "NOT_FOUND - no exchange '%s' in vhost '/'" % x):
        ch.basic_publish(x, "k", b"x")


def test_confirm_multiple_consumers_and_acks_unaffected(broker, name):
    """Consumer acks on a confirm channel do not disturb publisher tags."""
    q = name("q")
    with broker.raw() as c:
        c.handshake()
        confirm_channel(c)
        c.send(raw.queue_declare(1, q, exclusive=True))
        c.expect(raw.QUEUE_DECLARE_OK)
        publish(c, 1, "", q, b"a")
        collect_acks(c, 1, 1)
        c.send(raw.basic_get(1, q, no_ack=False))
        g = c.expect(raw.BASIC_GET_OK)
        c.read_frame()
        c.read_frame()
        assert g.args[0] == 1          # consumer delivery tag space is separate
        c.send(raw.method_frame(1, raw.BASIC_ACK, [("Q", 1), ("b", False)]))
        publish(c, 1, "", q, b"b")
        f = c.read_method()
        assert f.method == raw.BASIC_ACK and f.args[0] == 2, f
