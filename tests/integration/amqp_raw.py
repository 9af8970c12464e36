# SPDX-License-Identifier: MIT
# A tiny AMQP 0-9-1 encoder/decoder over a plain socket, for tests that must
# send what no well-behaved client sends (bad headers, broken frames, methods
# in the wrong place) and read exactly what the broker answers.
import socket
import struct
import time

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_END = 0xCE

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8

# (class id, method id) of the methods the tests name.
CONNECTION_START = (10, 10)
CONNECTION_START_OK = (10, 11)
CONNECTION_SECURE = (10, 20)
CONNECTION_TUNE = (10, 30)
CONNECTION_TUNE_OK = (10, 31)
CONNECTION_OPEN = (10, 40)
CONNECTION_OPEN_OK = (10, 41)
CONNECTION_CLOSE = (10, 50)
CONNECTION_CLOSE_OK = (10, 51)
CONNECTION_UPDATE_SECRET = (10, 70)
CONNECTION_UPDATE_SECRET_OK = (10, 71)
CHANNEL_OPEN = (20, 10)
CHANNEL_OPEN_OK = (20, 11)
CHANNEL_FLOW = (20, 20)
CHANNEL_FLOW_OK = (20, 21)
CHANNEL_CLOSE = (20, 40)
CHANNEL_CLOSE_OK = (20, 41)
EXCHANGE_DECLARE = (40, 10)
QUEUE_DECLARE = (50, 10)
QUEUE_DECLARE_OK = (50, 11)
BASIC_QOS = (60, 10)
BASIC_CONSUME = (60, 20)
BASIC_PUBLISH = (60, 40)
BASIC_DELIVER = (60, 60)
BASIC_GET = (60, 70)
BASIC_GET_OK = (60, 71)
BASIC_GET_EMPTY = (60, 72)
BASIC_ACK = (60, 80)

# ---------------------------------------------------------------- encoding


def shortstr(s):
    if isinstance(s, str):
        s = s.encode()
    assert len(s) <= 255
    return struct.pack(">B", len(s)) + s


def longstr(s):
    if isinstance(s, str):
        s = s.encode()
    return struct.pack(">I", len(s)) + s


def field_value(v):
    """Encodes one field-table value with RabbitMQ's type tags."""
    if isinstance(v, bool):
        return b"t" + struct.pack(">B", int(v))
    if isinstance(v, int):
        return b"l" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"d" + struct.pack(">d", v)
    if isinstance(v, (str, bytes)):
        return b"S" + longstr(v)
    if isinstance(v, dict):
        return b"F" + table(v)
    if isinstance(v, list):
        body = b"".join(field_value(x) for x in v)
        return b"A" + struct.pack(">I", len(body)) + body
    if v is None:
        return b"V"
    raise TypeError(v)


def table(d):
    body = b"".join(shortstr(k) + field_value(v) for k, v in d.items())
    return struct.pack(">I", len(body)) + body


def encode_fields(fields):
    """fields: list of (type, value); types: B octet, H short, I long,
    Q longlong, s shortstr, S longstr, T table, b bit (consecutive bits are
    packed into octets, as the spec requires), raw (bytes as is)."""
    out = bytearray()
    bits = []

    def flush():
        if bits:
            for i in range(0, len(bits), 8):
                o = 0
                for j, bit in enumerate(bits[i:i + 8]):
                    o |= int(bool(bit)) << j
                out.append(o)
            bits.clear()

    for t, v in fields:
        if t == "b":
            bits.append(v)
            continue
        flush()
        if t == "B":
            out += struct.pack(">B", v)
        elif t == "H":
            out += struct.pack(">H", v)
        elif t == "I":
            out += struct.pack(">I", v)
        elif t == "Q":
            out += struct.pack(">Q", v)
        elif t == "s":
            out += shortstr(v)
        elif t == "S":
            out += longstr(v)
        elif t == "T":
            out += table(v)
        elif t == "raw":
            out += v
        else:
            raise ValueError(t)
    flush()
    return bytes(out)


def frame(ftype, channel, payload, end=FRAME_END):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + bytes([end])


