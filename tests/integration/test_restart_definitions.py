# SPDX-License-Identifier: MIT
# Nothing made at run time is lost at restart (issue #17): a vhost, a user, a
# permission, a policy, an exchange, a binding and a durable queue with
# persistent messages made through the management API (and a user changed
# with warrenctl) come back after SIGTERM and after kill -9 right after the
# API answered; the configuration seeds a new node only, so a vhost deleted
# at run time stays deleted; importing the same definitions again after a
# restart (or load_definitions at the next start) keeps the queue's messages;
# a data directory of the previous
# version (topology.json version 2) opens with its vhosts. Also PUT and
# DELETE /api/vhosts/NAME with RabbitMQ 3.10's statuses and bodies (checked
# against scripts/rabbitmq), and rabbitmqadmin's declare/delete vhost.
# Warren only: the tests restart their own broker.
import json
import os
import signal
import subprocess
import sys

import pika
import pika.exceptions as pex
import pytest

from conftest import Http, mgmt_config, quote, start_warrend
from helpers import free_port, wait_for
from test_mgmt import rabbitmqadmin_path
from test_warrenctl import warrenctl_path

PERSISTENT = pika.BasicProperties(delivery_mode=2)


class Node:
    """A warrend with its management API on a data_dir of its own, which
    restart() (SIGTERM or SIGKILL) starts again on the same config."""

    def __init__(self, extra=None):
        self.amqp, self.mgmt_port = free_port(), free_port()
        cfg = mgmt_config(self.amqp, self.mgmt_port, free_port())
        cfg.update(extra or {})
        self.b = start_warrend(raw_config=cfg)
        self.b.config["data_dir"] = os.path.join(self.b.workdir, "data")
        self._up()

    def _up(self):
        self.api = Http("127.0.0.1", self.mgmt_port)

        def up():
            try:
                return self.api.get("/api/overview").status == 200
            except OSError:
                return False
        wait_for(up, what="the management API to listen")

    def restart(self, sig=signal.SIGTERM, config=None):
        status = self.b.stop(sig)
        assert sig != signal.SIGTERM or status == 0, self.b.log()
        self.b = start_warrend(raw_config=config or self.b.config, workdir=self.b.workdir)
        self._up()

    def connect(self, vhost="/", user="guest", password="guest"):
        return pika.BlockingConnection(pika.ConnectionParameters(
            "127.0.0.1", self.amqp, vhost, pika.PlainCredentials(user, password)))

    def put(self, path, body=None):
        r = self.api.put(path, body)
        assert r.status in (201, 204), (path, r)
        return r


@pytest.fixture
def node():
    """Factory of Nodes, each stopped (exit status 0) after the test."""
    started = []

    def make(extra=None):
        n = Node(extra)
        started.append(n)
        return n
    yield make
    for n in started:
        if not n.b.stopped:
            assert n.b.stop() == 0, n.b.log()


def make_everything(n, vhost, ctl):
    """Through the API: vhost, user, permissions, policy, exchange, queue,
    binding; the user's password changed with warrenctl; then 5 persistent
    messages published through the binding and confirmed."""
    v = quote(vhost)
    assert n.api.put("/api/vhosts/" + v, {"description": "Team A", "tags": "prod,eu",
                                          "default_queue_type": "quorum"}).status == 201
    assert n.api.put("/api/users/alice", {"password": "first", "tags": "monitoring"}).status == 201
    ctl("declare", "user", "alice", "s3cret", "--tags", "management")
    n.put("/api/permissions/%s/alice" % v, {"configure": "^a-", "write": ".*", "read": ".*"})
    n.put("/api/policies/%s/cap" % v, {"pattern": "^a-", "definition": {"max-length": 100},
                                         "apply-to": "queues"})
    n.put("/api/exchanges/%s/a-x" % v, {"type": "topic", "durable": True})
    n.put("/api/queues/%s/a-q" % v, {"durable": True})
    assert n.api.post("/api/bindings/%s/e/a-x/q/a-q" % v, {"routing_key": "k.#"}).status == 201
    c = n.connect(vhost, "alice", "s3cret")
    ch = c.channel()
    ch.confirm_delivery()
    for i in range(5):
        ch.basic_publish("a-x", "k.%d" % i, b"m%d" % i, PERSISTENT, mandatory=True)
    c.close()


