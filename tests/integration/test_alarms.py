# SPDX-License-Identifier: MIT
# The memory and disk alarms (docs/FLOW.md), on dedicated brokers whose
# watermark or disk free limit is already crossed at boot: a connection that
# publishes is blocked before the body of its message (connection.blocked
# with RabbitMQ's reason when it advertised the capability, reads stopped
# either way), a consumer on another connection keeps consuming and acking,
# a blocked connection is not dropped for heartbeats it cannot be heard
# sending, and the alarms show in the log and in Prometheus metrics. The
# behaviour was checked on RabbitMQ 3.10 (rabbitmqctl
# set_vm_memory_high_watermark): no connection.blocked before a publish,
# "low on memory", nothing at all for a client without the capability.
import json
import os
import shutil
import socket
import subprocess
import time
from types import SimpleNamespace

import pika
import pika.exceptions as pex
import pytest

import amqp_raw as raw
from conftest import Http
from helpers import Collector, default_config, free_port, listening, wait_for
from test_metrics import parse, value

# A watermark of one byte and a disk free limit no disk has: raised at boot.
TINY_WATERMARK = {"memory_high_watermark": {"absolute": 1}}
HUGE_DISK_LIMIT = {"disk_free_limit": 10 ** 18}


def metrics_config():
    return {"prometheus": {"address": "127.0.0.1", "port": free_port()}}


def api_config():
    """The management API, and guest an administrator to use it."""
    return {"management": {"address": "127.0.0.1", "port": free_port()},
            "users": [{"name": "guest", "password": "guest", "vhosts": ["/"],
                       "tags": ["administrator"]}]}


def conn_states(b):
    """The state of each connection in /api/connections, by client port."""
    r = Http("127.0.0.1", b.config["management"]["port"]).get("/api/connections")
    assert r.status == 200, r
    return {c["peer_port"]: c["state"] for c in r.json}


def scrape(b):
    """The parsed /metrics/per-object (the node's series and each queue's)
    of a broker started with metrics_config()."""
    r = Http("127.0.0.1", b.config["prometheus"]["port"]).get("/metrics/per-object", auth=False)
    assert r.status == 200, r
    return parse(r.body)


def abort(conn):
    """Drops a pika connection's socket without connection.close: a blocked
    connection's close would wait behind its stopped reads (as on RabbitMQ)."""
    conn._impl._transport._sock.shutdown(socket.SHUT_RDWR)
    try:
        conn.process_data_events(0.1)
    except (pex.AMQPError, OSError):
        pass


def publish_until_blocked(b):
    """A pika publisher (which advertises connection.blocked) publishes once;
    returns (connection, the reasons it was told)."""
    pub = b.connect()
    reasons = []
    pub.add_on_connection_blocked_callback(lambda c, f: reasons.append(f.method.reason))
    ch = pub.channel()
    # Methods without content are served while the alarm is raised, and
    # nothing is said before the connection publishes.
    ch.queue_declare("", exclusive=True)
    assert reasons == []
    ch.basic_publish("amq.fanout", "", b"held")
    wait_for(lambda: reasons, conn=pub, what="connection.blocked")
    return pub, reasons


def test_memory_alarm_blocks_publishers_not_consumers(dedicated_broker, name):
    b = dedicated_broker(dict(metrics_config(), **api_config()))
    q = name("q")
    c = b.connect()
    ch = c.channel()
    ch.confirm_delivery()
    ch.queue_declare(q, durable=True)
    ch.queue_bind(q, "amq.fanout")
    for i in range(5):
        ch.basic_publish("", q, b"before-%d" % i, pika.BasicProperties(delivery_mode=2))
    c.close()
    b.config.update(TINY_WATERMARK)
    b = dedicated_broker.restart(b)
    assert "memory resource limit alarm set on node warren@" in b.log()

    pub, reasons = publish_until_blocked(b)
    assert reasons == ["low on memory"]
    f = scrape(b)
    assert value(f, "warren_alarm_active", resource="memory") == 1
    assert value(f, "warren_alarm_active", resource="disk") == 0
    assert value(f, "warren_memory_high_watermark_bytes") == 1
    assert value(f, "warren_memory_used_bytes") > 1024 * 1024
    assert value(f, "warren_connections_blocked") == 1

    # Another connection consumes and acks; the held message never arrived.
    cons = b.connect()
    cch = cons.channel()
    got = Collector(ack=True)
    cch.basic_consume(q, got)
    got.wait(cons, 5)
    assert sorted(got.bodies) == [b"before-%d" % i for i in range(5)]
    wait_for(lambda: value(scrape(b), "warren_queue_messages", vhost="/", queue=q) == 0,
             conn=cons, what="every message acked")
    pub.process_data_events(0)
    assert len(got.deliveries) == 5 and cch.queue_declare(q, passive=True).method.message_count == 0
    assert reasons == ["low on memory"]
    # RabbitMQ's states: the publisher is blocked, the consumer, which has
    # not published since the alarm, is "blocking".
    states = conn_states(b)
    assert states[pub._impl._transport._sock.getsockname()[1]] == "blocked"
    assert states[cons._impl._transport._sock.getsockname()[1]] == "blocking"
    cons.close()
    abort(pub)


