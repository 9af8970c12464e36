# SPDX-License-Identifier: MIT
# The management HTTP API against a broker with it enabled (mgmt_broker in
# conftest.py): RabbitMQ's paths, shapes, status codes and error bodies,
# counters and rates as messages flow, closing connections, authentication.
# Run against RabbitMQ with WARREN_BROKER and WARREN_MANAGEMENT set.
import base64
import json

import pika.exceptions as pex
import pytest

from conftest import Http, free_port, quote
from helpers import Collector, listening, wait_for

NOT_FOUND = {"error": "Object Not Found", "reason": "Not Found"}
ACCESS_REFUSED = {"error": "not_authorised", "reason": "Access refused."}


@pytest.fixture
def api(mgmt_broker):
    return mgmt_broker.mgmt


@pytest.fixture
def conn(mgmt_broker):
    c = mgmt_broker.connect()
    yield c
    if c.is_open:
        c.close()


def conn_name(broker, c):
    """RabbitMQ's name of pika connection c: "PEER -> BROKER"."""
    local = c._impl._transport._sock.getsockname()
    return "%s:%d -> %s:%d" % (local[0], local[1], broker.host, broker.port)


def q_path(name, vhost="/"):
    return "/api/queues/%s/%s" % (quote(vhost), quote(name))


def x_path(name, vhost="/"):
    return "/api/exchanges/%s/%s" % (quote(vhost), quote(name))


def declare_queue(api, name, **body):
    r = api.put(q_path(name), body)
    assert r.status == 201, r
    return name


def poll_queue(api, name, cond, what):
    """Polls GET /api/queues/%2F/name until cond(queue) holds; returns it.
    (RabbitMQ adds the statistics fields a moment after a declare.)"""
    last = {}

    def check():
        r = api.get(q_path(name))
        assert r.status == 200, r
        last["q"] = r.json
        return "messages" in r.json and cond(r.json)
    try:
        wait_for(check, what=what)
    except AssertionError:
        raise AssertionError("%s; last: %r" % (what, last.get("q")))
    return last["q"]


# --- overview, vhosts, users, health ----------------------------------------

def test_overview_shape(api):
    r = api.get("/api/overview")
    assert r.status == 200
    assert r.headers["content-type"] == "application/json"
    o = r.json
    assert isinstance(o["management_version"], str) and o["management_version"]
    assert o["rabbitmq_version"].startswith("3.")
    assert set(o["object_totals"]) >= {"connections", "channels", "exchanges", "queues", "consumers"}
    assert o["object_totals"]["exchanges"] >= 7
    assert {t["name"] for t in o["exchange_types"]} >= {"direct", "fanout", "topic", "headers"}
    assert isinstance(o["node"], str) and "@" in o["node"]
    assert any(l["protocol"] == "amqp" for l in o["listeners"])


def test_overview_totals_follow_messages(api, conn, name):
    ch = conn.channel()
    q = declare_queue(api, name("ov"))
    for i in range(3):
        ch.basic_publish("", q, b"m%d" % i)

    def totals():
        o = api.get("/api/overview").json
        return o if o.get("queue_totals", {}).get("messages_ready", 0) >= 3 else None
    o = wait_for(totals, what="queue_totals.messages_ready >= 3")
    assert o["queue_totals"]["messages"] >= 3
    assert "rate" in o["queue_totals"]["messages_details"]
    assert o["message_stats"]["publish"] >= 3
    assert "rate" in o["message_stats"]["publish_details"]
    assert api.delete(q_path(q)).status == 204


def test_vhosts(api):
    r = api.get("/api/vhosts")
    assert r.status == 200
    assert "/" in [v["name"] for v in r.json]
    r = api.get("/api/vhosts/%2F")
    assert r.status == 200 and r.json["name"] == "/"
    assert api.get("/api/vhosts/no-such-vhost").json == NOT_FOUND


