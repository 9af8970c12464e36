# SPDX-License-Identifier: MIT
# Fixtures for the integration suite.
#
# Two modes:
#  - external: WARREN_BROKER=host:port names a running broker (scripts/
#    test-rabbitmq points it at a throwaway RabbitMQ, the reference). Tests
#    that need their own broker configuration skip.
#  - warren (default): WARREND names the warrend binary; the suite starts it on
#    a free loopback port with a config file in a temp dir and stops it with
#    SIGTERM at the end, asserting a clean exit (status 0) within a deadline.
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import helpers  # noqa: E402
from helpers import default_config, free_port  # noqa: E402

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


def _external():
    v = os.environ.get("WARREN_BROKER")
    if not v:
        return None
    host, _, port = v.rpartition(":")
    if not host or not port.isdigit():
        raise pytest.UsageError("WARREN_BROKER must be host:port, got %r" % v)
    return host, int(port)


def merge(base, extra):
    out = dict(base)
    for k, v in (extra or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


class Broker:
    """A broker the tests talk to: host, port, whether it is ours (warren) or
    external, and for ours the process and its log."""

    def __init__(self, host, port, proc=None, workdir=None, config=None):
        self.host = host
        self.port = port
        self.proc = proc
        self.workdir = workdir
        self.config = config or {}
        self.stopped = False
        self.exit_status = None

    @property
    def external(self):
        return self.proc is None

    @property
    def addr(self):
        return "%s:%d" % (self.host, self.port)

    def params(self, **kw):
        return helpers.params(self.host, self.port, **kw)

    def connect(self, **kw):
        return helpers.connect(self.host, self.port, **kw)

    def raw(self, timeout=10.0):
        import amqp_raw
        return amqp_raw.RawConnection(self.host, self.port, timeout=timeout)

    def log_path(self):
        return os.path.join(self.workdir, "warrend.log") if self.workdir else None

    def log(self):
        p = self.log_path()
        if not p or not os.path.exists(p):
            return ""
        with open(p, errors="replace") as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Sends sig and waits for exit; returns the exit status (None if it
        did not exit in time, after which the process is killed)."""
        if self.proc is None or self.stopped:
            return self.exit_status
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.exit_status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.exit_status = None
        return self.exit_status


def _wait_listening(broker, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        if broker.proc.poll() is not None:
            raise RuntimeError("warrend exited with status %s during start-up:\n%s"
                               % (broker.proc.returncode, broker.log()))
        if helpers.listening(broker.port, broker.host):
            return
        if time.monotonic() >= deadline:
            broker.stop(signal.SIGKILL)
            raise RuntimeError("warrend not listening on %s after %.0fs:\n%s"
                               % (broker.addr, timeout, broker.log()))
        time.sleep(0.05)


def start_warrend(extra_config=None, raw_config=None, workdir=None):
    """Starts warrend with the default config merged with extra_config (or
    exactly raw_config, a dict), its data_dir in its temp dir. With workdir
    (a stopped broker's), it runs there again, on that data_dir, appending
    to that log. Returns a running Broker."""
    binary = os.environ.get("WARREND")
    if not binary:
        raise pytest.UsageError(
            "set WARREN_BROKER=host:port (external broker) or WARREND=/path/to/warrend")
    restart = workdir is not None
    if not restart:
        workdir = tempfile.mkdtemp(prefix="warren-it-")
    port = free_port()
    cfg = raw_config if raw_config is not None else merge(default_config(port), extra_config)
    if raw_config is None:
        cfg.setdefault("data_dir", os.path.join(workdir, "data"))
    path = os.path.join(workdir, "warren.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    log = open(os.path.join(workdir, "warrend.log"), "ab" if restart else "wb")
    proc = subprocess.Popen([binary, "--config", path], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    log.close()
    listeners = cfg.get("listeners") or [{"address": "127.0.0.1", "port": port}]
    b = Broker(listeners[0].get("address", "127.0.0.1"), listeners[0].get("port", port),
               proc=proc, workdir=workdir, config=cfg)
    _wait_listening(b)
    return b


def stop_and_check(broker):
    """SIGTERM, then assert exit status 0 within the deadline. The temp dir
    (config, log) is removed on success and kept for inspection otherwise."""
    status = broker.stop()
    if status != 0:
        pytest.fail("warrend on %s: expected exit status 0 within %.0fs after SIGTERM, "
                    "got %s. Its log (kept in %s):\n%s"
                    % (broker.addr, STOP_TIMEOUT, status, broker.workdir, broker.log()),
                    pytrace=False)
    shutil.rmtree(broker.workdir, ignore_errors=True)


_session_broker = None


@pytest.fixture(scope="session")
def broker():
    global _session_broker
    ext = _external()
    if ext:
        b = Broker(ext[0], ext[1])
        _session_broker = b
        yield b
        return
    b = start_warrend()
    _session_broker = b
    yield b
    stop_and_check(b)


@pytest.fixture
def dedicated_broker(request):
    """Factory: dedicated_broker(extra_config) starts a warrend of its own
    with the default config merged with extra_config. Skips in external mode
    (an external broker's configuration is not ours to change)."""
    if _external():
        pytest.skip("needs a dedicated warrend with a custom config; "
                    "WARREN_BROKER points at an external broker")
    started = []

    def make(extra_config=None):
        b = start_warrend(extra_config)
        started.append(b)
        request.node._warren_brokers = started
        return b

    def restart(b, sig=signal.SIGTERM):
        """Stops b (SIGTERM, asserting a clean exit, or e.g. SIGKILL) and
        starts warrend again on the same config, port and data_dir; returns
        the new Broker, which replaces b."""
        status = b.stop(sig)
        if sig == signal.SIGTERM and status != 0:
            pytest.fail("warrend on %s: exit status %s after SIGTERM. Its log:\n%s"
                        % (b.addr, status, b.log()), pytrace=False)
        started.remove(b)
        nb = start_warrend(raw_config=b.config, workdir=b.workdir)
        started.append(nb)
        return nb

    make.restart = restart
    yield make
    failures = []
    for b in started:
        if not b.stopped:
            status = b.stop()
            if status != 0:
                failures.append("warrend on %s: exit status %s after SIGTERM. Its log (kept "
                                "in %s):\n%s" % (b.addr, status, b.workdir, b.log()))
                continue
        if b.exit_status == 0:
            shutil.rmtree(b.workdir, ignore_errors=True)
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)


@pytest.fixture(autouse=True)
def _session_broker_alive():
    """After each test, the session's warrend must still be running: a crash
    is reported against the test that caused it, with the log."""
    yield
    b = _session_broker
    if b is not None and not b.external and not b.stopped and b.proc.poll() is not None:
        b.stopped = True
        b.exit_status = b.proc.returncode
        pytest.fail("warrend on %s died during this test (exit status %s). Its log (kept in "
                    "%s):\n%s" % (b.addr, b.proc.returncode, b.workdir, b.log()), pytrace=False)


@pytest.fixture
def warrend_binary():
    """Path of warrend for tests that run it themselves (warren mode only)."""
    if _external():
        pytest.skip("warren only: WARREN_BROKER points at an external broker")
    binary = os.environ.get("WARREND")
    if not binary:
        raise pytest.UsageError("WARREND is not set")
    return binary


def running_cluster(tmp_path, **kw):
    """A generator for cluster fixtures: real warrend processes on loopback
    (cluster.py's Cluster with kw: names, proxies), every node up and
    linked; stopped after the test."""
    from cluster import Cluster

    c = Cluster(tmp_path, **kw)
    c.start_all()
    c.wait_all_up()
    yield c
    c.stop_all()


@pytest.fixture
def cluster(warrend_binary, tmp_path):
    """A running 3-node cluster."""
    yield from running_cluster(tmp_path)


@pytest.fixture
def name():
    """A factory of unique queue/exchange names for this test."""
    def make(prefix="it"):
        return "%s-%s" % (prefix, uuid.uuid4().hex[:12])
    return make


@pytest.fixture
def conn(broker):
    c = broker.connect()
    yield c
    if c.is_open:
        c.close()


@pytest.fixture
def ch(conn):
    return conn.channel()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tail of the warrend logs involved."""
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    brokers = list(getattr(item, "_warren_brokers", []))
    if _session_broker is not None and not _session_broker.external:
        brokers.append(_session_broker)
    for b in brokers:
        log = b.log()
        if log:
            rep.sections.append(("warrend log %s (tail)" % b.addr,
                                 "\n".join(log.splitlines()[-80:])))


# --- The management API, Prometheus and warrenctl (test_mgmt.py & co.) -----
#
# mgmt_broker is a warrend of the test module's own with the management API
# and the Prometheus endpoint enabled (statistics sampled every 100 ms, guest
# an administrator). In external mode WARREN_MANAGEMENT=host:port (and
# WARREN_PROMETHEUS=host:port) name the running broker's HTTP ports, so the
# same assertions can be checked against RabbitMQ; without them these tests
# skip.

import base64  # noqa: E402
import http.client  # noqa: E402
import urllib.parse  # noqa: E402

MGMT_STATS_INTERVAL_MS = 100


def mgmt_config(amqp_port, mgmt_port, prom_port):
    """warrend's config for mgmt_broker: helpers.default_config plus the
    HTTP listeners, a short statistics interval and an administrator."""
    cfg = default_config(amqp_port)
    cfg["users"] = [{"name": "guest", "password": "guest", "vhosts": ["/"],
                     "tags": ["administrator"]}]
    cfg["management"] = {"address": "127.0.0.1", "port": mgmt_port}
    cfg["prometheus"] = {"address": "127.0.0.1", "port": prom_port}
    cfg["collect_statistics_interval"] = MGMT_STATS_INTERVAL_MS
    return cfg


def quote(s):
    """A path segment as RabbitMQ's clients encode it ("/" is %2F)."""
    return urllib.parse.quote(s, safe="")


class HttpReply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        return json.loads(self.body) if self.body else None

    def __repr__(self):
        return "HttpReply(%d, %r)" % (self.status, self.body[:300])


class Http:
    """A small HTTP client for one host:port (http.client, one connection
    per request)."""

    def __init__(self, host, port, user="guest", password="guest"):
        self.host = host
        self.port = port
        self.user = user
        self.password = password

    def request(self, method, path, body=None, auth=True, user=None, password=None,
                headers=None, raw=None):
        h = dict(headers or {})
        if auth:
            cred = "%s:%s" % (user or self.user, password if password is not None else self.password)
            h["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        c = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            return HttpReply(r.status, dict((k.lower(), v) for k, v in r.getheaders()),
                             r.read().decode("utf-8", "replace"))
        finally:
            c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


def _external_http(var):
    v = os.environ.get(var)
    if not v:
        return None
    host, _, port = v.rpartition(":")
    return host, int(port)


@pytest.fixture(scope="module")
def mgmt_broker():
    """A broker with its management API (.mgmt, an Http) and Prometheus
    endpoint (.prom, an Http; None when unknown in external mode)."""
    ext = _external()
    if ext:
        m = _external_http("WARREN_MANAGEMENT")
        if not m:
            pytest.skip("external broker: set WARREN_MANAGEMENT=host:port to test its HTTP API")
        b = Broker(ext[0], ext[1])
        b.mgmt = Http(*m)
        p = _external_http("WARREN_PROMETHEUS")
        b.prom = Http(*p) if p else None
        yield b
        return
    if not os.environ.get("WARREND"):
        raise pytest.UsageError("WARREND is not set")
    amqp, mgmt, prom = free_port(), free_port(), free_port()
    b = start_warrend(raw_config=mgmt_config(amqp, mgmt, prom))
    b.mgmt = Http("127.0.0.1", mgmt)
    b.prom = Http("127.0.0.1", prom)
    helpers.wait_for(lambda: _http_up(b.mgmt), what="the management API to listen")
    yield b
    stop_and_check(b)


def _http_up(h):
    try:
        h.get("/api/overview")
        return True
    except OSError:
        return False


@pytest.fixture
def warren():
    """Factory: warren(extra) starts a warrend of the test's own on
    mgmt_config with extra's top-level keys replacing its own, and waits for
    its management API (.mgmt, an Http; .mgmt_port). Each is stopped (exit
    status 0 asserted) after the test. Skips in external mode."""
    if _external():
        pytest.skip("needs dedicated warrend instances; WARREN_BROKER points at an external broker")
    started = []

    def make(extra=None):
        amqp, mgmt, prom = free_port(), free_port(), free_port()
        cfg = mgmt_config(amqp, mgmt, prom)
        cfg.update(extra or {})
        b = start_warrend(raw_config=cfg)
        started.append(b)
        b.mgmt_port = mgmt
        b.mgmt = Http("127.0.0.1", mgmt)
        helpers.wait_for(lambda: _http_up(b.mgmt), what="the management API to listen")
        return b
    yield make
    for b in started:
        stop_and_check(b)
