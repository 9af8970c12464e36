# SPDX-License-Identifier: MIT
# Quorum queues (issue 15, docs/QUORUM.md) as clients see them on a 3-node
# cluster: declare rules and texts, members and leader in the management
# API, publish on one node and consume on another, confirms, x-delivery-count,
# the delivery limit and dead-lettering, basic.get, purge, prefetch, cancel.
# Runs against a warren cluster started here (cluster.py), or an external one
# named by WARREN_CLUSTER_BROKERS=h:p,h:p,h:p (scripts/test-rabbitmq-cluster
# points it at RabbitMQ 3.10; WARREN_CLUSTER_MANAGEMENT names its APIs).
# Where RabbitMQ 3.x differs from 4.x (what warren follows), the case says so.
import os
import subprocess

import pytest

from cluster import Cluster
from helpers import Collector, channel_error, queue_counts, wait_for, wait_queue_count
from quorum_clients import DEADLINE, PERSISTENT, QUORUM, Target, stop_cluster


@pytest.fixture(scope="module")
def qc(tmp_path_factory):
    ext = Target.from_env()
    if ext is not None:
        yield ext
        return
    if not os.environ.get("WARREND"):
        raise pytest.UsageError("set WARREN_CLUSTER_BROKERS=h:p,h:p,h:p or WARREND=/path/to/warrend")
    c = Cluster(tmp_path_factory.mktemp("quorum"))
    c.start_all()
    c.wait_all_up()
    t = Target.from_cluster(c)
    t.cluster = c
    yield t
    stop_cluster(c)


def revive(qc):
    """Restarts every warren node that died; the report of each death
    (exit status and the end of its log), or "" ("" also for an external
    cluster)."""
    c = getattr(qc, "cluster", None)
    dead = [n for n in c.nodes.values() if not n.alive()] if c else []
    report = "".join("%s died (exit status %s); its log ends:\n%s\n"
                     % (n.name, n.broker.proc.returncode, "\n".join(n.log().splitlines()[-60:])) for n in dead)
    for n in dead:
        c.start(n.name)
    if dead:
        c.wait_all_up()
    return report


@pytest.fixture
def queue(qc, request):
    """A fresh queue name per test, deleted afterwards. A warren node that
    died during the test is reported against it, and restarted so that the
    next tests still say something."""
    name = "qq-" + request.node.name.replace("[", "-").replace("]", "")
    qc.delete(name)
    yield name
    report = revive(qc)
    qc.delete(name)
    if report:
        pytest.fail(report, pytrace=False)


def consume(conn, ch, queue, n, prefetch=0, ack=False):
    """A consumer on ch; waits for n deliveries and returns the Collector."""
    if prefetch:
        ch.basic_qos(prefetch_count=prefetch)
    col = Collector(ack=ack)
    ch.basic_consume(queue, col)
    col.wait(conn, n, DEADLINE)
    return col


def delivery_count(props):
    """x-delivery-count; absent means 0 (RabbitMQ 3.10 sends 0 on basic.get)."""
    return (props.headers or {}).get("x-delivery-count", 0)


# ---- declare ----

def test_declare_and_equivalent_redeclare_on_every_node(qc, queue):
    qc.declare(queue, arguments={"x-max-length": 100})
    for i in range(3):
        c = qc.connect(i)
        ok = c.channel().queue_declare(queue, durable=True, arguments=dict(QUORUM, **{"x-max-length": 100}))
        assert (ok.method.queue, ok.method.message_count, ok.method.consumer_count) == (queue, 0, 0)
        c.close()


@pytest.mark.parametrize("kw,text", [
    ({"durable": True}, "inequivalent arg 'x-queue-type' for queue '%s' in vhost '/': "
                        "received none but current is the value 'quorum' of type 'longstr'"),
    ({"durable": True, "arguments": {"x-queue-type": "classic"}},
     "inequivalent arg 'x-queue-type' for queue '%s' in vhost '/': received 'classic' but current is 'quorum'"),
    ({"durable": True, "arguments": dict(QUORUM, **{"x-max-length": 5})},
     "inequivalent arg 'x-max-length' for queue '%s' in vhost '/': "
     "received the value '5' of type 'signedint' but current is none"),
    ({"durable": False, "arguments": QUORUM},
     "inequivalent arg 'durable' for queue '%s' in vhost '/': received 'false' but current is 'true'"),
], ids=["no-type", "classic", "max-length", "non-durable"])
def test_inequivalent_redeclare_is_refused_on_another_node(qc, queue, kw, text):
    qc.declare(queue)
    c = qc.connect(1)
    with channel_error(406, "PRECONDITION_FAILED - " + text % queue):
        c.channel().queue_declare(queue, **kw)
    c.close()


