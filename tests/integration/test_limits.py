# SPDX-License-Identifier: MIT
# Resource limits against hostile or careless clients (warren only: each
# test starts a warrend with its own "limits"): the connection limits
# (global and per user), the handshake timeout, field-table depth and size,
# a flood of input, a client that pipelines requests without reading the
# replies, bodies streamed on many channels under the memory alarm, and a
# consumer that stops reading while another keeps being served.
import os
import select
import signal
import socket
import time
import uuid

import pytest

import amqp_raw as raw
from helpers import DEADLINE, Collector, wait_for, wait_queue_count


def log_has(b, text):
    wait_for(lambda: text in b.log(), DEADLINE, "warrend to log %r" % text)


def proc_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s for pid %d" % (field, pid))


def opened(b, **kw):
    """A raw connection that went through connection.open-ok."""
    r = b.raw()
    r.handshake(**kw)
    return r


def refused_at_open(b, user="guest", password="guest"):
    """connection.open refused: returns the connection.close's fields."""
    with b.raw() as r:
        r.handshake(user=user, password=password, open_vhost=False)
        r.send(raw.connection_open("/"))
        return r.expect_connection_close()


def test_max_connections(dedicated_broker):
    """limits.max_connections: a client over the limit has its socket closed
    at once (not after the 3 s of a refused handshake), the refusal is
    logged, and a freed slot can be used again."""
    b = dedicated_broker({"limits": {"max_connections": 2}})
    first, second = opened(b), opened(b)
    with b.raw() as extra:
        t0 = time.monotonic()
        assert extra.wait_closed(timeout=DEADLINE) == b""
        assert time.monotonic() - t0 < 2.0
    log_has(b, "connection limit (limits.max_connections = 2) reached: refused 1 connection(s)")
    first.close()

    def slot_free():
        try:
            opened(b).close()
            return True
        except (raw.Closed, ConnectionError, TimeoutError):
            return False
    wait_for(slot_free, DEADLINE, "a connection once one of two has closed")
    second.close()


def test_max_connections_per_user(dedicated_broker):
    """limits.max_connections_per_user and a user's own "limits":
    {"max-connections": N} (RabbitMQ's user limit): connection.open over the
    limit is 530 with RabbitMQ's text, 10/40; the count drops when a
    connection closes."""
    b = dedicated_broker({
        "limits": {"max_connections_per_user": 1},
        "users": [{"name": "guest", "password": "guest", "vhosts": ["/"]},
                  {"name": "app", "password": "pw", "vhosts": ["/"], "limits": {"max-connections": 2}},
                  {"name": "nobody", "password": "pw", "vhosts": ["/"],
                   "limits": {"max-connections": 0}}],
    })
    guest = opened(b)
    assert refused_at_open(b) == (
        530, "NOT_ALLOWED - connection refused for user 'guest': user connection limit (1) is reached",
        10, 40)
    apps = [opened(b, user="app", password="pw") for _ in range(2)]
    assert refused_at_open(b, "app", "pw") == (
        530, "NOT_ALLOWED - connection refused for user 'app': user connection limit (2) is reached",
        10, 40)
    assert refused_at_open(b, "nobody", "pw")[:2] == (
        530, "NOT_ALLOWED - connection refused for user 'nobody': user connection limit (0) is reached")
    guest.close()

    def guest_again():
        try:
            opened(b).close()
            return True
        except AssertionError:
            return False
    wait_for(guest_again, DEADLINE, "guest to connect again once its connection closed")
    for a in apps:
        a.close()


def test_handshake_timeout(dedicated_broker):
    """limits.handshake_timeout (ms, RabbitMQ's handshake_timeout): a client
    that does not finish the handshake in time is dropped."""
    b = dedicated_broker({"limits": {"handshake_timeout": 500}})
    with b.raw() as silent, b.raw() as stalled:
        stalled.start()
        t0 = time.monotonic()
        assert silent.wait_closed(timeout=DEADLINE) == b""
        stalled.wait_closed(timeout=DEADLINE)
        assert time.monotonic() - t0 < 3.0
    log_has(b, "handshake timeout")
    # A client that keeps going is not affected.
    opened(b).close()


def nested(depth):
    """A field table `depth` levels deep, counting itself."""
    v = 1
    for _ in range(depth - 1):
        v = {"n": v}
    return {"n": v}


