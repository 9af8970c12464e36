# SPDX-License-Identifier: MIT
# Vhosts, users, permissions and policies in the metadata group
# (docs/CLUSTERING.md, "Definitions") on a real three-node cluster of warrend
# processes on loopback: each kind changed through one node's management API
# is in force on the others (a vhost to connect to, a user to log in as, a
# revoked permission refused, a policy's max-length on a queue of another
# node); a definitions import goes through the group; nodes started with
# different configured users agree on one seed; a node killed with -9 catches
# up with what changed while it was down; with the majority down a change
# fails with 503 and the exact reason while logins go on. Every wait is a
# condition with a deadline. warren only.
import time

import pika.exceptions as pex

from cluster import DEADLINE, Cluster, attempt
from helpers import wait_for

# A change waits at most WR_META_TIMEOUT_MS (5 s) for its commit.
CHANGE_TIMEOUT = 5.0
ALL = {"configure": ".*", "write": ".*", "read": ".*"}


def nodes(cluster):
    return [cluster.nodes[n] for n in ("n1", "n2", "n3")]


def http_change(node, method, path, body=None, timeout=DEADLINE):
    """A management API write, again while no leader is elected yet (503)."""
    def done():
        r = node.http().request(method, path, body=body)
        assert r.status != 503 or r.json["error"] == "timeout", r
        return r if r.status != 503 else None
    return wait_for(done, timeout=timeout, what="%s %s on %s to commit" % (method, path, node.name))


def can_connect(node, user="guest", password="guest", vhost="/"):
    try:
        node.connect(user=user, password=password, vhost=vhost).close()
        return True
    except pex.AMQPConnectionError:
        return False


def forced_closed(conn):
    """The broker's (code, text) once it has closed conn, else None."""
    try:
        conn.process_data_events(time_limit=0.05)
        return None
    except pex.ConnectionClosedByBroker as e:
        return (e.reply_code, e.reply_text)


def users_of(node):
    r = node.http().get("/api/users")
    assert r.status == 200, r
    return sorted((u["name"], u["password_hash"], tuple(u["tags"])) for u in r.json)


def test_vhost_added_on_one_is_usable_on_the_others(cluster):
    n1, n2, n3 = nodes(cluster)
    r = http_change(n1, "PUT", "/api/vhosts/v1", {"description": "made on n1"})
    assert r.status == 201, r
    assert can_connect(n1, vhost="v1")  # the creator (guest) got every permission in it
    for n in (n2, n3):
        wait_for(lambda: can_connect(n, vhost="v1"), what="a connection to v1 on %s" % n.name)
        r = n.http().get("/api/vhosts/v1")
        assert r.status == 200 and r.json["description"] == "made on n1", r
    assert http_change(n2, "PUT", "/api/vhosts/v1", {"description": "again"}).status == 204
    assert http_change(n3, "DELETE", "/api/vhosts/v1").status == 204
    for n in (n1, n2, n3):
        wait_for(lambda: n.http().get("/api/vhosts/v1").status == 404, what="v1 gone on %s" % n.name)
        assert not can_connect(n, vhost="v1")
    assert n2.http().delete("/api/vhosts/v1").status == 404


def test_user_made_on_n2_logs_in_on_n3_and_deleted_everywhere(cluster):
    n1, n2, n3 = nodes(cluster)
    assert http_change(n2, "PUT", "/api/users/bob", {"password": "pw", "tags": "management"}).status == 201
    assert http_change(n2, "PUT", "/api/permissions/%2F/bob", ALL).status == 201
    wait_for(lambda: can_connect(n3, "bob", "pw"), what="bob to log in on n3")
    # One hash (one salt) everywhere: the command carries it.
    hashes = {n.http().get("/api/users/bob").json["password_hash"] for n in (n1, n2, n3)}
    assert len(hashes) == 1, hashes
    # A PUT without a password keeps it.
    assert http_change(n1, "PUT", "/api/users/bob", {"tags": ""}).status == 204
    wait_for(lambda: n3.http().get("/api/users/bob").json["tags"] == [], what="bob's tags on n3")
    assert can_connect(n3, "bob", "pw")
    conn = n1.connect(user="bob", password="pw")
    assert http_change(n3, "DELETE", "/api/users/bob").status == 204
    # RabbitMQ closes a deleted user's connections.
    wait_for(lambda: forced_closed(conn) == (320, "CONNECTION_FORCED - user 'bob' is deleted"),
             what="bob's connection on n1 to be closed")
    for n in (n1, n2, n3):
        wait_for(lambda: n.http().get("/api/users/bob").status == 404, what="bob gone on %s" % n.name)
        assert n.http().get("/api/permissions/%2F/bob").status == 404
    r = n1.http().put("/api/users/bad", {"password_hash": "%%", "tags": ""})
    assert (r.status, r.json["reason"]) == (
        400, "user 'bad': password_hash is not a base64 rabbit_password_hashing_sha256 hash"), r