def method_payload(cm, fields=()):
    return struct.pack(">HH", cm[0], cm[1]) + encode_fields(fields)


def method_frame(channel, cm, fields=(), end=FRAME_END):
    return frame(FRAME_METHOD, channel, method_payload(cm, fields), end)


def header_frame(channel, body_size, class_id=60, flags=0, props=b""):
    payload = struct.pack(">HHQH", class_id, 0, body_size, flags) + props
    return frame(FRAME_HEADER, channel, payload)


def body_frame(channel, data):
    return frame(FRAME_BODY, channel, data)


def heartbeat_frame():
    return frame(FRAME_HEARTBEAT, 0, b"")


def start_ok(user="guest", password="guest", mechanism="PLAIN", client_properties=None):
    if mechanism == "PLAIN":
        response = b"\x00" + user.encode() + b"\x00" + password.encode()
    elif mechanism == "AMQPLAIN":
        # AMQPLAIN's response is a field table without its length prefix.
        response = table({"LOGIN": user, "PASSWORD": password})[4:]
    else:
        raise ValueError(mechanism)
    props = client_properties if client_properties is not None else {
        "product": "warren-tests-raw",
        "capabilities": {"authentication_failure_close": True}}
    return method_frame(0, CONNECTION_START_OK, [
        ("T", props), ("s", mechanism), ("S", response), ("s", "en_US")])


def tune_ok(channel_max, frame_max, heartbeat):
    return method_frame(0, CONNECTION_TUNE_OK,
                        [("H", channel_max), ("I", frame_max), ("H", heartbeat)])


def connection_open(vhost="/"):
    return method_frame(0, CONNECTION_OPEN, [("s", vhost), ("s", ""), ("b", False)])


def connection_close(code=200, text="bye", class_id=0, method_id=0):
    return method_frame(0, CONNECTION_CLOSE,
                        [("H", code), ("s", text), ("H", class_id), ("H", method_id)])


def update_secret(secret, reason="token refresh", channel=0):
    return method_frame(channel, CONNECTION_UPDATE_SECRET, [("S", secret), ("s", reason)])


def connection_close_ok():
    return method_frame(0, CONNECTION_CLOSE_OK)


def channel_open(channel):
    return method_frame(channel, CHANNEL_OPEN, [("s", "")])


def channel_close(channel, code=200, text="bye"):
    return method_frame(channel, CHANNEL_CLOSE,
                        [("H", code), ("s", text), ("H", 0), ("H", 0)])


def channel_close_ok(channel):
    return method_frame(channel, CHANNEL_CLOSE_OK)


def queue_declare(channel, name="", passive=False, durable=False, exclusive=False,
                  auto_delete=False, nowait=False, arguments=None):
    return method_frame(channel, QUEUE_DECLARE, [
        ("H", 0), ("s", name), ("b", passive), ("b", durable), ("b", exclusive),
        ("b", auto_delete), ("b", nowait), ("T", arguments or {})])


def basic_publish(channel, exchange="", routing_key="", mandatory=False):
    return method_frame(channel, BASIC_PUBLISH, [
        ("H", 0), ("s", exchange), ("s", routing_key), ("b", mandatory), ("b", False)])


def basic_consume(channel, queue, tag="", no_ack=False, exclusive=False, arguments=None):
    return method_frame(channel, BASIC_CONSUME, [
        ("H", 0), ("s", queue), ("s", tag), ("b", False), ("b", no_ack), ("b", exclusive),
        ("b", False), ("T", arguments or {})])


def basic_get(channel, queue, no_ack=True):
    return method_frame(channel, BASIC_GET, [("H", 0), ("s", queue), ("b", no_ack)])


