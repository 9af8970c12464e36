# SPDX-License-Identifier: MIT
# Malformed and out-of-order input over raw sockets. Each case asserts the
# exact connection.close RabbitMQ sends (code, class id, method id; the text
# exactly where it is plain English, by its "NAME - " prefix where RabbitMQ
# embeds an Erlang term dump), and then that the broker still serves a fresh
# client.
import struct
import time

import pytest

import amqp_raw as raw
from amqp_raw import FRAME_BODY, FRAME_HEADER, FRAME_METHOD
from helpers import assert_serves

BAD_HEADERS = [
    b"AMQP\x00\x00\x09\x02",      # 0-9-2
    b"AMQP\x00\x00\x0a\x00",      # 0-10
    b"AMQP\x00\x01\x00\x00",      # AMQP 1.0
    b"AMQP\x03\x01\x00\x00",      # AMQP 1.0 SASL layer
    b"AMQP\x00\x00\x09\x00",
    b"XXXXXXXX",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
]


@pytest.mark.parametrize("header", BAD_HEADERS, ids=lambda h: repr(h[:8]))
def test_bad_protocol_header(broker, header):
    """Any other header: the server answers with the header it supports and
    closes the socket."""
    with broker.raw() as c:
        c.send(header)
        assert c.wait_closed() == raw.PROTOCOL_HEADER
    assert_serves(broker)


def test_header_split_across_writes(broker):
    """The protocol header may arrive in pieces."""
    with broker.raw() as c:
        c.send(raw.PROTOCOL_HEADER[:3])
        c.send(raw.PROTOCOL_HEADER[3:])
        c.expect(raw.CONNECTION_START, channel=0)


def opened(broker, **kw):
    c = broker.raw()
    c.handshake(**kw)
    c.open_channel(1)
    return c


def check_close(broker, c, code, text, class_id=0, method_id=0, wait_socket=True):
    """Expects connection.close with these fields, answers close-ok and (with
    wait_socket) waits for the broker to close the socket. After a framing
    error RabbitMQ closes the socket 3 s later rather than on close-ok, so
    most framing cases skip that wait to keep the suite fast."""
    if wait_socket:
        got = c.expect_connection_close()
    else:
        f = c.expect(raw.CONNECTION_CLOSE, channel=0)
        c.send(raw.connection_close_ok())
        got = tuple(f.args)
    c.close()
    assert got[0] == code, "expected reply code %d, got %r" % (code, got)
    if text.endswith("*"):
        assert got[1].startswith(text[:-1]), "reply text %r, expected prefix %r" % (
            got[1], text[:-1])
    else:
        assert got[1] == text
    assert (got[2], got[3]) == (class_id, method_id), got
    assert_serves(broker)


def test_bad_frame_end(broker):
    c = opened(broker)
    c.send(raw.channel_open(2)[:-1] + b"\x00")
    # RabbitMQ: "FRAME_ERROR - type 1, all octets = <<0,20,0,10,0>>:
    # {invalid_frame_end_marker,0}"
    check_close(broker, c, 501, "FRAME_ERROR - *")


def test_bad_frame_end_on_body(broker):
    c = opened(broker)
    c.send(raw.basic_publish(1, "", "nowhere"))
    c.send(raw.header_frame(1, 3))
    c.send(raw.frame(FRAME_BODY, 1, b"abc", end=0xCD))
    check_close(broker, c, 501, "FRAME_ERROR - *", wait_socket=False)


def test_oversized_frame_default_frame_max(broker):
    """A body frame of frame_max + 1 payload octets with the default 131072
    negotiated: 501 (RabbitMQ: "FRAME_ERROR - type 3, all octets = <<>>:
    {frame_too_large,131073,131064}")."""
    c = opened(broker)
    c.send(raw.basic_publish(1, "", "nowhere"))
    c.send(raw.header_frame(1, 200000))
    c.send(raw.frame(FRAME_BODY, 1, b"x" * 131073))
    check_close(broker, c, 501, "FRAME_ERROR - *", wait_socket=False)


def test_oversized_frame_negotiated_frame_max(broker):
    """The client negotiated frame_max 4096 (below the server's): a 4097-octet
    method frame is too large."""
    c = opened(broker, frame_max=4096)
    big = {"x-pad": "y" * 4200}
    c.send(raw.queue_declare(1, "big-args", arguments=big))
    check_close(broker, c, 501, "FRAME_ERROR - *", wait_socket=False)


def test_oversized_frame_rejected_from_its_header(broker):
    """The size is checked when the frame header arrives: the broker must not
    wait for (or buffer) a 2 GiB payload."""
    c = opened(broker)
    c.send(struct.pack(">BHI", FRAME_BODY, 1, 0x7FFFFFF0) + b"x" * 100)
    check_close(broker, c, 501, "FRAME_ERROR - *", wait_socket=False)