def test_permission_revoked_on_n3_is_enforced_on_n1(cluster):
    n1, n2, n3 = nodes(cluster)
    http_change(n1, "PUT", "/api/users/carol", {"password": "pw", "tags": ""})
    http_change(n1, "PUT", "/api/permissions/%2F/carol", ALL)
    wait_for(lambda: can_connect(n1, "carol", "pw"), what="carol to log in on n1")
    conn = n1.connect(user="carol", password="pw")
    ch = conn.channel()
    ch.exchange_declare("carols", "direct")
    r = http_change(n3, "PUT", "/api/permissions/%2F/carol", {"configure": "", "write": ".*", "read": ".*"})
    assert r.status == 204, r
    r = http_change(n3, "DELETE", "/api/permissions/%2F/carol")
    assert r.status == 204, r
    # New channel operations on the open connection are refused at once it is applied there.
    def refused():
        try:
            conn.channel().queue_declare("carol-q")
            return False
        except pex.ChannelClosedByBroker as e:
            return e.reply_code == 403
    wait_for(refused, what="carol's queue.declare on n1 to be refused")
    wait_for(lambda: not can_connect(n1, "carol", "pw"), what="carol's new connections to n1 to be refused")
    if conn.is_open:
        conn.close()
    assert n2.http().delete("/api/permissions/%2F/carol").status == 404
    r = n2.http().put("/api/permissions/%2F/carol", {"configure": "(", "write": "", "read": ""})
    assert r.status == 400 and r.json["reason"].startswith("configure: "), r


def test_policy_set_on_n1_applies_to_a_queue_on_n2(cluster):
    n1, n2, n3 = nodes(cluster)
    # The queue's declaration goes through the group too (541 until a leader is elected); n2 is its home.
    wait_for(lambda: attempt(n2, lambda ch: ch.queue_declare("pq")) is None, what="pq declared on n2")
    conn = n2.connect()
    ch = conn.channel()
    r = http_change(n1, "PUT", "/api/policies/%2F/ml",
                    {"pattern": "^pq$", "definition": {"max-length": 1}, "apply-to": "queues"})
    assert r.status == 201, r
    wait_for(lambda: n2.http().get("/api/queues/%2F/pq").json.get("policy") == "ml", what="ml on pq on n2")
    for body in (b"1", b"2", b"3"):
        ch.basic_publish("", "pq", body)
    wait_for(lambda: ch.queue_declare("pq", passive=True).method.message_count == 1, what="pq cut to one")
    assert http_change(n3, "PUT", "/api/policies/%2F/ml",
                       {"pattern": "^pq$", "definition": {"max-length": 2}}).status == 204
    for n in (n1, n2, n3):
        wait_for(lambda: n.http().get("/api/policies/%2F/ml").json["definition"] == {"max-length": 2},
                 what="the new ml on %s" % n.name)
    r = n2.http().put("/api/policies/%2F/bad", {"pattern": "(", "definition": {"max-length": 1}})
    assert r.status == 400 and r.json["reason"].startswith("Validation failed"), r
    assert http_change(n3, "DELETE", "/api/policies/%2F/ml").status == 204
    wait_for(lambda: n2.http().get("/api/queues/%2F/pq").json.get("policy") is None, what="ml gone from pq")
    conn.close()


def test_definitions_import_goes_through_the_group(cluster):
    n1, n2, n3 = nodes(cluster)
    defs = {
        "users": [{"name": "imp", "password": "pw", "tags": ""}],
        "vhosts": [{"name": "iv"}],
        "permissions": [{"user": "imp", "vhost": "iv", **ALL}],
        "policies": [{"vhost": "iv", "name": "ip", "pattern": "^iq", "definition": {"max-length": 5}}],
        "exchanges": [{"vhost": "iv", "name": "ix", "type": "fanout", "durable": True}],
        "queues": [{"vhost": "iv", "name": "iq", "durable": True}],
        "bindings": [{"vhost": "iv", "source": "ix", "destination": "iq", "destination_type": "queue",
                      "routing_key": ""}],
    }
    assert http_change(n3, "POST", "/api/definitions", defs).status == 204
    for n in (n1, n2):
        wait_for(lambda: can_connect(n, "imp", "pw", vhost="iv"), what="imp to log in to iv on %s" % n.name)
        assert n.http().get("/api/exchanges/iv/ix").status == 200
        assert n.http().get("/api/policies/iv/ip").status == 200
    # The queue lives on n3, which asked: a publish there reaches it.
    conn = n3.connect(user="imp", password="pw", vhost="iv")
    ch = conn.channel()
    ch.basic_publish("ix", "", b"imported")
    wait_for(lambda: ch.queue_declare("iq", passive=True).method.message_count == 1, what="iq to hold it")
    conn.close()
    r = n1.http().post("/api/definitions", {"policies": [{"vhost": "iv", "name": "p", "pattern": "("}]})
    assert r.status == 400 and r.json["reason"] == "policies[0]: 'definition' must be an object", r


