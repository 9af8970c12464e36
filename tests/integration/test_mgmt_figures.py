# SPDX-License-Identifier: MIT
# The queue figures and overview counters of the management API that
# RabbitMQ 3.10 reports: message_bytes and its parts, messages_persistent
# and messages_ram, head_message_timestamp, consumer_utilisation and
# consumer_capacity, idle_since, and the overview's churn_rates and node
# message_stats (confirm, get_empty, return_unroutable, drop_unroutable),
# the node's extras (churn, contexts, auth_mechanisms) and the lists warren
# has nothing in (operator policies, topic permissions, limits).
# Values are asserted, not only presence. Runs against RabbitMQ too
# (WARREN_BROKER and WARREN_MANAGEMENT), except where a test says warren.
import datetime
import re

import pika
import pytest

from conftest import quote
from helpers import free_port, listening, wait_for

BODY = b"x" * 100
IDLE_SINCE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")


@pytest.fixture
def api(mgmt_broker):
    return mgmt_broker.mgmt


@pytest.fixture
def conn(mgmt_broker):
    c = mgmt_broker.connect()
    yield c
    if c.is_open:
        c.close()


def queue_when(api, name, cond, what):
    """GET /api/queues/%2F/name until cond(queue) holds; returns it."""
    last = {}

    def check():
        r = api.get("/api/queues/%s/%s" % (quote("/"), quote(name)))
        assert r.status == 200, r
        last["q"] = r.json
        return cond(r.json)
    try:
        wait_for(check, what=what)
    except AssertionError as e:
        raise AssertionError("%s; last: %r" % (e, last.get("q")))
    return last["q"]


def overview_when(api, cond, what):
    last = {}

    def check():
        last["o"] = api.get("/api/overview").json
        return cond(last["o"])
    try:
        wait_for(check, what=what)
    except AssertionError as e:
        raise AssertionError("%s; last: %r" % (e, {k: last["o"].get(k) for k in ("churn_rates", "message_stats")}))
    return last["o"]


def publish(ch, queue, n, persistent_first, **props):
    for i in range(n):
        ch.basic_publish("", queue, BODY, pika.BasicProperties(
            delivery_mode=2 if i < persistent_first else 1, **props))


BYTES = ("message_bytes", "message_bytes_ready", "message_bytes_unacknowledged", "message_bytes_persistent")


def figures(q, keys=BYTES):
    return {k: q.get(k) for k in keys}


def bytes_when(api, q, expected, keys=BYTES):
    """Waits until the figures keys of queue q are expected (RabbitMQ
    updates message_bytes a moment after the message counts)."""
    return queue_when(api, q, lambda j: figures(j, keys) == expected, "%r" % expected)


def test_message_bytes_follow_ready_unacked_and_acks(api, conn, name):
    q = name("bytes")
    ch = conn.channel()
    ch.queue_declare(q, durable=True)
    publish(ch, q, 3, persistent_first=2)
    ready = {"message_bytes": 300, "message_bytes_ready": 300, "message_bytes_unacknowledged": 0,
             "message_bytes_persistent": 200, "message_bytes_ram": 300, "messages_persistent": 2,
             "messages_ram": 3, "messages_ready_ram": 3, "message_bytes_paged_out": 0, "messages_paged_out": 0}
    bytes_when(api, q, ready, tuple(ready))
    ch.basic_qos(prefetch_count=3)
    tags = []
    ch.basic_consume(q, lambda c, m, p, b: tags.append(m.delivery_tag))
    wait_for(lambda: len(tags) == 3, conn=conn, what="3 deliveries")
    bytes_when(api, q, {"message_bytes": 300, "message_bytes_ready": 0, "message_bytes_unacknowledged": 300,
                        "message_bytes_persistent": 200})
    ch.basic_ack(tags[0])
    bytes_when(api, q, {"message_bytes": 200, "message_bytes_ready": 0, "message_bytes_unacknowledged": 200,
                        "message_bytes_persistent": 100})
    ch.basic_ack(0, multiple=True)
    bytes_when(api, q, dict.fromkeys(BYTES + ("messages_persistent",), 0), BYTES + ("messages_persistent",))
    ch.queue_delete(q)


def test_requeued_messages_count_again_as_ready(api, conn, name):
    q = name("requeue")
    ch = conn.channel()
    ch.queue_declare(q, durable=True)
    publish(ch, q, 2, persistent_first=2)
    queue_when(api, q, lambda j: j.get("messages") == 2, "2 messages")
    got = ch.basic_get(q)[0]
    bytes_when(api, q, {"message_bytes": 200, "message_bytes_ready": 100, "message_bytes_unacknowledged": 100,
                        "message_bytes_persistent": 200})
    ch.basic_nack(got.delivery_tag, requeue=True)
    bytes_when(api, q, {"message_bytes": 200, "message_bytes_ready": 200, "message_bytes_unacknowledged": 0,
                        "message_bytes_persistent": 200})
    ch.queue_delete(q)