def check_everything(n, vhost):
    v = quote(vhost)
    got = n.api.get("/api/vhosts/" + v).json
    assert (got["description"], got["tags"], got["default_queue_type"]) == ("Team A", ["prod", "eu"], "quorum")
    alice = n.api.get("/api/users/alice").json
    assert alice["tags"] == ["management"]
    assert n.api.get("/api/permissions/%s/alice" % v).json == {
        "user": "alice", "vhost": vhost, "configure": "^a-", "write": ".*", "read": ".*"}
    pol = n.api.get("/api/policies/%s/cap" % v).json
    assert (pol["pattern"], pol["definition"]) == ("^a-", {"max-length": 100})
    assert n.api.get("/api/exchanges/%s/a-x" % v).json["type"] == "topic"
    [b] = [b for b in n.api.get("/api/bindings/" + v).json if b["source"] == "a-x"]
    assert (b["destination"], b["routing_key"]) == ("a-q", "k.#")
    assert n.api.get("/api/queues/%s/a-q" % v).json["effective_policy_definition"] == {"max-length": 100}
    # alice logs in with the password warrenctl gave her, within her permissions.
    c = n.connect(vhost, "alice", "s3cret")
    ch = c.channel()
    got = []
    while True:
        m, _, body = ch.basic_get("a-q", auto_ack=False)
        if m is None:
            break
        got.append(body)
        ch.basic_ack(m.delivery_tag)
    assert got == [b"m%d" % i for i in range(5)]
    with pytest.raises(pex.ChannelClosedByBroker) as e:
        ch.queue_declare("b-q")
    assert e.value.reply_code == 403
    c.close()
    with pytest.raises(pex.ProbableAuthenticationError):
        n.connect(vhost, "alice", "first")


def ctl_for(n):
    path = warrenctl_path()
    if not path or not os.path.exists(path):
        pytest.skip("warrenctl not built")

    def run(*args):
        p = subprocess.run([path, "--host", "127.0.0.1", "--port", str(n.mgmt_port)] + list(args),
                           capture_output=True, timeout=30)
        assert p.returncode == 0, p
    return run


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill9"])
def test_everything_made_at_run_time_survives_restart(node, sig):
    n = node()
    make_everything(n, "team-a", ctl_for(n))
    n.restart(sig)
    check_everything(n, "team-a")
    # And again, now from the store alone (a snapshot may have been written).
    n.restart(sig)
    assert n.api.get("/api/vhosts/team-a").json["description"] == "Team A"
    assert n.api.get("/api/users/alice").json["tags"] == ["management"]


def test_kill9_right_after_the_api_answered(node):
    """Each reply is sent only once its change is durable: kill -9 at once
    loses none of them."""
    n = node()
    for i in range(20):
        n.put("/api/vhosts/v%d" % i)
        n.put("/api/users/u%d" % i, {"password": "p%d" % i, "tags": ""})
        n.put("/api/permissions/v%d/u%d" % (i, i), {"configure": ".*", "write": ".*", "read": ".*"})
    n.restart(signal.SIGKILL)
    names = {v["name"] for v in n.api.get("/api/vhosts").json}
    assert {"v%d" % i for i in range(20)} <= names
    for i in (0, 19):
        n.connect("v%d" % i, "u%d" % i, "p%d" % i).close()


def test_deleted_vhost_stays_deleted(node):
    """The configuration seeds a new node only: a vhost (even "/") deleted at
    run time stays deleted though the file lists it, as RabbitMQ's
    default_vhost; a user the file adds later is not created either."""
    n = node({"vhosts": ["/", "cfg-v"], "users": [{"name": "guest", "password": "guest", "vhosts": ["/", "cfg-v"],
                                                   "tags": ["administrator"]}]})
    n.put("/api/queues/cfg-v/q", {"durable": True})
    assert n.api.delete("/api/vhosts/cfg-v").status == 204
    assert n.api.delete("/api/vhosts/%2F").status == 204
    cfg = dict(n.b.config)
    cfg["users"] = cfg["users"] + [{"name": "late", "password": "late", "vhosts": ["/"]}]
    n.restart(config=cfg)
    assert [v["name"] for v in n.api.get("/api/vhosts").json] == []
    assert n.api.get("/api/users/late").status == 404
    # A vhost made again starts empty: the old queue's log went with it.
    n.put("/api/vhosts/cfg-v")
    assert n.api.get("/api/queues/cfg-v/q").status == 404


def test_reimport_after_restart_keeps_messages(node):
    n = node()
    defs = {"vhosts": [{"name": "team-a"}],
            "permissions": [{"user": "guest", "vhost": "team-a", "configure": ".*", "write": ".*",
                             "read": ".*"}],
            "queues": [{"name": "orders", "vhost": "team-a", "durable": True, "auto_delete": False,
                        "arguments": {}}]}
    assert n.api.post("/api/definitions", defs).status == 204
    c = n.connect("team-a")
    ch = c.channel()
    ch.confirm_delivery()
    for i in range(3):
        ch.basic_publish("", "orders", b"o%d" % i, PERSISTENT)
    c.close()
    n.restart()
    assert n.api.post("/api/definitions", defs).status == 204
    assert n.api.get("/api/queues/team-a/orders").json["messages"] == 3
    assert "not configured" not in n.b.log()