# ---------------------------------------------------------------- decoding


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if n > len(self.data) - self.pos:
            raise ValueError("truncated")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def shortstr(self):
        return self.take(self.unpack(">B")).decode()

    def longstr(self):
        return self.take(self.unpack(">I"))

    def table(self):
        sub = Reader(self.longstr())
        out = {}
        while sub.pos < len(sub.data):
            k = sub.shortstr()
            out[k] = sub.value()
        return out

    def value(self):
        t = self.take(1)
        fmts = {b"t": ">B", b"b": ">b", b"B": ">B", b"s": ">h", b"u": ">H",
                b"I": ">i", b"i": ">I", b"l": ">q", b"f": ">f", b"d": ">d",
                b"T": ">Q"}
        if t == b"t":
            return bool(self.unpack(">B"))
        if t in fmts:
            return self.unpack(fmts[t])
        if t == b"D":
            scale = self.unpack(">B")
            return (scale, self.unpack(">i"))
        if t == b"S" or t == b"x":
            return self.longstr()
        if t == b"F":
            return self.table()
        if t == b"A":
            sub = Reader(self.longstr())
            arr = []
            while sub.pos < len(sub.data):
                arr.append(sub.value())
            return arr
        if t == b"V":
            return None
        raise ValueError("unknown field type %r" % t)


# Argument signatures of the server-to-client methods the tests decode.
_SIGNATURES = {
    CONNECTION_START: "BBTSS",
    CONNECTION_SECURE: "S",
    CONNECTION_TUNE: "HIH",
    CONNECTION_OPEN_OK: "s",
    CONNECTION_CLOSE: "HsHH",
    CONNECTION_CLOSE_OK: "",
    (10, 60): "s",          # connection.blocked
    (10, 61): "",           # connection.unblocked
    CHANNEL_OPEN_OK: "S",
    CHANNEL_FLOW: "b",
    CHANNEL_FLOW_OK: "b",
    CHANNEL_CLOSE: "HsHH",
    CHANNEL_CLOSE_OK: "",
    (40, 11): "",           # exchange.declare-ok
    QUEUE_DECLARE_OK: "sII",
    (40, 21): "",           # exchange.delete-ok
    (40, 31): "",           # exchange.bind-ok
    (40, 51): "",           # exchange.unbind-ok
    (50, 21): "",           # queue.bind-ok
    (50, 31): "I",          # queue.purge-ok
    (50, 41): "I",          # queue.delete-ok
    (50, 51): "",           # queue.unbind-ok
    (60, 11): "",           # basic.qos-ok
    (60, 21): "s",          # basic.consume-ok
    (60, 30): "sb",         # basic.cancel (server-sent)
    (60, 31): "s",          # basic.cancel-ok
    (60, 111): "",          # basic.recover-ok
    (60, 120): "Qbb",       # basic.nack
    BASIC_DELIVER: "sQbss",
    BASIC_GET_OK: "Qbssi",
    BASIC_GET_EMPTY: "s",
    (60, 50): "Hsss",       # basic.return
    BASIC_ACK: "Qb",
    (85, 11): "",           # confirm.select-ok
}


def decode_args(sig, r):
    out = []
    bit_octet, bit_pos = 0, 8
    for t in sig:
        if t == "b":
            if bit_pos == 8:
                bit_octet, bit_pos = r.unpack(">B"), 0
            out.append(bool(bit_octet & (1 << bit_pos)))
            bit_pos += 1
            continue
        bit_pos = 8
        if t == "B":
            out.append(r.unpack(">B"))
        elif t == "H":
            out.append(r.unpack(">H"))
        elif t == "I" or t == "i":
            out.append(r.unpack(">I"))
        elif t == "Q":
            out.append(r.unpack(">Q"))
        elif t == "s":
            out.append(r.shortstr())
        elif t == "S":
            out.append(r.longstr())
        elif t == "T":
            out.append(r.table())
    return out


class Frame:
    def __init__(self, ftype, channel, payload):
        self.type = ftype
        self.channel = channel
        self.payload = payload
        self.method = None
        self.args = None
        if ftype == FRAME_METHOD:
            r = Reader(payload)
            self.method = (r.unpack(">H"), r.unpack(">H"))
            sig = _SIGNATURES.get(self.method)
            if sig is not None:
                self.args = decode_args(sig, r)

    def __repr__(self):
        if self.type == FRAME_METHOD:
            return "<method %s ch=%d args=%r>" % (self.method, self.channel, self.args)
        return "<frame type=%d ch=%d len=%d>" % (self.type, self.channel, len(self.payload))


