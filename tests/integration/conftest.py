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
import socket
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
        try:
            socket.create_connection((broker.host, broker.port), timeout=1).close()
            return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            broker.stop(signal.SIGKILL)
            raise RuntimeError("warrend not listening on %s after %.0fs:\n%s"
                               % (broker.addr, timeout, broker.log()))
        time.sleep(0.05)


def start_warrend(extra_config=None, raw_config=None):
    """Starts warrend with the default config merged with extra_config (or
    exactly raw_config, a dict). Returns a running Broker."""
    binary = os.environ.get("WARREND")
    if not binary:
        raise pytest.UsageError(
            "set WARREN_BROKER=host:port (external broker) or WARREND=/path/to/warrend")
    workdir = tempfile.mkdtemp(prefix="warren-it-")
    port = free_port()
    cfg = raw_config if raw_config is not None else merge(default_config(port), extra_config)
    path = os.path.join(workdir, "warren.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    log = open(os.path.join(workdir, "warrend.log"), "wb")
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