def test_imported_user_limit_survives_restart(node):
    n = node()
    defs = {"users": [{"name": "lim", "password": "lim", "tags": "", "limits": {"max-connections": 1}}],
            "permissions": [{"user": "lim", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}]}
    assert n.api.post("/api/definitions", defs).status == 204
    n.restart(signal.SIGKILL)
    assert n.api.get("/api/users/lim").json["limits"] == {"max-connections": 1}
    c = n.connect("/", "lim", "lim")
    with pytest.raises(pex.AMQPConnectionError):
        n.connect("/", "lim", "lim")
    c.close()
    defs["users"][0]["limits"] = {"max-connections": "x"}
    r = n.api.post("/api/definitions", defs)
    assert (r.status, r.json["reason"]) == (
        400, "users[0]: 'limits' must be an object with an integer 'max-connections' of -1 or more")


def test_load_definitions_at_every_start_keeps_messages(node, tmp_path):
    """load_definitions is imported at every start, as RabbitMQ 3.10 does:
    after the store is recovered, so the queue it lists keeps its messages;
    a vhost it lists that was deleted at run time comes back, empty."""
    path = tmp_path / "defs.json"
    path.write_text(json.dumps({
        "vhosts": [{"name": "/"}, {"name": "team-b"}],
        "permissions": [{"user": "guest", "vhost": "team-b", "configure": ".*", "write": ".*", "read": ".*"}],
        "queues": [{"name": "jobs", "vhost": "/", "durable": True, "auto_delete": False, "arguments": {}},
                   {"name": "b", "vhost": "team-b", "durable": True, "auto_delete": False, "arguments": {}}]}))
    n = node({"load_definitions": str(path)})
    c = n.connect()
    ch = c.channel()
    ch.confirm_delivery()
    for i in range(4):
        ch.basic_publish("", "jobs", b"j%d" % i, PERSISTENT)
    c.close()
    c = n.connect("team-b")
    ch = c.channel()
    ch.confirm_delivery()
    ch.basic_publish("", "b", b"gone", PERSISTENT)
    c.close()
    assert n.api.delete("/api/vhosts/team-b").status == 204
    n.restart(signal.SIGKILL)
    assert n.api.get("/api/queues/%2F/jobs").json["messages"] == 4
    assert n.api.get("/api/queues/team-b/b").json["messages"] == 0


def test_previous_version_data_dir_opens(node, tmp_path):
    """A data_dir written by the previous version (topology.json version 2,
    no users or vhost records): its vhosts come back, the configuration's
    users seed it once."""
    n = node()
    n.b.stop()
    data = n.b.config["data_dir"]
    for f in os.listdir(data):
        if f not in ("LOCK", "topology.json"):
            subprocess.run(["rm", "-rf", os.path.join(data, f)], check=True)
    with open(os.path.join(data, "topology.json"), "w") as f:
        json.dump({"format": "warren-topology", "version": 2, "journal": 0, "vhosts": {
            "legacy": {"policies": [], "bindings": [], "queues": [], "exchanges": [
                {"name": "old-x", "type": "fanout", "durable": True, "auto_delete": False,
                 "internal": False, "arguments": ""}]}}}, f)
    n.b = start_warrend(raw_config=n.b.config, workdir=n.b.workdir)
    n._up()
    assert n.api.get("/api/exchanges/legacy/old-x").json["type"] == "fanout"
    assert n.api.get("/api/vhosts/%2F").status == 200
    n.put("/api/users/later", {"password": "x", "tags": ""})
    n.restart()
    assert n.api.get("/api/users/later").status == 200
    assert n.api.get("/api/exchanges/legacy/old-x").status == 200


# --- PUT and DELETE /api/vhosts/NAME ---------------------------------------------