def test_unknown_frame_type(broker):
    c = opened(broker)
    c.send(raw.frame(7, 1, b"abc"))
    # RabbitMQ: 'FRAME_ERROR - type 7, all octets = <<"abc">>: unknown_frame'
    check_close(broker, c, 501, "FRAME_ERROR - *", wait_socket=False)


def test_truncated_method_frame(broker):
    """A method frame too short to hold class and method ids."""
    c = opened(broker)
    c.send(raw.frame(FRAME_METHOD, 1, b"\x00\x14\x00"))
    # RabbitMQ: "FRAME_ERROR - type 1, all octets = <<0,20,0>>: unknown_frame"
    check_close(broker, c, 501, "FRAME_ERROR - *", wait_socket=False)


def test_empty_method_frame(broker):
    c = opened(broker)
    c.send(raw.frame(FRAME_METHOD, 1, b""))
    check_close(broker, c, 501, "FRAME_ERROR - *", wait_socket=False)


def test_truncated_frame_then_eof(broker):
    """EOF in the middle of a frame: the broker closes its side, and nothing
    is left behind."""
    c = opened(broker)
    c.send(struct.pack(">BHI", FRAME_METHOD, 1, 100) + b"\x00\x32\x00\x0a")
    c.sock.shutdown(1)
    c.wait_closed()
    c.close()
    assert_serves(broker)


def test_truncated_field_table(broker):
    """queue.declare whose arguments table declares 100 octets but the frame
    ends after 2: RabbitMQ "FRAME_ERROR - cannot decode <<...>>", with the
    method's ids."""
    c = opened(broker)
    payload = raw.method_payload(raw.QUEUE_DECLARE, [
        ("H", 0), ("s", "q"), ("b", False)]) + struct.pack(">I", 100) + b"\x01a"
    c.send(raw.frame(FRAME_METHOD, 1, payload))
    check_close(broker, c, 501, "FRAME_ERROR - cannot decode *", 50, 10)


def test_shortstr_overruns_frame(broker):
    c = opened(broker)
    c.send(raw.frame(FRAME_METHOD, 1, struct.pack(">HHH", 50, 10, 0) + b"\xffabc"))
    check_close(broker, c, 501, "FRAME_ERROR - cannot decode *", 50, 10)


def test_trailing_bytes_after_method(broker):
    """Octets after a method's last field are an error, not ignored."""
    c = opened(broker)
    payload = raw.method_payload(raw.CHANNEL_FLOW, [("b", True)]) + b"junk"
    c.send(raw.frame(FRAME_METHOD, 1, payload))
    check_close(broker, c, 501, "FRAME_ERROR - cannot decode *", 20, 20)


def _declare_with_raw_table(table_bytes):
    return raw.method_frame(1, raw.QUEUE_DECLARE, [
        ("H", 0), ("s", "bad-table"), ("b", False), ("b", False), ("b", False),
        ("b", False), ("b", False), ("raw", table_bytes)])


def assert_closed_maybe_with(broker, c, codes):
    """The broker closes the connection; RabbitMQ drops the socket without a
    connection.close here (its decoder crashes the connection process). A
    broker that does send connection.close must use one of codes, and close
    the socket once we answer close-ok."""
    deadline = time.monotonic() + 10
    try:
        while True:
            f = c.read_frame(timeout=max(0.0, deadline - time.monotonic()))
            if f.type == raw.FRAME_HEARTBEAT:
                continue
            assert f.type == raw.FRAME_METHOD and f.method == raw.CONNECTION_CLOSE, f
            assert f.args[0] in codes, f
            c.send(raw.connection_close_ok())
            c.wait_closed(max(0.1, deadline - time.monotonic()))
            break
    except raw.Closed:
        pass
    c.close()
    assert_serves(broker)


def test_unknown_field_type_in_table(broker):
    c = opened(broker)
    c.send(_declare_with_raw_table(struct.pack(">I", 3) + b"\x01aZ"))
    assert_closed_maybe_with(broker, c, {501, 502})


def test_nested_table_overruns_outer(broker):
    inner = struct.pack(">I", 50) + b"\x01bt\x01"
    tbl = b"\x01aF" + inner
    c = opened(broker)
    c.send(_declare_with_raw_table(struct.pack(">I", len(tbl)) + tbl))
    assert_closed_maybe_with(broker, c, {501, 502})


def test_unknown_class_id(broker):
    c = opened(broker)
    c.send(raw.method_frame(1, (99, 10)))
    assert_closed_maybe_with(broker, c, {503, 540})


def test_unknown_method_id(broker):
    c = opened(broker)
    c.send(raw.method_frame(1, (50, 99)))
    assert_closed_maybe_with(broker, c, {503, 540})


