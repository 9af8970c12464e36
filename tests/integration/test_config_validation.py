# SPDX-License-Identifier: MIT
# warrend --check-config and the operations keys of the configuration
# (management, prometheus, load_definitions, collect_statistics_interval),
# policies, the flow alarm settings and the environment overrides: every
# kind of mistake gives the message docs/CONFIGURATION.md documents, exit
# status 2, and nothing listens.
# warren only (skips with WARREN_BROKER).
import json
import os
import subprocess

import pytest

from conftest import Broker, Http, free_port
from helpers import wait_for


@pytest.fixture
def check(warrend_binary, tmp_path):
    """check(config dict or text, env=None) -> (exit status, stdout, stderr,
    config path) of warrend --check-config."""
    def run(cfg, env=None):
        path = tmp_path / "warren.json"
        path.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
        full = dict(os.environ)
        for k in ("WARREN_AMQP_PORT", "WARREN_MANAGEMENT_PORT", "WARREN_PROMETHEUS_PORT", "WARREN_DATA_DIR"):
            full.pop(k, None)
        full.update(env or {})
        p = subprocess.run([warrend_binary, "--check-config", str(path)], capture_output=True, text=True,
                           env=full, timeout=30, cwd=str(tmp_path))
        return p.returncode, p.stdout, p.stderr, str(path)
    return run


def problems(result):
    rc, out, err, path = result
    assert (rc, out) == (2, ""), result
    return [line.replace(path, "FILE") for line in err.splitlines()]


def test_valid_config(check):
    rc, out, err, path = check({"management": {"address": "127.0.0.1", "port": 15672},
                                "prometheus": {}, "collect_statistics_interval": 1000})
    assert (rc, out, err) == (0, "%s: configuration valid\n" % path, "")


def test_shipped_example_is_valid(warrend_binary):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.run([warrend_binary, "--check-config", os.path.join(root, "etc", "warren.json")],
                       capture_output=True, text=True, timeout=30, cwd=root)
    assert (p.returncode, p.stderr) == (0, ""), p.stderr


def test_check_config_does_not_listen(check):
    port = free_port()
    rc, out, err, _ = check({"listeners": [{"address": "127.0.0.1", "port": port}],
                             "management": {"port": free_port()}})
    assert rc == 0
    import socket
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_check_config_usage(warrend_binary):
    p = subprocess.run([warrend_binary, "--check-config"], capture_output=True, text=True, timeout=30)
    assert (p.returncode, p.stderr) == (2, "warrend: --check-config needs a FILE\n")


@pytest.mark.parametrize("cfg,expected", [
    ({"management": "on"}, ["FILE: management: expected an object, got a string"]),
    ({"management": {"port": 0}}, ["FILE: management.port: must be between 1 and 65535, got 0"]),
    ({"management": {"port": "15672"}}, ["FILE: management.port: expected an integer, got a string"]),
    ({"prometheus": {"port": 70000}}, ["FILE: prometheus.port: must be between 1 and 65535, got 70000"]),
    ({"management": {"address": "localhost"}},
     ["FILE: management.address: not an IPv4 or IPv6 address: 'localhost'"]),
    ({"management": {"address": 127}}, ["FILE: management.address: expected a string, got an integer"]),
    ({"prometheus": {"path": "/metrics"}}, ["FILE: prometheus.path: unknown key"]),
    ({"management": {"tls": "yes"}}, ["FILE: management.tls: expected a boolean, got a string"]),
    ({"management": {"tls": True}}, ["FILE: management.tls: HTTPS needs tls.certfile and tls.keyfile"]),
    ({"management": {"tls": True, "port": 0}}, ["FILE: management.port: must be between 1 and 65535, got 0",
                                                "FILE: management.tls: HTTPS needs tls.certfile and tls.keyfile"]),
    ({"management": {"tls": False, "ssl": True}}, ["FILE: management.ssl: unknown key"]),
    ({"collect_statistics_interval": 50},
     ["FILE: collect_statistics_interval: must be between 100 and 3600000, got 50"]),
    ({"collect_statistics_interval": 1.5},
     ["FILE: collect_statistics_interval: expected an integer, got a number"]),
    ({"load_definitions": ""}, ["FILE: load_definitions: must not be empty"]),
    ({"load_definitions": ["a.json"]}, ["FILE: load_definitions: expected a string, got an array"]),
    ({"managment": {}}, ["FILE: managment: unknown key"]),
    ({"listeners": [{"address": "127.0.0.1", "port": 5999}], "management": {"port": 5999}},
     ["FILE: management: port 5999 on 127.0.0.1 is already used by listeners[0]"]),
    ({"management": {"port": 6001}, "prometheus": {"port": 6001}},
     ["FILE: prometheus: port 6001 on 127.0.0.1 is already used by management"]),
    # Every problem is reported in one run.
    ({"management": {"port": 0, "extra": 1}, "collect_statistics_interval": 0},
     ["FILE: management.port: must be between 1 and 65535, got 0", "FILE: management.extra: unknown key",
      "FILE: collect_statistics_interval: must be between 100 and 3600000, got 0"]),
])
def test_mistakes(check, cfg, expected):
    assert sorted(problems(check(cfg))) == sorted(expected)


