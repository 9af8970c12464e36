# SPDX-License-Identifier: MIT
# Publishing: mandatory returns, properties round-tripped (decoded and byte-
# exact), bodies split across frames and reassembled, empty bodies, errors.
import datetime
import decimal
import struct

import pika
import pika.exceptions as pex
import pytest

import amqp_raw as raw
from helpers import (Collector, assert_serves, channel_error, connection_error, wait_for,
                     wait_queue_count)

ALL_PIKA_HEADERS = {
    "longstr": "text \u00e9\u4e2d",            # S
    "bytes": b"\x00\x01\xfe\xff",              # x
    "true": True, "false": False,              # t
    "int32": -2147483648,                      # I
    "int64": 2 ** 40,                          # l
    "decimal": decimal.Decimal("3.14159"),     # D
    "timestamp": datetime.datetime(2024, 2, 29, 12, 34, 56),   # T
    "table": {"inner": "v", "n": 1, "deeper": {"x": [1, "two"]}},   # F
    "array": [1, "two", True, None, {"k": "v"}, [3]],               # A
    "void": None,                              # V
    "empty-string": "",
    "empty-table": {},
    "empty-array": [],
}


def full_properties(headers=None):
    return pika.BasicProperties(
        content_type="application/x-test",
        content_encoding="gzip",
        headers=ALL_PIKA_HEADERS if headers is None else headers,
        delivery_mode=2,
        priority=7,
        correlation_id="corr-\u00e9",
        reply_to="reply-queue",
        expiration="600000",
        message_id="msg-1",
        timestamp=1700000000,
        type="test-type",
        user_id="guest",
        app_id="warren-it",
        cluster_id="cluster-x",
    )


PROPERTY_NAMES = ["content_type", "content_encoding", "headers", "delivery_mode", "priority",
                  "correlation_id", "reply_to", "expiration", "message_id", "timestamp",
                  "type", "user_id", "app_id", "cluster_id"]


def assert_same_properties(got, sent):
    for f in PROPERTY_NAMES:
        assert getattr(got, f) == getattr(sent, f), "property %s: sent %r, got %r" % (
            f, getattr(sent, f), getattr(got, f))


def test_properties_roundtrip_get(ch, name):
    q = name("q")
    ch.queue_declare(q, exclusive=True)
    sent = full_properties()
    ch.basic_publish("", q, b"body", sent)
    m, props, body = ch.basic_get(q, auto_ack=True)
    assert body == b"body"
    assert_same_properties(props, sent)


def test_properties_roundtrip_consume(conn, name):
    ch = conn.channel()
    q = name("q")
    ch.queue_declare(q, exclusive=True)
    sent = full_properties()
    col = Collector()
    ch.basic_consume(q, col, auto_ack=True)
    ch.basic_publish("", q, b"body", sent)
    (m, props, body), = col.wait(conn, 1)
    assert body == b"body"
    assert (m.exchange, m.routing_key, m.redelivered) == ("", q, False)
    assert_same_properties(props, sent)


def test_no_properties(ch, name):
    q = name("q")
    ch.queue_declare(q, exclusive=True)
    ch.basic_publish("", q, b"plain")
    m, props, body = ch.basic_get(q, auto_ack=True)
    for f in PROPERTY_NAMES:
        assert getattr(props, f) is None, f


# Every field type of RabbitMQ's table grammar, as raw octets.
RAW_HEADER_TABLE = b"".join([
    raw.shortstr("t") + b"t\x01",
    raw.shortstr("b") + b"b\xfe",
    raw.shortstr("B") + b"B\xfe",
    raw.shortstr("s") + b"s" + struct.pack(">h", -2),
    raw.shortstr("u") + b"u" + struct.pack(">H", 65534),
    raw.shortstr("I") + b"I" + struct.pack(">i", -3),
    raw.shortstr("i") + b"i" + struct.pack(">I", 4000000000),
    raw.shortstr("l") + b"l" + struct.pack(">q", -(2 ** 60)),
    raw.shortstr("f") + b"f" + struct.pack(">f", 1.5),
    raw.shortstr("d") + b"d" + struct.pack(">d", -2.25),
    raw.shortstr("D") + b"D\x02" + struct.pack(">i", 31415),
    raw.shortstr("S") + b"S" + raw.longstr(b"long string"),
    raw.shortstr("T") + b"T" + struct.pack(">Q", 1700000000),
    raw.shortstr("V") + b"V",
    raw.shortstr("x") + b"x" + raw.longstr(b"\x00\xff\x00"),
    raw.shortstr("A") + b"A" + raw.longstr(b"I" + struct.pack(">i", 1) + b"S" + raw.longstr(b"a")),
    raw.shortstr("F") + b"F" + raw.longstr(raw.shortstr("k") + b"t\x00"),
])