@pytest.mark.parametrize("cm,fields", [
    (raw.BASIC_PUBLISH, [("H", 0), ("s", ""), ("s", "x"), ("b", False), ("b", False)]),
    (raw.QUEUE_DECLARE, [("H", 0), ("s", "x"), ("b", False), ("b", False), ("b", False),
                         ("b", False), ("b", False), ("T", {})]),
    (raw.CONNECTION_OPEN, [("s", "/"), ("s", ""), ("b", False)]),
    (raw.CONNECTION_TUNE_OK, [("H", 2047), ("I", 131072), ("H", 0)]),
], ids=["basic.publish", "queue.declare", "connection.open-again", "connection.tune-ok-again"])
def test_wrong_method_on_channel_zero(broker, cm, fields):
    """Channel methods on channel 0, and handshake methods once running."""
    with broker.raw() as c:
        c.handshake()
        c.send(raw.method_frame(0, cm, fields))
        check_close(broker, c, 504,
                    "CHANNEL_ERROR - unexpected method in connection state running", *cm)


def test_content_header_without_method(broker):
    c = opened(broker)
    c.send(raw.header_frame(1, 5))
    check_close(broker, c, 505,
                "UNEXPECTED_FRAME - expected method frame, got non method frame instead")


def test_content_body_without_method(broker):
    c = opened(broker)
    c.send(raw.body_frame(1, b"hello"))
    check_close(broker, c, 505,
                "UNEXPECTED_FRAME - expected method frame, got non method frame instead")


def test_body_after_zero_size_header(broker):
    """A zero body-size header completes the message; a body frame after it
    is unexpected."""
    c = opened(broker)
    c.send(raw.basic_publish(1, "", "nowhere"))
    c.send(raw.header_frame(1, 0))
    c.send(raw.body_frame(1, b"12345"))
    check_close(broker, c, 505,
                "UNEXPECTED_FRAME - expected method frame, got non method frame instead")


def test_method_instead_of_content_header(broker):
    c = opened(broker)
    c.send(raw.basic_publish(1, "", "nowhere"))
    c.send(raw.basic_publish(1, "", "nowhere"))
    check_close(broker, c, 505, "UNEXPECTED_FRAME - expected content header for class 60, "
                "got non content header frame instead", 60, 40)


def test_method_between_header_and_body(broker):
    c = opened(broker)
    c.send(raw.basic_publish(1, "", "nowhere"))
    c.send(raw.header_frame(1, 10))
    c.send(raw.basic_publish(1, "", "nowhere"))
    check_close(broker, c, 505, "UNEXPECTED_FRAME - expected content body, "
                "got non content body frame instead", 60, 40)


def test_content_header_class_mismatch(broker):
    c = opened(broker)
    c.send(raw.basic_publish(1, "", "nowhere"))
    c.send(raw.header_frame(1, 3, class_id=50))
    check_close(broker, c, 505, "UNEXPECTED_FRAME - expected content header for class 60, "
                "got one for class 50 instead", 60, 40)


@pytest.mark.parametrize("ftype,payload", [
    (FRAME_HEADER, struct.pack(">HHQH", 60, 0, 3, 0)),
    (FRAME_BODY, b"abc"),
], ids=["header", "body"])
def test_content_frame_on_channel_zero(broker, ftype, payload):
    # RabbitMQ: 'UNEXPECTED_FRAME - type 3, all octets = <<"abc">>'
    with broker.raw() as c:
        c.handshake()
        c.send(raw.frame(ftype, 0, payload))
        check_close(broker, c, 505, "UNEXPECTED_FRAME - *")


def test_heartbeat_on_nonzero_channel(broker):
    c = opened(broker)
    c.send(raw.frame(raw.FRAME_HEARTBEAT, 1, b""))
    # RabbitMQ: "UNEXPECTED_FRAME - type 8, all octets = <<>>"
    check_close(broker, c, 505, "UNEXPECTED_FRAME - *")


def test_heartbeat_with_payload(broker):
    with broker.raw() as c:
        c.handshake()
        c.send(raw.frame(raw.FRAME_HEARTBEAT, 0, b"xx"))
        check_close(broker, c, 501, "FRAME_ERROR - *", wait_socket=False)


def test_heartbeat_accepted_without_negotiation(broker):
    """A heartbeat frame on channel 0 is always fine, even with heartbeat 0."""
    with broker.raw() as c:
        c.handshake()
        c.send(raw.heartbeat_frame())
        c.open_channel(1)


def test_method_on_unopened_channel(broker):
    with broker.raw() as c:
        c.handshake()
        c.send(raw.queue_declare(5, "x"))
        check_close(broker, c, 504, "CHANNEL_ERROR - expected 'channel.open'", 50, 10)