POLICY = {"name": "p", "pattern": "^q", "definition": {"max-length": 2}}


def policy(**kw):
    p = dict(POLICY)
    p.update(kw)
    return p


def test_valid_policies_and_alarms(check):
    rc, out, err, path = check({
        "vhosts": ["/", "v2"],
        "policies": [POLICY, policy(vhost="v2", **{"apply-to": "queues", "priority": -3}),
                     policy(name="ha", definition={"ha-mode": "all", "message-ttl": 0,
                                                   "overflow": "reject-publish-dlx",
                                                   "dead-letter-exchange": "dlx", "delivery-limit": 0})],
        "memory_high_watermark": {"absolute": 134217728},
        "disk_free_limit": {"relative": 1.5},
        "storage": {"flow_pending_bytes": 1048576}})
    assert (rc, out, err) == (0, "%s: configuration valid\n" % path, "")
    for cfg in ({"memory_high_watermark": 0}, {"memory_high_watermark": 1},
                {"memory_high_watermark": {"relative": 0.5}}, {"disk_free_limit": 0},
                {"disk_free_limit": {"absolute": 1000000000}}):
        assert check(cfg)[0] == 0, cfg


@pytest.mark.parametrize("cfg,expected", [
    ({"policies": {}}, ["FILE: policies: expected an array, got an object"]),
    ({"policies": [7]}, ["FILE: policies[0]: expected an object, got an integer"]),
    ({"policies": [{"definition": {"max-length": 1}}]},
     ["FILE: policies[0]: missing key 'name'", "FILE: policies[0]: missing key 'pattern'"]),
    ({"policies": [policy(definition={"message-ttl": -1})]},
     ["FILE: policies[0].definition: -1 is not a valid message TTL"]),
    ({"policies": [policy(definition={"expires": 0})]},
     ["FILE: policies[0].definition: 0 is not a valid queue expiry"]),
    ({"policies": [policy(definition={"overflow": "x"})]},
     ["FILE: policies[0].definition: <<\"x\">> is not a valid overflow value"]),
    ({"policies": [policy(definition={"max-length": 1.5})]},
     ["FILE: policies[0].definition: 1.5 is not a valid maximum length"]),
    ({"policies": [policy(definition={"dead-letter-exchange": 1})]},
     ["FILE: policies[0].definition: 1 is not a valid dead letter exchange name"]),
    ({"policies": [policy(definition={"foo": 1, "bar": "x"})]},
     ["FILE: policies[0].definition: [{<<\"bar\">>,<<\"x\">>},{<<\"foo\">>,1}] are not recognised policy settings"]),
    ({"policies": [policy(definition={})]}, ["FILE: policies[0].definition: no policy provided"]),
    ({"policies": [policy(definition=[])]}, ["FILE: policies[0].definition: expected an object, got an array"]),
    ({"policies": [policy(pattern="(")]},
     ["FILE: policies[0].pattern: pattern should be regular expression but is invalid: Unmatched ( or \\("]),
    ({"policies": [policy(**{"apply-to": "streams"})]},
     ["FILE: policies[0].apply-to: apply-to 'streams' unrecognised; should be 'queues', 'exchanges' or 'all'"]),
    ({"policies": [policy(priority="1")]}, ["FILE: policies[0].priority: expected an integer, got a string"]),
    ({"policies": [policy(vhost="nowhere")]}, ["FILE: policies[0].vhost: vhost 'nowhere' is not in vhosts"]),
    ({"policies": [POLICY, policy(pattern="x")]}, ["FILE: policies[1].name: duplicate policy 'p' in vhost '/'"]),
    ({"policies": [policy(extra=1)]}, ["FILE: policies[0].extra: unknown key"]),
    ({"memory_high_watermark": 1.5}, ["FILE: memory_high_watermark: must be between 0 and 1, got 1.5"]),
    ({"memory_high_watermark": "40%"}, ["FILE: memory_high_watermark: expected a number, got a string"]),
    ({"memory_high_watermark": {"absolute": 0}},
     ["FILE: memory_high_watermark.absolute: must be between 1 and 9223372036854775807, got 0"]),
    ({"memory_high_watermark": {"relative": 0.4, "absolute": 1000}},
     ['FILE: memory_high_watermark: needs exactly one of "relative" and "absolute"']),
    ({"disk_free_limit": {"mem_relative": 1.0}},
     ["FILE: disk_free_limit.mem_relative: unknown key",
      'FILE: disk_free_limit: needs exactly one of "relative" and "absolute"']),
    ({"disk_free_limit": -1}, ["FILE: disk_free_limit: must be between 0 and 9223372036854775807, got -1"]),
    ({"disk_free_limit": {"relative": 0}},
     ["FILE: disk_free_limit.relative: must be between 0.001 and 1000, got 0"]),
    ({"storage": {"flow_pending_bytes": 1000}},
     ["FILE: storage.flow_pending_bytes: must be between 1048576 and 9223372036854775807, got 1000"]),
    # Every bad policy at once, each under its own path.
    ({"policies": [policy(definition={"max-length": -1}),
                   policy(name="q", pattern="(", definition={"expires": "x"})]},
     ["FILE: policies[0].definition: -1 is not a valid maximum length",
      "FILE: policies[1].pattern: pattern should be regular expression but is invalid: Unmatched ( or \\("]),
])
def test_policy_and_alarm_mistakes(check, cfg, expected):
    assert sorted(problems(check(cfg))) == sorted(expected)


