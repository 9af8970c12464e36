# SPDX-License-Identifier: MIT
# Connection class: protocol header, connection.start (server properties and
# capabilities), SASL PLAIN and AMQPLAIN, tune, open, heartbeats, close.
import concurrent.futures
import socket
import struct
import time

import pika
import pika.exceptions as pex
import pytest

import amqp_raw as raw
from helpers import assert_serves, channel_error, wait_for

CAPABILITIES = ["publisher_confirms", "exchange_exchange_bindings", "basic.nack",
                "consumer_cancel_notify", "connection.blocked", "consumer_priorities",
                "authentication_failure_close", "per_consumer_qos", "direct_reply_to"]


def login_refused(mechanism):
    return ("ACCESS_REFUSED - Login was refused using authentication mechanism %s. "
            "For details see the broker logfile." % mechanism)


def test_connection_start(broker):
    with broker.raw() as c:
        f = c.start()
        major, minor, props, mechanisms, locales = f.args
        assert (major, minor) == (0, 9)
        caps = props["capabilities"]
        for cap in CAPABILITIES:
            assert caps.get(cap) is True, "capability %s missing or not true: %r" % (cap, caps)
        for key in ("product", "version", "platform"):
            assert isinstance(props.get(key), bytes) and props[key], key
        assert set(mechanisms.split()) >= {b"PLAIN", b"AMQPLAIN"}
        assert b"en_US" in locales.split()


def test_connection_tune_defaults(broker):
    """connection.tune proposes the defaults: channel_max 2047, frame_max
    131072, heartbeat 60."""
    with broker.raw() as c:
        c.start()
        c.send(raw.start_ok())
        f = c.expect(raw.CONNECTION_TUNE, channel=0)
        assert f.args == [2047, 131072, 60]


@pytest.mark.parametrize("mechanism", ["PLAIN", "AMQPLAIN"])
def test_sasl_mechanisms(broker, mechanism):
    with broker.raw() as c:
        c.handshake(mechanism=mechanism)
        c.open_channel(1)
        c.send(raw.connection_close())
        c.expect(raw.CONNECTION_CLOSE_OK, channel=0)


@pytest.mark.parametrize("mechanism", ["PLAIN", "AMQPLAIN"])
@pytest.mark.parametrize("user,password", [("guest", "wrong"), ("nosuchuser", "guest")])
def test_wrong_credentials_raw(broker, mechanism, user, password):
    """With the authentication_failure_close capability, a failed login gets
    connection.close 403 (class/method 0/0) and the socket is closed."""
    with broker.raw() as c:
        c.start()
        c.send(raw.start_ok(user, password, mechanism))
        code, text, cls, mth = c.expect_connection_close()
        assert (code, text, cls, mth) == (403, login_refused(mechanism), 0, 0)
    assert_serves(broker)


def test_wrong_credentials_pika(broker):
    """pika reports the 403 close during the handshake as
    ProbableAuthenticationError wrapping the broker's code and text."""
    with pytest.raises(pex.ProbableAuthenticationError) as ei:
        broker.connect(password="wrong")
    assert ei.value.args[0] == "ConnectionClosedByBroker: (403) %r" % login_refused("PLAIN")


def test_unknown_vhost(broker):
    with broker.raw() as c:
        c.handshake(open_vhost=False)
        c.send(raw.connection_open("no-such-vhost"))
        assert c.expect_connection_close() == (
            530, "NOT_ALLOWED - vhost no-such-vhost not found", 10, 40)


def test_unknown_vhost_pika(broker):
    with pytest.raises(pex.ProbableAccessDeniedError) as ei:
        broker.connect(vhost="no-such-vhost")
    assert ei.value.args[0] == (
        "ConnectionClosedByBroker: (530) 'NOT_ALLOWED - vhost no-such-vhost not found'")