@pytest.mark.parametrize("cm", [raw.CHANNEL_CLOSE, raw.CHANNEL_CLOSE_OK],
                         ids=["channel.close", "channel.close-ok"])
def test_close_on_unopened_channel(broker, cm):
    with broker.raw() as c:
        c.handshake()
        if cm == raw.CHANNEL_CLOSE:
            c.send(raw.channel_close(4))
        else:
            c.send(raw.channel_close_ok(4))
        check_close(broker, c, 504, "CHANNEL_ERROR - expected 'channel.open'", *cm)


def test_method_on_closed_channel(broker):
    with broker.raw() as c:
        c.handshake()
        c.open_channel(1)
        c.send(raw.channel_close(1))
        c.expect(raw.CHANNEL_CLOSE_OK, channel=1)
        c.send(raw.queue_declare(1, ""))
        check_close(broker, c, 504, "CHANNEL_ERROR - expected 'channel.open'", 50, 10)


def test_channel_open_twice(broker):
    c = opened(broker)
    c.send(raw.channel_open(1))
    check_close(broker, c, 504, "CHANNEL_ERROR - second 'channel.open' seen", 20, 10)


def test_frames_discarded_while_channel_closing(broker):
    """After the broker sends channel.close it ignores everything on that
    channel but close-ok; the channel number can then be reused."""
    with broker.raw() as c:
        c.handshake()
        c.open_channel(1)
        c.send(raw.queue_declare(1, "no-such-queue-for-sure", passive=True))
        f = c.expect(raw.CHANNEL_CLOSE, channel=1)
        assert f.args[0] == 404
        c.send(raw.queue_declare(1, ""))        # discarded
        c.send(raw.basic_publish(1, "", "x"))   # discarded, with its content
        c.send(raw.header_frame(1, 0))
        c.send(raw.channel_close_ok(1))
        c.open_channel(1)
        c.send(raw.queue_declare(1, "", exclusive=True))
        ok = c.expect(raw.QUEUE_DECLARE_OK, channel=1)
        assert ok.args[0].startswith("amq.gen-")


def test_channel_count_limit(broker):
    """channel_max bounds the number of open channels: with channel_max 2
    negotiated, a third channel.open gets 530 (class/method 0/0)."""
    with broker.raw() as c:
        c.handshake(channel_max=2)
        c.open_channel(1)
        c.open_channel(2)
        c.send(raw.channel_open(3))
        check_close(broker, c, 530, "NOT_ALLOWED - number of channels opened (2) has reached "
                    "the negotiated channel_max (2)")


def test_channel_count_limit_counts_closed_channels_out(broker):
    with broker.raw() as c:
        c.handshake(channel_max=2)
        c.open_channel(1)
        c.open_channel(2)
        c.send(raw.channel_close(2))
        c.expect(raw.CHANNEL_CLOSE_OK, channel=2)
        c.open_channel(3)


@pytest.mark.parametrize("negotiated,number", [(None, 2048), (10, 65535)])
def test_channel_number_above_channel_max(broker, negotiated, number):
    """A channel number above channel_max. RabbitMQ only limits the count of
    open channels, so it opens the channel (open-ok); a broker that refuses
    the number must close the connection with 504 CHANNEL_ERROR or 530
    NOT_ALLOWED. Either way others are served."""
    with broker.raw() as c:
        c.handshake(channel_max=negotiated)
        c.send(raw.channel_open(number))
        f = c.read_method()
        if f.method == raw.CHANNEL_OPEN_OK:
            assert f.channel == number
        else:
            assert f.method == raw.CONNECTION_CLOSE and f.args[0] in (504, 530), f
    assert_serves(broker)


def test_garbage_after_handshake_does_not_affect_others(broker):
    """A connection that sends random junk is dropped; a concurrent well-
    behaved connection is untouched."""
    good = broker.connect()
    ch = good.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    with broker.raw() as c:
        c.handshake()
        c.send(b"\xff" * 64)
        f = c.expect(raw.CONNECTION_CLOSE, channel=0)
        assert f.args[0] == 501, f
    ch.basic_publish("", q, b"ok")
    assert ch.basic_get(q, auto_ack=True)[2] == b"ok"
    good.close()


def test_default_channel_max_2047(broker):
    """With the default channel_max, 2047 channels open and the 2048th is a
    530 (the channel numbers themselves are 1..2048, all allowed)."""
    with broker.raw() as c:
        c.handshake()
        c.send(b"".join(raw.channel_open(n) for n in range(1, 2048)))
        opened = set()
        while len(opened) < 2047:
            f = c.expect(raw.CHANNEL_OPEN_OK)
            opened.add(f.channel)
        assert opened == set(range(1, 2048))
        c.send(raw.channel_open(2048))
        check_close(broker, c, 530, "NOT_ALLOWED - number of channels opened (2047) has "
                    "reached the negotiated channel_max (2047)")