def test_users_permissions_whoami(api):
    users = api.get("/api/users").json
    guest = [u for u in users if u["name"] == "guest"][0]
    assert guest["tags"] == ["administrator"]
    assert guest["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    # RabbitMQ's format: base64 of a 4-octet salt and a SHA-256 digest.
    assert len(base64.b64decode(guest["password_hash"])) == 36
    perms = api.get("/api/permissions").json
    assert {"user": "guest", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"} in perms
    assert api.get("/api/whoami").json == {"name": "guest", "tags": ["administrator"]}


def test_health_alarms(api):
    r = api.get("/api/health/checks/alarms")
    assert (r.status, r.json) == (200, {"status": "ok"})


def alarmed_broker(dedicated_broker):
    """A warrend whose disk and memory alarms go off at once: its disk free
    limit and memory watermark cannot be met. Returns (broker, its API)."""
    port = free_port()
    b = dedicated_broker({
        "users": [{"name": "guest", "password": "guest", "vhosts": ["/"], "tags": ["administrator"]}],
        "management": {"address": "127.0.0.1", "port": port},
        "disk_free_limit": 10 ** 18,
        "memory_high_watermark": {"absolute": 1},
    })
    # dedicated_broker waits for the AMQP port; the API's comes up after it.
    wait_for(lambda: listening(port), what="the management API to listen")
    return b, Http("127.0.0.1", port)


def test_health_alarms_raised(dedicated_broker):
    b, api = alarmed_broker(dedicated_broker)
    r = wait_for(lambda: (lambda r: r.status == 503 and len(r.json["alarms"]) == 2 and r)(
        api.get("/api/health/checks/alarms")), what="both alarms")
    node = api.get("/api/overview").json["node"]
    assert r.json == {"status": "failed", "reason": "There are alarms in effect in the cluster",
                      "alarms": [{"node": node, "resource": "disk space"}, {"node": node, "resource": "memory"}]}
    r = api.get("/api/health/checks/local-alarms")
    assert (r.status, r.json["reason"]) == (503, "There are alarms in effect on the node")
    [n] = api.get("/api/nodes").json
    assert (n["mem_alarm"], n["disk_free_alarm"], n["mem_limit"], n["disk_free_limit"]) == (True, True, 1, 10 ** 18)


# --- errors and authentication ------------------------------------------------

def test_unknown_path_is_404(api):
    r = api.get("/api/no-such-thing")
    assert (r.status, r.json) == (404, NOT_FOUND)
    assert api.get("/api/queues/%2F/no-such-queue").json == NOT_FOUND
    assert api.get("/api/queues/no-such-vhost").status == 404


def test_method_not_allowed(api, name):
    q = declare_queue(api, name("405"))
    r = api.request("PATCH", q_path(q))
    assert r.status == 405
    assert r.headers["allow"].replace(" ", "").split(",")[:1] != [""]
    assert "GET" in r.headers["allow"] and "DELETE" in r.headers["allow"]
    api.delete(q_path(q))


@pytest.mark.parametrize("path", [
    "/api/channels", "/api/consumers", "/api/consumers/%2F", "/api/policies", "/api/users",
    "/api/permissions", "/api/users/guest/permissions", "/api/vhosts/%2F/permissions",
    "/api/health/checks/alarms"])
def test_read_only_resources_refuse_post(api, path):
    r = api.post(path, {})
    assert r.status == 405
    assert "GET" in r.headers["allow"] and "POST" not in r.headers["allow"]


@pytest.mark.parametrize("path", [
    "/api/channels/a/b", "/api/consumers/v/x", "/api/policies/v/p/x", "/api/users/guest/x",
    "/api/permissions/v", "/api/health/checks/nope", "/api/health/alarms"])
def test_read_only_resources_unknown_subpath(api, path):
    # (Without "%2F": RabbitMQ answers an unrouted path holding one 400 with no body.)
    r = api.get(path)
    assert (r.status, r.json) == (404, NOT_FOUND)


def test_no_credentials(api):
    r = api.get("/api/overview", auth=False)
    assert r.status == 401
    assert r.headers["www-authenticate"] == 'Basic realm="RabbitMQ Management"'


def test_wrong_password(api):
    r = api.get("/api/overview", password="wrong")
    assert r.status == 401
    assert r.json == {"error": "not_authorized", "reason": "Login failed"}


def test_invalid_json_body(api, name):
    r = api.put(q_path(name("badjson")), raw=b"{not json", headers={"Content-Type": "application/json"})
    assert (r.status, r.json) == (400, {"error": "bad_request", "reason": "not_json"})


def test_tags_and_vhost_access(dedicated_broker):
    """RabbitMQ's rules: a management tag is needed at all, administrator
    for users and definitions; other users only see vhosts they may use."""
    port = free_port()
    b = dedicated_broker({
        "vhosts": ["/", "other"],
        "users": [
            {"name": "admin", "password": "a", "vhosts": ["/", "other"], "tags": ["administrator"]},
            {"name": "mgr", "password": "m", "vhosts": ["other"], "tags": ["management"]},
            {"name": "plain", "password": "p", "vhosts": ["/"]},
        ],
        "loopback_users": [],
        "management": {"address": "127.0.0.1", "port": port},
    })
    api = Http("127.0.0.1", port)
    r = api.get("/api/overview", user="plain", password="p")
    assert (r.status, r.json) == (401, {"error": "not_authorised", "reason": "Not management user"})
    assert api.get("/api/overview", user="mgr", password="m").status == 200
    r = api.get("/api/users", user="mgr", password="m")
    assert (r.status, r.json) == (401, {"error": "not_authorised", "reason": "Not administrator user"})
    assert api.get("/api/definitions", user="mgr", password="m").status == 401
    assert [v["name"] for v in api.get("/api/vhosts", user="mgr", password="m").json] == ["other"]
    assert [v["name"] for v in api.get("/api/vhosts", user="admin", password="a").json] == ["/", "other"]
    r = api.put("/api/queues/%2F/q", {}, user="mgr", password="m")
    assert (r.status, r.json) == (401, {"error": "not_authorised",
                                        "reason": "User not authorised to access virtual host"})
    assert api.put("/api/queues/other/q", {}, user="mgr", password="m").status == 201
    assert [q["name"] for q in api.get("/api/queues", user="mgr", password="m").json] == ["q"]


def test_loopback_user_over_loopback(api):
    # guest is a loopback user; the tests connect over 127.0.0.1.
    assert api.get("/api/whoami").status == 200


# --- exchanges ---------------------------------------------------------------

def test_exchanges_list_and_default(api):
    names = [x["name"] for x in api.get("/api/exchanges/%2F").json]
    for n in ["", "amq.direct", "amq.fanout", "amq.headers", "amq.match", "amq.topic"]:
        assert n in names
    d = api.get(x_path("amq.default")).json
    assert (d["name"], d["type"], d["durable"]) == ("", "direct", True)
    assert api.get("/api/exchanges").status == 200


def test_exchange_declare_redeclare_delete(api, name):
    x = name("x")
    assert api.put(x_path(x), {"type": "topic", "durable": True, "arguments": {"k": "v"}}).status == 201
    assert api.put(x_path(x), {"type": "topic", "durable": True}).status == 204
    got = api.get(x_path(x)).json
    assert {k: got[k] for k in ["name", "vhost", "type", "durable", "auto_delete", "internal", "arguments"]} == {
        "name": x, "vhost": "/", "type": "topic", "durable": True, "auto_delete": False,
        "internal": False, "arguments": {"k": "v"}}
    r = api.put(x_path(x), {"type": "direct", "durable": True})
    assert (r.status, r.json) == (400, {
        "error": "bad_request",
        "reason": "inequivalent arg 'type' for exchange '%s' in vhost '/': received 'direct' but "
                  "current is 'topic'" % x})
    r = api.put(x_path(x), {"type": "topic", "durable": False})
    assert r.json["reason"] == ("inequivalent arg 'durable' for exchange '%s' in vhost '/': received "
                                "'false' but current is 'true'" % x)
    assert api.delete(x_path(x)).status == 204
    assert (api.delete(x_path(x)).status, api.get(x_path(x)).json) == (404, NOT_FOUND)


def test_exchange_declare_errors(api, name):
    r = api.put(x_path(name("x")), {"type": "x-no-such-type"})
    assert (r.status, r.json) == (400, {"error": "bad_request",
                                        "reason": "unknown exchange type 'x-no-such-type'"})
    r = api.put(x_path("amq.reserved-" + name("x")), {"type": "direct"})
    assert (r.status, r.json) == (401, ACCESS_REFUSED)
    r = api.delete(x_path("amq.direct"))
    assert (r.status, r.json) == (401, ACCESS_REFUSED)
    r = api.put(x_path(name("x")), {"type": "direct", "durable": "maybe"})
    assert (r.status, r.json) == (400, {"error": "bad_request", "reason": ["not_boolean", "maybe"]})


def test_exchange_declared_by_api_is_used_by_amqp(api, conn, name):
    x, q = name("x"), name("q")
    assert api.put(x_path(x), {"type": "fanout"}).status == 201
    ch = conn.channel()
    ch.exchange_declare(x, "fanout", passive=True)
    ch.queue_declare(q, exclusive=True)
    ch.queue_bind(q, x)
    ch.basic_publish(x, "", b"via api exchange")
    wait_for(lambda: ch.queue_declare(q, passive=True).method.message_count == 1, what="delivery")
    assert api.delete(x_path(x)).status == 204
    with pytest.raises(pex.ChannelClosedByBroker) as e:
        conn.channel().exchange_declare(x, "fanout", passive=True)
    assert e.value.reply_code == 404


def test_exchange_if_unused(api, name):
    x, q = name("x"), name("q")
    api.put(x_path(x), {"type": "direct"})
    declare_queue(api, q)
    assert api.post("/api/bindings/%%2F/e/%s/q/%s" % (x, q), {"routing_key": "k"}).status == 201
    r = api.delete(x_path(x) + "?if-unused=true")
    assert (r.status, r.json) == (400, {"error": "bad_request",
                                        "reason": "exchange '%s' in vhost '/' in use" % x})
    assert api.delete(x_path(x)).status == 204
    api.delete(q_path(q))


# --- queues ------------------------------------------------------------------

def test_queue_declare_shape(api, name):
    q = name("q")
    assert api.put(q_path(q), {"durable": True, "arguments": {"x-max-length": 10}}).status == 201
    assert api.put(q_path(q), {"durable": True, "arguments": {"x-max-length": 10}}).status == 204
    got = poll_queue(api, q, lambda j: "consumers" in j, "statistics")
    for k, v in {"name": q, "vhost": "/", "durable": True, "auto_delete": False, "exclusive": False,
                 "arguments": {"x-max-length": 10}, "messages": 0, "messages_ready": 0,
                 "messages_unacknowledged": 0, "consumers": 0, "type": "classic"}.items():
        assert got[k] == v, k
    assert q in [x["name"] for x in api.get("/api/queues").json]
    assert q in [x["name"] for x in api.get("/api/queues/%2F").json]
    assert api.delete(q_path(q)).status == 204
    assert api.get(q_path(q)).status == 404


def test_queue_defaults_not_durable(api, name):
    q = declare_queue(api, name("q"))
    got = api.get(q_path(q)).json
    assert (got["durable"], got["auto_delete"], got["exclusive"]) == (False, False, False)
    api.delete(q_path(q))


def test_queue_declare_errors(api, name):
    q = name("q")
    r = api.put(q_path(q), {"arguments": {"x-max-length": "ten"}})
    assert (r.status, r.json) == (400, {
        "error": "bad_request",
        "reason": "invalid arg 'x-max-length' for queue '%s' in vhost '/': \"expected integer, got "
                  "longstr\"" % q})
    declare_queue(api, q, durable=True)
    r = api.put(q_path(q), {"durable": False})
    assert (r.status, r.json) == (400, {
        "error": "bad_request",
        "reason": "inequivalent arg 'durable' for queue '%s' in vhost '/': received 'false' but current "
                  "is 'true'" % q})
    r = api.put(q_path("amq.x-" + q), {})
    assert (r.status, r.json) == (401, ACCESS_REFUSED)
    api.delete(q_path(q))


def test_queue_declared_by_amqp_is_equivalent_over_api(api, conn, name):
    """An AMQP client's integer argument (signed 32-bit) and the API's JSON
    integer are the same value to the equivalence check."""
    q = name("q")
    conn.channel().queue_declare(q, arguments={"x-max-length": 5})
    assert api.put(q_path(q), {"arguments": {"x-max-length": 5}}).status == 204
    r = api.put(q_path(q), {"arguments": {"x-max-length": 6}})
    assert (r.status, r.json) == (400, {
        "error": "bad_request",
        "reason": "inequivalent arg 'x-max-length' for queue '%s' in vhost '/': received '6' but current is '5'"
                  % q})
    api.delete(q_path(q))


def test_queue_delete_conditions_and_purge(api, conn, name):
    q = declare_queue(api, name("q"))
    ch = conn.channel()
    for i in range(4):
        ch.basic_publish("", q, b"x")
    poll_queue(api, q, lambda j: j["messages_ready"] == 4, "4 ready")
    r = api.delete(q_path(q) + "?if-empty=true")
    assert (r.status, r.json) == (400, {"error": "bad_request",
                                        "reason": "queue '%s' in vhost '/' not empty" % q})
    assert api.delete(q_path(q) + "/contents").status == 204
    assert ch.queue_declare(q, passive=True).method.message_count == 0
    assert api.delete(q_path("no-such-queue") + "/contents").status == 404
    tag = ch.basic_consume(q, lambda *a: None)
    r = api.delete(q_path(q) + "?if-unused=true")
    assert (r.status, r.json["reason"]) == (400, "queue '%s' in vhost '/' in use" % q)
    ch.basic_cancel(tag)
    assert api.delete(q_path(q) + "?if-empty=true&if-unused=true").status == 204


def test_queue_counters_and_rates(api, conn, name):
    """messages, messages_ready, messages_unacknowledged, consumers and the
    message_stats counters follow AMQP traffic; rates become non-zero while
    messages flow."""
    q = declare_queue(api, name("q"))
    ch = conn.channel()
    for i in range(5):
        ch.basic_publish("", q, b"m")
    poll_queue(api, q, lambda j: j["messages_ready"] == 5 and
               j.get("message_stats", {}).get("publish") == 5, "publish = 5")
    ch.basic_qos(prefetch_count=3)
    got = Collector()
    ch.basic_consume(q, got)
    got.wait(conn, 3)
    j = poll_queue(api, q, lambda j: j["messages_unacknowledged"] == 3 and j["consumers"] == 1,
                   "3 unacked, 1 consumer")
    assert (j["messages"], j["messages_ready"]) == (5, 2)
    for m, _, _ in got.deliveries[:2]:
        ch.basic_ack(m.delivery_tag)
    got.wait(conn, 5)
    j = poll_queue(api, q, lambda j: j["message_stats"].get("ack") == 2, "ack = 2")
    assert j["message_stats"]["deliver"] == 5
    assert j["message_stats"]["deliver_get"] == 5
    assert j["messages_unacknowledged"] == 3
    ch.basic_nack(got.deliveries[2][0].delivery_tag, requeue=True)
    got.wait(conn, 6)
    poll_queue(api, q, lambda j: j["message_stats"].get("redeliver") == 1, "redeliver = 1")

    def rate_seen():
        ch.basic_publish("", q, b"flow")
        conn.process_data_events(0)
        j = api.get(q_path(q)).json
        return j["message_stats"]["publish_details"]["rate"] > 0
    wait_for(rate_seen, what="a non-zero publish rate", conn=conn)
    api.delete(q_path(q))


def test_get_counts_in_message_stats(api, conn, name):
    q = declare_queue(api, name("q"))
    ch = conn.channel()
    for i in range(3):
        ch.basic_publish("", q, b"m")
    poll_queue(api, q, lambda j: j["messages_ready"] == 3, "3 ready")
    m, _, _ = ch.basic_get(q, auto_ack=True)
    m, _, _ = ch.basic_get(q, auto_ack=False)
    ch.basic_ack(m.delivery_tag)
    j = poll_queue(api, q, lambda j: j.get("message_stats", {}).get("deliver_get") == 2, "deliver_get = 2")
    assert (j["message_stats"]["get"], j["message_stats"]["get_no_ack"]) == (1, 1)
    api.delete(q_path(q))


# --- bindings ----------------------------------------------------------------

def test_bindings_create_list_delete(api, name):
    x, q = name("x"), name("q")
    api.put(x_path(x), {"type": "topic"})
    declare_queue(api, q)
    pair = "/api/bindings/%%2F/e/%s/q/%s" % (x, q)
    r = api.post(pair, {"routing_key": "a.#", "arguments": {}})
    assert (r.status, r.headers["location"]) == (201, "%s/a.%%2523" % q)
    listed = api.get(pair).json
    assert listed == [{"source": x, "vhost": "/", "destination": q, "destination_type": "queue",
                       "routing_key": "a.#", "arguments": {}, "properties_key": "a.%23"}]
    assert listed[0] in api.get("/api/bindings/%2F").json
    assert listed[0] in api.get("/api/bindings").json
    assert listed[0] in api.get(q_path(q) + "/bindings").json
    assert listed[0] in api.get(x_path(x) + "/bindings/source").json
    # The default exchange's implicit binding is listed too.
    assert {"source": "", "vhost": "/", "destination": q, "destination_type": "queue",
            "routing_key": q, "arguments": {}, "properties_key": q} in api.get(q_path(q) + "/bindings").json
    assert api.get(pair + "/a.%2523").json == listed[0]
    assert api.delete(pair + "/a.%2523").status == 204
    assert api.get(pair).json == []
    assert api.delete(pair + "/a.%2523").json == NOT_FOUND
    api.delete(x_path(x))
    api.delete(q_path(q))


def test_binding_with_arguments_and_e2e(api, name):
    x1, x2 = name("x"), name("x")
    api.put(x_path(x1), {"type": "direct"})
    api.put(x_path(x2), {"type": "fanout"})
    pair = "/api/bindings/%%2F/e/%s/e/%s" % (x1, x2)
    assert api.post(pair, {"routing_key": "k", "arguments": {"a": 1}}).status == 201
    [b] = api.get(pair).json
    assert (b["destination_type"], b["arguments"]) == ("exchange", {"a": 1})
    assert b["properties_key"].startswith("k~")
    assert b in api.get(x_path(x2) + "/bindings/destination").json
    assert api.delete(pair + "/" + quote(b["properties_key"])).status == 204
    assert api.get(pair).json == []
    api.delete(x_path(x1))
    api.delete(x_path(x2))


def test_binding_errors(api, name):
    x = name("x")
    api.put(x_path(x), {"type": "direct"})
    r = api.post("/api/bindings/%%2F/e/%s/q/no-such-queue" % x, {"routing_key": "k"})
    assert (r.status, r.json) == (404, {"error": "not_found",
                                        "reason": "no queue 'no-such-queue' in vhost '/'"})
    r = api.post("/api/bindings/%2F/e/amq.default/q/whatever", {"routing_key": "k"})
    assert (r.status, r.json) == (401, ACCESS_REFUSED)
    api.delete(x_path(x))


def test_binding_by_api_routes_amqp_publish(api, conn, name):
    x, q = name("x"), name("q")
    api.put(x_path(x), {"type": "direct"})
    declare_queue(api, q)
    api.post("/api/bindings/%%2F/e/%s/q/%s" % (x, q), {"routing_key": "rk"})
    ch = conn.channel()
    ch.basic_publish(x, "rk", b"routed")
    poll_queue(api, q, lambda j: j["messages_ready"] == 1, "1 ready")
    api.delete(x_path(x))
    api.delete(q_path(q))


# --- publish and get ---------------------------------------------------------

def test_publish_and_get(api, conn, name):
    q = declare_queue(api, name("q"))
    r = api.post(x_path("amq.default") + "/publish", {
        "routing_key": q, "payload": "hello", "payload_encoding": "string",
        "properties": {"content_type": "text/plain", "delivery_mode": 2, "headers": {"h": "v", "n": 7},
                       "message_id": "id-1", "priority": 3}})
    assert (r.status, r.json) == (200, {"routed": True})
    r = api.post(x_path("amq.default") + "/publish", {
        "routing_key": "no-such-queue-" + q, "payload": "x", "payload_encoding": "string", "properties": {}})
    assert r.json == {"routed": False}
    # An AMQP client sees what the API published.
    m, props, body = conn.channel().basic_get(q, auto_ack=False)
    assert body == b"hello"
    assert (props.content_type, props.delivery_mode, props.headers, props.message_id, props.priority) == (
        "text/plain", 2, {"h": "v", "n": 7}, "id-1", 3)
    conn.close()
    # Closing requeued it: the API's get sees it redelivered, and requeues it.
    r = api.post(q_path(q) + "/get", {"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto"})
    assert r.status == 200
    assert r.json == [{"payload_bytes": 5, "redelivered": True, "exchange": "", "routing_key": q,
                       "message_count": 0, "payload": "hello", "payload_encoding": "string",
                       "properties": {"content_type": "text/plain", "delivery_mode": 2,
                                      "headers": {"h": "v", "n": 7}, "message_id": "id-1", "priority": 3}}]
    r = api.post(q_path(q) + "/get", {"count": 1, "ackmode": "ack_requeue_false", "encoding": "base64"})
    assert (r.json[0]["payload"], r.json[0]["payload_encoding"]) == ("aGVsbG8=", "base64")
    assert api.post(q_path(q) + "/get", {"count": 1, "ackmode": "ack_requeue_false",
                                         "encoding": "auto"}).json == []
    api.delete(q_path(q))


def test_publish_cc_bcc(api, name):
    """The API publishes as basic.publish does: CC and BCC add routing keys
    and the queues never see BCC."""
    q1, q2, q3 = (declare_queue(api, name(n)) for n in ("q1", "q2", "q3"))
    r = api.post(x_path("amq.default") + "/publish", {
        "routing_key": q1, "payload": "x", "payload_encoding": "string",
        "properties": {"headers": {"CC": [q2], "BCC": [q3]}}})
    assert (r.status, r.json) == (200, {"routed": True})
    for q in (q1, q2, q3):
        [m] = api.post(q_path(q) + "/get", {"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"}).json
        assert (m["routing_key"], m["properties"]["headers"]) == (q1, {"CC": [q2]})
        api.delete(q_path(q))


def test_publish_base64_binary_and_truncate(api, name):
    q = declare_queue(api, name("q"))
    raw = bytes(range(256))
    r = api.post(x_path("amq.default") + "/publish", {
        "routing_key": q, "payload": base64.b64encode(raw).decode(), "payload_encoding": "base64",
        "properties": {}})
    assert r.json == {"routed": True}
    [m] = api.post(q_path(q) + "/get", {"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"}).json
    assert (m["payload_encoding"], base64.b64decode(m["payload"]), m["payload_bytes"]) == ("base64", raw, 256)
    [m] = api.post(q_path(q) + "/get", {"count": 1, "ackmode": "reject_requeue_false", "encoding": "base64",
                                        "truncate": 10}).json
    assert (base64.b64decode(m["payload"]), m["payload_bytes"]) == (raw[:10], 256)
    poll_queue(api, q, lambda j: j["messages"] == 0, "an empty queue")
    api.delete(q_path(q))


def test_publish_errors(api, name):
    r = api.post(x_path("amq.default") + "/publish", {"routing_key": "k", "payload": "x", "properties": {}})
    assert (r.status, r.json) == (400, {"error": "bad_request", "reason": "[{key_missing,payload_encoding}]"})
    x = name("no-such-x")
    r = api.post(x_path(x) + "/publish",
                 {"routing_key": "k", "payload": "x", "payload_encoding": "string", "properties": {}})
    assert (r.status, r.json) == (400, {"error": "bad_request",
                                        "reason": "404 NOT_FOUND - no exchange '%s' in vhost '/'" % x})


def test_get_errors(api, name):
    q = declare_queue(api, name("q"))
    r = api.post(q_path(q) + "/get", {"count": 1, "ackmode": "ack_requeue_true"})
    assert (r.status, r.json) == (400, {"error": "bad_request", "reason": "[{key_missing,encoding}]"})
    r = api.post(q_path("no-such-queue") + "/get", {"count": 1, "ackmode": "ack_requeue_true",
                                                      "encoding": "auto"})
    assert (r.status, r.json) == (404, {"error": "not_found",
                                        "reason": "NOT_FOUND - no queue 'no-such-queue' in vhost '/'"})
    api.delete(q_path(q))


# --- connections and channels ------------------------------------------------

def test_connections_and_channels(mgmt_broker, api):
    c = mgmt_broker.connect()
    ch = c.channel()
    ch.basic_qos(prefetch_count=7)
    ch.confirm_delivery()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_consume(q, lambda *a: None)
    cname = conn_name(mgmt_broker, c)

    def mine():
        r = api.get("/api/connections/" + quote(cname))
        return r.json if r.status == 200 else None
    conn_json = wait_for(mine, what="the connection to be listed")
    assert (conn_json["name"], conn_json["user"], conn_json["vhost"], conn_json["protocol"],
            conn_json["state"]) == (cname, "guest", "/", "AMQP 0-9-1", "running")
    assert conn_json["peer_port"] == c._impl._transport._sock.getsockname()[1]
    assert cname in [x["name"] for x in api.get("/api/connections").json]
    # RabbitMQ lists a channel before its statistics (prefetch) are in.
    chans = wait_for(lambda: (lambda cs: cs and cs[0].get("prefetch_count") == 7 and cs)(
        api.get("/api/connections/%s/channels" % quote(cname)).json), what="its channel")
    assert chans[0]["name"] == cname + " (1)"
    assert (chans[0]["number"], chans[0]["prefetch_count"], chans[0]["confirm"],
            chans[0]["consumer_count"], chans[0]["user"], chans[0]["transactional"]) == (1, 7, True, 1, "guest",
                                                                                   False)
    assert chans[0]["name"] in [x["name"] for x in api.get("/api/channels").json]
    assert api.get("/api/channels/" + quote(chans[0]["name"])).json["number"] == 1
    r = api.delete("/api/connections/" + quote(conn_json["name"]))
    assert r.status == 204
    with pytest.raises(pex.ConnectionClosedByBroker) as e:
        wait_for(lambda: c.process_data_events(0.05) and False, what="the close")
    assert (e.value.reply_code, e.value.reply_text) == (320, "CONNECTION_FORCED - Closed via management plugin")
    wait_for(lambda: conn_json["name"] not in [x["name"] for x in api.get("/api/connections").json],
             what="the connection to go")
    assert api.delete("/api/connections/" + quote(conn_json["name"])).json == NOT_FOUND


def test_close_connection_with_reason(mgmt_broker, api):
    c = mgmt_broker.connect()
    cname = conn_name(mgmt_broker, c)
    wait_for(lambda: api.get("/api/connections/" + quote(cname)).status == 200, what="listing")
    assert api.delete("/api/connections/" + quote(cname), headers={"X-Reason": "maintenance"}).status == 204
    with pytest.raises(pex.ConnectionClosedByBroker) as e:
        wait_for(lambda: c.process_data_events(0.05) and False, what="the close")
    assert (e.value.reply_code, e.value.reply_text) == (320, "CONNECTION_FORCED - maintenance")


# --- consumers -----------------------------------------------------------------

def consumers_of(api, queue, path="/api/consumers"):
    """The consumers of `queue`, by tag. (RabbitMQ lists a consumer a moment
    before its channel_details are in: those are left out.)"""
    r = api.get(path)
    assert r.status == 200, r
    return sorted((c for c in r.json if c["queue"]["name"] == queue and c["channel_details"]),
                  key=lambda c: c["consumer_tag"])


def test_consumers(mgmt_broker, api, conn, name):
    q, sac = name("q"), name("sac")
    ch = conn.channel()
    ch.basic_qos(prefetch_count=7)
    ch.queue_declare(q, exclusive=True)
    ch.queue_declare(sac, exclusive=True, arguments={"x-single-active-consumer": True})
    ch.basic_consume(q, lambda *a: None, consumer_tag="c-prio", arguments={"x-priority": 5, "app": "web"})
    ch.basic_consume(q, lambda *a: None, consumer_tag="c-noack", auto_ack=True)
    ch.basic_consume(sac, lambda *a: None, consumer_tag="s1")
    ch2 = conn.channel()
    ch2.basic_consume(sac, lambda *a: None, consumer_tag="s2")
    cname = conn_name(mgmt_broker, conn)

    mine = wait_for(lambda: len(consumers_of(api, q)) == 2 and consumers_of(api, q), what="2 consumers listed")
    noack, prio = mine
    assert prio == {
        "consumer_tag": "c-prio", "queue": {"name": q, "vhost": "/"}, "ack_required": True,
        "prefetch_count": 7, "exclusive": False, "arguments": {"x-priority": 5, "app": "web"}, "active": True,
        "activity_status": "up",
        "channel_details": {"name": cname + " (1)", "number": 1, "connection_name": cname,
                            "peer_host": "127.0.0.1", "peer_port": conn._impl._transport._sock.getsockname()[1],
                            "user": "guest", "node": prio["channel_details"]["node"]}}
    assert (noack["consumer_tag"], noack["ack_required"], noack["arguments"]) == ("c-noack", False, {})
    assert consumers_of(api, q, "/api/consumers/%2F") == mine

    s1, s2 = wait_for(lambda: len(consumers_of(api, sac)) == 2 and consumers_of(api, sac), what="sac consumers")
    assert (s1["active"], s1["activity_status"], s1["channel_details"]["number"]) == (True, "single_active", 1)
    assert (s2["active"], s2["activity_status"], s2["channel_details"]["number"]) == (False, "waiting", 2)
    got = poll_queue(api, sac, lambda j: j.get("single_active_consumer_tag") == "s1", "the active consumer")
    assert sorted(c["consumer_tag"] for c in got["consumer_details"]) == ["s1", "s2"]
    assert api.get("/api/consumers/no-such-vhost").json == NOT_FOUND
    ch.close()
    ch2.close()
    wait_for(lambda: consumers_of(api, q) == [] and consumers_of(api, sac) == [], what="the consumers to go")


def test_exclusive_consumer_tag(api, conn, name):
    q = name("q")
    ch = conn.channel()
    ch.queue_declare(q, exclusive=True)
    ch.basic_consume(q, lambda *a: None, consumer_tag="only-me", exclusive=True)
    got = poll_queue(api, q, lambda j: j.get("exclusive_consumer_tag") == "only-me", "exclusive_consumer_tag")
    assert got["single_active_consumer_tag"] is None
    [c] = got["consumer_details"]
    assert (c["consumer_tag"], c["exclusive"]) == ("only-me", True)


# --- policies ------------------------------------------------------------------

def p_path(name, vhost="/"):
    return "/api/policies/%s/%s" % (quote(vhost), quote(name))


def validation_failed(why):
    return {"error": "bad_request", "reason": "Validation failed\n\n%s\n" % why}


def test_policy_crud_and_queue_view(api, name):
    p, q = name("pol"), name("q")
    declare_queue(api, q)
    body = {"pattern": "^" + q + "$", "definition": {"max-length": 10}, "priority": 3, "apply-to": "queues"}
    r = api.put(p_path(p), body)
    assert (r.status, r.body) == (201, "")
    assert api.put(p_path(p), body).status == 204
    want = {"vhost": "/", "name": p, "pattern": "^" + q + "$", "apply-to": "queues",
            "definition": {"max-length": 10}, "priority": 3}
    assert api.get(p_path(p)).json == want
    assert want in api.get("/api/policies").json
    assert want in api.get("/api/policies/%2F").json
    got = poll_queue(api, q, lambda j: j.get("policy") == p, "the policy on the queue")
    assert got["effective_policy_definition"] == {"max-length": 10}
    # Replacing it: defaults for what the body leaves out.
    assert api.put(p_path(p), {"pattern": "^" + q + "$", "definition": {"max-length": 11}}).status == 204
    assert api.get(p_path(p)).json == dict(want, priority=0, definition={"max-length": 11}, **{"apply-to": "all"})
    assert api.delete(p_path(p)).status == 204
    assert (api.delete(p_path(p)).status, api.get(p_path(p)).json) == (404, NOT_FOUND)
    assert p not in [x["name"] for x in api.get("/api/policies").json]
    got = poll_queue(api, q, lambda j: j.get("policy") is None, "the policy gone from the queue")
    assert got["effective_policy_definition"] == {}
    api.delete(q_path(q))


def test_policy_on_exchange(api, name):
    p, x = name("pol"), name("x")
    assert api.put(x_path(x), {"type": "direct"}).status == 201
    assert "policy" not in api.get(x_path(x)).json
    assert api.put(p_path(p), {"pattern": "^%s$" % x, "definition": {"alternate-exchange": "ae"},
                               "apply-to": "exchanges", "priority": 100}).status == 201
    wait_for(lambda: api.get(x_path(x)).json.get("policy") == p, what="the policy on the exchange")
    assert api.delete(p_path(p)).status == 204
    wait_for(lambda: "policy" not in api.get(x_path(x)).json, what="the policy gone from the exchange")
    assert api.delete(x_path(x)).status == 204


def test_policy_errors(api, name):
    p = name("pol")
    r = api.put(p_path(p), {})
    assert (r.status, r.json) == (400, {"error": "bad_request",
                                        "reason": "[{key_missing,pattern},{key_missing,definition}]"})
    assert api.put(p_path(p), {"pattern": "x"}).json["reason"] == "[{key_missing,definition}]"
    r = api.put(p_path(p), {"pattern": "x", "definition": {}})
    assert (r.status, r.json) == (400, validation_failed("no policy provided"))
    r = api.put(p_path(p), {"pattern": "x", "definition": {"max-length": "a"}})
    assert r.json == validation_failed('&lt;&lt;"a"&gt;&gt; is not a valid maximum length')
    r = api.put(p_path(p), {"pattern": "x", "definition": {"max-lengthx": 10}})
    assert r.json == validation_failed('[{&lt;&lt;"max-lengthx"&gt;&gt;,10}] are not recognised policy settings')
    r = api.put(p_path(p), {"pattern": "x", "definition": {"message-ttl": -1}})
    assert r.json == validation_failed("-1 is not a valid message TTL")
    r = api.put(p_path(p), {"pattern": "x", "definition": {"max-length": 1}, "apply-to": "bogus"})
    assert r.json == validation_failed("apply-to 'bogus' unrecognised; should be 'queues', 'exchanges' or 'all'")
    r = api.put(p_path(p), {"pattern": "x", "definition": {"max-length": 1}, "priority": "5"})
    assert r.json == validation_failed('priority should be a number, actually was &lt;&lt;"5"&gt;&gt;')
    r = api.put(p_path(p), {"pattern": 5, "definition": {"max-length": 1}})
    assert r.json == validation_failed("pattern should be a binary but was 5")
    r = api.put(p_path(p), {"pattern": "(", "definition": {"max-length": 1}})
    assert r.status == 400
    assert r.json["reason"].startswith("Validation failed\n\npattern should be regular expression but is invalid")
    assert api.get(p_path(p)).json == NOT_FOUND
    r = api.put(p_path(p, "no-such-vhost"), {"pattern": "x", "definition": {"max-length": 1}})
    assert (r.status, r.json) == (404, {"error": "not_found", "reason": "vhost_not_found"})
    assert api.get("/api/policies/no-such-vhost").json == NOT_FOUND
    assert api.get(p_path(p, "no-such-vhost")).json == NOT_FOUND
    assert api.request("POST", p_path(p), {}).status == 405
    assert api.delete("/api/policies/%2F").status == 405


def test_policy_needs_policymaker(api, name):
    """Listing policies is for any management user; showing or changing
    one for policymakers and administrators."""
    p, mon, pm = name("pol"), name("mon"), name("pm")
    for user, tags in [(mon, "monitoring"), (pm, "policymaker")]:
        assert api.put("/api/users/" + user, {"password": "pw", "tags": tags}).status == 201
        assert api.put("/api/permissions/%2F/" + user, {"configure": ".*", "write": ".*", "read": ".*"}).status == 201
    try:
        body = {"pattern": "^none$", "definition": {"max-length": 1}}
        r = api.put(p_path(p), body, user=mon, password="pw")
        assert (r.status, r.json) == (401, {"error": "not_authorised",
                                            "reason": "User not authorised to access object"})
        assert api.put(p_path(p), body, user=pm, password="pw").status == 201
        assert api.get(p_path(p), user=mon, password="pw").status == 401
        assert api.get(p_path(p), user=pm, password="pw").json["name"] == p
        assert p in [x["name"] for x in api.get("/api/policies", user=mon, password="pw").json]
        r = api.get("/api/nodes", user=pm, password="pw")
        assert (r.status, r.json) == (401, {"error": "not_authorised", "reason": "Not monitor user"})
        assert api.get("/api/nodes", user=mon, password="pw").status == 200
        assert api.delete(p_path(p), user=pm, password="pw").status == 204
    finally:
        api.delete(p_path(p))
        api.delete("/api/users/" + mon)
        api.delete("/api/users/" + pm)


# --- nodes ---------------------------------------------------------------------

def test_nodes(api):
    [node] = api.get("/api/nodes").json
    assert (node["type"], node["running"], node["mem_alarm"], node["disk_free_alarm"]) == ("disc", True, False,
                                                                                          False)
    assert node["name"] == api.get("/api/overview").json["node"]
    for k in ["mem_used", "mem_limit", "disk_free", "disk_free_limit", "uptime", "fd_used", "processors"]:
        assert isinstance(node[k], int) and node[k] > 0, k
    assert node["mem_used"] < node["mem_limit"] and node["disk_free"] > node["disk_free_limit"]
    assert node["os_pid"].isdigit()
    one = api.get("/api/nodes/" + quote(node["name"])).json
    assert (one["name"], one["type"]) == (node["name"], "disc")
    assert api.get("/api/nodes?columns=name,mem_alarm").json == [{"name": node["name"], "mem_alarm": False}]


# --- definitions, query parameters -------------------------------------------

def test_definitions_roundtrip(api, name):
    x, q = name("x"), name("q")
    defs = {"vhosts": [{"name": "/"}],
            "exchanges": [{"name": x, "vhost": "/", "type": "headers", "durable": True, "auto_delete": False,
                           "internal": False, "arguments": {}}],
            "queues": [{"name": q, "vhost": "/", "durable": True, "auto_delete": False,
                        "arguments": {"x-message-ttl": 1000}}],
            "bindings": [{"source": x, "vhost": "/", "destination": q, "destination_type": "queue",
                          "routing_key": "", "arguments": {"x-match": "any", "a": 1}}]}
    assert api.post("/api/definitions", defs).status == 204
    out = api.get("/api/definitions").json
    assert defs["exchanges"][0] in out["exchanges"]
    assert defs["queues"][0] in out["queues"]
    assert defs["bindings"][0] in out["bindings"]
    assert {"name": "/"} in out["vhosts"]
    assert out["rabbit_version"].startswith("3.")
    one = api.get("/api/definitions/%2F").json
    assert {"name": q, "durable": True, "auto_delete": False, "arguments": {"x-message-ttl": 1000}} in one["queues"]
    api.delete(x_path(x))
    api.delete(q_path(q))


def test_columns_and_sort(api, name):
    a, b = name("a"), name("b")
    declare_queue(api, b)
    declare_queue(api, a)
    poll_queue(api, a, lambda j: True, "statistics")
    poll_queue(api, b, lambda j: True, "statistics")
    r = api.get("/api/queues/%2F?columns=name,messages&sort=name&sort_reverse=true")
    rows = [row for row in r.json if row["name"] in (a, b)]
    assert rows == [{"name": b, "messages": 0}, {"name": a, "messages": 0}]
    o = api.get("/api/overview?columns=object_totals.queues").json
    assert list(o) == ["object_totals"] and "queues" in o["object_totals"]
    api.delete(q_path(a))
    api.delete(q_path(b))


def test_queue_names_with_special_characters(api, name):
    q = name("sp ace/slash%pct")
    assert api.put(q_path(q), {}).status == 201
    assert api.get(q_path(q)).json["name"] == q
    assert api.delete(q_path(q)).status == 204


def test_json_arguments_roundtrip(api, name):
    q = name("q")
    args = {"x-note": "café ☕", "nested": {"list": [1, 2.5, True, "s"], "t": {}}}
    assert api.put(q_path(q), {"arguments": args}).status == 201
    assert api.get(q_path(q)).json["arguments"] == args
    api.delete(q_path(q))
    r = api.put(q_path(q), {"arguments": {"x-null": None}})
    assert (r.status, r.json) == (400, {"error": "bad_request", "reason": "null_not_allowed"})


# --- RabbitMQ's own rabbitmqadmin against the API ------------------------------

def rabbitmqadmin_path():
    import glob
    found = sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/rabbitmq_management-*/"
                             "priv/www/cli/rabbitmqadmin"))
    return found[-1] if found else None