def test_disk_alarm_blocks_with_rabbitmq_reason(dedicated_broker):
    b = dedicated_broker(dict(HUGE_DISK_LIMIT, **metrics_config()))
    assert "disk resource limit alarm set on node warren@" in b.log()
    pub, reasons = publish_until_blocked(b)
    assert reasons == ["low on disk"]
    f = scrape(b)
    assert value(f, "warren_alarm_active", resource="disk") == 1
    assert value(f, "warren_alarm_active", resource="memory") == 0
    assert value(f, "warren_disk_free_limit_bytes") == 10 ** 18
    assert 0 < value(f, "warren_disk_free_bytes") < 10 ** 18
    assert value(f, "warren_connections_blocked") == 1
    abort(pub)


def test_no_capability_reads_stop_and_heartbeats_pause(dedicated_broker, name):
    """A client that did not advertise connection.blocked is told nothing,
    but what it sends after the content header is not read (a queue.declare
    stays unanswered), and although its heartbeats cannot be heard it is not
    dropped: with heartbeat 1 a silent client is dropped after 2 s."""
    b = dedicated_broker(TINY_WATERMARK)
    q = name("q")
    r = b.raw()
    r.handshake(heartbeat=1, client_properties={"product": "no-capabilities", "capabilities": {}})
    r.open_channel(1)
    r.send(raw.queue_declare(1, q))
    r.expect(raw.QUEUE_DECLARE_OK, channel=1)
    r.send(raw.basic_publish(1, "", q) + raw.header_frame(1, 4) + raw.body_frame(1, b"held"))
    r.send(raw.queue_declare(1, q, passive=True))
    # Silent for 2.75 s: the time passing is what is tested. Nothing but the
    # broker's heartbeats may arrive (the passive declare stays unanswered),
    # and a drop for our missing heartbeats would raise raw.Closed here.
    deadline = time.monotonic() + 2.75
    while time.monotonic() < deadline:
        try:
            f = r.read_frame(timeout=deadline - time.monotonic())
        except TimeoutError:
            break
        assert f.type == raw.FRAME_HEARTBEAT, "expected only heartbeats, got %r" % (f,)
    c = b.connect()
    assert c.channel().queue_declare(q, passive=True).method.message_count == 0
    c.close()
    r.send(raw.heartbeat_frame())
    r.close()


def test_running_broker_raises_no_alarm(broker):
    """The defaults (40% of RAM, 50 MB free) are not crossed by the test
    suite's broker: publishing is not held."""
    if broker.external:
        pytest.skip("warren's log")
    assert "memory high watermark set to" in broker.log()
    assert "resource limit alarm set" not in broker.log()


def test_storage_flow_holds_publishers_without_losing_confirms(warrend_binary, tmp_path, name):
    """Every fdatasync is held 0.2 s (strace) and flow_pending_bytes is at its
    minimum (1 MiB): a pipelining publisher of 64 KiB persistent messages is
    soon held by flow (its reads stop; the client is not told) and resumes
    as batches complete; every confirmed message is in the queue."""
    from durability import ConfirmPublisher
    from test_durability import stop_under_strace
    strace = shutil.which("strace")
    if strace is None or subprocess.run([strace, "-o", "/dev/null", "true"]).returncode != 0:
        pytest.skip("strace cannot trace here")
    workdir = str(tmp_path)
    port, prom = free_port(), free_port()
    cfg = dict(default_config(port), data_dir=os.path.join(workdir, "data"),
               storage={"flow_pending_bytes": 1 << 20},
               prometheus={"address": "127.0.0.1", "port": prom})
    path = os.path.join(workdir, "warren.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0")
    with open(os.path.join(workdir, "warrend.log"), "wb") as log:
        proc = subprocess.Popen([strace, "-f", "--seccomp-bpf", "-qq", "-o", "/dev/null",
                                 "-e", "trace=fdatasync", "-e", "inject=fdatasync:delay_exit=200000",
                                 warrend_binary, "--config", path],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=workdir, env=env)
    b = SimpleNamespace(config=cfg)  # what scrape() reads
    try:
        wait_for(lambda: proc.poll() is None and listening(port), what="warrend under strace")
        q = name("q")
        c = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port))
        c.channel().queue_declare(q, durable=True)
        pub = ConfirmPublisher("127.0.0.1", port, q, "flow", size=lambda n: 64 * 1024).start()
        wait_for(lambda: (lambda f: value(f, "warren_storage_flow") == 1
                          and value(f, "warren_connections_blocked") == 1)(scrape(b)),
                 what="the publisher held by flow")
        pub.wait_confirmed(20, timeout=30)
        confirmed = pub.stop()
        f = wait_for(lambda: (lambda f: value(f, "warren_storage_flow") == 0
                              and value(f, "warren_connections_blocked") == 0 and f)(scrape(b)),
                     what="flow to end")
        assert value(f, "warren_storage_flow_started_total") > 0
        assert pub.nacked == set()
        assert c.channel().queue_declare(q, passive=True).method.message_count >= len(confirmed)
        c.close()
    finally:
        assert stop_under_strace(proc, workdir) == 0