TABLE_LIMITS = {"limits": {"max_table_depth": 3, "max_table_size": 1024}}


def test_table_depth_in_arguments(dedicated_broker):
    b = dedicated_broker(TABLE_LIMITS)
    with opened(b) as r:
        r.open_channel(1)
        r.send(raw.queue_declare(1, "", exclusive=True, arguments={"x-a": nested(2)}))
        r.expect(raw.QUEUE_DECLARE_OK, channel=1)
        # Arrays count as levels too: table, array, array.
        r.send(raw.queue_declare(1, "", exclusive=True, arguments={"x-a": [[1]]}))
        r.expect(raw.QUEUE_DECLARE_OK, channel=1)
        r.send(raw.queue_declare(1, "", exclusive=True, arguments={"x-a": nested(3)}))
        assert r.expect_connection_close() == (
            501, "FRAME_ERROR - field table in queue.declare is nested deeper than "
                 "limits.max_table_depth (3)", 50, 10)


def test_table_size_in_arguments(dedicated_broker):
    b = dedicated_broker(TABLE_LIMITS)
    with opened(b) as r:
        r.open_channel(1)
        r.send(raw.basic_consume(1, "q", no_ack=True, arguments={"x-a": "v" * 1100}))
        assert r.expect_connection_close() == (
            501, "FRAME_ERROR - field table of 1109 octets in basic.consume is larger than "
                 "limits.max_table_size (1024)", 60, 20)


DEEP_HEADERS = "FRAME_ERROR - field table in a content header is nested deeper than limits.max_table_depth (3)"


@pytest.mark.parametrize("headers,before,text", [
    ({"h": nested(3)}, False, DEEP_HEADERS),
    ({"h": nested(3)}, True, DEEP_HEADERS),
    ({"big": "x" * 2000}, False, "FRAME_ERROR - field table of 2009 octets in a content header is larger "
                                 "than limits.max_table_size (1024)"),
])
def test_table_limits_in_headers(dedicated_broker, headers, before, text):
    """A message's headers over the limits: 501 before the message is
    assembled (0/0, as RabbitMQ reports frame errors), also when
    content-type and content-encoding come before them."""
    b = dedicated_broker(TABLE_LIMITS)
    flags, props = 0x2000, raw.table(headers)
    if before:
        flags, props = 0xE000, raw.shortstr("text/plain") + raw.shortstr("gzip") + props
    with opened(b) as r:
        r.open_channel(1)
        r.send(raw.queue_declare(1, "", exclusive=True))
        q = r.expect(raw.QUEUE_DECLARE_OK, channel=1).args[0]
        # Within the limits, with the same properties: routed as usual.
        r.send(raw.basic_publish(1, "", q)
               + raw.header_frame(1, 1, flags=flags, props=props.replace(raw.table(headers), raw.table({"h": 1})))
               + raw.body_frame(1, b"x"))
        r.send(raw.basic_get(1, q))
        r.expect(raw.BASIC_GET_OK, channel=1)
        r.send(raw.basic_publish(1, "", q) + raw.header_frame(1, 1, flags=flags, props=props)
               + raw.body_frame(1, b"x"))
        assert r.expect_connection_close() == (501, text, 0, 0)


def test_table_limits_in_client_properties(dedicated_broker):
    """client_properties over the limit: a refused handshake (closed without
    connection.close, like any other in RabbitMQ), and the reason logged."""
    b = dedicated_broker(TABLE_LIMITS)
    with b.raw() as r:
        r.start()
        r.send(raw.start_ok(client_properties={"capabilities": nested(3)}))
        assert r.wait_closed(timeout=DEADLINE) == b""
    log_has(b, "field table in connection.start-ok is nested deeper than limits.max_table_depth (3)")