@pytest.fixture
def admin(api):
    """Runs rabbitmqadmin against the API; returns (exit status, stdout, stderr)."""
    import subprocess
    import sys
    path = rabbitmqadmin_path()
    if not path:
        pytest.skip("rabbitmqadmin not found (RabbitMQ's management plugin is not installed)")

    def run(*args, check=True):
        p = subprocess.run([sys.executable, path, "-H", api.host, "-P", str(api.port), "-u", "guest",
                            "-p", "guest"] + list(args), capture_output=True, text=True, timeout=30)
        if check:
            assert p.returncode == 0, "rabbitmqadmin %s: %s%s" % (" ".join(args), p.stdout, p.stderr)
        return p.returncode, p.stdout, p.stderr
    return run


def test_rabbitmqadmin_declare_list_delete(admin, name):
    x, q = name("x"), name("q")
    assert admin("declare", "exchange", "name=" + x, "type=topic")[1] == "exchange declared\n"
    assert admin("declare", "queue", "name=" + q, "durable=false",
                 'arguments={"x-max-length": 3}')[1] == "queue declared\n"
    assert admin("declare", "binding", "source=" + x, "destination=" + q,
                 "routing_key=a.#")[1] == "binding declared\n"
    queues = json.loads(admin("list", "queues", "-f", "raw_json")[1])
    [mine] = [r for r in queues if r["name"] == q]
    assert (mine["durable"], mine["arguments"]) == (False, {"x-max-length": 3})
    out = admin("list", "queues", "name", "messages")[1]
    assert "| " + q + " |" in out
    exchanges = json.loads(admin("list", "exchanges", "-f", "raw_json")[1])
    assert {"name": x, "type": "topic"}.items() <= [e for e in exchanges if e["name"] == x][0].items()
    assert "| " + x + " " in admin("list", "exchanges")[1]
    bindings = json.loads(admin("list", "bindings", "-f", "raw_json")[1])
    [b] = [b for b in bindings if b["source"] == x]
    assert (b["destination"], b["routing_key"], b["properties_key"]) == (q, "a.#", "a.%23")
    assert admin("delete", "binding", "source=" + x, "destination_type=queue", "destination=" + q,
                 "properties_key=a.%23")[1] == "binding deleted\n"
    assert [b for b in json.loads(admin("list", "bindings", "-f", "raw_json")[1]) if b["source"] == x] == []
    assert admin("delete", "queue", "name=" + q)[1] == "queue deleted\n"
    assert admin("delete", "exchange", "name=" + x)[1] == "exchange deleted\n"
    rc, out, err = admin("delete", "queue", "name=" + q, check=False)
    assert (rc, err.strip()) == (1, "*** Not found: /api/queues/%%2F/%s" % q)