@pytest.mark.parametrize("kw,prop", [
    ({"durable": True, "exclusive": True}, "exclusive-owner"),
    ({"durable": True, "auto_delete": True}, "auto-delete"),
    ({"durable": False}, "non-durable"),
    ({"durable": False, "exclusive": True}, "exclusive-owner"),
], ids=["exclusive", "auto-delete", "non-durable", "exclusive-non-durable"])
def test_refused_properties(qc, queue, kw, prop):
    with qc.connect(0) as c:
        with channel_error(406, "PRECONDITION_FAILED - invalid property '%s' for queue '%s' in vhost '/'"
                           % (prop, queue)):
            c.channel().queue_declare(queue, arguments=QUORUM, **kw)
        with channel_error(404, "NOT_FOUND - no queue '%s' in vhost '/'" % queue):
            c.channel().queue_declare(queue, passive=True)


# ---- the management view ----

def needs_api(qc):
    if qc.mgmt is None:
        pytest.skip("no management API (set WARREN_CLUSTER_MANAGEMENT=h:p,h:p,h:p)")


def settled_info(qc, i, queue, members):
    """The queue's view from node i once it lists `members` members, all online."""
    def ready():
        d = qc.queue_info(i, queue)
        return d if d and len(d.get("members", [])) == members and \
            sorted(d.get("online", [])) == sorted(d["members"]) and d.get("leader") else None
    try:
        return wait_for(ready, DEADLINE, "node %d to show %s with %d members online" % (i, queue, members))
    except AssertionError as e:
        raise AssertionError("%s; it shows %r" % (e, qc.queue_info(i, queue)))


def test_api_shows_type_leader_and_members_on_every_node(qc, queue):
    needs_api(qc)
    qc.declare(queue, node=1)
    views = [settled_info(qc, i, queue, 3) for i in range(3)]
    for d in views:
        assert d["type"] == "quorum" and d["durable"] is True
        assert sorted(d["members"]) == sorted(qc.names)
        assert d["members"][0] == qc.names[1], "the declaring node's member comes first: %r" % d["members"]
        assert d["leader"] in d["members"]
        # RabbitMQ 3.10 leaves "node" null for quorum queues; later ones name the leader.
        if not (qc.rabbitmq3 and d.get("node") is None):
            assert d["node"] == d["leader"]
    assert len({d["leader"] for d in views}) == 1, views


@pytest.mark.parametrize("size", [1, 2, 5])
def test_initial_group_size(qc, queue, size):
    needs_api(qc)
    qc.declare(queue, node=2, arguments={"x-quorum-initial-group-size": size})
    d = settled_info(qc, 0, queue, min(size, 3))
    assert d["members"][0] == qc.names[2]
    assert set(d["members"]) <= set(qc.names)


# ---- messages across nodes ----

def test_publish_with_confirms_on_one_node_consume_on_another(qc, queue):
    qc.declare(queue)
    pub = qc.connect(0)
    pch = pub.channel()
    pch.confirm_delivery()
    for i in range(50):
        pch.basic_publish("", queue, b"m%d" % i, PERSISTENT, mandatory=True)
    for i in range(3):
        with qc.connect(i) as c:
            wait_queue_count(c.channel(), queue, 50, DEADLINE)
    cons = qc.connect(2)
    col = consume(cons, cons.channel(), queue, 50, prefetch=10, ack=True)
    assert col.bodies == [b"m%d" % i for i in range(50)]
    assert all(not m.redelivered for m, _, _ in col.deliveries)
    assert all(delivery_count(p) == 0 for _, p, _ in col.deliveries)
    ch = qc.connect(1).channel()
    wait_queue_count(ch, queue, 0, DEADLINE)
    pub.close()
    cons.close()


def test_consumer_on_a_third_node_gets_messages_published_later(qc, queue):
    qc.declare(queue)
    cons = qc.connect(1)
    cch = cons.channel()
    col = Collector(ack=True)
    cch.basic_consume(queue, col)
    pub = qc.connect(2)
    pch = pub.channel()
    pch.confirm_delivery()
    for i in range(20):
        pch.basic_publish("", queue, b"late%d" % i, PERSISTENT, mandatory=True)
    col.wait(cons, 20, DEADLINE)
    assert col.bodies == [b"late%d" % i for i in range(20)]
    pub.close()
    cons.close()