def test_vhost_put_and_delete_statuses(node):
    n = node()
    api = n.api
    assert api.put("/api/vhosts/s1").status == 201
    assert api.put("/api/vhosts/s1").status == 204
    got = api.get("/api/vhosts/s1").json
    assert (got["description"], got["tags"], got["tracing"], got["default_queue_type"]) == ("", [], False, "classic")
    assert api.put("/api/vhosts/s1", {"tags": ["x", "y"], "defaultqueuetype": "quorum"}).status == 204
    got = api.get("/api/vhosts/s1").json
    assert (got["tags"], got["default_queue_type"], got["metadata"]) == (
        ["x", "y"], "quorum", {"description": "", "tags": ["x", "y"], "default_queue_type": "quorum"})
    # As RabbitMQ 3.10: a PUT replaces description, tags and tracing, keeps the queue type.
    assert api.put("/api/vhosts/s1", {"tracing": True}).status == 204
    got = api.get("/api/vhosts/s1").json
    assert (got["tags"], got["tracing"], got["default_queue_type"]) == ([], True, "quorum")
    for body, reason in [({"tracing": "x"}, "tracing must be a boolean"),
                         ({"tags": 5}, "tags must be a list of strings or a comma-separated string"),
                         ({"description": 5}, "description must be a string"),
                         ({"default_queue_type": "bogus"},
                          "default queue type must be classic, quorum or stream")]:
        r = api.put("/api/vhosts/s2", body)
        assert (r.status, r.json) == (400, {"error": "bad_request", "reason": reason})
    assert api.get("/api/vhosts/s2").status == 404
    r = api.request("PUT", "/api/vhosts/s2", raw=b"{", headers={"Content-Type": "application/json"})
    assert (r.status, r.json) == (400, {"error": "bad_request", "reason": "not_json"})
    r = api.post("/api/vhosts/s1", {})
    assert (r.status, r.headers["allow"]) == (405, "HEAD, GET, PUT, DELETE, OPTIONS")
    r = api.delete("/api/vhosts/nope")
    assert (r.status, r.json) == (404, {"error": "Object Not Found", "reason": "Not Found"})
    n.put("/api/users/mon", {"password": "mon", "tags": "monitoring"})
    r = api.request("PUT", "/api/vhosts/s3", user="mon", password="mon")
    assert (r.status, r.json) == (401, {"error": "not_authorised", "reason": "Not administrator user"})
    assert api.delete("/api/vhosts/s1").status == 204
    assert api.get("/api/vhosts/s1").status == 404


def test_vhost_delete_closes_connections_and_takes_everything(node):
    n = node()
    n.put("/api/vhosts/gone")
    n.put("/api/permissions/gone/guest", {"configure": ".*", "write": ".*", "read": ".*"})
    n.put("/api/policies/gone/p", {"pattern": ".*", "definition": {"max-length": 1}})
    c = n.connect("gone")
    ch = c.channel()
    ch.queue_declare("dq", durable=True)
    ch.queue_declare("ex", exclusive=True)
    ch.confirm_delivery()
    for i in range(3):
        ch.basic_publish("", "dq", b"x%d" % i, PERSISTENT)
    # A consumer holding an unacked delivery while its vhost goes.
    got = []
    ch.basic_qos(prefetch_count=1)
    ch.basic_consume("dq", lambda c_, m, p, body: got.append(body))
    wait_for(lambda: c.process_data_events(0.02) or got, what="a delivery")
    assert n.api.delete("/api/vhosts/gone").status == 204
    with pytest.raises(pex.ConnectionClosedByBroker) as e:
        wait_for(lambda: c.process_data_events(0.05) and False, what="the close")
    assert (e.value.reply_code, e.value.reply_text) == (320, "CONNECTION_FORCED - vhost 'gone' is deleted")
    assert n.api.get("/api/permissions/gone/guest").status == 404
    n.put("/api/vhosts/gone")
    assert n.api.get("/api/policies/gone").json == []
    assert n.api.get("/api/queues/gone/dq").status == 404
    n.restart()
    assert n.api.get("/api/queues/gone/dq").status == 404
    assert n.api.get("/api/vhosts/gone").status == 200


def test_standard_exchanges_are_not_recorded(node):
    """A vhost made at run time declares "" and amq.* itself, at every start:
    the store records only what the user made."""
    n = node()
    n.put("/api/vhosts/std")
    n.put("/api/exchanges/std/mine", {"type": "direct", "durable": True})
    n.b.stop()
    journal = os.path.join(n.b.config["data_dir"], "logs", "topology")
    text = b"".join(open(os.path.join(journal, f), "rb").read() for f in os.listdir(journal))
    assert b'"name":"mine"' in text and b"amq." not in text
    n.b = start_warrend(raw_config=n.b.config, workdir=n.b.workdir)
    n._up()
    names = {x["name"] for x in n.api.get("/api/exchanges/std").json}
    assert {"", "amq.direct", "amq.topic", "mine"} <= names


def test_rabbitmqadmin_declare_and_delete_vhost(node):
    path = rabbitmqadmin_path()
    if not path:
        pytest.skip("rabbitmqadmin not found (RabbitMQ's management plugin is not installed)")
    n = node()

    def admin(*args):
        p = subprocess.run([sys.executable, path, "-H", "127.0.0.1", "-P", str(n.mgmt_port), "-u", "guest",
                            "-p", "guest"] + list(args), capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p
        return p.stdout
    assert admin("declare", "vhost", "name=adm") == "vhost declared\n"
    assert "adm" in [v["name"] for v in json.loads(admin("list", "vhosts", "-f", "raw_json"))]
    n.restart()
    assert n.api.get("/api/vhosts/adm").status == 200
    assert admin("delete", "vhost", "name=adm") == "vhost deleted\n"
    assert n.api.get("/api/vhosts/adm").status == 404