def test_input_flood(dedicated_broker, monkeypatch):
    """64 MiB of heartbeats (the most frames per octet) as fast as a socket
    takes them: the broker's peak memory does not follow the flood. Input
    is handled as it is read, and reading stops at the input high
    watermark (256 KiB, or one frame_max frame) whenever it is not."""
    # Under ASan, freed buffers sit in its quarantine instead of being reused,
    # which would make the peak follow the flood: keep the quarantine small.
    monkeypatch.setenv("ASAN_OPTIONS",
                       (os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4").lstrip(":"))
    b = dedicated_broker()
    chunk = raw.heartbeat_frame() * (1 << 17)
    with opened(b) as r:
        before = proc_kb(b.proc.pid, "VmHWM")
        for _ in range(64):
            r.send(chunk)
        r.open_channel(1)    # a round trip: the flood has been handled
    grown_mb = (proc_kb(b.proc.pid, "VmHWM") - before) / 1024.0
    assert grown_mb < 16, "peak RSS grew by %.1f MiB during a 64 MiB flood" % grown_mb


def send_until_stalled(b, sock, data, rss_limit_mb, times=1, held=lambda: True):
    """Sends data, `times` over, while the broker takes it; returns the
    octets sent when it is all sent or when the socket has taken nothing for
    a second while held() is true (the broker stopped reading; on a loaded
    machine a busy broker may also pause, so held() can ask for evidence).
    Gives up after a minute without progress. Fails as soon as the broker's
    RSS has grown by rss_limit_mb, so a broker that buffers without bound is
    not driven into swap."""
    before = proc_kb(b.proc.pid, "VmRSS")
    sent, total = 0, len(data) * times
    progress = time.monotonic()
    while sent < total and time.monotonic() - progress < 60:
        grown_mb = (proc_kb(b.proc.pid, "VmRSS") - before) / 1024.0
        assert grown_mb < rss_limit_mb, "RSS grew by %.1f MiB after %.1f MiB sent" % (
            grown_mb, sent / 1048576.0)
        if not select.select([], [sock], [], 1.0)[1]:
            if held():
                break
            continue
        off = sent % len(data)
        sent += sock.send(data[off:off + 65536])
        progress = time.monotonic()
    print("sent %.1f MiB; RSS grew by %.1f MiB"
          % (sent / 1048576.0, (proc_kb(b.proc.pid, "VmRSS") - before) / 1024.0))
    return sent


def test_pipelined_replies_are_bounded(dedicated_broker):
    """A client that pipelines queue.declare without reading a reply: once
    its unread replies are over the bound (4 MiB) the broker stops reading
    its requests, so its memory does not grow with them (it grew 1:1
    before). When the client reads again, every reply arrives and the
    connection goes on working."""
    b = dedicated_broker()
    name = "pipelined-" + "q" * 240
    one = raw.queue_declare(1, name)
    requests = one * 4096
    times = (256 << 20) // len(requests)
    with opened(b) as r:
        r.open_channel(1)
        r.send(one)
        r.expect(raw.QUEUE_DECLARE_OK, channel=1)
        sent = send_until_stalled(b, r.sock, requests, rss_limit_mb=64, times=times)
        assert sent < len(requests) * times, "the broker read 256 MiB of requests whose replies were not read"
        whole, part = divmod(sent, len(one))
        for _ in range(whole):
            f = r.expect(raw.QUEUE_DECLARE_OK, channel=1, timeout=DEADLINE)
            assert f.args[0] == name
        if part:
            r.send(one[part:])
            r.expect(raw.QUEUE_DECLARE_OK, channel=1)
        r.send(raw.queue_declare(1, name, passive=True))
        r.expect(raw.QUEUE_DECLARE_OK, channel=1)


def test_held_connection_closes_on_shutdown(dedicated_broker):
    """SIGTERM while a connection is held by its unread replies: the broker
    reads again to hear the client's close-ok, so the client gets
    connection.close 320 after its replies, its close-ok ends the connection
    and warrend exits 0 without waiting out the shutdown deadline."""
    b = dedicated_broker()
    one = raw.queue_declare(1, "held-" + "q" * 240)
    with opened(b) as r:
        r.open_channel(1)
        requests = one * 4096
        sent = send_until_stalled(b, r.sock, requests, rss_limit_mb=64, times=64)
        assert sent < len(requests) * 64
        b.proc.send_signal(signal.SIGTERM)
        if sent % len(one):    # the last request's tail, read once closing
            r.send(one[sent % len(one):])
        code, text, _, _ = r.expect_connection_close(timeout=DEADLINE)
        assert (code, text) == (320, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'")
    assert b.stop(timeout=DEADLINE) == 0
    assert "still open" not in b.log()


def test_partial_contents_held_by_the_memory_alarm(dedicated_broker, monkeypatch):
    """Contents started on many channels before the memory alarm, their
    bodies streamed after it: the alarm stops the reads at the next body
    frame, not only at the next content header, so the broker's memory
    stays near the watermark instead of following the 512 MiB announced."""
    # meson test sets MALLOC_PERTURB_, which would fill each body's buffer
    # when its header allocates it: that measures the headers, not reads.
    monkeypatch.delenv("MALLOC_PERTURB_", raising=False)
    b = dedicated_broker({"memory_high_watermark": {"absolute": 96 << 20}})
    channels, size = 64, 8 << 20
    with opened(b) as r:
        chunk = r.negotiated[1] - 8
        for ch in range(1, channels + 1):
            r.open_channel(ch)
        headers = b"".join(raw.basic_publish(ch, "", "nowhere") + raw.header_frame(ch, size)
                           for ch in range(1, channels + 1))
        piece = os.urandom(chunk)
        frames = b"".join(raw.body_frame(ch, piece) for ch in range(1, channels + 1))

        def alarm():
            return "memory resource limit alarm set" in b.log()
        sent = send_until_stalled(b, r.sock, headers, rss_limit_mb=224, held=alarm)
        if sent == len(headers):
            send_until_stalled(b, r.sock, frames, rss_limit_mb=224, times=size // chunk, held=alarm)
        assert alarm()


class SmallWindow(raw.RawConnection):
    """A raw connection with a tiny receive buffer, so that a client that
    stops reading stops the broker's writes almost at once."""

    def __init__(self, host, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect((host, port))
        self.sock = s
        self.buf = b""
        self.tune = None
        self.server_properties = None
        self.mechanisms = None


def publish_raw(b, queue, n, body):
    """n messages to queue through the default exchange, pipelined."""
    one = raw.basic_publish(1, "", queue) + raw.header_frame(1, len(body)) + raw.body_frame(1, body)
    with opened(b) as r:
        r.open_channel(1)
        for i in range(0, n, 500):
            r.send(one * min(500, n - i))
        r.send(raw.queue_declare(1, queue, passive=True))
        r.expect(raw.QUEUE_DECLARE_OK, channel=1, timeout=60)


def test_slow_consumer(dedicated_broker):
    """A consumer that stops reading: deliveries to it stop at the output
    high watermark, so the broker's memory stays put however many messages
    are ready, and a consumer of another queue is served meanwhile. When
    the slow one reads again, it gets every message."""
    n, body = 20000, os.urandom(2048)
    b = dedicated_broker()
    c = b.connect()
    q1, q2 = "slow-" + uuid.uuid4().hex, "fast-" + uuid.uuid4().hex
    setup = c.channel()
    setup.queue_declare(q1)
    setup.queue_declare(q2)
    publish_raw(b, q1, n, body)
    wait_queue_count(setup, q1, n)
    rss_before = proc_kb(b.proc.pid, "VmRSS")

    slow = SmallWindow(b.host, b.port)
    slow.handshake()
    slow.open_channel(1)
    slow.send(raw.basic_consume(1, q1, "slow", no_ack=True))
    slow.expect((60, 21), channel=1)
    # From here on the slow consumer reads nothing.

    fast = Collector()
    fc = b.connect()
    fch = fc.channel()
    fch.basic_consume(q2, fast, auto_ack=True)
    for i in range(1000):
        setup.basic_publish("", q2, b"%d" % i)
    fast.wait(fc, 1000)
    assert fast.bodies == [b"%d" % i for i in range(1000)]

    ready = setup.queue_declare(q1, passive=True).method.message_count
    rss_grown_mb = (proc_kb(b.proc.pid, "VmRSS") - rss_before) / 1024.0
    assert ready >= n // 2, "%d of %d messages went to a consumer that reads nothing" % (n - ready, n)
    assert rss_grown_mb < 24, "RSS grew by %.1f MiB while a consumer did not read" % rss_grown_mb

    # Reading again: every message arrives, in order.
    got = 0
    deadline = time.monotonic() + 60
    while got < n:
        f = slow.read_frame(timeout=max(0.1, deadline - time.monotonic()))
        if f.type == raw.FRAME_METHOD and f.method == raw.BASIC_DELIVER:
            got += 1
    slow.close()
    fc.close()
    c.close()
