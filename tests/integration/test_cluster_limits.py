# SPDX-License-Identifier: MIT
# Vhost and user limits (/api/vhost-limits, /api/user-limits, as RabbitMQ)
# kept in the metadata group (docs/CLUSTERING.md, "Definitions"): set on one
# node, listed by every node, enforced on every node against the whole
# cluster's queues, connections and channels (RabbitMQ 3.10 counts them
# cluster-wide), with RabbitMQ's reply texts; and on a single node, kept
# across a restart. Every wait is a condition with a deadline. warren only.
import pika.exceptions as pex
import pytest

from cluster import DEADLINE, attempt
from helpers import wait_for
from test_cluster_membership import change, leader
from test_restart_definitions import node  # noqa: F401 (a fixture)

VHOST_LIMIT = "NOT_ALLOWED - access to vhost '/' refused for user 'guest': connection limit (2) is reached"
USER_LIMIT = "NOT_ALLOWED - connection refused for user 'guest': user connection limit (2) is reached"
CHANNELS = "NOT_ALLOWED - number of channels opened for user 'guest' has reached the maximum allowed user limit of (2)"


def put(node, path, value):
    return node.http().put(path, {"value": value})


def refusal(node):
    """The text of the connection.close that refuses a new connection to node (None: it opened)."""
    try:
        node.connect().close()
        return None
    except pex.AMQPConnectionError as e:
        text = str(e.args[0]) if e.args else ""
        return text[text.index('"') + 1:-1] if '"' in text else text


def listed(node, path, want):
    return node.http().get(path).json == want


def test_limits_replicated_and_enforced_cluster_wide(cluster):
    n1, n2, n3 = (cluster.nodes[n] for n in ("n1", "n2", "n3"))
    wait_for(lambda: leader(n1) is not None, timeout=DEADLINE, what="a leader")
    assert put(n1, "/api/vhost-limits/%2F/max-queues", 2).status == 204
    for n in (n1, n2, n3):
        wait_for(lambda: listed(n, "/api/vhost-limits", [{"vhost": "/", "value": {"max-queues": 2}}]),
                 timeout=DEADLINE, what="%s to list the vhost limit" % n.name)

    # max-queues counts the cluster's queues: one declared on n2, one on n3, the third on n1 is refused.
    change(n2, lambda ch: ch.queue_declare("q1", durable=True))
    change(n3, lambda ch: ch.queue_declare("q2", durable=True))
    wait_for(lambda: attempt(n1, lambda ch: ch.queue_declare("q2", passive=True)) is None, timeout=DEADLINE,
             what="n1 to know q2")
    e = attempt(n1, lambda ch: ch.queue_declare("q3", durable=True))
    assert (e.reply_code, e.reply_text) == (
        406, "PRECONDITION_FAILED - cannot declare queue 'q3': queue limit in vhost '/' (2) is reached")
    assert attempt(n1, lambda ch: ch.queue_declare("q1", durable=True)) is None  # an existing one is fine
    assert n2.http().delete("/api/vhost-limits/%2F/max-queues").status == 204
    wait_for(lambda: listed(n1, "/api/vhost-limits", []), timeout=DEADLINE, what="n1 to drop the limit")
    change(n1, lambda ch: ch.queue_declare("q3", durable=True))

    # max-connections of the vhost, then of the user: two open (on n1 and n2), n3 refuses a third.
    held = [n1.connect(), n2.connect()]
    wait_for(lambda: len(n3.http().get("/api/connections").json) == 2, timeout=DEADLINE,
             what="n3 to know the two connections")
    assert put(n3, "/api/vhost-limits/%2F/max-connections", 2).status == 204
    wait_for(lambda: refusal(n3) == VHOST_LIMIT, timeout=DEADLINE, what="n3 to refuse a third connection")
    assert refusal(n1) == VHOST_LIMIT
    assert n3.http().delete("/api/vhost-limits/%2F/max-connections").status == 204
    assert put(n2, "/api/user-limits/guest/max-connections", 2).status == 204
    wait_for(lambda: refusal(n3) == USER_LIMIT, timeout=DEADLINE, what="n3 to refuse a third user connection")
    assert n1.http().delete("/api/user-limits/guest/max-connections").status == 204

    # max-channels of the user: one channel on n1 and one on n2; a channel on n3 closes its connection.
    assert put(n1, "/api/user-limits/guest/max-channels", 2).status == 204
    for n in (n1, n2, n3):
        wait_for(lambda: listed(n, "/api/user-limits", [{"user": "guest", "value": {"max-channels": 2}}]),
                 timeout=DEADLINE, what="%s to list the user limit" % n.name)
    for c in held:
        c.channel()
    wait_for(lambda: len(n3.http().get("/api/channels").json) == 2, timeout=DEADLINE,
             what="n3 to know the two channels")
    conn = n3.connect()
    with pytest.raises(pex.ConnectionClosedByBroker) as info:
        conn.channel()
    assert (info.value.reply_code, info.value.reply_text) == (530, CHANNELS)
    for c in held:
        c.close()


