# SPDX-License-Identifier: MIT
# warrenctl, the admin CLI: every subcommand's success and failure paths,
# the exit statuses (0 ok, 1 refused or unreachable, 2 usage), tables by
# default and --json for scripts, --help everywhere. It talks to the
# management API of mgmt_broker (conftest.py), so with WARREN_BROKER and
# WARREN_MANAGEMENT it runs against RabbitMQ too.
import json
import os
import subprocess

import pika.exceptions as pex
import pytest

from conftest import free_port
from helpers import wait_for


def warrenctl_path():
    p = os.environ.get("WARRENCTL")
    if p:
        return p
    warrend = os.environ.get("WARREND")
    if warrend:
        return os.path.join(os.path.dirname(os.path.dirname(warrend)), "tools", "warrenctl", "warrenctl")
    return None


def clean_env(home, **extra):
    """The test's environment without WARREN_* settings, with HOME (and so
    the default config file) in a directory of the test's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARREN_") and k != "XDG_CONFIG_HOME"}
    env["HOME"] = str(home)
    env.update(extra)
    return env


@pytest.fixture
def ctl(mgmt_broker, tmp_path):
    """ctl(*args, stdin=None, target=True, env=None) -> (exit status, stdout,
    stderr) against the broker's API; env adds variables to a clean
    environment whose HOME is tmp_path/home."""
    path = warrenctl_path()
    if not path or not os.path.exists(path):
        pytest.skip("warrenctl not built (set WARRENCTL or WARREND)")
    api = mgmt_broker.mgmt
    home = tmp_path / "home"
    home.mkdir()

    def run(*args, stdin=None, target=True, env=None):
        argv = [path] + (["--host", api.host, "--port", str(api.port)] if target else []) + list(args)
        p = subprocess.run(argv, input=stdin, capture_output=True, timeout=30,
                           env=clean_env(home, **(env or {})))
        return p.returncode, p.stdout.decode(), p.stderr.decode()
    run.api = api
    run.home = home
    run.path = path
    return run


def ok(result):
    rc, out, err = result
    assert (rc, err) == (0, ""), result
    return out


def fails(result, status=1):
    rc, out, err = result
    assert rc == status, result
    assert out == "" and err.endswith("\n") and err.count("\n") == 1, result
    assert err.startswith("warrenctl: "), result
    return err[len("warrenctl: "):-1]


def rows(table):
    """A warrenctl table as dicts (header line, dashes, then rows split on
    runs of two or more spaces)."""
    import re
    lines = table.rstrip("\n").split("\n")
    head = lines[0].split()
    out = []
    for line in lines[2:]:
        if line == "(none)":
            continue
        starts = [m.start() for m in re.finditer(r"\S+", lines[0])]
        cells = [line[s:e].strip() for s, e in zip(starts, starts[1:] + [None])]
        out.append(dict(zip(head, cells)))
    return out


# --- help and usage -------------------------------------------------------------

COMMANDS = [["list", "exchanges"], ["list", "queues"], ["list", "bindings"], ["list", "connections"],
            ["list", "channels"], ["list", "vhosts"], ["list", "users"], ["list", "permissions"],
            ["list", "policies"], ["list", "consumers"], ["declare", "exchange"],
            ["declare", "queue"], ["declare", "binding"], ["delete", "exchange"], ["delete", "queue"],
            ["delete", "binding"], ["declare", "user"], ["delete", "user"], ["declare", "permission"],
            ["delete", "permission"], ["declare", "policy"], ["delete", "policy"], ["purge", "queue"],
            ["close", "connection"], ["publish"], ["get"], ["export"], ["import"], ["overview"], ["alarms"],
            ["set", "tags"], ["set", "password"], ["declare", "vhost"], ["delete", "vhost"]]


def test_help_overview(ctl):
    out = ok(ctl("--help", target=False))
    assert out.startswith("usage: warrenctl ")
    for words in COMMANDS:
        assert "  " + " ".join(words) + " " in out, words


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: "-".join(w))
def test_help_of_every_command(ctl, words):
    out = ok(ctl(*words, "--help", target=False))
    assert out.startswith("usage: warrenctl [OPTIONS] %s" % " ".join(words)), out


def test_help_of_a_verb_lists_its_objects(ctl):
    out = ok(ctl("declare", "--help", target=False))
    assert "warrenctl declare exchange NAME" in out and "warrenctl declare binding SOURCE" in out


def test_usage_errors(ctl):
    assert fails(ctl(), 2) == "no command given (see warrenctl --help)"
    assert fails(ctl("frobnicate"), 2) == "unknown command 'frobnicate' (see warrenctl --help)"
    assert fails(ctl("declare", "queue"), 2) == "missing arguments (see warrenctl declare queue --help)"
    assert fails(ctl("declare", "queue", "q", "--type", "x"), 2) == \
        "unknown option '--type' (see warrenctl declare queue --help)"
    assert fails(ctl("declare", "queue", "a", "b"), 2) == \
        "unexpected argument 'b' (see warrenctl declare queue --help)"
    assert fails(ctl("declare", "queue", "q", "--argument", "novalue"), 2) == \
        "expected KEY=VALUE, got 'novalue' (see warrenctl declare queue --help)"
    assert fails(ctl("get", "q", "--count"), 2) == "option '--count' needs a value (see warrenctl get --help)"
    assert fails(ctl("--port"), 2) == "--port needs a value (see warrenctl --help)"
    rc, out, err = ctl("declare")
    assert rc == 2 and err.startswith("warrenctl: 'declare' needs one of:\n")


def test_unreachable_broker(ctl):
    port = free_port()
    assert fails(ctl("--host", "127.0.0.1", "--port", str(port), "overview", target=False)) == \
        "cannot connect to 127.0.0.1 port %d: Connection refused" % port


def test_wrong_credentials(ctl):
    assert fails(ctl("--password", "wrong", "overview")) == \
        "GET /api/overview: 401 not_authorized: Login failed"


# --- overview, alarms, lists ------------------------------------------------------

def test_overview_and_alarms(ctl):
    out = ok(ctl("overview"))
    fields = dict(line.split(":", 1) for line in out.splitlines())
    assert fields["rabbitmq_version"].strip().startswith("3.")
    assert int(fields["queues"]) >= 0
    o = json.loads(ok(ctl("overview", "--json")))
    assert "object_totals" in o
    assert ok(ctl("alarms")) == "no alarms\n"
    assert json.loads(ok(ctl("--json", "alarms"))) == {"status": "ok"}


def test_list_vhosts_users_exchanges(ctl):
    assert {"name": "/"}.items() <= rows(ok(ctl("list", "vhosts")))[0].items()
    assert "guest" in [r["name"] for r in rows(ok(ctl("list", "users")))]
    names = [r["name"] for r in rows(ok(ctl("list", "exchanges", "--vhost", "/")))]
    assert "amq.topic" in names and "" in names
    assert "amq.topic" in [x["name"] for x in json.loads(ok(ctl("list", "exchanges", "--json")))]
    assert fails(ctl("list", "queues", "--vhost", "no-such-vhost")) == \
        "GET /api/queues/no-such-vhost: 404 Object Not Found: Not Found"


# --- declare, list, delete --------------------------------------------------------

def test_queue_lifecycle(ctl, mgmt_broker, name):
    q = name("q")
    assert ok(ctl("declare", "queue", q, "--durable", "--argument", "x-max-length=10",
                  "--argument", "x-dead-letter-exchange=dlx")) == "queue '%s' declared in vhost '/'\n" % q
    got = mgmt_broker.mgmt.get("/api/queues/%2F/" + q).json
    assert (got["durable"], got["arguments"]) == (True, {"x-max-length": 10, "x-dead-letter-exchange": "dlx"})
    # Redeclaring differently is refused with RabbitMQ's reason.
    assert fails(ctl("declare", "queue", q)) == (
        "PUT /api/queues/%%2F/%s: 400 bad_request: inequivalent arg 'durable' for queue '%s' in vhost '/': "
        "received 'false' but current is 'true'" % (q, q))
    c = mgmt_broker.connect()
    ch = c.channel()
    for i in range(3):
        ch.basic_publish("", q, b"m")
    c.close()
    wait_for(lambda: [r for r in rows(ok(ctl("list", "queues"))) if r["name"] == q][0]["messages"] == "3",
             what="3 messages listed")
    [row] = [r for r in json.loads(ok(ctl("list", "queues", "--json", "--vhost", "/"))) if r["name"] == q]
    assert row["messages_ready"] == 3
    assert fails(ctl("delete", "queue", q, "--if-empty")) == \
        "DELETE /api/queues/%%2F/%s?if-empty=true: 400 bad_request: queue '%s' in vhost '/' not empty" % (q, q)
    assert ok(ctl("purge", "queue", q)) == "queue '%s' purged in vhost '/'\n" % q
    assert ok(ctl("delete", "queue", q, "--if-empty", "--if-unused")) == \
        "queue '%s' deleted from vhost '/'\n" % q
    assert fails(ctl("delete", "queue", q)) == "DELETE /api/queues/%%2F/%s: 404 Object Not Found: Not Found" % q
    assert fails(ctl("purge", "queue", q)) == \
        "DELETE /api/queues/%%2F/%s/contents: 404 Object Not Found: Not Found" % q


def test_exchange_and_binding_lifecycle(ctl, name):
    x, x2, q = name("x"), name("x"), name("q")
    assert ok(ctl("declare", "exchange", x, "--type", "topic", "--durable")) == \
        "exchange '%s' declared in vhost '/'\n" % x
    ok(ctl("declare", "exchange", x2, "--type", "headers"))
    ok(ctl("declare", "queue", q))
    assert ok(ctl("declare", "binding", x, q, "--routing-key", "a.#")) == \
        "binding from '%s' to queue '%s' declared in vhost '/'\n" % (x, q)
    assert ok(ctl("declare", "binding", x, x2, "--destination-type", "exchange", "--routing-key", "k",
                  "--argument", "n=1")) == "binding from '%s' to exchange '%s' declared in vhost '/'\n" % (x, x2)
    listed = [r for r in rows(ok(ctl("list", "bindings"))) if r["source"] == x]
    assert sorted((r["destination"], r["type"], r["routing_key"], r["arguments"]) for r in listed) == sorted([
        (x2, "exchange", "k", '{"n":1}'), (q, "queue", "a.#", "{}")])
    assert [(r["name"], r["type"]) for r in rows(ok(ctl("list", "exchanges"))) if r["name"] == x] == [(x, "topic")]
    # Only the binding with exactly these arguments goes.
    assert fails(ctl("delete", "binding", x, x2, "--destination-type", "exchange", "--routing-key", "k")) == \
        "no binding from '%s' to exchange '%s' with routing key 'k' and those arguments in vhost '/'" % (x, x2)
    assert ok(ctl("delete", "binding", x, x2, "--destination-type", "exchange", "--routing-key", "k",
                  "--argument", "n=1")) == "binding from '%s' to exchange '%s' deleted from vhost '/'\n" % (x, x2)
    assert ok(ctl("delete", "binding", x, q, "--routing-key", "a.#")) == \
        "binding from '%s' to queue '%s' deleted from vhost '/'\n" % (x, q)
    assert [r for r in rows(ok(ctl("list", "bindings"))) if r["source"] == x] == []
    assert fails(ctl("declare", "binding", x, "no-such-queue")) == (
        "POST /api/bindings/%%2F/e/%s/q/no-such-queue: 404 not_found: no queue 'no-such-queue' in vhost '/'" % x)
    assert fails(ctl("declare", "binding", x, q, "--destination-type", "topic"), 2) == \
        "--destination-type must be queue or exchange, not 'topic' (see warrenctl declare binding --help)"
    assert fails(ctl("declare", "exchange", x, "--type", "direct")).endswith(
        "inequivalent arg 'type' for exchange '%s' in vhost '/': received 'direct' but current is 'topic'" % x)
    assert fails(ctl("declare", "exchange", name("x"), "--type", "x-nope")).endswith(
        "400 bad_request: unknown exchange type 'x-nope'")
    ok(ctl("declare", "binding", x, q))
    assert fails(ctl("delete", "exchange", x, "--if-unused")).endswith(
        "400 bad_request: exchange '%s' in vhost '/' in use" % x)
    assert ok(ctl("delete", "exchange", x)) == "exchange '%s' deleted from vhost '/'\n" % x
    assert fails(ctl("delete", "exchange", x)).endswith("404 Object Not Found: Not Found")
    ok(ctl("delete", "exchange", x2))
    ok(ctl("delete", "queue", q))


# --- publish and get -------------------------------------------------------------

def test_publish_and_get(ctl, name):
    q = name("q")
    ok(ctl("declare", "queue", q))
    assert ok(ctl("publish", "", q, "hello", "--property", "content_type=text/plain",
                  "--property", "delivery_mode=2", "--header", "h=v")) == "message published and routed\n"
    assert ok(ctl("publish", "", q, stdin=b"\x00\xffbinary")) == "message published and routed\n"
    assert ok(ctl("publish", "", "no-such-queue-" + q, "x")) == "message published but not routed\n"
    assert json.loads(ok(ctl("publish", "", q, "third", "--json"))) == {"routed": True}
    [m] = rows(ok(ctl("get", q)))
    assert (m["routing_key"], m["exchange"], m["redelivered"], m["left"], m["payload"], m["encoding"]) == (
        q, "", "false", "2", "hello", "string")
    got = json.loads(ok(ctl("get", q, "--count", "3", "--ackmode", "ack_requeue_false", "--json")))
    assert [g["payload"] for g in got] == ["hello", "AP9iaW5hcnk=", "third"]
    assert got[0]["properties"] == {"content_type": "text/plain", "delivery_mode": 2, "headers": {"h": "v"}}
    assert (got[0]["redelivered"], got[1]["payload_encoding"]) == (True, "base64")
    assert ok(ctl("get", q)) .endswith("(none)\n")
    assert fails(ctl("get", q, "--count", "0"), 2) == \
        "--count must be a positive number, not '0' (see warrenctl get --help)"
    assert fails(ctl("publish", "no-such-exchange-" + q, "k", "x")).endswith(
        "400 bad_request: 404 NOT_FOUND - no exchange 'no-such-exchange-%s' in vhost '/'" % q)
    assert fails(ctl("get", "no-such-queue-" + q)).endswith(
        "404 not_found: NOT_FOUND - no queue 'no-such-queue-%s' in vhost '/'" % q)
    ok(ctl("delete", "queue", q))


# --- connections -----------------------------------------------------------------

def test_list_and_close_connection(ctl, mgmt_broker):
    c = mgmt_broker.connect()
    c.channel().basic_qos(prefetch_count=3)
    local = c._impl._transport._sock.getsockname()
    cname = "%s:%d -> %s:%d" % (local[0], local[1], mgmt_broker.host, mgmt_broker.port)

    def listed():
        return [r for r in rows(ok(ctl("list", "connections"))) if r["name"] == cname]
    [row] = wait_for(listed, what="the connection listed")
    assert (row["user"], row["vhost"]) == ("guest", "/")
    wait_for(lambda: [r for r in rows(ok(ctl("list", "channels")))
                      if r["name"] == cname + " (1)" and r["prefetch"] == "3"],
             what="its channel listed with its prefetch")
    assert ok(ctl("close", "connection", cname, "--reason", "bye now")) == "connection '%s' closed\n" % cname
    with pytest.raises(pex.ConnectionClosedByBroker) as e:
        wait_for(lambda: c.process_data_events(0.05) and False, what="the close")
    assert (e.value.reply_code, e.value.reply_text) == (320, "CONNECTION_FORCED - bye now")
    assert fails(ctl("close", "connection", cname)).endswith("404 Object Not Found: Not Found")
    assert fails(ctl("close", "connection", cname, "--reason", "two\nlines"), 2).startswith(
        "--reason must be one line")


# --- definitions -----------------------------------------------------------------

def test_export_import(ctl, name, tmp_path):
    q, x = name("q"), name("x")
    ok(ctl("declare", "queue", q, "--durable", "--argument", "x-message-ttl=5000"))
    ok(ctl("declare", "exchange", x, "--type", "fanout", "--durable"))
    ok(ctl("declare", "binding", x, q))
    path = str(tmp_path / "defs.json")
    assert ok(ctl("export", path)) == "definitions exported to %s\n" % path
    with open(path) as f:
        defs = json.load(f)
    assert {"name": q, "vhost": "/", "durable": True, "auto_delete": False,
            "arguments": {"x-message-ttl": 5000}} in defs["queues"]
    assert json.loads(ok(ctl("export", "-")))["queues"] == defs["queues"]
    ok(ctl("delete", "queue", q))
    ok(ctl("delete", "exchange", x))
    assert ok(ctl("import", path)) == "definitions imported from %s\n" % path
    assert [r["name"] for r in rows(ok(ctl("list", "queues"))) if r["name"] == q] == [q]
    assert [r for r in rows(ok(ctl("list", "bindings"))) if r["source"] == x][0]["destination"] == q
    one = json.loads(ok(ctl("export", "-", "--vhost", "/")))
    assert "vhost" not in one["queues"][0]
    assert ok(ctl("import", "-", "--vhost", "/", stdin=json.dumps(one).encode())) == \
        "definitions imported from -\n"
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert fails(ctl("import", str(bad))).startswith("%s: line 1: " % bad)
    assert fails(ctl("export", str(tmp_path / "no-such-dir" / "f.json"))).startswith(
        "cannot write %s: No such file or directory" % (tmp_path / "no-such-dir" / "f.json"))
    ok(ctl("delete", "queue", q))
    ok(ctl("delete", "exchange", x))


# --- users, permissions --------------------------------------------------------

def test_users_and_permissions(ctl, mgmt_broker, name):
    u = name("user")
    assert ok(ctl("declare", "user", u, "s3cret", "--tags", "monitoring,management")) == "user '%s' declared\n" % u
    [row] = [r for r in rows(ok(ctl("list", "users"))) if r["name"] == u]
    assert row["tags"] == '["monitoring","management"]'
    assert ok(ctl("declare", "permission", u, "^mine\\.", ".*", ".*")) == \
        "permission of '%s' declared in vhost '/'\n" % u
    want = {"user": u, "vhost": "/", "configure": "^mine\\.", "write": ".*", "read": ".*"}
    assert [r for r in rows(ok(ctl("list", "permissions"))) if r["user"] == u] == [want]
    assert [r for r in rows(ok(ctl("-p", "/", "list", "permissions"))) if r["user"] == u] == [want]
    assert want in json.loads(ok(ctl("list", "permissions", "--vhost", "/", "--json")))
    # The account works over AMQP, within its permissions.
    c = mgmt_broker.connect(user=u, password="s3cret")
    ch = c.channel()
    ch.queue_declare("mine." + u, exclusive=True)
    with pytest.raises(pex.ChannelClosedByBroker) as e:
        ch.queue_declare("other." + u, exclusive=True)
    assert e.value.reply_code == 403
    assert ok(ctl("delete", "permission", u)) == "permission of '%s' deleted from vhost '/'\n" % u
    assert fails(ctl("delete", "permission", u)) == \
        "DELETE /api/permissions/%%2F/%s: 404 Object Not Found: Not Found" % u
    assert fails(ctl("declare", "permission", "nobody-" + u, ".*", ".*", ".*")) == \
        "PUT /api/permissions/%%2F/nobody-%s: 400 bad_request: vhost_or_user_not_found" % u
    assert fails(ctl("declare", "permission", u, ".*", ".*", ".*", "--vhost", "no-such-vhost")) == \
        "PUT /api/permissions/no-such-vhost/%s: 400 bad_request: vhost_or_user_not_found" % u
    assert fails(ctl("declare", "permission", u, "(", ".*", ".*")).startswith(
        "PUT /api/permissions/%%2F/%s: 400 bad_request" % u)
    assert fails(ctl("list", "permissions", "--vhost", "no-such-vhost")) == \
        "GET /api/vhosts/no-such-vhost/permissions: 404 Object Not Found: Not Found"
    # Replacing the password and tags; deleting closes the user's connections.
    assert ok(ctl("declare", "user", u, "other")) == "user '%s' declared\n" % u
    assert [r["tags"] for r in rows(ok(ctl("list", "users"))) if r["name"] == u] == ["[]"]
    assert ok(ctl("delete", "user", u)) == "user '%s' deleted\n" % u
    with pytest.raises(pex.ConnectionClosedByBroker) as e:
        wait_for(lambda: c.process_data_events(0.05) and False, what="the close")
    assert (e.value.reply_code, e.value.reply_text) == (320, "CONNECTION_FORCED - user '%s' is deleted" % u)
    assert fails(ctl("delete", "user", u)) == "DELETE /api/users/%s: 404 Object Not Found: Not Found" % u
    assert fails(ctl("declare", "user", u), 2) == "too few arguments (see warrenctl declare user --help)"
    assert fails(ctl("declare", "permission", u, ".*"), 2) == \
        "too few arguments (see warrenctl declare permission --help)"
    assert fails(ctl("declare", "user", u, "pw", "--priority", "1"), 2) == \
        "unknown option '--priority' (see warrenctl declare user --help)"


# --- policies ------------------------------------------------------------------

def test_policies(ctl, name):
    p, q = name("pol"), name("q")
    assert ok(ctl("declare", "policy", p, "^%s$" % q, '{"max-length": 5}', "--priority", "2",
                  "--apply-to", "queues")) == "policy '%s' declared in vhost '/'\n" % p
    want = {"vhost": "/", "name": p, "pattern": "^%s$" % q, "apply_to": "queues", "priority": "2",
            "definition": '{"max-length":5}'}
    assert [r for r in rows(ok(ctl("list", "policies"))) if r["name"] == p] == [want]
    assert [r for r in rows(ok(ctl("list", "policies", "-p", "/"))) if r["name"] == p] == [want]
    [j] = [r for r in json.loads(ok(ctl("list", "policies", "--json"))) if r["name"] == p]
    assert (j["definition"], j["apply-to"], j["priority"]) == ({"max-length": 5}, "queues", 2)
    # Replaced, with the defaults (priority 0, apply-to all).
    ok(ctl("declare", "policy", p, "^%s$" % q, '{"max-length": 6}'))
    [r] = [r for r in rows(ok(ctl("list", "policies"))) if r["name"] == p]
    assert (r["apply_to"], r["priority"], r["definition"]) == ("all", "0", '{"max-length":6}')
    assert fails(ctl("declare", "policy", p, "x", '{"max-length": "a"}')) == (
        'PUT /api/policies/%%2F/%s: 400 bad_request: Validation failed: <<"a">> is not a valid maximum length' % p)
    assert fails(ctl("declare", "policy", p, "x", '{"max-length": 1}', "--apply-to", "bogus")) == (
        "PUT /api/policies/%%2F/%s: 400 bad_request: Validation failed: apply-to 'bogus' unrecognised; "
        "should be 'queues', 'exchanges' or 'all'" % p)
    assert fails(ctl("declare", "policy", p, "x", '{"max-length": 1}', "--vhost", "no-such-vhost")) == \
        "PUT /api/policies/no-such-vhost/%s: 404 not_found: vhost_not_found" % p
    assert fails(ctl("declare", "policy", p, "x", "max-length=1"), 2) == \
        "DEFINITION must be a JSON object, not 'max-length=1' (see warrenctl declare policy --help)"
    assert fails(ctl("declare", "policy", p, "x", '{"max-length": 1}', "--priority", "high"), 2) == \
        "--priority must be an integer, not 'high' (see warrenctl declare policy --help)"
    assert ok(ctl("delete", "policy", p)) == "policy '%s' deleted from vhost '/'\n" % p
    assert [r for r in rows(ok(ctl("list", "policies"))) if r["name"] == p] == []
    assert fails(ctl("delete", "policy", p)) == "DELETE /api/policies/%%2F/%s: 404 Object Not Found: Not Found" % p
    assert fails(ctl("list", "policies", "--vhost", "no-such-vhost")) == \
        "GET /api/policies/no-such-vhost: 404 Object Not Found: Not Found"


# --- consumers -----------------------------------------------------------------

def test_list_consumers(ctl, mgmt_broker, name):
    q = name("q")
    c = mgmt_broker.connect()
    ch = c.channel()
    ch.basic_qos(prefetch_count=4)
    ch.queue_declare(q, exclusive=True)
    ch.basic_consume(q, lambda *a: None, consumer_tag="ctl-tag")
    local = c._impl._transport._sock.getsockname()
    cname = "%s:%d -> %s:%d" % (local[0], local[1], mgmt_broker.host, mgmt_broker.port)

    def listed(*extra):
        # RabbitMQ lists a consumer a moment before its channel.
        return [r for r in rows(ok(ctl("list", "consumers", *extra))) if r["queue"] == q and r["channel"]]
    [row] = wait_for(listed, what="the consumer listed")
    assert row == {"vhost": "/", "queue": q, "tag": "ctl-tag", "channel": cname + " (1)", "ack": "true",
                   "prefetch": "4", "exclusive": "false", "status": "up"}
    assert listed("--vhost", "/") == [row]
    [j] = [r for r in json.loads(ok(ctl("list", "consumers", "--json"))) if r["queue"]["name"] == q]
    assert j["channel_details"]["connection_name"] == cname
    assert fails(ctl("list", "consumers", "--vhost", "no-such-vhost")) == \
        "GET /api/consumers/no-such-vhost: 404 Object Not Found: Not Found"
    c.close()
    wait_for(lambda: listed() == [], what="the consumer to go")


def test_alarms_raised(ctl, dedicated_broker):
    """A broker whose disk and memory alarms cannot clear: alarms exits 1
    naming them on one line."""
    port = free_port()
    dedicated_broker({
        "users": [{"name": "guest", "password": "guest", "vhosts": ["/"], "tags": ["administrator"]}],
        "management": {"address": "127.0.0.1", "port": port},
        "disk_free_limit": 10 ** 18,
        "memory_high_watermark": {"absolute": 1},
    })
    target = ("--host", "127.0.0.1", "--port", str(port))
    node = wait_for(lambda: (lambda r: r[0] == 0 and json.loads(r[1])["node"])(
        ctl(*target, "overview", "--json", target=False)), what="the API")
    want = "alarms in effect: disk space on %s, memory on %s" % (node, node)
    assert wait_for(lambda: (lambda r: r[0] == 1 and r[2] == "warrenctl: %s\n" % want and r)(
        ctl(*target, "alarms", target=False)), what="both alarms")
    assert fails(ctl(*target, "--json", "alarms", target=False)) == want


# --- version -------------------------------------------------------------------

def test_version(ctl):
    import re
    out = ok(ctl("--version", target=False))
    assert re.fullmatch(r"warrenctl \d+\.\d+\.\d+ \(libcurl \d+\.\d+\.\d+, OpenSSL/\S+\)\n", out), out


# --- where the connection settings come from ------------------------------------

def test_settings_from_the_environment(ctl):
    api = ctl.api
    env = {"WARREN_HOST": api.host, "WARREN_PORT": str(api.port), "WARREN_USER": "guest",
           "WARREN_PASSWORD": "guest"}
    assert "object_totals" in json.loads(ok(ctl("overview", "--json", target=False, env=env)))
    # A flag beats its variable.
    assert fails(ctl("--password", "wrong", "overview", target=False, env=env)) == \
        "GET /api/overview: 401 not_authorized: Login failed"
    assert fails(ctl("overview", target=False, env=dict(env, WARREN_PASSWORD="wrong"))) == \
        "GET /api/overview: 401 not_authorized: Login failed"
    ok(ctl("--port", str(api.port), "overview", target=False, env=dict(env, WARREN_PORT="1")))
    assert fails(ctl("overview", target=False, env=dict(env, WARREN_PORT="http")), 2) == \
        "port 'http' (from WARREN_PORT) must be a number from 1 to 65535"
    assert fails(ctl("overview", target=False, env=dict(env, WARREN_TIMEOUT="0")), 2) == \
        "timeout '0' (from WARREN_TIMEOUT) must be a number of seconds from 1 to 86400"
    assert fails(ctl("overview", target=False, env=dict(env, WARREN_HTTPS="maybe")), 2) == \
        "https 'maybe' (from WARREN_HTTPS) must be true or false"
    # WARREN_VHOST is --vhost's.
    assert fails(ctl("list", "queues", target=False, env=dict(env, WARREN_VHOST="no-such-vhost"))) == \
        "GET /api/queues/no-such-vhost: 404 Object Not Found: Not Found"


def write_config(path, nodes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nodes))
    return str(path)


def test_settings_from_a_config_file(ctl, tmp_path):
    api = ctl.api
    good = {"host": api.host, "port": api.port, "user": "guest", "password": "guest"}
    # The per-user default file, its node "default".
    write_config(ctl.home / ".config" / "warren" / "warrenctl.json",
                 {"default": good, "prod": dict(good, password="wrong")})
    assert ok(ctl("alarms", target=False)) == "no alarms\n"
    assert fails(ctl("--node", "prod", "alarms", target=False)) == \
        "GET /api/health/checks/alarms: 401 not_authorized: Login failed"
    assert fails(ctl("alarms", target=False, env={"WARREN_NODE": "prod"})) == \
        "GET /api/health/checks/alarms: 401 not_authorized: Login failed"
    # The environment beats the file, flags beat both.
    assert fails(ctl("alarms", target=False, env={"WARREN_PASSWORD": "wrong"})) == \
        "GET /api/health/checks/alarms: 401 not_authorized: Login failed"
    ok(ctl("--node", "prod", "--password", "guest", "alarms", target=False))
    assert fails(ctl("--node", "staging", "alarms", target=False), 2) == \
        "no node 'staging' in %s" % (ctl.home / ".config" / "warren" / "warrenctl.json")
    # XDG_CONFIG_HOME moves the default file.
    xdg = tmp_path / "xdg"
    write_config(xdg / "warren" / "warrenctl.json", {"default": dict(good, password="wrong")})
    assert fails(ctl("alarms", target=False, env={"XDG_CONFIG_HOME": str(xdg)})).endswith("401 not_authorized: Login failed")
    # --config and WARREN_CONFIG name another file, which must exist.
    other = write_config(tmp_path / "other.json", {"default": good})
    ok(ctl("--config", other, "alarms", target=False, env={"XDG_CONFIG_HOME": str(xdg)}))
    ok(ctl("alarms", target=False, env={"XDG_CONFIG_HOME": str(xdg), "WARREN_CONFIG": other}))
    missing = str(tmp_path / "missing.json")
    assert fails(ctl("--config", missing, "alarms", target=False), 2) == \
        "cannot read %s: No such file or directory" % missing
    assert fails(ctl("--node", "x", "alarms", target=False, env={"XDG_CONFIG_HOME": str(tmp_path / "none")}),
                 2) == "--node x: no config file (%s)" % (tmp_path / "none" / "warren" / "warrenctl.json")
    # Mistakes in the file are named.
    bad = write_config(tmp_path / "bad.json", {"default": dict(good, hostname="x")})
    assert fails(ctl("--config", bad, "alarms", target=False), 2) == \
        "%s: node 'default': unknown key 'hostname'" % bad
    bad = write_config(tmp_path / "bad.json", {"default": dict(good, https="yes")})
    assert fails(ctl("--config", bad, "alarms", target=False), 2) == \
        "%s: node 'default': 'https' must be true or false" % bad
    bad = write_config(tmp_path / "bad.json", {"default": dict(good, port=0)})
    assert fails(ctl("--config", bad, "alarms", target=False), 2) == \
        "port '0' (from \"port\" in %s) must be a number from 1 to 65535" % bad
    (tmp_path / "bad.json").write_text('{"default": {')
    assert fails(ctl("--config", bad, "alarms", target=False), 2).startswith("%s: line 1: " % bad)


def test_password_file(ctl, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("guest\n")
    assert ok(ctl("--user", "guest", "--password-file", str(pw), "alarms")) == "no alarms\n"
    ok(ctl("alarms", env={"WARREN_USER": "guest", "WARREN_PASSWORD_FILE": str(pw)}))
    # A file from a higher layer beats a password from a lower one.
    ok(ctl("--password-file", str(pw), "alarms", env={"WARREN_PASSWORD": "wrong"}))
    pw.write_text("wrong\r\n")
    assert fails(ctl("--password-file", str(pw), "alarms")).endswith("401 not_authorized: Login failed")
    assert fails(ctl("--password", "guest", "--password-file", str(pw), "alarms"), 2) == \
        "give a password or a password file, not both"
    assert fails(ctl("--password-file", str(tmp_path / "nope"), "alarms"), 2) == \
        "cannot read the password file %s: No such file or directory" % (tmp_path / "nope")


def test_password_prompt(ctl):
    """A user without a password is asked on a terminal, with echo off; off a
    terminal it is an error."""
    import pty
    import select
    assert fails(ctl("--user", "guest", "alarms", stdin=b""), 2) == (
        "no password for user 'guest': give --password-file FILE, WARREN_PASSWORD or a config file's "
        "\"password\", or run on a terminal to be asked")
    master, slave = pty.openpty()
    api = ctl.api
    try:
        p = subprocess.Popen([ctl.path, "--host", api.host, "--port", str(api.port), "--user", "guest", "alarms"],
                             stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=clean_env(ctl.home))
        os.close(slave)
        slave = None
        # The prompt is on stderr; wait until the terminal's echo is off.
        import termios
        wait_for(lambda: not termios.tcgetattr(master)[3] & termios.ECHO, what="echo off")
        os.write(master, b"guest\n")
        out, err = p.communicate(timeout=30)
        echoed = b""
        while select.select([master], [], [], 0)[0]:
            try:
                echoed += os.read(master, 1024)
            except OSError:
                break
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    assert (p.returncode, out, err) == (0, b"no alarms\n", b"Password for guest at %s: \n" % api.host.encode())
    assert b"guest" not in echoed


# --- output: formats, columns, sorting, filters ---------------------------------

def test_formats_columns_sort_filter(ctl, mgmt_broker, name):
    import csv
    import io
    prefix = name("view")
    qs = [prefix + "-a", prefix + "-b", prefix + "-c"]
    for q, n in zip(qs, [2, 0, 1]):
        ok(ctl("declare", "queue", q, "--argument", "x-max-length=10", "--argument", "x-overflow=reject-publish"))
        for _ in range(n):
            ok(ctl("publish", "", q, "m"))
    view = ("list", "queues", "--filter", "^" + prefix + "-", "--columns", "name,messages")
    wait_for(lambda: [r["messages"] for r in rows(ok(ctl(*view)))] == ["2", "0", "1"], what="the counts")
    assert [r["name"] for r in rows(ok(ctl(*view, "--sort", "messages")))] == [qs[1], qs[2], qs[0]]
    assert [r["name"] for r in rows(ok(ctl(*view, "--sort", "messages", "--sort-reverse")))] == \
        [qs[0], qs[2], qs[1]]
    assert [r["name"] for r in rows(ok(ctl(*view, "--sort", "name", "--sort-reverse")))] == qs[::-1]
    # The default columns' titles and the API's dotted paths both name columns.
    assert ok(ctl(*view[:4], "--columns", "name,ready,arguments.x-max-length", "--sort", "messages_ready",
                  "--format", "csv")) == "name,ready,arguments.x-max-length\n%s,0,10\n%s,1,10\n%s,2,10\n" % (
        qs[1], qs[2], qs[0])
    # A plain word is a substring match.
    assert [r["name"] for r in rows(ok(ctl("list", "queues", "--filter", prefix[2:] + "-b")))] == [qs[1]]
    assert rows(ok(ctl("list", "queues", "--filter", "^no-such-" + prefix))) == []
    # CSV quotes what needs it, TSV escapes tabs; both have a header line.
    got = ok(ctl(*view[:4], "--columns", "name,arguments", "--format", "csv"))
    assert list(csv.reader(io.StringIO(got))) == [["name", "arguments"]] + [
        [q, '{"x-max-length":10,"x-overflow":"reject-publish"}'] for q in qs]
    assert '"{""x-max-length"":10,' in got
    assert ok(ctl(*view, "--format", "tsv")) == "name\tmessages\n%s\t2\n%s\t0\n%s\t1\n" % tuple(qs)
    # JSON keeps the API's objects, or only the columns asked for.
    assert [r["name"] for r in json.loads(ok(ctl(*view[:4], "--json")))] == qs
    assert json.loads(ok(ctl(*view, "--format", "json", "--sort", "messages"))) == [
        {"name": qs[1], "messages": 0}, {"name": qs[2], "messages": 1}, {"name": qs[0], "messages": 2}]
    # get shows its messages with the same options.
    assert ok(ctl("get", qs[0], "--count", "2", "--columns", "payload,redelivered", "--format", "tsv")) == \
        "payload\tredelivered\nm\tfalse\nm\tfalse\n"
    # overview as one CSV row.
    lines = ok(ctl("overview", "--format", "csv")).splitlines()
    assert len(lines) == 2 and lines[0].startswith("product,version,rabbitmq_version,node,")
    # Mistakes.
    assert fails(ctl(*view[:4], "--columns", "name,nope"), 2) == \
        "unknown column 'nope' (the API's field names and dotted paths work too)"
    assert fails(ctl(*view, "--sort", "nope"), 2) == \
        "unknown column 'nope' (the API's field names and dotted paths work too)"
    assert fails(ctl("list", "queues", "--filter", "("), 2).startswith(
        "--filter '(' is not a regular expression: ")
    assert fails(ctl("list", "queues", "--format", "xml"), 2) == \
        "--format must be table, csv, tsv or json, not 'xml'"
    assert fails(ctl("list", "queues", "--sort-reverse"), 2) == \
        "--sort-reverse needs --sort (see warrenctl list queues --help)"
    assert fails(ctl("declare", "queue", "x", "--columns", "name"), 2) == \
        "--columns does not apply to this command (see warrenctl declare queue --help)"
    assert fails(ctl("get", qs[0], "--filter", "x"), 2) == \
        "--filter does not apply to this command (see warrenctl get --help)"
    assert fails(ctl("purge", "queue", qs[0], "--format", "csv"), 2) == \
        "--format does not apply to this command (see warrenctl purge queue --help)"
    for q in qs:
        ok(ctl("delete", "queue", q))


# --- vhosts ----------------------------------------------------------------------

def test_vhost_commands(ctl, name):
    v = name("vh")
    rc, out, err = ctl("declare", "vhost", v, "--description", "team A", "--tags", "a,b")
    if rc == 1 and ": 405 " in err:
        pytest.skip("the broker has no PUT /api/vhosts/NAME yet: %s" % err.strip())
    assert (rc, out, err) == (0, "vhost '%s' declared\n" % v, "")
    [row] = json.loads(ok(ctl("list", "vhosts", "--filter", "^%s$" % v, "--json")))
    assert (row["name"], row["description"], row["tags"]) == (v, "team A", ["a", "b"])
    assert rows(ok(ctl("list", "vhosts", "--filter", "^%s$" % v, "--columns", "name,description"))) == [
        {"name": v, "description": "team A"}]
    ok(ctl("declare", "queue", "q", "--vhost", v))
    assert [r["name"] for r in rows(ok(ctl("list", "queues", "-p", v)))] == ["q"]
    assert ok(ctl("delete", "vhost", v)) == "vhost '%s' deleted\n" % v
    assert rows(ok(ctl("list", "vhosts", "--filter", "^%s$" % v))) == []
    assert fails(ctl("delete", "vhost", v)) == "DELETE /api/vhosts/%s: 404 Object Not Found: Not Found" % v


# --- a user's tags or password alone -------------------------------------------------

def test_set_tags_and_password(ctl, mgmt_broker, name):
    u = name("user")
    ok(ctl("declare", "user", u, "first", "--tags", "management"))
    ok(ctl("declare", "permission", u, ".*", ".*", ".*"))
    assert ok(ctl("set", "tags", u, "monitoring", "policymaker")) == \
        "tags of user '%s' set to monitoring,policymaker\n" % u
    assert json.loads(ok(ctl("list", "users", "--filter", "^%s$" % u, "--json")))[0]["tags"] == \
        ["monitoring", "policymaker"]
    mgmt_broker.connect(user=u, password="first").close()  # the password stayed
    assert ok(ctl("set", "tags", u)) == "tags of user '%s' cleared\n" % u
    mgmt_broker.connect(user=u, password="first").close()
    ok(ctl("set", "tags", u, "management"))
    # The new password from standard input (its first line), then as an argument.
    assert ok(ctl("set", "password", u, stdin=b"second\nignored\n")) == "password of user '%s' changed\n" % u
    mgmt_broker.connect(user=u, password="second").close()
    with pytest.raises(pex.ProbableAuthenticationError):
        mgmt_broker.connect(user=u, password="first")
    assert json.loads(ok(ctl("list", "users", "--filter", "^%s$" % u, "--json")))[0]["tags"] == ["management"]
    ok(ctl("set", "password", u, "third"))
    mgmt_broker.connect(user=u, password="third").close()
    assert fails(ctl("set", "password", u, stdin=b"")) == "no password read from standard input"
    assert fails(ctl("set", "tags", "nobody-" + u, "x")) == \
        "GET /api/users/nobody-%s: 404 Object Not Found: Not Found" % u
    assert fails(ctl("set", "password", "nobody-" + u, "x")) == \
        "GET /api/users/nobody-%s: 404 Object Not Found: Not Found" % u
    ok(ctl("delete", "user", u))


# --- closing connections by user, or all -------------------------------------------

def test_close_connections_of_a_user_and_all(ctl, mgmt_broker, name):
    u = name("user")
    ok(ctl("declare", "user", u, "pw"))
    ok(ctl("declare", "permission", u, ".*", ".*", ".*"))
    mine = [mgmt_broker.connect(user=u, password="pw") for _ in range(2)]
    guest = mgmt_broker.connect()

    def users():
        return sorted(r["user"] for r in rows(ok(ctl("list", "connections"))))
    wait_for(lambda: users() == sorted([u, u, "guest"]), what="3 connections listed")
    assert ok(ctl("close", "connection", "--of-user", u, "--reason", "maintenance")) == \
        "2 connections closed of user '%s'\n" % u
    for c in mine:
        with pytest.raises(pex.ConnectionClosedByBroker) as e:
            wait_for(lambda: c.process_data_events(0.05) and False, what="the close")
        assert (e.value.reply_code, e.value.reply_text) == (320, "CONNECTION_FORCED - maintenance")
    guest.process_data_events(0)
    assert guest.is_open
    wait_for(lambda: users() == ["guest"], what="only guest's left")
    assert ok(ctl("close", "connection", "--of-user", u)) == "0 connections closed of user '%s'\n" % u
    assert ok(ctl("close", "connection", "--all")) == "1 connection closed\n"
    with pytest.raises(pex.ConnectionClosedByBroker):
        wait_for(lambda: guest.process_data_events(0.05) and False, what="the close")
    assert fails(ctl("close", "connection"), 2) == \
        "give one of NAME, --of-user USER and --all (see warrenctl close connection --help)"
    assert fails(ctl("close", "connection", "x", "--all"), 2) == \
        "give one of NAME, --of-user USER and --all (see warrenctl close connection --help)"
    ok(ctl("delete", "user", u))


# --- unreachable, silent, and HTTPS ------------------------------------------------

def test_unresolvable_and_silent_hosts(ctl):
    import socket
    assert fails(ctl("--host", "no-such-host.invalid", "overview", target=False)) == \
        "cannot resolve no-such-host.invalid: Could not resolve host: no-such-host.invalid"
    with socket.socket() as s:  # listens, never answers
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        port = s.getsockname()[1]
        assert fails(ctl("--host", "127.0.0.1", "--port", str(port), "--timeout", "1", "overview",
                         target=False)) == "no reply from 127.0.0.1 port %d within 1 s" % port


class StandInApi:
    """A stand-in management API (http.server, wrapped with ssl when given a
    certificate): answers GET /api/overview and records the Authorization
    headers."""

    def __init__(self, certfile=None, keyfile=None):
        import http.server
        import ssl
        import threading
        seen = self.auth = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                seen.append(self.headers.get("Authorization"))
                body = json.dumps({"product_name": "stand-in", "object_totals": {}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def tls_certs():
    import shutil
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl CLI")
    from test_tls import Certs
    c = Certs()
    # A server certificate for another name than the one dialled.
    c._leaf("elsewhere", "ca", "/CN=elsewhere.example", "subjectAltName=DNS:elsewhere.example\n")
    yield c
    shutil.rmtree(c.dir, ignore_errors=True)


@pytest.fixture
def tls_api(tls_certs):
    made = []

    def make(cert="server"):
        made.append(StandInApi(tls_certs.path(cert + ".pem"), tls_certs.path(cert + ".key")) if cert
                    else StandInApi())
        return made[-1]
    yield make
    for a in made:
        a.close()


def test_https_checks_the_certificate(ctl, tls_certs, tls_api):
    import base64
    api = tls_api()
    target = ("--host", "127.0.0.1", "--port", str(api.port), "--https")
    ca = tls_certs.path("ca.pem")
    # The test CA is not a system one: refused unless named.
    assert fails(ctl(*target, "overview", target=False)) == (
        "the certificate of 127.0.0.1 port %d is not trusted: SSL certificate problem: unable to get local "
        "issuer certificate (--cacert FILE names the CA to trust)" % api.port)
    assert api.auth == []  # no credentials sent to an unverified peer
    out = ok(ctl(*target, "--cacert", ca, "--user", "u1", "--password", "p1", "overview", target=False))
    assert out.startswith("product:")
    assert api.auth == ["Basic " + base64.b64encode(b"u1:p1").decode()]
    # From the environment, from the config file, and localhost matches too.
    ok(ctl("overview", target=False, env={"WARREN_HOST": "localhost", "WARREN_PORT": str(api.port),
                                          "WARREN_HTTPS": "1", "WARREN_CACERT": ca}))
    cfg = write_config(ctl.home / "tls.json", {"default": {"host": "127.0.0.1", "port": api.port, "https": True,
                                                           "cacert": ca}})
    ok(ctl("--config", cfg, "overview", target=False))
    # Another CA's certificate, and a certificate for another name.
    assert fails(ctl(*target, "--cacert", tls_certs.path("rogue-ca.pem"), "overview", target=False)).startswith(
        "the certificate of 127.0.0.1 port %d is not trusted: SSL certificate problem: " % api.port)
    other = tls_api("elsewhere")
    assert fails(ctl("--host", "127.0.0.1", "--port", str(other.port), "--https", "--cacert", ca, "overview",
                     target=False)) == (
        "the certificate of 127.0.0.1 port %d is not trusted: SSL: no alternative certificate subject name "
        "matches target host name '127.0.0.1' (--cacert FILE names the CA to trust)" % other.port)
    # --insecure skips the checks (asked for by name only, never from the environment).
    ok(ctl("--host", "127.0.0.1", "--port", str(other.port), "--https", "--insecure", "overview", target=False))
    assert fails(ctl(*target, "--cacert", str(ctl.home / "no-ca.pem"), "overview", target=False)) == \
        "cannot load the CA certificates of --cacert %s" % (ctl.home / "no-ca.pem")
    assert fails(ctl("--cacert", ca, "overview"), 2) == "--cacert applies to HTTPS only (add --https)"
    assert fails(ctl("--insecure", "overview"), 2) == "--insecure applies to HTTPS only (add --https)"


def test_https_and_plain_mixed_up(ctl, tls_api):
    api = tls_api()
    err = fails(ctl("--host", "127.0.0.1", "--port", str(api.port), "overview", target=False))
    assert err.startswith("HTTP to 127.0.0.1 port %d: " % api.port) and \
        err.endswith(" (is it an HTTPS listener? try --https)"), err
    # warrend's plain listener waits for a request line that never comes;
    # RabbitMQ's answers 400, which is no TLS record.
    err = fails(ctl("--https", "--insecure", "--timeout", "1", "overview"))
    if os.environ.get("WARREN_BROKER"):
        assert err.startswith("TLS handshake with %s port %d failed: " % (ctl.api.host, ctl.api.port)), err
    else:
        assert err == "TLS handshake with %s port %d timed out after 1 s (is it an HTTPS listener?)" % (
            ctl.api.host, ctl.api.port)
    plain = tls_api(cert=None)
    assert fails(ctl("--host", "127.0.0.1", "--port", str(plain.port), "--https", "--insecure", "overview",
                     target=False)).startswith("TLS handshake with 127.0.0.1 port %d failed: " % plain.port)


def test_https_against_warrend(ctl, dedicated_broker, tls_certs, tmp_path):
    """warrend's management listener over HTTPS (management.tls), when this
    warrend has it."""
    port = free_port()
    cfg = {"management": {"address": "127.0.0.1", "port": port, "tls": True},
           "tls": {"certfile": tls_certs.path("server.pem"), "keyfile": tls_certs.path("server.key")},
           "users": [{"name": "guest", "password": "guest", "vhosts": ["/"], "tags": ["administrator"]}]}
    check = tmp_path / "check.json"
    check.write_text(json.dumps(dict(cfg, data_dir=str(tmp_path / "data"))))
    checked = subprocess.run([os.environ["WARREND"], "--check-config", str(check)], capture_output=True,
                             text=True, timeout=30)
    if "management.tls: unknown key" in checked.stderr:
        pytest.skip("this warrend's management listener has no HTTPS (management.tls) yet")
    assert checked.returncode == 0, checked
    dedicated_broker(cfg)
    target = ("--host", "127.0.0.1", "--port", str(port))
    ca = tls_certs.path("ca.pem")
    node = wait_for(lambda: (lambda r: r[0] == 0 and json.loads(r[1])["node"])(
        ctl(*target, "--https", "--cacert", ca, "overview", "--json", target=False)), what="the HTTPS API")
    assert node
    ok(ctl(*target, "--https", "--cacert", ca, "list", "vhosts", target=False))
    assert fails(ctl(*target, "--https", "overview", target=False)) == (
        "the certificate of 127.0.0.1 port %d is not trusted: SSL certificate problem: unable to get local "
        "issuer certificate (--cacert FILE names the CA to trust)" % port)
    assert fails(ctl(*target, "--https", "--cacert", ca, "--password", "wrong", "overview", target=False)) == \
        "GET /api/overview: 401 not_authorized: Login failed"
    assert fails(ctl(*target, "overview", target=False)).endswith(" (is it an HTTPS listener? try --https)")