def test_nodes_with_different_users_agree_on_one_seed(warrend_binary, tmp_path):
    c = Cluster(tmp_path)
    for name in ("n1", "n2", "n3"):
        c.start(name, config={"users": [
            {"name": "guest", "password": "guest", "vhosts": ["/"], "tags": ["administrator"]},
            {"name": "only-" + name, "password": "pw", "vhosts": ["/"]}]})
    try:
        c.wait_all_up()
        n1, n2, n3 = nodes(c)
        wait_for(lambda: users_of(n1) == users_of(n2) == users_of(n3), what="one set of users on every node")
        names = [u[0] for u in users_of(n1)]
        assert "guest" in names and len([n for n in names if n.startswith("only-")]) == 1, names
        # A later change is seen everywhere as usual.
        http_change(n2, "PUT", "/api/users/late", {"password": "pw", "tags": ""})
        wait_for(lambda: users_of(n1) == users_of(n2) == users_of(n3) and "late" in [u[0] for u in users_of(n3)],
                 what="late on every node")
    finally:
        c.stop_all()


def test_node_down_misses_changes_then_converges(cluster):
    n1, n2, n3 = nodes(cluster)
    http_change(n1, "PUT", "/api/users/dave", {"password": "pw", "tags": ""})
    wait_for(lambda: n3.http().get("/api/users/dave").status == 200, what="dave on n3")
    cluster.kill("n3")
    timeout = CHANGE_TIMEOUT * 3
    assert http_change(n1, "PUT", "/api/vhosts/while-down", {}, timeout=timeout).status == 201
    assert http_change(n2, "PUT", "/api/users/erin", {"password": "pw", "tags": ""}, timeout=timeout).status == 201
    assert http_change(n2, "PUT", "/api/permissions/while-down/erin", ALL, timeout=timeout).status == 201
    assert http_change(n1, "PUT", "/api/policies/while-down/wp",
                       {"pattern": ".", "definition": {"max-length": 3}}, timeout=timeout).status == 201
    assert http_change(n1, "DELETE", "/api/users/dave", timeout=timeout).status == 204
    cluster.start("n3")
    cluster.wait_all_up()
    wait_for(lambda: can_connect(n3, "erin", "pw", vhost="while-down"), what="erin to log in on n3")
    assert n3.http().get("/api/policies/while-down/wp").status == 200
    assert n3.http().get("/api/users/dave").status == 404
    assert not can_connect(n3, "dave", "pw")
    wait_for(lambda: users_of(n1) == users_of(n2) == users_of(n3), what="one set of users on every node")


def test_majority_down_refuses_changes_and_logins_go_on(cluster):
    n1, n2, n3 = nodes(cluster)
    http_change(n1, "PUT", "/api/users/frank", {"password": "pw", "tags": ""})
    http_change(n1, "PUT", "/api/permissions/%2F/frank", ALL)
    http_change(n1, "PUT", "/api/vhosts/scratch", {})
    wait_for(lambda: can_connect(n1, "frank", "pw"), what="frank to log in on n1")
    cluster.kill("n2")
    cluster.kill("n3")
    start = time.monotonic()
    r = n1.http().put("/api/vhosts/vz", {})
    assert (r.status, r.json) == (503, {"error": "timeout",
                                        "reason": "failed to add vhost 'vz' because the operation timed out"}), r
    assert time.monotonic() - start < CHANGE_TIMEOUT + 3
    expected = [
        ("PUT", "/api/users/gina", {"password": "pw", "tags": ""},
         "failed to add user 'gina' because the operation timed out"),
        ("DELETE", "/api/users/frank", None, "failed to delete user 'frank' because the operation timed out"),
        ("DELETE", "/api/permissions/%2F/frank", None,
         "failed to clear permissions of user 'frank' in vhost '/' because the operation timed out"),
        ("PUT", "/api/policies/%2F/pz", {"pattern": ".", "definition": {"max-length": 1}},
         "failed to set policy 'pz' in vhost '/' because the operation timed out"),
        ("DELETE", "/api/vhosts/scratch", None, "failed to delete vhost 'scratch' because the operation timed out"),
    ]
    for method, path, body, reason in expected:
        r = n1.http().request(method, path, body=body)
        assert (r.status, r.json) == (503, {"error": "timeout", "reason": reason}), r
    assert n1.alive()
    # Nothing changed here, and what is known goes on: frank still logs in.
    assert n1.http().get("/api/vhosts/vz").status == 404
    assert can_connect(n1, "frank", "pw")
    cluster.start("n2")
    cluster.start("n3")
    cluster.wait_all_up()
    # A change that timed out after its entry was appended may still commit
    # (as with RabbitMQ): vz may exist by now. Either way all nodes agree.
    assert http_change(n1, "PUT", "/api/vhosts/vz", {}).status in (201, 204)
    for n in (n2, n3):
        wait_for(lambda: can_connect(n, vhost="vz"), what="vz on %s" % n.name)
    wait_for(lambda: users_of(n1) == users_of(n2) == users_of(n3), what="one set of users on every node")