class Closed(Exception):
    """The broker closed the TCP connection."""


class RawConnection:
    """One TCP connection to the broker, driven byte by byte by the test."""

    def __init__(self, host, port, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.tune = None
        self.server_properties = None
        self.mechanisms = None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from the broker before the deadline")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data from the broker before the deadline")
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise Closed("connection closed by the broker")
        self.buf += chunk

    def read_exact(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while len(self.buf) < 7:
            self._fill(deadline)
        ftype, channel, size = struct.unpack(">BHI", self.buf[:7])
        while len(self.buf) < 8 + size:
            self._fill(deadline)
        payload = self.buf[7:7 + size]
        end = self.buf[7 + size]
        self.buf = self.buf[8 + size:]
        if end != FRAME_END:
            raise ValueError("bad frame end from the broker: %#x" % end)
        return Frame(ftype, channel, payload)

    def read_method(self, timeout=10.0, skip_heartbeats=True):
        deadline = time.monotonic() + timeout
        while True:
            f = self.read_frame(max(0.0, deadline - time.monotonic()))
            if f.type == FRAME_HEARTBEAT and skip_heartbeats:
                continue
            return f

    def expect(self, cm, channel=None, timeout=10.0):
        f = self.read_method(timeout)
        assert f.type == FRAME_METHOD and f.method == cm, \
            "expected method %s, got %r" % (cm, f)
        if channel is not None:
            assert f.channel == channel, "expected channel %d, got %r" % (channel, f)
        return f

    def wait_closed(self, timeout=10.0):
        """Waits until the broker closes the socket; returns the bytes it sent
        meanwhile. Raises TimeoutError if it stays open past the deadline."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
        except Closed:
            pass
        data, self.buf = self.buf, b""
        return data

    # -- handshake -----------------------------------------------------

    def start(self):
        """Sends the protocol header, returns connection.start's frame."""
        self.send(PROTOCOL_HEADER)
        f = self.expect(CONNECTION_START, channel=0)
        self.server_properties = f.args[2]
        self.mechanisms = f.args[3].decode().split()
        return f

    def handshake(self, user="guest", password="guest", vhost="/", mechanism="PLAIN",
                  channel_max=None, frame_max=None, heartbeat=0, open_vhost=True,
                  client_properties=None):
        """Runs the handshake up to connection.open-ok (or up to tune-ok if
        open_vhost is False). channel_max/frame_max default to the server's."""
        self.start()
        self.send(start_ok(user, password, mechanism, client_properties))
        f = self.expect(CONNECTION_TUNE, channel=0)
        self.tune = f.args
        cmax = f.args[0] if channel_max is None else channel_max
        fmax = f.args[1] if frame_max is None else frame_max
        self.send(tune_ok(cmax, fmax, heartbeat))
        self.negotiated = (cmax, fmax, heartbeat)
        if open_vhost:
            self.send(connection_open(vhost))
            self.expect(CONNECTION_OPEN_OK, channel=0)

    def open_channel(self, channel):
        self.send(channel_open(channel))
        self.expect(CHANNEL_OPEN_OK, channel=channel)

    def expect_connection_close(self, timeout=10.0):
        """Reads until connection.close (skipping anything else the broker
        sends first), answers close-ok, waits for the socket to close and
        returns (reply_code, reply_text, class_id, method_id)."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.read_method(max(0.0, deadline - time.monotonic()))
            if f.type == FRAME_METHOD and f.method == CONNECTION_CLOSE:
                break
        assert f.channel == 0, f
        try:
            self.send(connection_close_ok())
        except OSError:
            pass
        self.wait_closed(max(0.1, deadline - time.monotonic()))
        return tuple(f.args)

    def expect_channel_close(self, channel, timeout=10.0):
        f = self.expect(CHANNEL_CLOSE, channel=channel, timeout=timeout)
        self.send(channel_close_ok(channel))
        return tuple(f.args)