def test_vhost_access_refused(dedicated_broker):
    """A user may open only the vhosts listed for it: 530 with RabbitMQ's
    text "access to vhost 'other' refused for user 'guest'"."""
    b = dedicated_broker({
        "vhosts": ["/", "other"],
        "users": [{"name": "guest", "password": "guest", "vhosts": ["/"]},
                  {"name": "alice", "password": "secret", "vhosts": ["other"]}],
    })
    with b.raw() as c:
        c.handshake(open_vhost=False)
        c.send(raw.connection_open("other"))
        assert c.expect_connection_close() == (
            530, "NOT_ALLOWED - access to vhost 'other' refused for user 'guest'", 10, 40)
    with pytest.raises(pex.ProbableAccessDeniedError) as ei:
        b.connect(user="alice", password="secret", vhost="/")
    assert ei.value.args[0] == ("ConnectionClosedByBroker: (530) "
                                "\"NOT_ALLOWED - access to vhost '/' refused for user 'alice'\"")
    # alice's own vhost works, and is separate from "/".
    c = b.connect(user="alice", password="secret", vhost="other")
    ch = c.channel()
    ch.queue_declare("only-in-other")
    c.close()
    c = b.connect()
    ch = c.channel()
    with channel_error(404, "NOT_FOUND - no queue 'only-in-other' in vhost '/'"):
        ch.queue_declare("only-in-other", passive=True)
    c.close()


def test_loopback_users_allow_local_guest(broker):
    """guest is in loopback_users; connecting over 127.0.0.1 is allowed."""
    assert_serves(broker)


def test_client_close(broker):
    """Client-initiated close: close-ok on channel 0."""
    with broker.raw() as c:
        c.handshake()
        c.open_channel(1)
        c.open_channel(2)
        c.send(raw.connection_close(200, "Goodbye"))
        c.expect(raw.CONNECTION_CLOSE_OK, channel=0)


def test_client_close_leaves_socket_to_client(broker):
    """As RabbitMQ: after close-ok the broker does not close the socket; the
    client does (an early close makes amqp091-go report 501 EOF). Once the
    client has closed its side, the broker closes too and logs the client's
    reason."""
    with broker.raw() as c:
        c.handshake()
        c.send(raw.connection_close(200, "Goodbye"))
        c.expect(raw.CONNECTION_CLOSE_OK, channel=0)
        with pytest.raises(TimeoutError):
            c.read_frame(timeout=1.0)
        c.sock.shutdown(socket.SHUT_WR)
        assert c.wait_closed(timeout=5.0) == b""
    wait_for(lambda: "(client sent connection.close: 200 'Goodbye')" in broker.log(),
             what="the close in the log")


def test_client_close_bound_is_heartbeat(broker):
    """A client that never closes after close-ok: RabbitMQ closes the socket
    after its heartbeat interval (30 s at most, or without heartbeats)."""
    with broker.raw() as c:
        c.handshake(heartbeat=1)
        c.send(raw.connection_close(200, "Goodbye"))
        c.expect(raw.CONNECTION_CLOSE_OK, channel=0)
        start = time.monotonic()
        c.wait_closed(timeout=10.0)
        assert 0.9 <= time.monotonic() - start < 5.0


def test_update_secret(broker):
    """connection.update-secret (RabbitMQ 3.8+): the internal auth backend's
    state cannot expire, so any new secret is accepted with update-secret-ok
    on channel 0, and the connection goes on."""
    with broker.raw() as c:
        c.handshake()
        c.send(raw.update_secret("a new token"))
        c.expect(raw.CONNECTION_UPDATE_SECRET_OK, channel=0)
        c.send(raw.update_secret("", reason=""))
        c.expect(raw.CONNECTION_UPDATE_SECRET_OK, channel=0)
        c.open_channel(1)


def test_update_secret_before_open(broker):
    with broker.raw() as c:
        c.handshake(open_vhost=False)
        c.send(raw.update_secret("a new token"))
        assert c.expect_connection_close() == (
            504, "CHANNEL_ERROR - unexpected method in connection state opening", 10, 70)


def test_update_secret_on_channel(broker):
    with broker.raw() as c:
        c.handshake()
        c.open_channel(1)
        c.send(raw.update_secret("a new token", channel=1))
        assert c.expect_connection_close() == (503, "COMMAND_INVALID - unimplemented method", 10, 70)


def test_pika_close(broker):
    c = broker.connect()
    c.channel()
    c.close()
    assert c.is_closed