def test_transient_queue_has_no_persistent_bytes(api, conn, name):
    q = name("transient")
    ch = conn.channel()
    ch.queue_declare(q, auto_delete=False)
    publish(ch, q, 2, persistent_first=2)
    keys = ("message_bytes", "message_bytes_persistent", "messages_persistent")
    bytes_when(api, q, {"message_bytes": 200, "message_bytes_persistent": 0, "messages_persistent": 0}, keys)
    ch.queue_delete(q)


def test_head_message_timestamp(api, conn, name):
    q = name("ts")
    ch = conn.channel()
    ch.queue_declare(q)
    empty = queue_when(api, q, lambda j: "head_message_timestamp" in j, "the field")
    assert empty["head_message_timestamp"] is None
    publish(ch, q, 1, 0, timestamp=1700000000)
    publish(ch, q, 1, 0, timestamp=1700000005)
    publish(ch, q, 1, 0)
    queue_when(api, q, lambda j: j.get("head_message_timestamp") == 1700000000, "the first timestamp")
    ch.basic_get(q, auto_ack=True)
    queue_when(api, q, lambda j: j.get("head_message_timestamp") == 1700000005, "the second timestamp")
    ch.basic_get(q, auto_ack=True)
    queue_when(api, q, lambda j: j.get("messages") == 1 and j.get("head_message_timestamp") is None,
               "a head without a timestamp")
    ch.queue_delete(q)


def test_consumer_utilisation_and_capacity(mgmt_broker, api, conn, name):
    q = name("util")
    ch = conn.channel()
    ch.queue_declare(q)
    none = queue_when(api, q, lambda j: "consumer_utilisation" in j, "the field")
    assert (none["consumer_utilisation"], none["consumer_capacity"]) == (0, 0)
    assert isinstance(none["consumer_utilisation"], int)
    ch.basic_qos(prefetch_count=1)
    tags = []
    ch.basic_consume(q, lambda c, m, p, b: tags.append(m.delivery_tag))
    free = queue_when(api, q, lambda j: j.get("consumer_utilisation") == 1.0, "utilisation 1.0")
    assert free["consumer_capacity"] == 1.0
    publish(ch, q, 2, 0)
    wait_for(lambda: len(tags) == 1, conn=conn, what="one delivery")
    # The only consumer's window is full: the queue cannot deliver. RabbitMQ
    # decays towards 0 over a minute or so; warren's window is 12 samples.
    full = 0.0 if mgmt_broker.proc else 0.99
    low = queue_when(api, q, lambda j: j.get("consumer_utilisation") <= full and j.get("consumers") == 1,
                     "utilisation <= %s with a full window" % full)["consumer_utilisation"]
    ch.basic_ack(tags[0])
    wait_for(lambda: len(tags) == 2, conn=conn, what="the second delivery")
    ch.basic_ack(tags[1])
    if mgmt_broker.proc:
        queue_when(api, q, lambda j: j.get("consumer_utilisation") == 1.0, "utilisation 1.0 again")
    else:
        queue_when(api, q, lambda j: j.get("consumer_utilisation") > low, "utilisation above %s" % low)
    ch.queue_delete(q)


def test_idle_since_after_activity(api, conn, name):
    q = name("idle")
    ch = conn.channel()
    ch.queue_declare(q)
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=2)
    publish(ch, q, 1, 0)
    j = queue_when(api, q, lambda j: j.get("messages") == 1 and "idle_since" in j, "idle_since")
    assert IDLE_SINCE.match(j["idle_since"]), j["idle_since"]
    since = datetime.datetime.fromisoformat(j["idle_since"])
    assert before <= since <= datetime.datetime.now(datetime.timezone.utc)
    ch.queue_delete(q)


CHURN = ("connection_created", "connection_closed", "channel_created", "channel_closed", "queue_created",
         "queue_declared", "queue_deleted")


def churn(o):
    return {k: o["churn_rates"][k] for k in CHURN}


def test_churn_rates(mgmt_broker, api, name):
    # Earlier tests' connections are gone from the statistics first.
    start = churn(overview_when(api, lambda o: "churn_rates" in o and o["object_totals"]["connections"] == 0,
                                "no connections"))
    for k in CHURN:
        assert isinstance(api.get("/api/overview").json["churn_rates"][k + "_details"]["rate"], float)
    c = mgmt_broker.connect()
    ch = c.channel()
    q = name("churn")
    ch.queue_declare(q)
    ch.queue_declare(q, passive=True)  # not counted, as RabbitMQ
    ch.queue_delete(q)
    ch.close()
    c.close()
    expected = dict(start, connection_created=start["connection_created"] + 1,
                    connection_closed=start["connection_closed"] + 1,
                    channel_created=start["channel_created"] + 1, channel_closed=start["channel_closed"] + 1,
                    queue_created=start["queue_created"] + 1, queue_declared=start["queue_declared"] + 1,
                    queue_deleted=start["queue_deleted"] + 1)
    if mgmt_broker.proc:
        overview_when(api, lambda o: churn(o) == expected, "churn counts %r" % expected)
    else:  # RabbitMQ's event statistics lag, so earlier tests' closes may land now
        overview_when(api, lambda o: all(churn(o)[k] >= v for k, v in expected.items()), "%r" % expected)