def raw_properties():
    """All 14 basic properties set, encoded by hand: (flags, octets)."""
    fields = [
        (15, raw.shortstr("text/plain")),
        (14, raw.shortstr("identity")),
        (13, struct.pack(">I", len(RAW_HEADER_TABLE)) + RAW_HEADER_TABLE),
        (12, b"\x01"),
        (11, b"\x09"),
        (10, raw.shortstr("c-id")),
        (9, raw.shortstr("r-to")),
        (8, raw.shortstr("99999")),
        (7, raw.shortstr("m-id")),
        (6, struct.pack(">Q", 1234567890)),
        (5, raw.shortstr("typ")),
        (4, raw.shortstr("guest")),
        (3, raw.shortstr("app")),
        (2, raw.shortstr("clu")),
    ]
    flags = 0
    for bit, _ in fields:
        flags |= 1 << bit
    return flags, b"".join(v for _, v in fields)


def test_properties_byte_exact(broker, name):
    """The content header (all properties, a table with every field type)
    is delivered byte for byte as published, both by basic.get and by
    basic.deliver."""
    q = name("q")
    flags, props = raw_properties()
    body = b"exact"
    with broker.raw() as c:
        c.handshake()
        c.open_channel(1)
        c.send(raw.queue_declare(1, q, exclusive=True))
        c.expect(raw.QUEUE_DECLARE_OK, channel=1)
        sent_header = struct.pack(">HHQH", 60, 0, len(body), flags) + props
        for _ in range(2):
            c.send(raw.basic_publish(1, "", q))
            c.send(raw.frame(raw.FRAME_HEADER, 1, sent_header))
            c.send(raw.body_frame(1, body))
        c.send(raw.basic_get(1, q, no_ack=True))
        f = c.expect(raw.BASIC_GET_OK, channel=1)
        h = c.read_frame()
        assert h.type == raw.FRAME_HEADER and h.channel == 1
        assert h.payload == sent_header
        b = c.read_frame()
        assert (b.type, b.payload) == (raw.FRAME_BODY, body)
        c.send(raw.basic_consume(1, q, "ctag-exact", no_ack=True))
        c.expect((60, 21), channel=1)
        f = c.expect(raw.BASIC_DELIVER, channel=1)
        assert f.args[0] == "ctag-exact" and f.args[3:] == ["", q]
        h = c.read_frame()
        assert h.payload == sent_header
        b = c.read_frame()
        assert b.payload == body


BODY_SIZES = [0, 1, 131063, 131064, 131065, 3 * 131072 + 17, 1 << 20]


@pytest.mark.parametrize("size", BODY_SIZES)
def test_body_sizes(ch, name, size):
    """Bodies of every size around the frame boundary (frame_max 131072
    leaves 131064 octets per body frame) come back intact."""
    q = name("q")
    ch.queue_declare(q, exclusive=True)
    body = bytes((i * 7 + size) & 0xFF for i in range(size))
    ch.basic_publish("", q, body)
    m, props, got = ch.basic_get(q, auto_ack=True)
    assert len(got) == size and got == body


def test_body_reassembled_across_small_frame_max(broker, name):
    """A publisher that negotiated frame_max 4096 sends a 50000-octet body
    in 13 frames; a consumer with the default frame_max gets it whole, and
    vice versa."""
    small = broker.connect(frame_max=4096)
    big = broker.connect()
    sch, bch = small.channel(), big.channel()
    q = name("q")
    bch.queue_declare(q, auto_delete=True)
    body = bytes(range(256)) * 195 + b"tail"
    sch.basic_publish("", q, body)
    wait_queue_count(bch, q, 1)       # published on another connection
    assert bch.basic_get(q, auto_ack=True)[2] == body
    bch.basic_publish("", q, body * 3)
    col = Collector()
    sch.basic_consume(q, col, auto_ack=True)
    col.wait(small, 1)
    assert col.bodies == [body * 3]
    small.close()
    big.close()


