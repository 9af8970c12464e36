# SPDX-License-Identifier: MIT
# Access control (warren only: one warrend with users and permissions of its
# own for the module): the permission matrix, each operation allowed and
# refused with RabbitMQ 3.10's exact reply (observed with
# `rabbitmqctl set_permissions -p / app '^(c|cr)-' '^w-' '^(r|cr)-'`), the
# class/method ids of the refusals, vhost access, logging of failed logins,
# and loopback-only users seen from a non-loopback address (a network
# namespace of the test's own).
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid

import pika
import pytest

import amqp_raw as raw
import conftest
from helpers import DEADLINE, channel_error, wait_for

CONFIG = {
    "vhosts": ["/", "other"],
    "users": [{"name": "guest", "password": "guest", "vhosts": ["/", "other"]},
              {"name": "app", "password": "app-Pw-7f3e"},
              {"name": "empty", "password": "empty-Pw-1c9a"}],
    "permissions": [
        {"user": "app", "vhost": "/", "configure": "^(c|cr)-", "write": "^w-", "read": "^(r|cr)-"},
        {"user": "empty", "vhost": "/", "configure": "", "write": "", "read": ""},
    ],
}
# Made by guest before the tests; the prefixes say what app may do.
EXCHANGES = ["r-x", "x-x", "w-x", "w-ae", "w-dlx"]
QUEUES = ["r-q", "x-q", "w-q"]


def refused(kind, name, user="app"):
    return "ACCESS_REFUSED - access to %s '%s' in vhost '/' refused for user '%s'" % (kind, name, user)


@pytest.fixture(scope="module")
def pbroker():
    if conftest._external():
        pytest.skip("needs a dedicated warrend with users and permissions; "
                    "WARREN_BROKER points at an external broker")
    b = conftest.start_warrend(CONFIG)
    c = b.connect()
    ch = c.channel()
    for x in EXCHANGES:
        ch.exchange_declare(x, "direct")
    for q in QUEUES:
        ch.queue_declare(q)
    c.close()
    yield b
    conftest.stop_and_check(b)


@pytest.fixture(scope="module")
def app(pbroker):
    c = pbroker.connect(user="app", password="app-Pw-7f3e")
    yield c
    if c.is_open:
        c.close()


@pytest.fixture
def guest(pbroker):
    c = pbroker.connect()
    yield c.channel()
    c.close()


