# SPDX-License-Identifier: MIT
# Policies as RabbitMQ has them, from the configuration file, definitions
# imports and the durable topology: the policy matching a queue sets its
# limits (max-length here), the highest priority applies, a new policy
# applies to queues that already exist, and policies survive a restart.
# warren only: each test needs a broker of its own configuration.
import pika

from conftest import Http, free_port
from helpers import drain, queue_counts, wait_for, wait_queue_count


def cap(name, pattern, max_length, **kw):
    p = {"vhost": "/", "name": name, "pattern": pattern, "definition": {"max-length": max_length}}
    p.update(kw)
    return p


def publish(ch, queue, n):
    for i in range(n):
        ch.basic_publish("", queue, b"m%d" % i)


def with_mgmt(extra=None):
    cfg = {"users": [{"name": "guest", "password": "guest", "vhosts": ["/"], "tags": ["administrator"]}],
           "management": {"address": "127.0.0.1", "port": free_port()}}
    cfg.update(extra or {})
    return cfg


def api_of(b):
    api = Http("127.0.0.1", b.config["management"]["port"])

    def up():
        try:
            return api.get("/api/overview").status == 200
        except OSError:
            return False
    wait_for(up, what="the management API")
    return api


def test_config_policy_limits_matching_queues_only(dedicated_broker, name):
    b = dedicated_broker({"policies": [cap("cap", r"^cap\.", 2, **{"apply-to": "queues"})]})
    conn = b.connect()
    ch = conn.channel()
    capped, other = name("cap."), name("other.")
    for q in (capped, other):
        ch.queue_declare(q)
        publish(ch, q, 5)
    wait_queue_count(ch, other, 5)
    # drop-head: the oldest go.
    assert drain(ch, capped) == [b"m3", b"m4"]
    conn.close()


def test_highest_priority_applies(dedicated_broker, name):
    b = dedicated_broker({"policies": [
        cap("low", "^prio", 1, priority=1),
        cap("high", "^prio", 3, priority=5),
        # Higher still, but for exchanges only: not a queue's policy.
        cap("exchanges-only", "^prio", 0, priority=9, **{"apply-to": "exchanges"}),
        # Equal priorities: the name that sorts first wins.
        cap("b-tie", "^tie", 4, priority=2),
        cap("a-tie", "^tie", 2, priority=2)]})
    conn = b.connect()
    ch = conn.channel()
    for q, kept in ((name("prio"), 3), (name("tie"), 2)):
        ch.queue_declare(q)
        publish(ch, q, 6)
        assert len(drain(ch, q)) == kept, q
    conn.close()


def test_imported_policy_applies_to_existing_queue(dedicated_broker, name):
    b = dedicated_broker(with_mgmt())
    api = api_of(b)
    conn = b.connect()
    ch = conn.channel()
    q = name("existing.")
    ch.queue_declare(q)
    publish(ch, q, 5)
    wait_queue_count(ch, q, 5)
    r = api.post("/api/definitions", {"policies": [cap("shrink", r"^existing\.", 2)]})
    assert r.status == 204, r
    wait_queue_count(ch, q, 2)
    # The argument and the policy both set max-length: the smaller applies.
    q2 = name("existing.")
    ch.queue_declare(q2, arguments={"x-max-length": 1})
    publish(ch, q2, 3)
    assert queue_counts(ch, q2)[0] == 1
    conn.close()


def test_definitions_export_policies(dedicated_broker):
    pol = {"vhost": "/", "name": "exported", "pattern": "^x", "apply-to": "queues",
           "definition": {"max-length": 9, "ha-mode": "all"}, "priority": 4}
    b = dedicated_broker(with_mgmt({"policies": [pol]}))
    api = api_of(b)
    assert api.get("/api/definitions").json["policies"] == [pol]
    scoped = dict(pol)
    del scoped["vhost"]
    assert api.get("/api/definitions/%2F").json["policies"] == [scoped]
    # Bad policies are refused with RabbitMQ's reason, and nothing changes.
    bad = dict(pol, name="bad", definition={"max-length": -1})
    r = api.post("/api/definitions", {"policies": [bad]})
    assert (r.status, r.json["reason"]) == (400, "policies[0]: -1 is not a valid maximum length")
    assert [p["name"] for p in api.get("/api/definitions").json["policies"]] == ["exported"]
    assert "warren does not implement 'ha-mode'; ignored" in b.log()


def test_policies_survive_restart(dedicated_broker, name):
    b = dedicated_broker(with_mgmt())
    api = api_of(b)
    pol = {"vhost": "/", "name": "kept", "pattern": r"^kept\.", "apply-to": "all",
           "definition": {"max-length": 2}, "priority": 0}
    assert api.post("/api/definitions", {"policies": [pol]}).status == 204
    q = name("kept.")
    conn = b.connect()
    conn.channel().queue_declare(q, durable=True)
    conn.close()

    b = dedicated_broker.restart(b)
    api = api_of(b)
    assert api.get("/api/definitions").json["policies"] == [pol]
    conn = b.connect()
    ch = conn.channel()
    props = pika.BasicProperties(delivery_mode=2)
    for i in range(5):
        ch.basic_publish("", q, b"p%d" % i, props)
    assert drain(ch, q) == [b"p3", b"p4"]
    conn.close()