NODE_STATS = ("confirm", "get_empty", "return_unroutable", "drop_unroutable")


def node_stats(o):
    return {k: o["message_stats"].get(k, 0) for k in NODE_STATS}


def test_overview_node_message_stats(mgmt_broker, api, conn, name):
    start = node_stats(overview_when(api, lambda o: "confirm" in o.get("message_stats", {}), "confirm"))
    q = name("node-stats")
    ch = conn.channel()
    ch.queue_declare(q)
    ch.confirm_delivery()
    ch.basic_publish("", q, BODY)
    ch.basic_publish("", q, BODY)
    ch.queue_purge(q)
    assert ch.basic_get(q)[0] is None
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish("", name("nowhere"), BODY, mandatory=True)
    ch.basic_publish("", name("nowhere"), BODY)
    expected = {"confirm": start["confirm"] + 4, "get_empty": start["get_empty"] + 1,
                "return_unroutable": start["return_unroutable"] + 1,
                "drop_unroutable": start["drop_unroutable"] + 1}
    if not mgmt_broker.proc:  # RabbitMQ 3.10 leaves get_empty and drop_unroutable at 0 here
        expected.update(get_empty=0, drop_unroutable=0)
    overview_when(api, lambda o: node_stats(o) == expected, "node message stats %r" % expected)
    ch.queue_delete(q)


def test_overview_and_node_extras(mgmt_broker, api):
    o = api.get("/api/overview").json
    assert o["sample_retention_policies"] == {"global": [600, 3600, 28800, 86400], "basic": [600, 3600],
                                              "detailed": [600]}
    mgmt = [c for c in o["contexts"] if c["description"] == "RabbitMQ Management"]
    assert [(c["path"], c["port"], c["node"]) for c in mgmt] == [("/", str(api.port), o["node"])]
    node = api.get("/api/nodes/%s" % quote(o["node"])).json
    assert node["rates_mode"] == "basic"
    mechanisms = {m["name"]: m["enabled"] for m in node["auth_mechanisms"]}
    assert mechanisms["PLAIN"] is True and mechanisms["AMQPLAIN"] is True
    assert sorted(t["name"] for t in node["exchange_types"]) == ["direct", "fanout", "headers", "topic"]
    assert all(isinstance(node[k], int) and isinstance(node[k + "_details"]["rate"], float) for k in CHURN)
    assert "RabbitMQ Management" in [c["description"] for c in node["contexts"]]


@pytest.mark.parametrize("path", ["/api/operator-policies", "/api/operator-policies/%2F", "/api/topic-permissions",
                                  "/api/vhost-limits", "/api/vhost-limits/%2F", "/api/user-limits"])
def test_lists_warren_has_nothing_in(api, path):
    r = api.get(path)
    assert (r.status, r.json) == (200, [])


def test_list_errors(mgmt_broker, api):
    if not mgmt_broker.proc:
        pytest.skip("warren's user-limits list, its 404 and 405")
    assert api.get("/api/vhost-limits/nope").status == 404
    assert api.get("/api/operator-policies/%2F/x/y").status == 404
    r = api.put("/api/topic-permissions", {})
    assert (r.status, r.headers.get("allow")) == (405, "GET")


def test_user_limits_list(dedicated_broker):
    from conftest import Http
    port = free_port()
    b = dedicated_broker({"management": {"address": "127.0.0.1", "port": port},
                          "users": [{"name": "guest", "password": "guest", "vhosts": ["/"],
                                     "tags": ["administrator"]},
                                    {"name": "capped", "password": "x", "limits": {"max-connections": 3}},
                                    {"name": "monitor", "password": "m", "tags": ["monitoring"]}]})
    api = Http("127.0.0.1", port)
    wait_for(lambda: listening(port), what="the management API")
    assert api.get("/api/user-limits").json == [{"user": "capped", "value": {"max-connections": 3}}]
    assert api.get("/api/user-limits/capped").json == [{"user": "capped", "value": {"max-connections": 3}}]
    assert api.get("/api/user-limits/guest").json == []
    r = api.get("/api/user-limits", user="monitor", password="m")
    assert (r.status, r.json) == (401, {"error": "not_authorised", "reason": "User not authorised to access object"})
    assert b.proc.poll() is None


def test_users_without_permissions(api, name):
    user = name("noperm")
    assert api.put("/api/users/%s" % user, {"password": "p", "tags": ""}).status == 201
    try:
        listed = api.get("/api/users/without-permissions")
        assert listed.status == 200
        names = [u["name"] for u in listed.json]
        assert user in names and "guest" not in names
        assert [u for u in listed.json if u["name"] == user][0]["tags"] in ([], "")
        assert api.put("/api/permissions/%%2F/%s" % user,
                       {"configure": "", "write": "", "read": ".*"}).status == 201
        assert user not in [u["name"] for u in api.get("/api/users/without-permissions").json]
    finally:
        api.delete("/api/users/%s" % user)