def test_rabbitmqadmin_publish_get_purge(admin, name):
    q = name("q")
    admin("declare", "queue", "name=" + q)
    assert admin("publish", "routing_key=" + q, "payload=hello",
                 'properties={"content_type": "text/plain"}')[1] == "Message published\n"
    admin("publish", "routing_key=" + q, "payload=second")
    [m] = json.loads(admin("get", "queue=" + q, "ackmode=ack_requeue_false", "-f", "raw_json")[1])
    assert (m["payload"], m["properties"], m["message_count"]) == ("hello", {"content_type": "text/plain"}, 1)
    assert "second" in admin("get", "queue=" + q)[1]
    assert admin("purge", "queue", "name=" + q)[1] == "queue purged\n"
    assert json.loads(admin("get", "queue=" + q, "-f", "raw_json")[1]) == []
    # rabbitmqadmin declares durable queues unless told otherwise.
    rc, out, err = admin("declare", "queue", "name=" + q, "durable=false", check=False)
    assert (rc, err.strip()) == (1, "*** inequivalent arg 'durable' for queue '%s' in vhost '/': received "
                                    "'false' but current is 'true'" % q)
    admin("delete", "queue", "name=" + q)


def test_rabbitmqadmin_overview_vhosts_users(admin):
    out = admin("show", "overview", "-f", "raw_json")[1]
    o = json.loads(out)[0]
    assert o["rabbitmq_version"].startswith("3.") and "queues" in o["object_totals"]
    assert "/" in [v["name"] for v in json.loads(admin("list", "vhosts", "-f", "raw_json")[1])]
    assert "guest" in [u["name"] for u in json.loads(admin("list", "users", "-f", "raw_json")[1])]
    assert admin("list", "permissions", "-f", "raw_json")[0] == 0