def uniq(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def publish_confirmed(ch, exchange):
    ch.confirm_delivery()
    ch.basic_publish(exchange, "k", b"m")


def created_then_deleted(create, delete, prefix):
    """guest creates it, app deletes it."""
    n = uniq(prefix)
    create(n)
    delete(n)


# (what app does, given a fresh channel and a guest channel) -> allowed.
ALLOWED = {
    "exchange.declare": lambda ch, g: ch.exchange_declare(uniq("c-x"), "fanout"),
    "exchange.declare passive (not checked)": lambda ch, g: ch.exchange_declare("x-x", passive=True),
    "exchange.declare with an allowed alternate-exchange":
        lambda ch, g: ch.exchange_declare(uniq("cr-x"), "fanout", arguments={"alternate-exchange": "w-ae"}),
    "exchange.delete": lambda ch, g: created_then_deleted(g.exchange_declare, ch.exchange_delete, "c-del-x"),
    "queue.declare": lambda ch, g: ch.queue_declare(uniq("c-q"), exclusive=True),
    "queue.declare passive (not checked)": lambda ch, g: ch.queue_declare("x-q", passive=True),
    "queue.declare with an allowed dead-letter exchange":
        lambda ch, g: ch.queue_declare(uniq("cr-q"), exclusive=True,
                                       arguments={"x-dead-letter-exchange": "w-dlx"}),
    "queue.delete": lambda ch, g: created_then_deleted(g.queue_declare, ch.queue_delete, "c-del-q"),
    "queue.purge": lambda ch, g: ch.queue_purge("r-q"),
    "basic.get": lambda ch, g: ch.basic_get("r-q"),
    "basic.consume": lambda ch, g: ch.basic_consume("r-q", lambda *a: None),
    "queue.bind": lambda ch, g: ch.queue_bind("w-q", "r-x", "k"),
    "queue.unbind": lambda ch, g: ch.queue_unbind("w-q", "r-x", "k"),
    "exchange.bind": lambda ch, g: ch.exchange_bind("w-x", "r-x", "k"),
    "exchange.unbind": lambda ch, g: ch.exchange_unbind("w-x", "r-x", "k"),
    "basic.publish": lambda ch, g: publish_confirmed(ch, "w-x"),
}


@pytest.mark.parametrize("case", sorted(ALLOWED))
def test_allowed(pbroker, app, guest, case):
    ch = app.channel()
    ALLOWED[case](ch, guest)
    ch.close()


# (what app does, reply code, reply text or a prefix ending in '*').
DENIED = {
    "exchange.declare": (lambda ch: ch.exchange_declare("x-new-x", "fanout"),
                         403, refused("exchange", "x-new-x")),
    "exchange.declare of a reserved name (configure first)":
        (lambda ch: ch.exchange_declare("amq.foo", "fanout"), 403, refused("exchange", "amq.foo")),
    "exchange.declare, alternate-exchange without write":
        (lambda ch: ch.exchange_declare("cr-ae-x", "fanout", arguments={"alternate-exchange": "x-x"}),
         403, refused("exchange", "x-x")),
    "exchange.declare with an alternate-exchange, declared without read":
        (lambda ch: ch.exchange_declare("c-ae-x", "fanout", arguments={"alternate-exchange": "w-ae"}),
         403, refused("exchange", "c-ae-x")),
    "exchange.delete": (lambda ch: ch.exchange_delete("x-x"), 403, refused("exchange", "x-x")),
    "exchange.delete of a missing exchange": (lambda ch: ch.exchange_delete("x-missing"),
                                              403, refused("exchange", "x-missing")),
    "exchange.delete of a system exchange (checked first)":
        (lambda ch: ch.exchange_delete("amq.direct"), 403,
         "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed"),
    "queue.declare": (lambda ch: ch.queue_declare("x-new-q"), 403, refused("queue", "x-new-q")),
    "queue.declare server-named": (lambda ch: ch.queue_declare(""), 403,
                                   "ACCESS_REFUSED - access to queue 'amq.gen-*"),
    "queue.declare of a reserved name (checked first)":
        (lambda ch: ch.queue_declare("amq.foo"), 403,
         "ACCESS_REFUSED - queue name 'amq.foo' contains reserved prefix 'amq.*'"),
    "queue.declare passive of a missing queue": (lambda ch: ch.queue_declare("x-missing", passive=True),
                                                 404, "NOT_FOUND - no queue 'x-missing' in vhost '/'"),
    "queue.declare, dead-letter exchange without write":
        (lambda ch: ch.queue_declare("cr-dlx-q", arguments={"x-dead-letter-exchange": "x-x"}),
         403, refused("exchange", "x-x")),
    "queue.declare, dead-letter to the default exchange":
        (lambda ch: ch.queue_declare("cr-dlx-q", arguments={"x-dead-letter-exchange": ""}),
         403, refused("exchange", "amq.default")),
    "queue.declare with a dead-letter exchange, declared without read":
        (lambda ch: ch.queue_declare("c-dlx-q", arguments={"x-dead-letter-exchange": "w-dlx"}),
         403, refused("queue", "c-dlx-q")),
    "queue.delete": (lambda ch: ch.queue_delete("x-q"), 403, refused("queue", "x-q")),
    "queue.delete of a missing queue": (lambda ch: ch.queue_delete("x-missing"),
                                        403, refused("queue", "x-missing")),
    "queue.purge": (lambda ch: ch.queue_purge("x-q"), 403, refused("queue", "x-q")),
    "queue.purge of a missing queue": (lambda ch: ch.queue_purge("x-missing"),
                                       403, refused("queue", "x-missing")),
    "basic.get": (lambda ch: ch.basic_get("x-q"), 403, refused("queue", "x-q")),
    "basic.consume": (lambda ch: ch.basic_consume("x-q", lambda *a: None), 403, refused("queue", "x-q")),
    "queue.bind, queue without write": (lambda ch: ch.queue_bind("x-q", "r-x", "k"),
                                        403, refused("queue", "x-q")),
    "queue.bind, exchange without read": (lambda ch: ch.queue_bind("w-q", "x-x", "k"),
                                          403, refused("exchange", "x-x")),
    "queue.bind to the default exchange": (lambda ch: ch.queue_bind("w-q", "", "k"), 403,
                                           "ACCESS_REFUSED - operation not permitted on the default exchange"),
    "queue.bind to the default exchange, queue without write (checked first)":
        (lambda ch: ch.queue_bind("x-q", "", "k"), 403, refused("queue", "x-q")),
    "queue.unbind, queue without write": (lambda ch: ch.queue_unbind("x-q", "r-x", "k"),
                                          403, refused("queue", "x-q")),
    "queue.unbind, exchange without read": (lambda ch: ch.queue_unbind("w-q", "x-x", "k"),
                                            403, refused("exchange", "x-x")),
    "exchange.bind, destination without write": (lambda ch: ch.exchange_bind("x-x", "r-x", "k"),
                                                 403, refused("exchange", "x-x")),
    "exchange.bind, source without read": (lambda ch: ch.exchange_bind("w-missing", "x-x", "k"),
                                           403, refused("exchange", "x-x")),
    "exchange.bind to the default exchange": (lambda ch: ch.exchange_bind("", "r-x", "k"),
                                              403, refused("exchange", "amq.default")),
    "exchange.bind, permitted but missing": (lambda ch: ch.exchange_bind("w-missing", "r-missing", "k"),
                                             404, "NOT_FOUND - no exchange 'r-missing' in vhost '/'"),
    "exchange.unbind, destination without write": (lambda ch: ch.exchange_unbind("x-x", "r-x", "k"),
                                                   403, refused("exchange", "x-x")),
    "basic.publish": (lambda ch: publish_confirmed(ch, "x-x"), 403, refused("exchange", "x-x")),
    "basic.publish to the default exchange": (lambda ch: publish_confirmed(ch, ""),
                                              403, refused("exchange", "amq.default")),
    "basic.publish to a missing exchange (checked first)": (lambda ch: publish_confirmed(ch, "x-nope"),
                                                            403, refused("exchange", "x-nope")),
    "basic.publish, permitted but missing": (lambda ch: publish_confirmed(ch, "w-nope"),
                                             404, "NOT_FOUND - no exchange 'w-nope' in vhost '/'"),
}


@pytest.mark.parametrize("case", sorted(DENIED))
def test_denied(pbroker, app, case):
    """A refusal closes the channel only; the connection carries on."""
    op, code, text = DENIED[case]
    with channel_error(code, text):
        op(app.channel())
    assert app.is_open


# Refusals over raw AMQP, for the class/method ids of channel.close.
RAW_DENIED = {
    "exchange.delete": (raw.method_frame(1, (40, 20), [("H", 0), ("s", "x-x"), ("b", False), ("b", False)]),
                        refused("exchange", "x-x"), 40, 20),
    "queue.declare": (raw.queue_declare(1, "x-new-q"), refused("queue", "x-new-q"), 50, 10),
    "queue.bind": (raw.method_frame(1, (50, 20), [("H", 0), ("s", "w-q"), ("s", "x-x"), ("s", "k"),
                                                  ("b", False), ("T", {})]),
                   refused("exchange", "x-x"), 50, 20),
    "basic.get": (raw.basic_get(1, "x-q"), refused("queue", "x-q"), 60, 70),
    "basic.publish": (raw.basic_publish(1, "x-x", "k") + raw.header_frame(1, 1) + raw.body_frame(1, b"m"),
                      refused("exchange", "x-x"), 60, 40),
}


@pytest.mark.parametrize("case", sorted(RAW_DENIED))
def test_denied_ids(pbroker, case):
    frames, text, cls, mth = RAW_DENIED[case]
    with pbroker.raw() as r:
        r.handshake(user="app", password="app-Pw-7f3e")
        r.open_channel(1)
        r.send(frames)
        assert r.expect_channel_close(1) == (403, text, cls, mth)


def test_empty_patterns(pbroker):
    """"" permits only the empty name (RabbitMQ's "^$"): the user may open
    the vhost but the default exchange is checked as amq.default."""
    c = pbroker.connect(user="empty", password="empty-Pw-1c9a")
    with channel_error(403, refused("exchange", "amq.default", "empty")):
        publish_confirmed(c.channel(), "")
    with channel_error(403, "ACCESS_REFUSED - access to queue 'amq.gen-*"):
        c.channel().queue_declare("")
    c.close()


def test_vhost_without_permissions(pbroker):
    with pbroker.raw() as r:
        r.handshake(user="app", password="app-Pw-7f3e", open_vhost=False)
        r.send(raw.connection_open("other"))
        assert r.expect_connection_close() == (
            530, "NOT_ALLOWED - access to vhost 'other' refused for user 'app'", 10, 40)


LOGIN_REFUSED = ("ACCESS_REFUSED - Login was refused using authentication mechanism %s. "
                 "For details see the broker logfile.")


@pytest.mark.parametrize("mechanism", ["PLAIN", "AMQPLAIN"])
def test_failed_logins_logged_without_password(pbroker, mechanism):
    """Failed logins are logged with the user name and the peer's address;
    no password (wrong, right or blank) ever reaches the log."""
    secret = "Wr0ng-" + uuid.uuid4().hex
    cases = [("mallory", secret, "user 'mallory' - invalid credentials"),
             ("app", secret, "user 'app' - invalid credentials"),
             ("app", "", "user 'app' attempted to log in with a blank password, which is prohibited")]
    for user, password, why in cases:
        with pbroker.raw() as r:
            peer = "%s:%d" % r.sock.getsockname()
            r.start()
            r.send(raw.start_ok(user, password, mechanism))
            assert r.expect_connection_close() == (403, LOGIN_REFUSED % mechanism, 0, 0)
        line = "%s -> %s (state: starting): %s login refused: %s" % (peer, pbroker.addr, mechanism, why)
        wait_for(lambda: line in pbroker.log(), DEADLINE, "the log line %r" % line)
    # And a successful login with the same users.
    pbroker.connect(user="app", password="app-Pw-7f3e").close()
    log = pbroker.log()
    for password in (secret, "app-Pw-7f3e", "empty-Pw-1c9a"):
        assert password not in log


def test_malformed_start_ok_not_logged(pbroker):
    """A start-ok that does not decode is refused like any malformed frame,
    but its octets, which hold the password, stay out of the log."""
    secret = "Pw-" + uuid.uuid4().hex
    response = b"\x00app\x00" + secret.encode()
    with pbroker.raw() as r:
        r.start()
        r.send(raw.method_frame(0, raw.CONNECTION_START_OK, [
            ("T", {}), ("s", "PLAIN"), ("S", response), ("s", "en_US"), ("raw", b"trailing")]))
        assert r.wait_closed(timeout=DEADLINE) == b""
    line = "cannot decode connection.start-ok (octets not shown: they may hold a secret)"
    wait_for(lambda: line in pbroker.log(), DEADLINE, "the log line %r" % line)
    log = pbroker.log()
    assert secret not in log and ",".join(str(o) for o in secret.encode()) not in log


# Runs inside a network namespace of its own: a veth pair with 10.77.0.1
# and 10.77.0.2 (both ends in the namespace), warrend listening on both
# addresses; guest may not log in from 10.77.0.2, other users may, and
# guest still may over 127.0.0.1.
NETNS_SCRIPT = textwrap.dedent(r"""
    import json, os, signal, socket, subprocess, sys, time
    sys.path.insert(0, sys.argv[2])
    import amqp_raw as raw

    def sh(*cmd):
        subprocess.run(cmd, check=True, capture_output=True)

    sh("ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", "wr0", "type", "veth", "peer", "name", "wr1")
    sh("ip", "addr", "add", "10.77.0.1/24", "dev", "wr0")
    sh("ip", "addr", "add", "10.77.0.2/24", "dev", "wr1")
    sh("ip", "link", "set", "wr0", "up")
    sh("ip", "link", "set", "wr1", "up")
    workdir = sys.argv[3]
    cfg = {"listeners": [{"address": "0.0.0.0", "port": 5672}],
           "users": [{"name": "guest", "password": "guest", "vhosts": ["/"]},
                     {"name": "alice", "password": "alice-pw", "vhosts": ["/"]}],
           "loopback_users": ["guest"], "vhosts": ["/"]}
    with open(os.path.join(workdir, "warren.json"), "w") as f:
        json.dump(cfg, f)
    log = open(os.path.join(workdir, "warrend.log"), "wb")
    proc = subprocess.Popen([sys.argv[1], "--config", os.path.join(workdir, "warren.json")],
                            stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, "warrend did not start"
            time.sleep(0.05)

    class From(raw.RawConnection):
        def __init__(self, source, dest):
            self.sock = socket.create_connection((dest, 5672), timeout=10, source_address=(source, 0))
            self.buf, self.tune, self.server_properties, self.mechanisms = b"", None, None, None

    out = {}
    with From("10.77.0.2", "10.77.0.1") as r:
        out["peer"] = r.sock.getsockname()[0]
        r.start()
        r.send(raw.start_ok("guest", "guest"))
        out["guest_remote"] = list(r.expect_connection_close())
    with From("10.77.0.2", "10.77.0.1") as r:
        r.handshake(user="alice", password="alice-pw")
        out["alice_remote"] = "open"
    with From("127.0.0.1", "127.0.0.1") as r:
        r.handshake()
        out["guest_local"] = "open"
    proc.send_signal(signal.SIGTERM)
    out["exit"] = proc.wait(timeout=10)
    print(json.dumps(out))
""")


def test_loopback_user_from_another_address(warrend_binary):
    """loopback_users: guest is refused from a non-loopback address (10.x in
    a network namespace of the test's own), with RabbitMQ's close and the
    reason in the log; other users may connect from there."""
    if not shutil.which("unshare") or not shutil.which("ip") or subprocess.run(
            ["unshare", "--net", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace here; the loopback predicate is "
                    "covered by tests/unit/broker/test_auth.c")
    workdir = tempfile.mkdtemp(prefix="warren-netns-")
    try:
        p = subprocess.run(["unshare", "--net", sys.executable, "-c", NETNS_SCRIPT, warrend_binary,
                            os.path.dirname(os.path.abspath(__file__)), workdir],
                           capture_output=True, timeout=60)
        with open(os.path.join(workdir, "warrend.log"), errors="replace") as f:
            log = f.read()
        assert p.returncode == 0, "namespace script failed:\n%s\n%s\n%s" % (
            p.stdout.decode(), p.stderr.decode(), log)
        out = json.loads(p.stdout.decode().strip().splitlines()[-1])
        assert out == {"peer": "10.77.0.2",
                       "guest_remote": [403, LOGIN_REFUSED % "PLAIN", 0, 0],
                       "alice_remote": "open", "guest_local": "open", "exit": 0}, out
        assert "10.77.0.2:" in log and "PLAIN login refused: user 'guest' can only connect via localhost" in log
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_pika_denial_keeps_connection(pbroker):
    """A pika user sees a refusal as ChannelClosedByBroker and goes on."""
    c = pbroker.connect(user="app", password="app-Pw-7f3e")
    with channel_error(403, refused("queue", "x-q")):
        c.channel().basic_get("x-q")
    ch = c.channel()
    ch.basic_publish("w-x", "k", b"fine", pika.BasicProperties(user_id="app"))
    c.close()