def test_syntax_error(check):
    assert problems(check('{"management": {"port": 15672,}}')) == [
        "FILE: line 1, column 31: string or '}' expected near '}'"]


def test_load_definitions_file_is_checked(check, tmp_path):
    missing = str(tmp_path / "missing.json")
    assert problems(check({"load_definitions": missing})) == [
        "FILE: load_definitions: %s: unable to open %s: No such file or directory" % (missing, missing)]
    bad = tmp_path / "defs.json"
    bad.write_text('{"queues": [{"name": "q"}]}')
    assert problems(check({"load_definitions": str(bad)})) == [
        "FILE: load_definitions: %s: queues[0]: 'vhost' must be a string" % bad]
    bad.write_text('{"queues": [')
    assert problems(check({"load_definitions": str(bad)})) == [
        "FILE: load_definitions: %s: line 1, column 12: ']' expected near end of file" % bad]
    bad.write_text(json.dumps({"queues": [{"name": "q", "vhost": "/"}]}))
    assert check({"load_definitions": str(bad)})[0] == 0


@pytest.mark.parametrize("env,expected", [
    ({"WARREN_AMQP_PORT": "abc"},
     "environment: WARREN_AMQP_PORT: expected a port number between 1 and 65535, got 'abc'"),
    ({"WARREN_AMQP_PORT": "0"},
     "environment: WARREN_AMQP_PORT: expected a port number between 1 and 65535, got '0'"),
    ({"WARREN_MANAGEMENT_PORT": "65536"},
     "environment: WARREN_MANAGEMENT_PORT: expected a port number between 1 and 65535, got '65536'"),
    ({"WARREN_PROMETHEUS_PORT": ""},
     "environment: WARREN_PROMETHEUS_PORT: expected a port number between 1 and 65535, got ''"),
    ({"WARREN_DATA_DIR": ""}, "environment: WARREN_DATA_DIR: must not be empty"),
    ({"WARREN_AMQP_PORT": "6100", "WARREN_MANAGEMENT_PORT": "6100"},
     "environment: management: port 6100 on 127.0.0.1 is already used by listeners[0]"),
])
def test_environment_mistakes(check, env, expected):
    assert problems(check({}, env)) == [expected]