def test_rabbitmqadmin_connections(admin, mgmt_broker, api):
    c = mgmt_broker.connect()
    cname = conn_name(mgmt_broker, c)
    wait_for(lambda: cname in admin("list", "connections", "-f", "tsv")[1], what="the connection")
    assert admin("close", "connection", "name=" + cname)[1] == "connection closed\n"
    with pytest.raises(pex.ConnectionClosedByBroker) as e:
        wait_for(lambda: c.process_data_events(0.05) and False, what="the close")
    assert e.value.reply_code == 320


def test_rabbitmqadmin_export_import(admin, api, name, tmp_path):
    x, q = name("x"), name("q")
    admin("declare", "exchange", "name=" + x, "type=direct", "durable=true")
    admin("declare", "queue", "name=" + q, "durable=true", 'arguments={"x-message-ttl": 60000}')
    admin("declare", "binding", "source=" + x, "destination=" + q, "routing_key=k")
    path = str(tmp_path / "defs.json")
    admin("export", path)
    with open(path) as f:
        defs = json.load(f)
    assert {"name": q, "vhost": "/", "durable": True, "auto_delete": False,
            "arguments": {"x-message-ttl": 60000}} in defs["queues"]
    admin("delete", "queue", "name=" + q)
    admin("delete", "exchange", "name=" + x)
    admin("import", path)
    assert api.get(q_path(q)).json["arguments"] == {"x-message-ttl": 60000}
    assert api.get(x_path(x)).json["type"] == "direct"
    assert [b["routing_key"] for b in api.get("/api/bindings/%%2F/e/%s/q/%s" % (x, q)).json] == ["k"]
    admin("delete", "queue", "name=" + q)
    admin("delete", "exchange", "name=" + x)