def test_server_close_waits_for_close_ok(broker):
    """Server-initiated close (a hard error): connection.close, then after
    our close-ok the broker closes the socket."""
    with broker.raw() as c:
        c.handshake()
        c.send(raw.queue_declare(3, "x"))     # channel 3 was never opened
        code, text, cls, mth = c.expect_connection_close()
        assert (code, text, cls, mth) == (504, "CHANNEL_ERROR - expected 'channel.open'", 50, 10)


def test_heartbeat_server_sends(broker):
    """With heartbeat=1 negotiated the broker sends heartbeat frames (type 8,
    channel 0, empty) while we keep the connection alive with ours."""
    with broker.raw() as c:
        c.handshake(heartbeat=1)
        start = time.monotonic()
        beats = 0
        while beats < 2:
            assert time.monotonic() - start < 5, "fewer than 2 heartbeats in 5 s"
            f = c.read_frame(timeout=5)
            c.send(raw.heartbeat_frame())
            if f.type == raw.FRAME_HEARTBEAT:
                assert f.channel == 0 and f.payload == b""
                beats += 1
        # Our heartbeats kept it open: the connection still works.
        c.open_channel(1)


def test_heartbeat_silent_peer_dropped(broker):
    """A peer silent for more than two heartbeat intervals is dropped.
    RabbitMQ closes the socket without connection.close (about 3 s after
    the last byte for heartbeat=1); anything it sends meanwhile is a heartbeat."""
    with broker.raw() as c:
        c.handshake(heartbeat=1)
        start = time.monotonic()
        frames = []
        with pytest.raises(raw.Closed):
            while True:
                assert time.monotonic() - start < 8, "silent peer not dropped within 8 s"
                frames.append(c.read_frame(timeout=8))
        elapsed = time.monotonic() - start
        assert elapsed >= 1.0, "dropped after %.2fs, before two intervals" % elapsed
        for f in frames:
            assert f.type == raw.FRAME_HEARTBEAT or f.method == raw.CONNECTION_CLOSE, f
    assert_serves(broker)


def test_heartbeat_pika_keeps_connection(broker):
    """A pika connection with heartbeat=1 stays up across several intervals
    of idleness on the application side (pika answers heartbeats)."""
    c = broker.connect(heartbeat=1)
    ch = c.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    # The idle time is what is tested: 3.5 intervals, past the 2 after
    # which a peer whose heartbeats went unheard is dropped.
    end = time.monotonic() + 3.5
    while time.monotonic() < end:
        c.process_data_events(time_limit=0.5)
    assert c.is_open
    ch.basic_publish("", q, b"after idle")
    assert ch.basic_get(q, auto_ack=True)[2] == b"after idle"
    c.close()


def test_heartbeat_short_config(dedicated_broker):
    """limits.heartbeat is what connection.tune proposes."""
    b = dedicated_broker({"limits": {"heartbeat": 2}})
    with b.raw() as c:
        c.start()
        c.send(raw.start_ok())
        f = c.expect(raw.CONNECTION_TUNE, channel=0)
        assert f.args == [2047, 131072, 2]
    # pika adopts the server's proposal; the connection survives idleness.
    c = b.connect(heartbeat=None)
    # The idle time is what is tested: 2.5 intervals of 2 s.
    end = time.monotonic() + 5
    while time.monotonic() < end:
        c.process_data_events(time_limit=0.5)
    assert c.is_open
    c.close()


def test_tune_limits_config(dedicated_broker):
    b = dedicated_broker({"limits": {"frame_max": 8192, "channel_max": 16}})
    with b.raw() as c:
        c.start()
        c.send(raw.start_ok())
        f = c.expect(raw.CONNECTION_TUNE, channel=0)
        assert f.args[:2] == [16, 8192]


def _tune_out_of_range(broker, channel_max, frame_max):
    with broker.raw() as c:
        c.start()
        c.send(raw.start_ok())
        c.expect(raw.CONNECTION_TUNE, channel=0)
        c.send(raw.tune_ok(channel_max, frame_max, 0))
        c.send(raw.connection_open("/"))
        assert_close_or_nothing(c.wait_closed(timeout=8), {530})


def _start_ok_fails(broker, mechanism, response, codes):
    with broker.raw() as c:
        c.start()
        c.send(raw.method_frame(0, raw.CONNECTION_START_OK, [
            ("T", {}), ("s", mechanism), ("S", response), ("s", "en_US")]))
        assert_close_or_nothing(c.wait_closed(timeout=8), codes)