def test_amqp_tools_publish_on_one_node_consume_on_another(qc, queue):
    qc.declare(queue)
    host, port = qc.amqp[1]
    for i in range(3):
        subprocess.run(["amqp-publish", "-s", host, "--port", str(port), "-r", queue, "-p",
                        "-b", "tool%d" % i], check=True, timeout=DEADLINE)
    ch = qc.connect(0).channel()
    wait_queue_count(ch, queue, 3, DEADLINE)
    host, port = qc.amqp[2]
    out = subprocess.run(["amqp-consume", "-s", host, "--port", str(port), "-q", queue, "-c", "3",
                          "-p", "1", "cat"], check=True, timeout=DEADLINE, capture_output=True)
    assert out.stdout == b"tool0tool1tool2"
    wait_queue_count(ch, queue, 0, DEADLINE)


# ---- delivery count, delivery limit ----

def test_delivery_count_after_nack_and_reject_requeue(qc, queue):
    qc.declare(queue)
    pub = qc.connect(0)
    pch = pub.channel()
    pch.confirm_delivery()
    pch.basic_publish("", queue, b"again", PERSISTENT)
    cons = qc.connect(1)
    ch = cons.channel()
    col = consume(cons, ch, queue, 1)
    m, p, _ = col.deliveries[0]
    assert (m.redelivered, delivery_count(p)) == (False, 0)
    ch.basic_nack(m.delivery_tag, requeue=True)
    col.wait(cons, 2, DEADLINE)
    m, p, b = col.deliveries[1]
    assert (b, m.redelivered, p.headers.get("x-delivery-count")) == (b"again", True, 1)
    ch.basic_reject(m.delivery_tag, requeue=True)
    col.wait(cons, 3, DEADLINE)
    m, p, _ = col.deliveries[2]
    assert (m.redelivered, p.headers.get("x-delivery-count")) == (True, 2)
    ch.basic_ack(m.delivery_tag)
    wait_queue_count(pch, queue, 0, DEADLINE)
    pub.close()
    cons.close()


def nack_until_dead_lettered(qc, queue, dlq, deliveries):
    """Consumes on node 2 nacking (requeue) every delivery; asserts that the
    message was delivered exactly `deliveries` times and then dead-lettered
    to dlq with reason delivery_limit."""
    pub = qc.connect(0)
    pch = pub.channel()
    pch.confirm_delivery()
    pch.basic_publish("", queue, b"poison", PERSISTENT)
    cons = qc.connect(2)
    ch = cons.channel()
    counts = []

    def nack(c, m, p, b):
        counts.append(delivery_count(p))
        c.basic_nack(m.delivery_tag, requeue=True)
    ch.basic_consume(queue, nack)
    wait_for(lambda: queue_counts(pch, dlq)[0] == 1, DEADLINE * 2, "the message in %s" % dlq, conn=cons)
    assert counts == list(range(deliveries))
    m, p, b = pch.basic_get(dlq, auto_ack=True)
    assert b == b"poison"
    assert p.headers["x-first-death-reason"] == "delivery_limit"
    assert p.headers["x-death"][0]["reason"] == "delivery_limit"
    assert p.headers["x-death"][0]["queue"] == queue
    wait_queue_count(pch, queue, 0, DEADLINE)
    cons.close()
    pub.close()


def test_delivery_limit_dead_letters(qc, queue):
    dlq = queue + "-dlq"
    qc.delete(dlq)
    qc.declare(dlq)
    qc.declare(queue, arguments={"x-delivery-limit": 2, "x-dead-letter-exchange": "",
                                 "x-dead-letter-routing-key": dlq})
    nack_until_dead_lettered(qc, queue, dlq, 3)
    qc.delete(dlq)


