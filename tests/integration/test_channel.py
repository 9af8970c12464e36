# SPDX-License-Identifier: MIT
# Channel class: open, close/close-ok both ways, flow, and which errors close
# only the channel versus the whole connection.
import pika.exceptions as pex
import pytest

import amqp_raw as raw
from helpers import assert_serves, channel_error, connection_error, wait_for


def test_open_close_many(conn):
    chans = [conn.channel() for _ in range(20)]
    numbers = [c.channel_number for c in chans]
    assert len(set(numbers)) == 20
    for c in chans[::2]:
        c.close()
    for c in chans[1::2]:
        assert c.is_open
        c.queue_declare("", exclusive=True)
    more = conn.channel()
    more.queue_declare("", exclusive=True)


def test_channel_open_ok_raw(broker):
    """channel.open-ok carries an empty longstr (the reserved channel-id)."""
    with broker.raw() as c:
        c.handshake()
        c.send(raw.channel_open(1))
        f = c.expect(raw.CHANNEL_OPEN_OK, channel=1)
        assert f.args == [b""]
        c.send(raw.channel_close(1))
        c.expect(raw.CHANNEL_CLOSE_OK, channel=1)


def test_reopen_same_number(broker):
    with broker.raw() as c:
        c.handshake()
        for _ in range(3):
            c.open_channel(7)
            c.send(raw.channel_close(7))
            c.expect(raw.CHANNEL_CLOSE_OK, channel=7)


def test_flow_active(broker):
    """channel.flow(active=true) is answered with flow-ok(active=true)."""
    with broker.raw() as c:
        c.handshake()
        c.open_channel(1)
        c.send(raw.method_frame(1, raw.CHANNEL_FLOW, [("b", True)]))
        f = c.expect(raw.CHANNEL_FLOW_OK, channel=1)
        assert f.args == [True]


def test_flow_inactive_not_implemented(broker):
    """RabbitMQ does not support a client stopping deliveries with
    channel.flow(active=false): 540 NOT_IMPLEMENTED, a connection error."""
    with broker.raw() as c:
        c.handshake()
        c.open_channel(1)
        c.send(raw.method_frame(1, raw.CHANNEL_FLOW, [("b", False)]))
        assert c.expect_connection_close() == (
            540, "NOT_IMPLEMENTED - active=false", 20, 20)
    assert_serves(broker)


def test_channel_error_closes_only_that_channel(conn, name):
    """A soft error (404) closes the channel; the connection and its other
    channels keep working, and a new channel can be opened."""
    a = conn.channel()
    b = conn.channel()
    q = name("q")
    b.queue_declare(q, exclusive=True)
    with channel_error(404, "NOT_FOUND - no queue '%s-missing' in vhost '/'" % q):
        a.queue_declare(q + "-missing", passive=True)
    assert a.is_closed
    assert conn.is_open and b.is_open
    b.basic_publish("", q, b"x")
    assert b.basic_get(q, auto_ack=True)[2] == b"x"
    c = conn.channel()
    assert c.queue_declare(q, passive=True).method.queue == q


def test_channel_error_raw_then_reuse(broker):
    """Raw view of a soft error: channel.close with code, text, class and
    method ids; after close-ok the same channel number can be reopened."""
    with broker.raw() as c:
        c.handshake()
        c.open_channel(1)
        c.open_channel(2)
        c.send(raw.queue_declare(1, "it-no-such-queue-raw", passive=True))
        code, text, cls, mth = c.expect_channel_close(1)
        assert (code, text, cls, mth) == (
            404, "NOT_FOUND - no queue 'it-no-such-queue-raw' in vhost '/'", 50, 10)
        c.send(raw.queue_declare(2, "", exclusive=True))
        c.expect(raw.QUEUE_DECLARE_OK, channel=2)
        c.open_channel(1)


def test_connection_error_closes_everything(broker, name):
    """A hard error (503 unknown exchange type) closes the connection and
    all its channels; other connections are unaffected."""
    other = broker.connect()
    och = other.channel()
    c = broker.connect()
    ch1 = c.channel()
    ch2 = c.channel()
    x = name("x")
    with connection_error(503, "COMMAND_INVALID - unknown exchange type 'no-such-type'"):
        ch1.exchange_declare(x, exchange_type="no-such-type")
    assert c.is_closed
    assert ch2.is_closed
    with pytest.raises((pex.ConnectionWrongStateError, pex.ChannelWrongStateError)):
        ch2.queue_declare("", exclusive=True)
    q = och.queue_declare("", exclusive=True).method.queue
    assert q.startswith("amq.gen-")
    other.close()


def test_client_channel_close(broker):
    """Closing a channel cancels its consumers and requeues their unacked
    deliveries."""
    c = broker.connect()
    ch = c.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    cons = c.channel()
    got = []
    cons.basic_consume(q, lambda *a: got.append(a))
    assert ch.queue_declare(q, passive=True).method.consumer_count == 1
    ch.basic_publish("", q, b"unacked")
    wait_for(lambda: got, what="a delivery", conn=c)
    cons.close()
    wait_for(lambda: ch.queue_declare(q, passive=True).method.consumer_count == 0,
             what="consumer gone after its channel closed")
    wait_for(lambda: ch.queue_declare(q, passive=True).method.message_count == 1,
             what="the unacked delivery requeued")
    m, _, body = ch.basic_get(q, auto_ack=True)
    assert body == b"unacked" and m.redelivered
    c.close()