def test_rabbitmqadmin_policies(admin, api, name):
    p = name("pol")
    assert admin("declare", "policy", "name=" + p, "pattern=^%s$" % p, 'definition={"max-length": 7}',
                 "priority=4", "apply-to=queues")[1] == "policy declared\n"
    [got] = [x for x in json.loads(admin("list", "policies", "-f", "raw_json")[1]) if x["name"] == p]
    assert got == {"vhost": "/", "name": p, "pattern": "^%s$" % p, "apply-to": "queues",
                   "definition": {"max-length": 7}, "priority": 4}
    assert "| " + p + " " in admin("list", "policies")[1]
    assert admin("delete", "policy", "name=" + p)[1] == "policy deleted\n"
    assert api.get(p_path(p)).status == 404
    rc, out, err = admin("delete", "policy", "name=" + p, check=False)
    assert (rc, err.strip()) == (1, "*** Not found: /api/policies/%%2F/%s" % p)
    rc, out, err = admin("declare", "policy", "name=" + p, "pattern=x", "definition={}", check=False)
    assert (rc, err.strip()) == (1, "*** Validation failed\n\nno policy provided")


def test_rabbitmqadmin_consumers_and_nodes(admin, conn, name):
    q = name("q")
    ch = conn.channel()
    ch.queue_declare(q, exclusive=True)
    ch.basic_consume(q, lambda *a: None, consumer_tag="admin-tag")

    def listed():
        return [c for c in json.loads(admin("list", "consumers", "-f", "raw_json")[1])
                if c["queue"]["name"] == q]
    [c] = wait_for(listed, what="the consumer")
    assert (c["consumer_tag"], c["ack_required"], c["activity_status"]) == ("admin-tag", True, "up")
    assert "admin-tag" in admin("list", "consumers")[1]
    [node] = json.loads(admin("list", "nodes", "-f", "raw_json")[1])
    assert (node["type"], node["running"]) == ("disc", True)
    header, row = [line.split("|")[1:-1] for line in admin("list", "nodes")[1].splitlines() if "|" in line]
    assert [h.strip() for h in header] == ["name", "type", "mem_used"]
    assert [v.strip() for v in row[:2]] == [node["name"], "disc"] and row[2].strip().isdigit()