def test_default_delivery_limit_is_20(qc, queue):
    if qc.rabbitmq3:
        pytest.skip("RabbitMQ 3.x quorum queues have no default delivery limit (4.0 made it 20)")
    dlq = queue + "-dlq"
    qc.delete(dlq)
    qc.declare(dlq)
    qc.declare(queue, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
    nack_until_dead_lettered(qc, queue, dlq, 21)
    qc.delete(dlq)


# ---- basic.get, purge, prefetch, cancel ----

@pytest.mark.parametrize("limit", [None, 50], ids=["default-limit", "limit-50"])
def test_basic_get_from_another_node(qc, queue, limit):
    qc.declare(queue, arguments={"x-delivery-limit": limit} if limit else None)
    pub = qc.connect(0)
    pch = pub.channel()
    pch.confirm_delivery()
    for i in range(3):
        pch.basic_publish("", queue, b"g%d" % i, PERSISTENT)
    c = qc.connect(1)
    ch = c.channel()
    m, p, b = ch.basic_get(queue)
    assert (b, m.message_count, m.redelivered, delivery_count(p)) == (b"g0", 2, False, 0)
    ch.basic_reject(m.delivery_tag, requeue=True)
    got = [ch.basic_get(queue) for _ in range(3)]
    # A returned message is served first; RabbitMQ 3.x puts it at the back
    # when the queue has no delivery limit (its documented "requeue" path).
    order = [b"g1", b"g2", b"g0"] if qc.rabbitmq3 and limit is None else [b"g0", b"g1", b"g2"]
    assert [b for _, _, b in got] == order
    for m, p, b in got:
        assert (m.redelivered, delivery_count(p)) == ((True, 1) if b == b"g0" else (False, 0)), b
        ch.basic_ack(m.delivery_tag)
    assert ch.basic_get(queue) == (None, None, None)
    c.close()
    pub.close()


def one_member_and_a_client_elsewhere(qc, queue, bodies):
    """A queue with one member holding bodies (confirmed), and a connection
    to a node that is not its member (the queue reached through a proxy)."""
    needs_api(qc)
    qc.declare(queue, node=0, arguments={"x-quorum-initial-group-size": 1})
    members = settled_info(qc, 0, queue, 1)["members"]
    other = next(i for i, n in enumerate(qc.names) if n not in members)
    pub = qc.connect(0)
    pch = pub.channel()
    pch.confirm_delivery()
    for body in bodies:
        pch.basic_publish("", queue, body, PERSISTENT)
    pub.close()
    return qc.connect(other)


def test_basic_get_through_a_non_member(qc, queue):
    """One member: another node reaches the queue through its proxy, and
    basic.get there gets every message in order (it answered get-empty
    while the member's get answered later than the proxy asked)."""
    c = one_member_and_a_client_elsewhere(qc, queue, [b"n%d" % i for i in range(3)])
    ch = c.channel()
    got = [ch.basic_get(queue) for _ in range(3)]
    assert [(b, m.message_count) for m, _, b in got] == [(b"n0", 2), (b"n1", 1), (b"n2", 0)]
    for m, _, _ in got:
        ch.basic_ack(m.delivery_tag)
    assert ch.basic_get(queue) == (None, None, None)
    c.close()


def test_purge_through_a_non_member(qc, queue):
    """One member: queue.purge on another node answers once the member
    applied the purge, with the count it dropped (until session 18 the
    proxy said 0 at once)."""
    c = one_member_and_a_client_elsewhere(qc, queue, [b"u%d" % i for i in range(4)])
    ch = c.channel()
    assert ch.queue_purge(queue).method.message_count == 4
    assert ch.basic_get(queue) == (None, None, None)
    c.close()


def test_api_get_and_purge_on_the_member_and_through_another_node(qc, queue):
    """The management API's get and purge of a quorum queue: get shows the
    head messages with the count left behind each, and requeues them
    (ack_requeue_true) or takes them (ack_requeue_false); purge answers 204
    once the purge is applied, on the member and through a node that is not
    one. Until session 18 get showed [] for a quorum queue on every node,
    and purge answered before the purge."""
    one_member_and_a_client_elsewhere(qc, queue, [b"g%d" % i for i in range(5)]).close()
    members = qc.queue_info(0, queue)["members"]
    member = qc.names.index(members[0])
    other = next(i for i, n in enumerate(qc.names) if n not in members)
    path = "/api/queues/%2F/" + queue
    for node in (member, other):
        r = qc.http(node).post(path + "/get", {"count": 2, "ackmode": "ack_requeue_true", "encoding": "auto"})
        assert r.status == 200, r
        assert [(m["payload"], m["message_count"]) for m in r.json] == [("g0", 4), ("g1", 3)], (node, r.json)
    r = qc.http(other).post(path + "/get", {"count": 9, "ackmode": "ack_requeue_false", "encoding": "auto"})
    assert [m["payload"] for m in r.json] == ["g0", "g1", "g2", "g3", "g4"], r.json
    c = qc.connect(0)
    ch = c.channel()
    ch.confirm_delivery()
    for i in range(3):
        ch.basic_publish("", queue, b"h%d" % i, PERSISTENT)
    r = qc.http(other).request("DELETE", path + "/contents")
    assert r.status == 204, r
    assert qc.connect(member).channel().basic_get(queue) == (None, None, None)
    c.close()


def test_purge_counts_ready_messages_only(qc, queue):
    qc.declare(queue)
    pub = qc.connect(0)
    pch = pub.channel()
    pch.confirm_delivery()
    for i in range(7):
        pch.basic_publish("", queue, b"p%d" % i, PERSISTENT)
    cons = qc.connect(2)
    cch = cons.channel()
    col = consume(cons, cch, queue, 2, prefetch=2)
    other = qc.connect(1)
    assert other.channel().queue_purge(queue).method.message_count == 5
    for m, _, _ in col.deliveries:
        cch.basic_ack(m.delivery_tag)
    assert other.channel().queue_purge(queue).method.message_count == 0
    cons.process_data_events(time_limit=0.2)
    assert col.bodies == [b"p0", b"p1"]
    for c in (pub, cons, other):
        c.close()


def test_prefetch_is_honoured(qc, queue):
    qc.declare(queue)
    pub = qc.connect(0)
    pch = pub.channel()
    pch.confirm_delivery()
    for i in range(10):
        pch.basic_publish("", queue, b"f%d" % i, PERSISTENT)
    cons = qc.connect(1)
    cch = cons.channel()
    col = consume(cons, cch, queue, 3, prefetch=3)
    # A round trip on the consumer's own connection, and one through the
    # queue from another node: still 3 in flight.
    cch.basic_qos(prefetch_count=3)
    wait_queue_count(pch, queue, 7, DEADLINE)
    cons.process_data_events(time_limit=0.2)
    assert len(col.deliveries) == 3
    cch.basic_ack(col.deliveries[0][0].delivery_tag)
    col.wait(cons, 4, DEADLINE)
    wait_queue_count(pch, queue, 6, DEADLINE)
    cons.process_data_events(time_limit=0.2)
    assert col.bodies == [b"f0", b"f1", b"f2", b"f3"]
    pub.close()
    cons.close()


def test_consumer_count_on_every_node(qc, queue):
    qc.declare(queue)
    cons = qc.connect(1)
    cch = cons.channel()
    tag = cch.basic_consume(queue, Collector())
    chans = [qc.connect(i).channel() for i in range(3)]
    for i, ch in enumerate(chans):
        wait_for(lambda: queue_counts(ch, queue) == (0, 1), DEADLINE, "node %d to count 1 consumer" % i)
    cch.basic_cancel(tag)
    for i, ch in enumerate(chans):
        wait_for(lambda: queue_counts(ch, queue) == (0, 0), DEADLINE, "node %d to count no consumer" % i)
    for ch in chans:
        ch.connection.close()
    cons.close()


def test_cancel_keeps_unacked_until_channel_close_returns_them(qc, queue):
    qc.declare(queue)
    pub = qc.connect(0)
    pch = pub.channel()
    pch.confirm_delivery()
    for i in range(10):
        pch.basic_publish("", queue, b"c%d" % i, PERSISTENT)
    cons = qc.connect(1)
    cch = cons.channel()
    col = consume(cons, cch, queue, 5, prefetch=5)
    cch.basic_cancel(col.deliveries[0][0].consumer_tag)
    # Acking frees prefetch, but a cancelled consumer gets nothing more. It
    # still counts as a consumer while it holds unacked messages (RabbitMQ
    # 3.10 and 4.x alike: a cancelled consumer goes with its last one).
    cch.basic_ack(col.deliveries[0][0].delivery_tag)
    wait_for(lambda: queue_counts(pch, queue) == (5, 1), DEADLINE, "5 ready, the cancelled consumer")
    cch.queue_declare(queue, passive=True)
    assert len(col.deliveries) == 5
    cch.close()
    wait_for(lambda: queue_counts(pch, queue) == (9, 0), DEADLINE, "9 ready, no consumer")
    got = [pch.basic_get(queue, auto_ack=True) for _ in range(9)]
    assert [b for _, _, b in got] == [b"c%d" % i for i in range(1, 10)], "returned messages come first, in order"
    assert [m.redelivered for m, _, _ in got] == [True] * 4 + [False] * 5
    # RabbitMQ 4.0 stopped counting returns of a closed channel (only
    # reject/nack requeue counts); 3.x counts them.
    returned = 1 if qc.rabbitmq3 else 0
    assert [delivery_count(p) for _, p, _ in got] == [returned] * 4 + [0] * 5
    pub.close()
    cons.close()