def test_body_in_tiny_frames_raw(broker, name):
    """A body sent as 1-octet frames is reassembled; an empty body needs no
    body frame at all."""
    q = name("q")
    with broker.raw() as c:
        c.handshake()
        c.open_channel(1)
        c.send(raw.queue_declare(1, q, exclusive=True))
        c.expect(raw.QUEUE_DECLARE_OK, channel=1)
        body = b"reassemble me"
        c.send(raw.basic_publish(1, "", q))
        c.send(raw.header_frame(1, len(body)))
        c.send(b"".join(raw.body_frame(1, body[i:i + 1]) for i in range(len(body))))
        c.send(raw.basic_publish(1, "", q))
        c.send(raw.header_frame(1, 0))
        for expected in (body, b""):
            c.send(raw.basic_get(1, q, no_ack=False))
            f = c.expect(raw.BASIC_GET_OK, channel=1)
            h = c.read_frame()
            assert h.type == raw.FRAME_HEADER
            assert struct.unpack(">Q", h.payload[4:12])[0] == len(expected)
            got = b""
            while len(got) < len(expected):
                bf = c.read_frame()
                assert bf.type == raw.FRAME_BODY
                got += bf.payload
            assert got == expected
            c.send(raw.method_frame(1, raw.BASIC_ACK, [("Q", f.args[0]), ("b", False)]))
        # an empty body is delivered without a body frame: the next frame
        # is the reply to this get
        c.send(raw.basic_get(1, q))
        c.expect(raw.BASIC_GET_EMPTY, channel=1)


def test_content_interleaved_with_other_channels(broker, name):
    """Frames of one channel's content may be interleaved with frames of
    other channels and with heartbeats; each channel assembles its own."""
    q = name("q")
    with broker.raw() as c:
        c.handshake()
        c.open_channel(1)
        c.open_channel(2)
        c.send(raw.queue_declare(1, q, exclusive=True))
        c.expect(raw.QUEUE_DECLARE_OK)
        c.send(raw.basic_publish(1, "", q))
        c.send(raw.header_frame(1, 6))
        c.send(raw.basic_publish(2, "", q))
        c.send(raw.body_frame(1, b"one-"))
        c.send(raw.heartbeat_frame())
        c.send(raw.header_frame(2, 3))
        c.send(raw.body_frame(2, b"two"))
        c.send(raw.body_frame(1, b"ch"))

        def count():
            c.send(raw.queue_declare(1, q, passive=True))
            return c.expect(raw.QUEUE_DECLARE_OK, channel=1).args[1] == 2
        wait_for(count, what="both messages queued")   # two channels: no order
        got = []
        for _ in range(2):
            c.send(raw.basic_get(1, q))
            c.expect(raw.BASIC_GET_OK, channel=1)
            assert c.read_frame().type == raw.FRAME_HEADER
            got.append(c.read_frame().payload)
        assert sorted(got) == [b"one-ch", b"two"]


def test_empty_body_consume(conn, name):
    ch = conn.channel()
    q = name("q")
    ch.queue_declare(q, exclusive=True)
    col = Collector()
    ch.basic_consume(q, col, auto_ack=True)
    ch.basic_publish("", q, b"")
    ch.basic_publish("", q, b"", pika.BasicProperties(content_type="x/empty"))
    col.wait(conn, 2)
    assert col.bodies == [b"", b""]
    assert col.deliveries[1][1].content_type == "x/empty"


def test_order_preserved(conn, name):
    ch = conn.channel()
    q = name("q")
    ch.queue_declare(q, exclusive=True)
    n = 500
    for i in range(n):
        ch.basic_publish("", q, b"%d" % i)
    col = Collector()
    ch.basic_consume(q, col, auto_ack=True)
    col.wait(conn, n)
    assert col.bodies == [b"%d" % i for i in range(n)]


def test_mandatory_unroutable_returned(conn, name):
    ch = conn.channel()
    returns = []
    ch.add_on_return_callback(lambda c, m, p, b: returns.append((m, p, b)))
    x = name("x")
    ch.exchange_declare(x, "direct", auto_delete=True)
    keep = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(keep, x, "bound")
    ch.basic_publish(x, "unbound", b"bounce", pika.BasicProperties(message_id="r1"),
                     mandatory=True)
    ch.basic_publish(x, "bound", b"routed", mandatory=True)
    ch.basic_publish(x, "unbound", b"dropped", mandatory=False)
    wait_for(lambda: returns, what="basic.return", conn=conn)
    ch.queue_declare(keep, passive=True)    # round trip: no further returns
    conn.process_data_events(time_limit=0)
    assert len(returns) == 1
    m, p, b = returns[0]
    assert (m.reply_code, m.reply_text, m.exchange, m.routing_key) == (
        312, "NO_ROUTE", x, "unbound")
    assert b == b"bounce" and p.message_id == "r1"
    assert ch.basic_get(keep, auto_ack=True)[2] == b"routed"


def test_mandatory_default_exchange_missing_queue_raw(broker):
    with broker.raw() as c:
        c.handshake()
        c.open_channel(1)
        c.send(raw.basic_publish(1, "", "it-nowhere-queue", mandatory=True))
        c.send(raw.header_frame(1, 3))
        c.send(raw.body_frame(1, b"abc"))
        f = c.expect((60, 50), channel=1)
        assert f.args == [312, "NO_ROUTE", "", "it-nowhere-queue"]
        h = c.read_frame()
        assert h.type == raw.FRAME_HEADER and struct.unpack(">Q", h.payload[4:12])[0] == 3
        b = c.read_frame()
        assert (b.type, b.payload) == (raw.FRAME_BODY, b"abc")