def test_handshake_failures(broker):
    """Handshake errors before connection.open fail the connection. RabbitMQ
    closes the socket without connection.close, 3 s later (an anti-DoS
    delay); a connection.close with the code listed first is allowed too.
    The cases run concurrently so the delay is paid once."""
    cases = {
        "tune-ok frame_max 1024 < 4096 minimum": (_tune_out_of_range, 2047, 1024),
        "tune-ok frame_max above the server's": (_tune_out_of_range, 2047, 131073),
        "tune-ok frame_max 0 (no limit)": (_tune_out_of_range, 2047, 0),
        "tune-ok channel_max above the server's": (_tune_out_of_range, 2048, 131072),
        "tune-ok channel_max 0 (no limit)": (_tune_out_of_range, 0, 131072),
        "unknown SASL mechanism": (_start_ok_fails, "FOO", "x", {403, 503, 540}),
        "malformed PLAIN response": (_start_ok_fails, "PLAIN", "garbage", {403, 502}),
    }
    with concurrent.futures.ThreadPoolExecutor(len(cases)) as pool:
        futures = {k: pool.submit(v[0], broker, *v[1:]) for k, v in cases.items()}
        failures = []
        for k, fut in futures.items():
            try:
                fut.result()
            except Exception as e:  # noqa: BLE001 - reported below, by case
                failures.append("%s: %r" % (k, e))
    assert not failures, "\n".join(failures)
    assert_serves(broker)


def assert_close_or_nothing(data, codes):
    """data is what the broker sent before closing the socket: nothing, or
    frames of which the only method is connection.close with one of codes."""
    while data:
        ftype, ch, size = struct.unpack(">BHI", data[:7])
        f = raw.Frame(ftype, ch, data[7:7 + size])
        data = data[8 + size:]
        if f.type == raw.FRAME_HEARTBEAT:
            continue
        assert f.method == raw.CONNECTION_CLOSE and f.args[0] in codes, f


def test_pika_blocking_roundtrip_with_client_properties(broker):
    p = broker.params(client_properties={"connection_name": "it-named"})
    c = pika.BlockingConnection(p)
    assert c.is_open
    c.close()


def test_small_limits_config(dedicated_broker, name):
    """limits.frame_max 4096 and channel_max 4: pika adopts them, a body
    larger than a frame still round-trips, a bigger frame is a 501, a tune-ok
    above the limits fails the handshake, and a fifth channel is a 530."""
    b = dedicated_broker({"limits": {"frame_max": 4096, "channel_max": 4}})
    c = b.connect(frame_max=131072, channel_max=2047)   # proposals above the limits
    ch = c.channel()
    q = name("q")
    ch.queue_declare(q, exclusive=True)
    body = bytes(range(256)) * 40                        # 10240 octets: 3 body frames
    ch.basic_publish("", q, body)
    assert ch.basic_get(q, auto_ack=True)[2] == body
    c.close()
    with b.raw() as r:
        r.handshake()
        assert r.tune[:2] == [4, 4096]
        r.open_channel(1)
        r.send(raw.basic_publish(1, "", "nowhere"))
        r.send(raw.header_frame(1, 5000))
        r.send(raw.body_frame(1, b"z" * 4097))
        f = r.expect(raw.CONNECTION_CLOSE, channel=0)
        assert f.args[0] == 501 and f.args[1].startswith("FRAME_ERROR - "), f
    with b.raw() as r:
        r.handshake(channel_max=4)
        for n in (1, 2, 3, 4):
            r.open_channel(n)
        r.send(raw.channel_open(5))
        assert r.expect_connection_close() == (
            530, "NOT_ALLOWED - number of channels opened (4) has reached the negotiated "
                 "channel_max (4)", 0, 0)
    with b.raw() as r:
        r.start()
        r.send(raw.start_ok())
        r.expect(raw.CONNECTION_TUNE, channel=0)
        r.send(raw.tune_ok(4, 8192, 0))
        r.send(raw.connection_open("/"))
        assert_close_or_nothing(r.wait_closed(timeout=8), {530})