def test_limit_requests_refused(cluster):
    n1 = cluster.nodes["n1"]
    h = n1.http()
    wait_for(lambda: leader(n1) is not None, timeout=DEADLINE, what="a leader")
    r = put(n1, "/api/vhost-limits/%2F/max-foo", 1)
    assert (r.status, r.json["reason"]) == (
        400, "unknown limit 'max-foo': a vhost limit is max-connections or max-queues")
    r = put(n1, "/api/user-limits/guest/max-queues", 1)
    assert (r.status, r.json["reason"]) == (
        400, "unknown limit 'max-queues': a user limit is max-connections or max-channels")
    for bad in ("x", -2, None, 1.5):
        r = put(n1, "/api/vhost-limits/%2F/max-queues", bad)
        assert (r.status, r.json["reason"]) == (
            400, "max-queues: 'value' must be an integer, -1 (no limit) or more"), bad
    assert put(n1, "/api/vhost-limits/nope/max-queues", 1).status == 404
    assert put(n1, "/api/user-limits/nobody/max-channels", 1).status == 404
    assert h.get("/api/vhost-limits/%2F/max-queues").status == 405
    assert h.post("/api/vhost-limits", {}).status == 405
    assert h.get("/api/vhost-limits/%2F").json == []
    # -1 is "no limit", as in RabbitMQ: set, listed, nothing refused.
    assert put(n1, "/api/vhost-limits/%2F/max-queues", -1).status == 204
    assert h.get("/api/vhost-limits/%2F").json == [{"vhost": "/", "value": {"max-queues": -1}}]
    change(n1, lambda ch: ch.queue_declare("free", durable=True))


def test_single_node_limits_survive_a_restart(node):  # noqa: F811
    b = node()
    assert b.api.put("/api/vhost-limits/%2F/max-queues", {"value": 1}).status == 204
    assert b.api.put("/api/user-limits/guest/max-channels", {"value": 1}).status == 204
    b.restart()
    h = b.api
    assert h.get("/api/vhost-limits").json == [{"vhost": "/", "value": {"max-queues": 1}}]
    assert h.get("/api/user-limits/guest").json == [{"user": "guest", "value": {"max-channels": 1}}]
    conn = b.connect()
    conn.channel().queue_declare("one")
    with pytest.raises(pex.ConnectionClosedByBroker) as info:
        conn.channel()
    assert info.value.args == (
        530, "NOT_ALLOWED - number of channels opened for user 'guest' has reached the maximum allowed user "
        "limit of (1)")
    conn = b.connect()
    with pytest.raises(pex.ChannelClosedByBroker) as info:
        conn.channel().queue_declare("two")
    assert info.value.args == (
        406, "PRECONDITION_FAILED - cannot declare queue 'two': queue limit in vhost '/' (1) is reached")
    conn.close()