def test_publish_missing_exchange(conn, name):
    ch = conn.channel()
    x = name("x")
    with channel_error(404, "NOT_FOUND - no exchange '%s' in vhost '/'" % x):
        ch.basic_publish(x, "k", b"x")
        ch.queue_declare("", exclusive=True)    # round trip surfaces the close
    assert conn.is_open
    conn.channel().queue_declare("", exclusive=True)


def test_publish_missing_exchange_raw(broker):
    with broker.raw() as c:
        c.handshake()
        c.open_channel(1)
        c.send(raw.basic_publish(1, "it-no-such-exchange", "k"))
        c.send(raw.header_frame(1, 1))
        c.send(raw.body_frame(1, b"x"))
        assert c.expect_channel_close(1) == (
            404, "NOT_FOUND - no exchange 'it-no-such-exchange' in vhost '/'", 60, 40)


def test_user_id_mismatch(conn, name):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    with channel_error(406, "PRECONDITION_FAILED - user_id property set to 'bob' but "
                            "authenticated user was 'guest'"):
        ch.basic_publish("", q, b"x", pika.BasicProperties(user_id="bob"))
        ch.queue_declare(q, passive=True)


def test_immediate_not_implemented(broker):
    """immediate=true is a connection error, 540 NOT_IMPLEMENTED."""
    with broker.raw() as c:
        c.handshake()
        c.open_channel(1)
        c.send(raw.method_frame(1, raw.BASIC_PUBLISH, [
            ("H", 0), ("s", ""), ("s", "x"), ("b", False), ("b", True)]))
        c.send(raw.header_frame(1, 1))
        c.send(raw.body_frame(1, b"x"))
        assert c.expect_connection_close() == (540, "NOT_IMPLEMENTED - immediate=true", 60, 40)
    assert_serves(broker)


def test_max_message_size(dedicated_broker, name):
    """A body over limits.max_message_size: 406 on the channel (RabbitMQ's
    text from rabbit_channel:check_msg_size); the connection survives."""
    b = dedicated_broker({"limits": {"max_message_size": 1000}})
    c = b.connect()
    ch = c.channel()
    q = name("q")
    ch.queue_declare(q, exclusive=True)
    ch.basic_publish("", q, b"x" * 1000)            # exactly the limit: fine
    assert ch.basic_get(q, auto_ack=True)[2] == b"x" * 1000
    with channel_error(406, "PRECONDITION_FAILED - message size 1001 is larger than "
                            "configured max size 1000"):
        ch.basic_publish("", q, b"x" * 1001)
        ch.queue_declare(q, passive=True)
    assert c.is_open
    ch = c.channel()
    assert ch.queue_declare(q, passive=True).method.message_count == 0
    c.close()


def test_max_message_size_raw_before_body(dedicated_broker):
    """The size is known from the content header: the broker can refuse the
    message before its body arrives (and must then discard the body frames
    it still receives without treating them as unexpected)."""
    b = dedicated_broker({"limits": {"max_message_size": 1000}})
    with b.raw() as c:
        c.handshake()
        c.open_channel(1)
        c.send(raw.basic_publish(1, "", "anywhere"))
        c.send(raw.header_frame(1, 5000))
        c.send(raw.body_frame(1, b"y" * 5000))
        code, text, cls, mth = c.expect_channel_close(1)
        assert (code, text, cls, mth) == (
            406, "PRECONDITION_FAILED - message size 5000 is larger than configured "
                 "max size 1000", 60, 40)
        c.open_channel(1)


def test_publish_on_closed_channel_pika(conn):
    ch = conn.channel()
    ch.close()
    with pytest.raises(pex.ChannelWrongStateError):
        ch.basic_publish("", "x", b"x")


def test_connection_error_mid_publish(broker, name):
    """A hard error on one connection does not lose or corrupt messages
    published on another."""
    good = broker.connect()
    gch = good.channel()
    q = name("q")
    gch.queue_declare(q, exclusive=True)
    bad = broker.connect()
    with connection_error(503, "COMMAND_INVALID - unknown exchange type 'nope'"):
        bad.channel().exchange_declare(name("x"), "nope")
    for i in range(10):
        gch.basic_publish("", q, b"%d" % i)
    got = [gch.basic_get(q, auto_ack=True)[2] for _ in range(10)]
    assert got == [b"%d" % i for i in range(10)]
    good.close()
