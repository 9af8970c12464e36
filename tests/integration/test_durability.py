# SPDX-License-Identifier: MIT
# Durability across restarts of one warrend on the same data_dir: durable
# versus transient topology, persistent versus transient messages (order,
# bodies and content headers byte-exact), the redelivered flag of messages
# delivered but not acked, acks, purge and delete, kill -9 after confirms,
# paging far past the memory budget, confirms sent only after fdatasync, and
# a data_dir that a second broker must refuse. RabbitMQ 3.10 behaves the same
# on everything a client sees (checked with scripts/rabbitmq and a restart).
# Warren only: the tests restart their own broker.
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import time

import pika
import pytest

import amqp_raw as raw
from durability import AckingConsumer, ConfirmPublisher, body, check_body, drain
from helpers import assert_serves, channel_error, default_config, free_port, wait_for

PERSISTENT = pika.BasicProperties(delivery_mode=2)


def declare_ok(b, kind, name):
    """Whether a passive declare of the exchange or queue succeeds."""
    c = b.connect()
    try:
        ch = c.channel()
        if kind == "queue":
            ch.queue_declare(name, passive=True)
        else:
            ch.exchange_declare(name, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker as e:
        assert (e.reply_code, e.reply_text) == (404, "NOT_FOUND - no %s '%s' in vhost '/'" % (kind, name))
        return False
    finally:
        if c.is_open:
            c.close()


def get_all(ch, queue):
    """basic.get with no-ack until empty: [(method, properties, body)]."""
    out = []
    while True:
        m, p, b = ch.basic_get(queue, auto_ack=True)
        if m is None:
            return out
        out.append((m, p, b))


# ---------------------------------------------------------------- topology


def test_durable_topology_survives_restart(dedicated_broker, name):
    b = dedicated_broker()
    dx, dx2, tx, hx, dq, dq2, tq = (name(p) for p in ("dx", "dx2", "tx", "hx", "dq", "dq2", "tq"))
    qargs = {"x-max-priority": 5, "x-queue-mode": "lazy"}
    c = b.connect()
    ch = c.channel()
    ch.exchange_declare(dx, "topic", durable=True)
    ch.exchange_declare(dx2, "fanout", durable=True, auto_delete=True)
    ch.exchange_declare(hx, "headers", durable=True, arguments={"alternate-exchange": dx})
    ch.exchange_declare(tx, "fanout", durable=False)
    ch.queue_declare(dq, durable=True, arguments=qargs)
    ch.queue_declare(dq2, durable=True)
    ch.queue_declare(tq, durable=False)
    excl = ch.queue_declare("", exclusive=True, durable=True).method.queue
    ch.queue_bind(dq, dx, "a.*.c")
    ch.queue_bind(dq, hx, "", arguments={"x-match": "all", "k": "v"})
    ch.exchange_bind(dx2, dx, "e2e.#")
    ch.queue_bind(dq2, dx2)
    ch.queue_bind(tq, dx, "t.#")              # to a transient queue: not durable
    ch.exchange_bind(dx, tx)                  # from a transient exchange: not durable
    c.close()

    b = dedicated_broker.restart(b)
    for x in (dx, dx2, hx):
        assert declare_ok(b, "exchange", x)
    assert declare_ok(b, "queue", dq) and declare_ok(b, "queue", dq2)
    for q in (tq, excl):
        assert not declare_ok(b, "queue", q)
    assert not declare_ok(b, "exchange", tx)
    c = b.connect()
    ch = c.channel()
    # The flags and arguments came back: an equal redeclare is fine, another is not.
    ch.queue_declare(dq, durable=True, arguments=qargs)
    ch.exchange_declare(dx2, "fanout", durable=True, auto_delete=True)
    ch.exchange_declare(hx, "headers", durable=True, arguments={"alternate-exchange": dx})
    with channel_error(406, "PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue "
                            "'%s' in vhost '/': received '6' but current is '5'" % dq):
        c.channel().queue_declare(dq, durable=True, arguments={"x-max-priority": 6, "x-queue-mode": "lazy"})
    # The durable bindings route, through e2e and headers bindings too.
    ch.basic_publish(dx, "a.b.c", b"topic")
    ch.basic_publish(dx, "e2e.x", b"e2e")
    ch.basic_publish(hx, "", b"headers", pika.BasicProperties(headers={"k": "v"}))
    ch.basic_publish(hx, "", b"alternate", pika.BasicProperties(headers={"k": "w"}))
    wait_for(lambda: ch.queue_declare(dq, passive=True).method.message_count == 2, what="2 messages in dq")
    assert sorted(x[2] for x in get_all(ch, dq)) == [b"headers", b"topic"]
    assert [x[2] for x in get_all(ch, dq2)] == [b"e2e"]
    c.close()


def test_deleted_topology_stays_deleted(dedicated_broker, name):
    b = dedicated_broker()
    x, q, kept = name("x"), name("q"), name("kept")
    c = b.connect()
    ch = c.channel()
    ch.exchange_declare(x, "direct", durable=True)
    ch.queue_declare(q, durable=True)
    ch.queue_declare(kept, durable=True)
    ch.queue_bind(kept, x, "k")
    ch.queue_bind(kept, x, "gone")
    for i in range(5):
        ch.basic_publish("", q, b"m%d" % i, PERSISTENT)
        ch.basic_publish("", kept, b"m%d" % i, PERSISTENT)
    ch.queue_unbind(kept, x, "gone")
    ch.queue_delete(q)
    ch.queue_purge(kept)
    c.close()

    b = dedicated_broker.restart(b)
    assert not declare_ok(b, "queue", q)
    c = b.connect()
    ch = c.channel()
    assert ch.queue_declare(kept, passive=True).method.message_count == 0
    ch.basic_publish(x, "gone", b"unroutable")
    ch.basic_publish(x, "k", b"routed")
    wait_for(lambda: ch.queue_declare(kept, passive=True).method.message_count == 1, what="1 message")
    assert [m[2] for m in get_all(ch, kept)] == [b"routed"]
    # A queue of the same name starts empty.
    assert ch.queue_declare(q, durable=True).method.message_count == 0
    ch.exchange_delete(x)
    c.close()
    b = dedicated_broker.restart(b)
    assert not declare_ok(b, "exchange", x)
    assert declare_ok(b, "queue", q)


def test_empty_durable_queue_keeps_its_log_name(dedicated_broker, name):
    """A durable queue that never stored a message has no log on disk yet;
    after a restart a new queue must not be given the same log."""
    b = dedicated_broker()
    q1, q2 = name("q1"), name("q2")
    c = b.connect()
    c.channel().queue_declare(q1, durable=True)
    c.close()
    b = dedicated_broker.restart(b)
    c = b.connect()
    ch = c.channel()
    ch.queue_declare(q2, durable=True)
    ch.confirm_delivery()
    ch.basic_publish("", q1, b"one", PERSISTENT)
    ch.basic_publish("", q2, b"two", PERSISTENT)
    c.close()
    b = dedicated_broker.restart(b)
    c = b.connect()
    ch = c.channel()
    assert [m[2] for m in get_all(ch, q1)] == [b"one"]
    assert [m[2] for m in get_all(ch, q2)] == [b"two"]
    c.close()


# ---------------------------------------------------------------- messages


def test_persistent_messages_survive_restart(dedicated_broker, name):
    b = dedicated_broker()
    q, tq = name("q"), name("tq")
    sizes = [0, 1, 1000, 300000, 17]      # 300000 spans several frames
    props = [pika.BasicProperties(
        content_type="application/x-%d" % i, content_encoding="gzip", delivery_mode=2,
        headers={"i": i, "s": "text", "nested": {"list": [1, "two", True]}},
        priority=i % 10, correlation_id="corr-%d" % i, reply_to="reply", message_id="id-%d" % i,
        timestamp=1700000000 + i, type="type-%d" % i, app_id="app")
        for i in range(len(sizes))]
    bodies = [os.urandom(n) for n in sizes]
    c = b.connect()
    ch = c.channel()
    ch.queue_declare(q, durable=True)
    ch.queue_declare(tq, durable=False)
    for i, (p, data) in enumerate(zip(props, bodies)):
        ch.basic_publish("", q, data, p)
        ch.basic_publish("", q, b"transient-%d" % i, pika.BasicProperties(delivery_mode=1))
        ch.basic_publish("", tq, data, p)
    wait_for(lambda: ch.queue_declare(q, passive=True).method.message_count == 2 * len(sizes),
             what="all published")
    c.close()

    b = dedicated_broker.restart(b)
    assert not declare_ok(b, "queue", tq)
    c = b.connect()
    ch = c.channel()
    got = get_all(ch, q)
    assert [m[2] for m in got] == bodies
    for (m, p, data), want in zip(got, props):
        assert not m.redelivered
        for attr in ("content_type", "content_encoding", "headers", "delivery_mode", "priority",
                     "correlation_id", "reply_to", "message_id", "timestamp", "type", "app_id"):
            assert getattr(p, attr) == getattr(want, attr), attr
    c.close()


def raw_publish(conn, queue, flags, props, data):
    conn.send(raw.basic_publish(1, "", queue) + raw.header_frame(1, len(data), flags=flags, props=props)
              + (raw.body_frame(1, data) if data else b""))


def raw_get_header(conn, queue):
    """basic.get (no-ack) over the raw connection: (header payload, body)."""
    conn.send(raw.basic_get(1, queue))
    conn.expect(raw.BASIC_GET_OK, channel=1)
    h = conn.read_frame()
    assert h.type == raw.FRAME_HEADER
    size = struct.unpack(">Q", h.payload[4:12])[0]
    data = b""
    while len(data) < size:
        data += conn.read_frame().payload
    return h.payload, data


def test_content_header_bytes_survive_restart(dedicated_broker, name):
    """The content header comes back as the very bytes that were published,
    field types pika cannot produce included."""
    b = dedicated_broker()
    q = name()
    table = (raw.shortstr("x") + b"x" + raw.longstr(b"\x00\xff") + raw.shortstr("D") + b"D\x02" +
             struct.pack(">i", -12345) + raw.shortstr("T") + b"T" + struct.pack(">Q", 1) +
             raw.shortstr("f") + b"f" + struct.pack(">f", 0.5) + raw.shortstr("u") + b"u" +
             struct.pack(">H", 65535) + raw.shortstr("V") + b"V")
    # content-type, headers, delivery-mode 2, timestamp, cluster-id
    flags = (1 << 15) | (1 << 13) | (1 << 12) | (1 << 6) | (1 << 2)
    props = (raw.shortstr("a/b") + struct.pack(">I", len(table)) + table + b"\x02" +
             struct.pack(">Q", 42) + raw.shortstr("cluster"))
    with b.raw() as conn:
        conn.handshake()
        conn.open_channel(1)
        conn.send(raw.queue_declare(1, q, durable=True))
        conn.expect(raw.QUEUE_DECLARE_OK, channel=1)
        raw_publish(conn, q, flags, props, b"payload")
        raw_publish(conn, q, 1 << 12, b"\x02", b"")
        conn.send(raw.queue_declare(1, q, passive=True))
        assert conn.expect(raw.QUEUE_DECLARE_OK, channel=1).args[1] == 2
        sent = raw_get_header(conn, q)
        raw_publish(conn, q, flags, props, b"payload")
    assert sent == (struct.pack(">HHQH", 60, 0, 7, flags) + props, b"payload")
    b = dedicated_broker.restart(b)
    with b.raw() as conn:
        conn.handshake()
        conn.open_channel(1)
        empty = raw_get_header(conn, q)
        assert raw_get_header(conn, q) == sent
    assert empty[1] == b""
    assert empty[0][12:] == struct.pack(">H", 1 << 12) + b"\x02"


def test_redelivered_flag_after_restart(dedicated_broker, name):
    """As RabbitMQ: a message delivered but not acked comes back with
    redelivered=true, the others with false, acked ones not at all."""
    b = dedicated_broker()
    q = name()
    c = b.connect()
    ch = c.channel()
    ch.queue_declare(q, durable=True)
    for i in range(5):
        ch.basic_publish("", q, b"m%d" % i, PERSISTENT)
    m0 = ch.basic_get(q, auto_ack=False)
    m1 = ch.basic_get(q, auto_ack=False)
    assert (m0[2], m1[2]) == (b"m0", b"m1")
    ch.basic_ack(m1[0].delivery_tag)
    ch.queue_declare(q, passive=True)  # a round trip: the ack has been handled
    b = dedicated_broker.restart(b)    # with the delivery of m0 still open
    c = b.connect()
    ch = c.channel()
    got = get_all(ch, q)
    assert [(m.redelivered, data) for m, p, data in got] == [
        (True, b"m0"), (False, b"m2"), (False, b"m3"), (False, b"m4")]
    c.close()


def test_requeued_and_acked_across_restarts(dedicated_broker, name):
    """Messages requeued by a closed channel keep their place; what was
    acked stays gone through several restarts."""
    b = dedicated_broker()
    q = name()
    c = b.connect()
    ch = c.channel()
    ch.queue_declare(q, durable=True)
    for i in range(20):
        ch.basic_publish("", q, b"m%02d" % i, PERSISTENT)
    seen = [ch.basic_get(q, auto_ack=False)[0].delivery_tag for _ in range(10)]
    for tag in seen[:5]:
        ch.basic_ack(tag)
    c.close()                              # m05..m09 go back, redelivered
    for _ in range(2):
        b = dedicated_broker.restart(b)
    c = b.connect()
    ch = c.channel()
    got = get_all(ch, q)
    assert [d for m, p, d in got] == [b"m%02d" % i for i in range(5, 20)]
    assert [m.redelivered for m, p, d in got] == [True] * 5 + [False] * 10
    c.close()


def test_kill9_keeps_confirmed_messages(dedicated_broker, name):
    """Each message goes to two durable queues: its confirm waits for both."""
    b = dedicated_broker()
    x, q1, q2 = name("x"), name("q1"), name("q2")
    c = b.connect()
    ch = c.channel()
    ch.exchange_declare(x, "fanout", durable=True)
    for q in (q1, q2):
        ch.queue_declare(q, durable=True)
        ch.queue_bind(q, x)
    ch.confirm_delivery()
    for i in range(100):
        ch.basic_publish(x, "", body("k", i, i * 37), PERSISTENT)  # raises unless acked
    b = dedicated_broker.restart(b, signal.SIGKILL)
    c = b.connect()
    for q in (q1, q2):
        got = drain(c.channel(), q)
        assert [(t, n) for t, n, r in got] == [("k", i) for i in range(100)]
    c.close()


def test_lone_confirmed_publisher_is_not_held_by_its_consumers_acks(dedicated_broker, name):
    """A publisher that waits for each confirm while a consumer acks each
    message: the ack records, which nobody waits for, pile up behind the
    message's sync. They must not hold the next message, which its publisher
    waits for, for the commit interval (1 s here): that cost a second per
    message. Now each message waits for at most two syncs."""
    b = dedicated_broker({"storage": {"commit_interval_us": 1000000}})
    q = name("q")
    c = b.connect()
    ch = c.channel()
    ch.queue_declare(q, durable=True)
    consumer = AckingConsumer(b.params(), q)
    consumer.start()
    assert consumer.ready.wait(10)
    ch.confirm_delivery()
    started = time.monotonic()
    for i in range(20):
        ch.basic_publish("", q, body("k", i, 100), PERSISTENT)  # raises unless acked
    took = time.monotonic() - started
    wait_for(lambda: len(consumer.acked) == 20, what="the consumer to ack all 20")
    consumer.stop()
    c.close()
    assert took < 10, "20 confirms took %.1f s" % took


def test_unconfirmed_persistent_message_is_written_once_its_delay_is_up(dedicated_broker, name):
    """A persistent message published without confirms: nothing waits for
    its record, so the broker holds it in memory for storage.unawaited_delay_us
    (0.3 s here), in case an awaited record comes to share its sync, and then
    writes it on its own, with no other traffic to set a flush off. It is
    in its queue's log file then, and survives kill -9."""
    b = dedicated_broker({"storage": {"unawaited_delay_us": 300000}})
    q = name("q")
    c = b.connect()
    ch = c.channel()
    ch.queue_declare(q, durable=True)
    ch.basic_publish("", q, body("held", 0, 64), PERSISTENT)
    c.close()
    marker = body("held", 0, 64)[:32]
    logs = os.path.join(b.workdir, "data", "logs")

    def written():
        for d, _, files in os.walk(logs):
            for f in files:
                with open(os.path.join(d, f), "rb") as fh:
                    if marker in fh.read():
                        return True
        return False

    wait_for(written, timeout=10, what="the message's record in its log file")
    b = dedicated_broker.restart(b, signal.SIGKILL)
    c = b.connect()
    assert [(t, n) for t, n, r in drain(c.channel(), q)] == [("held", 0)]
    c.close()


# ---------------------------------------------------------------- paging


def test_backlog_far_past_memory_budget(dedicated_broker, name):
    """With a 64 KiB budget, 3 MiB backlogs page to disk and come back in
    order, across a restart for the persistent ones."""
    b = dedicated_broker({"storage": {"queue_memory_budget": 65536, "segment_size": 1048576}})
    dq, tq = name("dq"), name("tq")
    n = 3000
    c = b.connect()
    ch = c.channel()
    ch.queue_declare(dq, durable=True)
    ch.queue_declare(tq, durable=False)
    for i in range(n):
        ch.basic_publish("", dq, body("d", i, 1000), PERSISTENT)
        ch.basic_publish("", tq, body("t", i, 1000))
    for q in (dq, tq):
        wait_for(lambda: ch.queue_declare(q, passive=True).method.message_count == n, what="backlog of " + q)
    logs = os.path.join(b.config["data_dir"], "logs")
    assert sum(len(files) for _, _, files in os.walk(logs)) >= 4  # both queues paged
    got = []
    ch.basic_qos(prefetch_count=200)
    for m, p, data in ch.consume(dq):
        got.append(check_body(data))
        ch.basic_ack(m.delivery_tag)
        if len(got) == n // 3:
            break
    ch.cancel()
    assert got == [("d", i) for i in range(n // 3)]
    assert [(t, i) for t, i, r in drain(ch, tq)] == [("t", i) for i in range(n)]
    c.close()
    b = dedicated_broker.restart(b)
    c = b.connect()
    assert [(t, i) for t, i, r in drain(c.channel(), dq)] == [("d", i) for i in range(n // 3, n)]
    c.close()


# ---------------------------------------------------------------- confirms


def start_under_strace(binary, workdir, tamper):
    """warrend under strace, its fdatasync calls tampered with as `tamper`
    (strace options) says."""
    strace = shutil.which("strace")
    if strace is None or subprocess.run([strace, "-o", "/dev/null", "true"]).returncode != 0:
        pytest.skip("strace cannot trace here")
    port = free_port()
    cfg = default_config(port)
    cfg["data_dir"] = os.path.join(workdir, "data")
    path = os.path.join(workdir, "warren.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    log = open(os.path.join(workdir, "warrend.log"), "wb")
    # LeakSanitizer stops the world with ptrace, which a traced process cannot.
    env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0")
    proc = subprocess.Popen([strace, "-f", "--seccomp-bpf", "-qq", "-o", "/dev/null", "-e", "trace=fdatasync"]
                            + tamper + [binary, "--config", path],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                            env=env)
    log.close()

    def listening():
        assert proc.poll() is None, open(os.path.join(workdir, "warrend.log")).read()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_for(listening, what="warrend under strace to listen")
    return proc, port


def test_confirm_only_after_fdatasync(warrend_binary, tmp_path, name):
    """Every fdatasync is held 0.5 s by strace: a persistent message in a
    durable queue is confirmed only after that (multiple=true for a burst),
    while a transient message or a non-durable queue is confirmed at once."""
    delay = 0.5
    proc, port = start_under_strace(warrend_binary, str(tmp_path),
                                    ["-e", "inject=fdatasync:delay_exit=%d" % int(delay * 1e6)])
    try:
        dq, tq = name("dq"), name("tq")
        c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
        ch = c.channel()
        ch.queue_declare(dq, durable=True)
        ch.queue_declare(tq, durable=False)
        ch.confirm_delivery()
        for queue, props, slow in ((dq, PERSISTENT, True), (dq, None, False), (tq, PERSISTENT, False)):
            t0 = time.monotonic()
            ch.basic_publish("", queue, b"x", props)
            took = time.monotonic() - t0
            assert (took >= delay) if slow else (took < delay / 2), (queue, props, took)
        c.close()

        pub = ConfirmPublisher("127.0.0.1", port, dq, "burst", window=50).start()
        t0 = time.monotonic()
        pub.wait_confirmed(50, timeout=20)
        took = time.monotonic() - t0
        pub.stop()
        assert took >= delay
        assert not pub.nacked
        # Group commit: a few batches, each acked with one multiple=true frame.
        assert pub.ack_frames <= 6, pub.ack_frames
    finally:
        assert stop_under_strace(proc, str(tmp_path)) == 0


def stop_under_strace(proc, workdir):
    with open(os.path.join(workdir, "data", "LOCK")) as f:
        os.kill(int(f.read()), signal.SIGTERM)
    return proc.wait(20)


def test_write_error_nacks(warrend_binary, tmp_path, name):
    """fdatasync of the first durable queue's first segment fails with EIO
    (strace): its publisher gets basic.nack, transient messages and other
    queues go on, the error is logged; the queue's next message goes to a new
    segment and is confirmed, without a restart."""
    workdir = str(tmp_path)
    seg = os.path.join(workdir, "data", "logs", "q0000000000000001", "0000000000000001.seg")
    proc, port = start_under_strace(warrend_binary, workdir,
                                    ["-P", seg, "-e", "inject=fdatasync:error=EIO"])
    try:
        dq, tq = name("dq"), name("tq")
        c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
        ch = c.channel()
        ch.queue_declare(dq, durable=True)
        ch.queue_declare(tq, durable=False)
        ch.confirm_delivery()
        with pytest.raises(pika.exceptions.NackError):
            ch.basic_publish("", dq, b"lost", PERSISTENT)
        ch.basic_publish("", dq, b"stored", PERSISTENT)
        ch.basic_publish("", dq, b"transient")
        ch.basic_publish("", tq, b"persistent elsewhere", PERSISTENT)
        assert ch.basic_get(tq, auto_ack=True)[2] == b"persistent elsewhere"
        c.close()
    finally:
        assert stop_under_strace(proc, workdir) == 0
    log = open(os.path.join(workdir, "warrend.log")).read()
    assert "write error in its log q0000000000000001" in log
    assert "fdatasync of %s failed: Input/output error" % seg in log
    assert "its log q0000000000000001 is written again" in log


# ---------------------------------------------------------------- data_dir


def test_second_broker_refuses_the_data_dir(dedicated_broker, warrend_binary, tmp_path):
    a = dedicated_broker()
    cfg = default_config(free_port())
    cfg["data_dir"] = a.config["data_dir"]
    path = tmp_path / "warren.json"
    path.write_text(json.dumps(cfg))
    p = subprocess.run([warrend_binary, "--config", str(path)], capture_output=True, timeout=20,
                       cwd=str(tmp_path))
    err = p.stderr.decode()
    assert p.returncode == 1, err
    assert ("storage directory %s is in use by another process (pid %d holds %s/LOCK)"
            % (cfg["data_dir"], a.proc.pid, cfg["data_dir"])) in err
    assert_serves(a)


def test_storage_config_errors(warrend_binary, tmp_path):
    """Every problem with the storage keys is reported, naming the key."""
    cfg = default_config(free_port())
    cfg["data_dir"] = 5
    cfg["storage"] = {"segment_size": 10, "queue_memory_budget": -1, "page_size": 4096}
    path = tmp_path / "warren.json"
    path.write_text(json.dumps(cfg))
    p = subprocess.run([warrend_binary, "--config", str(path)], capture_output=True, timeout=20,
                       cwd=str(tmp_path))
    err = p.stderr.decode()
    assert p.returncode == 2, err
    for line in ("data_dir: expected a string, got an integer",
                 "storage.segment_size: must be between 4096 and 1073741824, got 10",
                 "storage.queue_memory_budget: must be between 0 and 9223372036854775807, got -1",
                 "storage.page_size: unknown key"):
        assert "%s: %s" % (path, line) in err, err
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("file,text,error", [
    ("VERSION", "warren-storage 2\n", "has format version 2 (%s/VERSION); this build reads version 1 only"),
    ("topology.json", "{\"vhosts\": [", "cannot read the durable topology %s/topology.json: line 1"),
    ("topology.json", "{\"vhosts\": {}}", "%s/topology.json is not a warren topology file"),
])
def test_unreadable_data_dir_refused(warrend_binary, tmp_path, file, text, error):
    """A data_dir this build cannot read stops the broker with exit status 1
    and a message naming the file; nothing is overwritten."""
    data = tmp_path / "data"
    data.mkdir()
    if file != "VERSION":
        (data / "VERSION").write_text("warren-storage 1\n")
    (data / file).write_text(text)
    cfg = default_config(free_port())
    cfg["data_dir"] = str(data)
    path = tmp_path / "warren.json"
    path.write_text(json.dumps(cfg))
    p = subprocess.run([warrend_binary, "--config", str(path)], capture_output=True, timeout=20,
                       cwd=str(tmp_path))
    assert p.returncode == 1
    assert error % data in p.stderr.decode(), p.stderr.decode()
    assert (data / file).read_text() == text
