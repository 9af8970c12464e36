# SPDX-License-Identifier: MIT
# A quorum queue pages like a classic one (docs/QUORUM.md, "Memory"): on a
# real 3-node cluster whose nodes keep 1 MiB of bodies in memory
# (storage.queue_memory_budget), a backlog of 64 times that is published with
# confirms; no node's RSS grows by anything near the backlog (the Raft core
# keeps no payload it can read back, the queue no body beyond its budget);
# then the queue drains on another node in publish order, nothing lost, the
# bodies read back from each member's write-ahead log. Every wait is a
# condition with a deadline. warren only.
import os

import pika
import pytest

from conftest import running_cluster
from test_cluster_quorum import declare, queue_info
from helpers import wait_for

MiB = 1 << 20
BUDGET = 1 * MiB
BODY = 64 * 1024
COUNT = 1024  # 64 MiB of bodies
# What a node's peak RSS may grow by while it takes the 64 MiB backlog: the
# WAL file write-behind reads whole (16 MiB, WR_RAFTD_WAL_SIZE), peer-link
# and WAL batch buffers, the core's log index, malloc's slack. Holding the
# bodies in memory once would exceed it (ASan adds its shadow and quarantine).
GROWTH_LIMIT = 40 * MiB


def status_bytes(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no %s for pid %d" % (field, pid))


@pytest.fixture
def budget_cluster(warrend_binary, tmp_path, monkeypatch):
    """Three nodes keeping BUDGET bytes of bodies in memory. Under ASan freed
    blocks sit in its quarantine: it is kept small, as test_flood does."""
    monkeypatch.setenv("ASAN_OPTIONS", (os.environ.get("ASAN_OPTIONS", "")
                                        + ":quarantine_size_mb=4:allocator_release_to_os_interval_ms=50")
                       .lstrip(":"))
    yield from running_cluster(tmp_path, extra={"storage": {"queue_memory_budget": BUDGET}})


def body(i):
    return b"%08d" % i + b"m" * (BODY - 8)


def test_backlog_larger_than_the_budget_stays_out_of_memory(budget_cluster):
    cluster = budget_cluster
    declare(cluster, "n1", "qm")
    pids = {n: cluster.nodes[n].broker.proc.pid for n in ("n1", "n2", "n3")}
    before = {n: status_bytes(pid, "VmRSS") for n, pid in pids.items()}
    conn = cluster.nodes["n1"].connect()
    ch = conn.channel()
    ch.confirm_delivery()
    for i in range(COUNT):
        ch.basic_publish("", "qm", body(i), pika.BasicProperties(delivery_mode=2))
    conn.close()
    wait_for(lambda: all(queue_info(cluster.nodes[n], "qm")["messages"] == COUNT for n in pids),
             30, "every member to hold the backlog")
    grown = {n: status_bytes(pid, "VmHWM") - before[n] for n, pid in pids.items()}
    print("quorum backlog %d MiB, budget %d MiB: peak RSS growth per node %s MiB"
          % (COUNT * BODY // MiB, BUDGET // MiB,
             {n: round(g / MiB, 1) for n, g in grown.items()}))
    for n, g in grown.items():
        assert g < GROWTH_LIMIT, "%s: peak RSS grew by %.1f MiB" % (n, g / MiB)

    got = []
    c3 = cluster.nodes["n3"].connect()
    ch3 = c3.channel()
    ch3.basic_qos(prefetch_count=32)

    def on(chx, method, props, b):
        got.append((method.redelivered, b))
        chx.basic_ack(method.delivery_tag)
    ch3.basic_consume("qm", on)
    wait_for(lambda: c3.process_data_events(0.05) or len({b[:8] for _, b in got}) >= COUNT, 60,
             "the backlog to drain")
    c3.close()
    # Every message, intact, first arrivals in publish order; a repeat only as a redelivery
    # (at-least-once: a consumer handed back after a missed peer heartbeat on a loaded machine).
    first, seen = [], set()
    for redelivered, b in got:
        i = int(b[:8])
        assert b == body(i), "damaged body %d" % i
        if i in seen:
            assert redelivered, "%d delivered twice, not as a redelivery" % i
        else:
            seen.add(i)
            first.append(i)
    assert first == list(range(COUNT))
    wait_for(lambda: all(queue_info(cluster.nodes[n], "qm")["messages"] == 0 for n in pids),
             30, "every member to see the queue empty")


def test_returned_message_is_read_back_from_the_snapshot(budget_cluster):
    """A message checked out while 2,000 pass, its body larger than the budget
    (so no member caches it: a smaller one stays cached while it is held):
    every member snapshots past it and its log entry leaves the WAL; when its
    consumer goes, the message returns and its next delivery reads the body
    back from the snapshot file."""
    cluster = budget_cluster
    declare(cluster, "n1", "qs")
    conn = cluster.nodes["n1"].connect()
    ch = conn.channel()
    ch.confirm_delivery()
    old = b"old" + b"o" * BUDGET
    ch.basic_publish("", "qs", old, pika.BasicProperties(delivery_mode=2))
    holder = cluster.nodes["n2"].connect()
    held = []
    hch = holder.channel()
    hch.basic_qos(prefetch_count=1)
    hch.basic_consume("qs", lambda c, m, p, b: held.append(b))
    wait_for(lambda: holder.process_data_events(0.05) or held, 20, "the old message to be held")
    for i in range(2000):
        ch.basic_publish("", "qs", b"%06d" % i + b"n" * 1018)
    got = []
    ch.basic_qos(prefetch_count=200)

    def on(chx, method, props, b):
        got.append(b)
        chx.basic_ack(method.delivery_tag)
    tag = ch.basic_consume("qs", on)
    wait_for(lambda: conn.process_data_events(0.05) or len(got) >= 2000, 30, "the 2,000 to pass")
    ch.basic_cancel(tag)

    def compacted():
        rafts = [queue_info(cluster.nodes[n], "qs")["raft"] for n in ("n1", "n2", "n3")]
        return all(r["snapshot_index"] > 1024 and r["last_index"] - r["snapshot_index"] < 1024
                   for r in rafts)
    wait_for(lambda: holder.process_data_events(0.05) or compacted(), 30, "every member to compact its log")
    holder.close()  # the old message returns
    back = []
    ch.basic_consume("qs", lambda c, m, p, b: back.append((m.redelivered, b)), auto_ack=True)
    wait_for(lambda: conn.process_data_events(0.05) or back, 20, "the returned message")
    conn.close()
    assert back == [(True, old)]
    for n in ("n1", "n2", "n3"):
        assert "no body for log index" not in cluster.nodes[n].log()


def test_restart_loads_a_snapshot_without_holding_it(budget_cluster):
    """A 64 MiB backlog in every member's snapshot (left waiting while twice
    as much flows through, so a snapshot is worth taking); n2 restarted
    loads it a chunk at a time: its peak RSS stays near its RSS once loaded
    (reading the file whole put the snapshot's size on top), and the backlog
    drains on n2 intact and in order."""
    cluster = budget_cluster
    declare(cluster, "n1", "qr")
    conn = cluster.nodes["n1"].connect()
    ch = conn.channel()
    ch.confirm_delivery()
    for i in range(COUNT):
        ch.basic_publish("", "qr", body(i), pika.BasicProperties(delivery_mode=2))
    # At least once: a get may return a message got before, flagged (seen under load after e515722:
    # 1,021 again right after its ack; likely a new leader handing back the getters of a node it saw
    # down, not confirmed), and then a later one stays in the queue. What stays is what no get took.
    got_before = set()
    for i in range(COUNT, 3 * COUNT):
        ch.basic_publish("", "qr", body(i), pika.BasicProperties(delivery_mode=2))
        m, _, b = ch.basic_get("qr")
        k = int(b[:8])
        assert k not in got_before or m.redelivered, "%d got twice, the second time unflagged" % k
        got_before.add(k)
        ch.basic_ack(m.delivery_tag)
    conn.close()
    backlog = [body(i) for i in range(3 * COUNT) if i not in got_before]
    wait_for(lambda: all(queue_info(cluster.nodes[n], "qr")["raft"]["snapshot_index"] > 3 * COUNT
                         for n in ("n1", "n2", "n3")), 60, "every member to snapshot the backlog")
    snap = max(os.path.getsize(os.path.join(d, f))
               for d, _, fs in os.walk(os.path.join(cluster.nodes["n2"].broker.workdir, "data", "raft", "snap"))
               for f in fs if f == "snap")
    assert snap > COUNT * BODY
    cluster.stop("n2")
    cluster.start("n2")
    pid = cluster.nodes["n2"].broker.proc.pid
    # Under ASan beside the other shards, recovering this 200 MiB of snapshot and WAL took over 60 s once,
    # and n2's loop, busy opening the group, left the API's requests unanswered for over 10 s. Loaded: n2
    # counts what the leader counts, the backlog at least: a message basic.get took may come back, to
    # be delivered again, flagged (at-least-once). Seen before e515722: 1,025 on every member, and in
    # CI "2047 ... came back unflagged", from a get's DEQUEUE proposed again after a timeout and
    # committed twice (test_quorum_get.py test_a_get_retried_across_a_leader_change_...).
    seen = {}

    def loaded():
        try:
            seen["info"] = queue_info(cluster.nodes["n2"], "qr")
        except (TimeoutError, ConnectionError) as e:
            seen["info"] = repr(e)
            return False
        info = seen["info"]
        if not isinstance(info, dict) or (info.get("messages") or 0) < len(backlog):
            return False
        return info["messages"] == (queue_info(cluster.nodes["n1"], "qr") or {}).get("messages")
    try:
        wait_for(loaded, 180, "n2 to load its snapshot")
    except AssertionError as e:
        def brief(info):
            keys = ("messages", "messages_ready", "messages_unacknowledged", "consumers", "leader", "raft")
            return {k: info.get(k) for k in keys} if isinstance(info, dict) else info
        others = {n: brief(queue_info(cluster.nodes[n], "qr")) for n in ("n1", "n3")}
        raise AssertionError("%s; n2's last answer: %r; the others now: %r" % (e, brief(seen.get("info")), others)) \
            from None
    peak, rss = status_bytes(pid, "VmHWM"), status_bytes(pid, "VmRSS")
    print("restart with a %.1f MiB snapshot: peak RSS %.1f MiB, RSS once loaded %.1f MiB"
          % (snap / MiB, peak / MiB, rss / MiB))
    assert peak - rss < COUNT * BODY // 2, "peak RSS %.1f MiB over %.1f MiB once loaded" % (peak / MiB, rss / MiB)

    c2 = cluster.nodes["n2"].connect()
    ch2 = c2.channel()
    got = []
    wanted = set(backlog)
    ch2.basic_qos(prefetch_count=32)
    ch2.basic_consume("qr", lambda chx, m, p, b: got.append((m.redelivered, b)) or chx.basic_ack(m.delivery_tag))
    wait_for(lambda: c2.process_data_events(0.05) or len({b for _, b in got} & wanted) >= len(backlog), 60,
             "the backlog to drain")
    c2.close()
    # The backlog, intact, first arrivals in publish order; anything else only a message got before, back
    # as a redelivery.
    for redelivered, b in got:
        i = int(b[:8])
        assert b == body(i), "damaged body %d" % i
        assert body(i) in wanted or redelivered, "%d, consumed before the restart, came back unflagged" % i
    firsts = list(dict.fromkeys(b for _, b in got if b in wanted))
    assert firsts == backlog