def test_environment_overrides_the_file(warrend_binary, tmp_path):
    """The variables win over the file: AMQP, management and Prometheus
    listen on the environment's ports and data goes to WARREN_DATA_DIR."""
    amqp, mgmt, prom = free_port(), free_port(), free_port()
    data = tmp_path / "env-data"
    cfg = tmp_path / "warren.json"
    cfg.write_text(json.dumps({"listeners": [{"address": "127.0.0.1", "port": free_port()}],
                               "management": {"address": "127.0.0.1", "port": free_port()},
                               "data_dir": str(tmp_path / "file-data")}))
    env = dict(os.environ, WARREN_AMQP_PORT=str(amqp), WARREN_MANAGEMENT_PORT=str(mgmt),
               WARREN_PROMETHEUS_PORT=str(prom), WARREN_DATA_DIR=str(data))
    with open(tmp_path / "warrend.log", "wb") as log:
        proc = subprocess.Popen([warrend_binary, "--config", str(cfg)], env=env, stdout=log,
                                stderr=subprocess.STDOUT, cwd=str(tmp_path))
    b = Broker("127.0.0.1", amqp, proc=proc, workdir=str(tmp_path))
    try:
        def up():
            try:
                return Http("127.0.0.1", mgmt).get("/api/overview").json
            except OSError:
                assert proc.poll() is None, b.log()
                return None
        o = wait_for(up, what="the management API on WARREN_MANAGEMENT_PORT")
        ports = {(l["protocol"], l["port"]) for l in o["listeners"]}
        assert ports == {("amqp", amqp), ("http", mgmt), ("http/prometheus", prom)}
        assert Http("127.0.0.1", prom).get("/metrics", auth=False).status == 200
        assert data.is_dir() and not (tmp_path / "file-data").exists()
    finally:
        status = b.stop()
    assert status == 0, b.log()


def test_bad_config_refuses_to_start(warrend_binary, tmp_path):
    cfg = tmp_path / "warren.json"
    cfg.write_text(json.dumps({"management": {"port": 0}}))
    p = subprocess.run([warrend_binary, "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert (p.returncode, p.stderr) == (2, "%s: management.port: must be between 1 and 65535, got 0\n" % cfg)


def test_http_port_in_use_stops_start(warrend_binary, tmp_path):
    import socket
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    cfg = tmp_path / "warren.json"
    cfg.write_text(json.dumps({"listeners": [{"address": "127.0.0.1", "port": free_port()}],
                               "management": {"address": "127.0.0.1", "port": port},
                               "data_dir": str(tmp_path / "data")}))
    try:
        p = subprocess.run([warrend_binary, "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    finally:
        busy.close()
    assert p.returncode == 1
    assert "cannot listen on 127.0.0.1 port %d for the management API: Address already in use" % port in p.stderr
