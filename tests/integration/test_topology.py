# SPDX-License-Identifier: MIT
# The durable topology journal against the real warrend: pipelined declares,
# binds and deletes survive kill -9 right after their replies; a declare-ok
# waits for the journal's fdatasync while the loop goes on serving other
# clients (strace delays every fdatasync); a topology.json written by the
# previous version (format 1, no journal) still loads. The 100,000-queue
# measurement is scripts/bench-topology. Warren only: the tests restart
# their own broker.
import json
import os
import signal
import threading
import time

import pika

import amqp_raw as raw
from helpers import default_config, free_port
from test_durability import start_under_strace, stop_under_strace

N = 2000
QUEUE_BIND = (50, 20)
QUEUE_BIND_OK = (50, 21)
QUEUE_DELETE = (50, 40)
QUEUE_DELETE_OK = (50, 41)
EXCHANGE_DECLARE_OK = (40, 11)


def exchange_declare(ch, name, kind="direct"):
    return raw.method_frame(ch, raw.EXCHANGE_DECLARE, [
        ("H", 0), ("s", name), ("s", kind), ("b", False), ("b", True), ("b", False), ("b", False),
        ("b", False), ("T", {})])


def queue_bind(ch, queue, exchange, key):
    return raw.method_frame(ch, QUEUE_BIND, [
        ("H", 0), ("s", queue), ("s", exchange), ("s", key), ("b", False), ("T", {})])


def queue_delete(ch, queue):
    return raw.method_frame(ch, QUEUE_DELETE, [("H", 0), ("s", queue), ("b", False), ("b", False), ("b", False)])


def pipeline(c, frames, reply):
    """Sends every frame at once, then reads one `reply` per frame."""
    c.send(b"".join(frames))
    return [c.expect(reply, channel=1, timeout=60) for _ in frames]


def raw_conn(b):
    c = b.raw(timeout=60)
    c.handshake()
    c.open_channel(1)
    return c


def queue_exists(b, name):
    c = b.connect()
    try:
        c.channel().queue_declare(name, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker as e:
        assert (e.reply_code, e.reply_text) == (404, "NOT_FOUND - no queue '%s' in vhost '/'" % name)
        return False
    finally:
        if c.is_open:
            c.close()


def test_pipelined_declares_survive_kill(dedicated_broker, name):
    """2,000 durable queues declared in one pipelined burst, half of them
    bound, a tenth deleted: all of it is there after kill -9 right after the
    last reply, and routing still works."""
    b = dedicated_broker()
    names = [name("q%05d" % i) for i in range(N)]
    x = name("x")
    c = raw_conn(b)
    pipeline(c, [exchange_declare(1, x)], EXCHANGE_DECLARE_OK)
    pipeline(c, [raw.queue_declare(1, q, durable=True) for q in names], raw.QUEUE_DECLARE_OK)
    pipeline(c, [queue_bind(1, q, x, q) for q in names[::2]], QUEUE_BIND_OK)
    pipeline(c, [queue_delete(1, q) for q in names[::10]], QUEUE_DELETE_OK)
    b = dedicated_broker.restart(b, sig=signal.SIGKILL)

    live = [q for i, q in enumerate(names) if i % 10 != 0]
    c = raw_conn(b)
    oks = pipeline(c, [raw.queue_declare(1, q, passive=True) for q in live], raw.QUEUE_DECLARE_OK)
    assert [f.args[0] for f in oks] == live
    assert not queue_exists(b, names[0])
    pc = b.connect()
    ch = pc.channel()
    ch.confirm_delivery()
    ch.basic_publish(x, names[2], b"routed", mandatory=True)
    ch.basic_publish(x, names[3], b"unbound")
    assert ch.queue_declare(names[2], passive=True).method.message_count == 1
    assert ch.queue_declare(names[3], passive=True).method.message_count == 0
    pc.close()


def test_declare_ok_waits_for_journal_not_loop(warrend_binary, tmp_path, name):
    """Every fdatasync is held 0.5 s (strace): a durable declare's declare-ok
    comes after the journal's fdatasync, yet another client's publish + get
    round trips go on meanwhile (the loop never waits for the disk)."""
    delay = 0.5
    proc, port = start_under_strace(warrend_binary, str(tmp_path),
                                    ["-e", "inject=fdatasync:delay_exit=%d" % int(delay * 1e6)])
    try:
        probe = raw.RawConnection("127.0.0.1", port)
        probe.handshake()
        probe.open_channel(1)
        pq = name("probe")
        probe.send(raw.queue_declare(1, pq))
        probe.expect(raw.QUEUE_DECLARE_OK, channel=1)
        msg = raw.basic_publish(1, "", pq) + raw.header_frame(1, 1) + raw.body_frame(1, b"x")
        worst, trips, stop = [0.0], [], threading.Event()

        def round_trips():
            while not stop.is_set():
                t = time.monotonic()
                probe.send(msg + raw.basic_get(1, pq))
                probe.expect(raw.BASIC_GET_OK, channel=1)
                probe.read_frame()
                probe.read_frame()
                worst[0] = max(worst[0], time.monotonic() - t)
                trips.append(t)

        th = threading.Thread(target=round_trips)
        th.start()
        c = raw.RawConnection("127.0.0.1", port)
        c.handshake()
        c.open_channel(1)
        for i in range(3):
            t0 = time.monotonic()
            c.send(raw.queue_declare(1, name("d%d" % i), durable=True))
            c.expect(raw.QUEUE_DECLARE_OK, channel=1)
            assert time.monotonic() - t0 >= delay
        stop.set()
        th.join()
        # The probe kept going all along (a failed probe thread counts nothing).
        assert len(trips) > 10 and time.monotonic() - trips[-1] < delay, len(trips)
        assert worst[0] < delay / 2, worst[0]
        c.close()
        probe.close()
    finally:
        assert stop_under_strace(proc, str(tmp_path)) == 0


V1_TOPOLOGY = {
    "format": "warren-topology", "version": 1,
    "vhosts": {"/": {
        "policies": [],
        "exchanges": [{"name": "old-x", "type": "fanout", "durable": True, "auto_delete": False,
                       "internal": False, "arguments": ""}],
        "queues": [{"name": "old-q", "durable": True, "auto_delete": False, "arguments": "",
                    "log": "q0000000000000001"}],
        "bindings": [{"source": "old-x", "destination": "old-q", "destination_type": "queue",
                      "routing_key": "", "arguments": ""}]}}}


def test_loads_previous_version(dedicated_broker, tmp_path):
    """A data directory as the previous version left it (topology.json format 1,
    no journal) opens with its queue, exchange and binding, and stays so
    after a change and a restart."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "topology.json").write_text(json.dumps(V1_TOPOLOGY))
    b = dedicated_broker({"data_dir": str(data)})
    c = b.connect()
    ch = c.channel()
    ch.queue_declare("new-q", durable=True)
    ch.basic_publish("old-x", "", b"via the old binding", pika.BasicProperties(delivery_mode=2))
    c.close()
    b = dedicated_broker.restart(b)
    c = b.connect()
    ch = c.channel()
    assert ch.queue_declare("old-q", passive=True).method.message_count == 1
    assert ch.queue_declare("new-q", passive=True).method.message_count == 0
    c.close()
    assert os.path.exists(data / "logs" / "topology")
