# SPDX-License-Identifier: MIT
# Definitions in RabbitMQ's definitions.json shape: a topology declared on a
# real RabbitMQ node with rabbitmqadmin and exported there imports into
# warren (POST /api/definitions and load_definitions at boot) with the same
# exchanges, queues, bindings and policies, and warren's export imports back into
# RabbitMQ unchanged. Also the import's validation errors. The RabbitMQ part
# skips when RabbitMQ (with its management plugin) is not installed.
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import Http, free_port
from helpers import port_free, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RMQ_BIN = "/usr/lib/rabbitmq/bin"
# scripts/rabbitmq nodes for this file: AMQP on one of these, the
# management API 20 above it.
RMQ_PORTS = range(12060, 12080)


def rabbitmqadmin_path():
    found = sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/rabbitmq_management-*/"
                             "priv/www/cli/rabbitmqadmin"))
    return found[-1] if found else None


def admin(port, *args):
    """rabbitmqadmin against the API on port; returns stdout, fails the test
    on a non-zero exit."""
    p = subprocess.run([sys.executable, rabbitmqadmin_path(), "-H", "127.0.0.1", "-P", str(port),
                        "-u", "guest", "-p", "guest"] + list(args), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, "rabbitmqadmin %s: %s%s" % (" ".join(args), p.stdout, p.stderr)
    return p.stdout


def node_env(d, port):
    """The environment scripts/rabbitmq gives a node in d (see node_env
    there), for rabbitmq-plugins, which that script does not wrap."""
    env = dict(os.environ)
    env.update({
        "HOME": d, "RABBITMQ_NODENAME": "warren-ref-%d@localhost" % port,
        "RABBITMQ_CONF_ENV_FILE": d + "/rabbitmq-env.conf", "RABBITMQ_CONFIG_FILE": d + "/rabbitmq.conf",
        "RABBITMQ_ADVANCED_CONFIG_FILE": d + "/advanced.config",
        "RABBITMQ_ENABLED_PLUGINS_FILE": d + "/enabled_plugins", "RABBITMQ_MNESIA_BASE": d + "/mnesia",
        "RABBITMQ_LOG_BASE": d + "/log", "RABBITMQ_CTL_DIST_PORT_MIN": str(port + 20001),
        "RABBITMQ_CTL_DIST_PORT_MAX": str(port + 20001),
    })
    return env


@pytest.fixture(scope="module")
def rabbit():
    """A throwaway RabbitMQ node with its management API: (amqp port, api port)."""
    if not os.path.exists(os.path.join(RMQ_BIN, "rabbitmq-server")) or not rabbitmqadmin_path():
        pytest.skip("RabbitMQ with its management plugin is not installed")
    if os.environ.get("WARREN_BROKER"):
        pytest.skip("needs dedicated warrend instances; WARREN_BROKER points at an external broker")
    # AMQP, the management API 20 above it, Erlang distribution 20000 above
    # (a node still starting elsewhere holds that one first).
    port = next((p for p in RMQ_PORTS if port_free(p) and port_free(p + 20) and port_free(p + 20000)), None)
    if port is None:
        pytest.skip("no free port pair in %d-%d for a RabbitMQ node" % (RMQ_PORTS[0], RMQ_PORTS[-1] + 20))
    d = tempfile.mkdtemp(prefix="warren-defs-rmq-")
    env = dict(os.environ, RABBITMQ_EXTRA_CONF="management.tcp.port = %d\nmanagement.tcp.ip = 127.0.0.1"
               % (port + 20))
    script = os.path.join(ROOT, "scripts", "rabbitmq")
    p = subprocess.run([script, "start", d, str(port)], env=env, capture_output=True, text=True, timeout=180)
    if p.returncode != 0:
        shutil.rmtree(d, ignore_errors=True)
        pytest.fail("scripts/rabbitmq start failed:\n%s%s" % (p.stdout, p.stderr))
    try:
        p = subprocess.run([os.path.join(RMQ_BIN, "rabbitmq-plugins"), "-n", "warren-ref-%d@localhost" % port,
                            "enable", "rabbitmq_management"], env=node_env(d, port), capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        api = Http("127.0.0.1", port + 20)

        def up():
            try:
                return api.get("/api/overview").status == 200
            except OSError:
                return False
        wait_for(up, timeout=60, what="RabbitMQ's management API")
        yield port, port + 20
    finally:
        subprocess.run([script, "stop", d], capture_output=True, timeout=120)
        shutil.rmtree(d, ignore_errors=True)


TOPOLOGY = [
    ("declare", "vhost", "name=defs-vh"),
    ("declare", "permission", "vhost=defs-vh", "user=guest", "configure=.*", "write=.*", "read=.*"),
    ("declare", "exchange", "name=defs.topic", "type=topic", "durable=true"),
    ("declare", "exchange", "name=defs.alt", "type=fanout", "durable=true"),
    ("declare", "exchange", "name=defs.headers", "type=headers", "durable=true",
     'arguments={"alternate-exchange": "defs.alt"}'),
    ("declare", "exchange", "name=defs.internal", "type=direct", "durable=true", "internal=true"),
    ("declare", "exchange", "name=defs.transient", "type=direct", "durable=false", "auto_delete=false"),
    ("declare", "queue", "name=defs.q1", "durable=true",
     'arguments={"x-message-ttl": 60000, "x-max-length": 100, "x-dead-letter-exchange": "defs.alt"}'),
    ("declare", "queue", "name=defs.q2", "durable=true", 'arguments={"x-max-priority": 5}'),
    ("declare", "queue", "name=defs.transient", "durable=false"),
    ("declare", "binding", "source=defs.topic", "destination=defs.q1", "routing_key=a.*.c"),
    ("declare", "binding", "source=defs.topic", "destination=defs.q2", "routing_key=#"),
    ("declare", "binding", "source=defs.headers", "destination=defs.q2",
     'arguments={"x-match": "all", "kind": "x", "n": 3}'),
    ("declare", "binding", "source=defs.topic", "destination_type=exchange", "destination=defs.alt",
     "routing_key=to.alt"),
    ("declare", "binding", "source=amq.direct", "destination=defs.q1", "routing_key=direct-key"),
    ("-V", "defs-vh", "declare", "queue", "name=defs.vh.q", "durable=true"),
    ("-V", "defs-vh", "declare", "exchange", "name=defs.vh.x", "type=fanout", "durable=true"),
    ("-V", "defs-vh", "declare", "binding", "source=defs.vh.x", "destination=defs.vh.q"),
    # ha-mode: a key warren accepts and ignores.
    ("declare", "policy", "name=defs.cap", "pattern=^defs\\.q", "apply-to=queues", "priority=3",
     'definition={"max-length": 10, "overflow": "reject-publish", "ha-mode": "all"}'),
    ("-V", "defs-vh", "declare", "policy", "name=defs.vh.ae", "pattern=.*", "apply-to=exchanges",
     'definition={"alternate-exchange": "defs.vh.x"}'),
]


def topology(defs):
    """The exchanges, queues and bindings of a definitions document as
    comparable sets (sorted JSON of each object)."""
    def norm(items):
        return sorted(json.dumps(i, sort_keys=True) for i in items)
    return {k: norm(defs.get(k, [])) for k in ("exchanges", "queues", "bindings", "policies")}


def vhost_names(defs):
    return sorted(v["name"] for v in defs["vhosts"])


def export(port, path):
    admin(port, "export", path)
    with open(path) as f:
        return json.load(f)


def test_rabbitmq_topology_moves_to_warren_and_back(rabbit, warren, tmp_path):
    _, rmq_api = rabbit
    for cmd in TOPOLOGY:
        admin(rmq_api, *cmd)
    from_rabbit = export(rmq_api, str(tmp_path / "rabbit.json"))
    assert (len(from_rabbit["exchanges"]), len(from_rabbit["queues"]), len(from_rabbit["bindings"]),
            len(from_rabbit["policies"])) == (6, 4, 6, 2)

    # Imported through the API (rabbitmqadmin import).
    w = warren()
    admin(w.mgmt_port, "import", str(tmp_path / "rabbit.json"))
    from_warren = export(w.mgmt_port, str(tmp_path / "warren.json"))
    assert topology(from_warren) == topology(from_rabbit)
    assert vhost_names(from_warren) == ["/", "defs-vh"]
    assert from_warren["rabbit_version"] == "3.10.8"
    [guest] = from_warren["users"]
    assert (guest["name"], guest["hashing_algorithm"], guest["tags"]) == (
        "guest", "rabbit_password_hashing_sha256", ["administrator"])

    # Loaded at boot.
    w2 = warren({"load_definitions": str(tmp_path / "rabbit.json")})
    assert topology(export(w2.mgmt_port, str(tmp_path / "boot.json"))) == topology(from_rabbit)

    # warren's export imports into RabbitMQ: remove the topology there, import
    # warren's, and RabbitMQ exports the same topology again.
    admin(rmq_api, "delete", "vhost", "name=defs-vh")
    admin(rmq_api, "delete", "policy", "name=defs.cap")
    for kind, key in (("exchanges", "name"), ("queues", "name")):
        for obj in from_rabbit[kind]:
            if obj["vhost"] == "/":
                admin(rmq_api, "delete", kind[:-1], "name=" + obj[key])
    emptied = topology(export(rmq_api, str(tmp_path / "empty.json")))
    assert (emptied["queues"], emptied["policies"]) == ([], [])
    admin(rmq_api, "import", str(tmp_path / "warren.json"))
    again = export(rmq_api, str(tmp_path / "again.json"))
    assert topology(again) == topology(from_rabbit)
    # The password hash warren exported still opens guest's account.
    assert Http("127.0.0.1", rmq_api).get("/api/whoami").status == 200


def test_vhost_scoped_export_and_import(warren):
    w = warren()
    api = w.mgmt
    assert api.put("/api/queues/%2F/scoped.q", {"durable": True, "arguments": {"x-max-length": 2}}).status == 201
    one = api.get("/api/definitions/%2F").json
    assert set(one) == {"rabbit_version", "parameters", "policies", "queues", "exchanges", "bindings"}
    assert one["queues"] == [{"name": "scoped.q", "durable": True, "auto_delete": False,
                              "arguments": {"x-max-length": 2}}]
    assert api.delete("/api/queues/%2F/scoped.q").status == 204
    assert api.post("/api/definitions/%2F", one).status == 204
    assert api.get("/api/queues/%2F/scoped.q").json["arguments"] == {"x-max-length": 2}


def test_import_creates_vhosts(warren):
    w = warren()
    defs = {"vhosts": [{"name": "created-by-import"}],
            "queues": [{"name": "q", "vhost": "created-by-import", "durable": True, "auto_delete": False,
                        "arguments": {}}]}
    assert w.mgmt.post("/api/definitions", defs).status == 204
    assert "created-by-import" in [v["name"] for v in w.mgmt.get("/api/vhosts").json]
    assert w.mgmt.get("/api/queues/created-by-import/q").status == 200


@pytest.mark.parametrize("defs,reason", [
    ([], "definitions must be a JSON object"),
    ({"queues": {}}, "queues: must be an array"),
    ({"queues": [{"name": "q"}]}, "queues[0]: 'vhost' must be a string"),
    ({"queues": [{"name": "", "vhost": "/"}]}, "queues[0]: 'name' must not be empty"),
    ({"queues": [{"name": "q", "vhost": "/", "durable": "yes"}]}, "queues[0]: 'durable' must be a boolean"),
    ({"exchanges": [{"name": "x", "vhost": "/"}]}, "exchanges[0]: 'type' must be a string"),
    ({"bindings": [{"source": "x", "vhost": "/", "destination": "q", "destination_type": "topic",
                    "routing_key": ""}]},
     "bindings[0]: 'destination_type' must be \"queue\" or \"exchange\""),
    ({"queues": [{"name": "q", "vhost": "/", "arguments": {"a": None}}]}, "queues[0]: null_not_allowed"),
    ({"vhosts": [{"name": 7}]}, "vhosts[0]: 'name' must be a string"),
    ({"policies": [{"vhost": "/", "name": "p", "pattern": "x", "definition": {"foo": 1}}]},
     "policies[0]: [{<<\"foo\">>,1}] are not recognised policy settings"),
    ({"policies": [{"vhost": "/", "name": "p", "pattern": "x", "definition": {"expires": 0}}]},
     "policies[0]: 0 is not a valid queue expiry"),
    ({"policies": [{"vhost": "/", "name": "p", "definition": {"expires": 1}}]},
     "policies[0]: 'pattern' must be a string"),
    ({"policies": [{"vhost": "/", "name": "p", "pattern": "x", "priority": "1", "definition": {"expires": 1}}]},
     "policies[0]: 'priority' must be an integer"),
])
def test_import_validation(warren, defs, reason):
    w = warren()
    raw = json.dumps(defs).encode()
    r = w.mgmt.post("/api/definitions", raw=raw, headers={"Content-Type": "application/json"})
    if isinstance(defs, list):
        assert (r.status, r.json) == (400, {"error": "bad_request", "reason": "not_json"})
        return
    assert (r.status, r.json) == (400, {"error": "bad_request", "reason": reason})


def test_import_reports_the_failing_object(warren):
    w = warren()
    defs = {"exchanges": [{"name": "x", "vhost": "/", "type": "no-such-type"}]}
    r = w.mgmt.post("/api/definitions", defs)
    assert (r.status, r.json["reason"]) == (
        400, "exchange in vhost '/': COMMAND_INVALID - unknown exchange type 'no-such-type'")
    defs = {"queues": [{"name": "q", "vhost": "no-such-vhost"}]}
    assert w.mgmt.post("/api/definitions", defs).json["reason"] == "queues: vhost 'no-such-vhost' does not exist"
    assert w.mgmt.put("/api/queues/%2F/dq", {"durable": True}).status == 201
    defs = {"queues": [{"name": "dq", "vhost": "/", "durable": False}]}
    assert w.mgmt.post("/api/definitions", defs).json["reason"] == (
        "queue in vhost '/': PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'dq' in vhost '/': "
        "received 'false' but current is 'true'")


def test_load_definitions_problem_stops_boot(warrend_binary, tmp_path):
    bad = tmp_path / "defs.json"
    bad.write_text(json.dumps({"queues": [{"name": "q", "vhost": "/", "arguments": {"x-max-length": "x"}}]}))
    cfg = tmp_path / "warren.json"
    cfg.write_text(json.dumps({"listeners": [{"address": "127.0.0.1", "port": free_port()}],
                               "load_definitions": str(bad), "data_dir": str(tmp_path / "data")}))
    p = subprocess.run([warrend_binary, "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert ("load_definitions: %s: queue in vhost '/': PRECONDITION_FAILED - invalid arg 'x-max-length' for "
            "queue 'q' in vhost '/': \"expected integer, got longstr\"" % bad) in p.stderr
