# SPDX-License-Identifier: MIT
# The warrend process itself (warren only; skipped against an external
# broker): configuration errors at start-up, clean shutdown on SIGTERM,
# SIGHUP (log file reopened, TLS certificates in test_tls.py), SIGUSR1/2.
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pika.exceptions as pex
import pytest

import amqp_raw as raw
from helpers import assert_serves, default_config, free_port, listening, wait_for

EXIT_DEADLINE = 10


def run_with_config(binary, text):
    d = tempfile.mkdtemp(prefix="warren-cfg-")
    path = os.path.join(d, "warren.json")
    with open(path, "w") as f:
        f.write(text)
    try:
        p = subprocess.run([binary, "--config", path], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=EXIT_DEADLINE)
    except subprocess.TimeoutExpired:
        pytest.fail("warrend kept running with an invalid config %s" % text)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return p, path


def bad(cfg_change):
    cfg = default_config(free_port())
    cfg_change(cfg)
    return json.dumps(cfg)


INVALID = {
    "unknown top-level key": (lambda c: c.update(bogus_key=1), "bogus_key"),
    "unknown key in limits": (lambda c: c.update(limits={"frame_maxx": 4096}), "frame_maxx"),
    "unknown key in a listener": (lambda c: c["listeners"][0].update(hostname="x"), "hostname"),
    "unknown key in a user": (lambda c: c["users"][0].update(admin=True), "admin"),
    "unknown key in log": (lambda c: c.update(log={"level": "info", "format": "x"}), "format"),
    "log file not a string": (lambda c: c.update(log={"file": 5}), "log.file"),
    "log file empty": (lambda c: c.update(log={"file": ""}), "log.file"),
    "log file cannot be opened": (lambda c: c.update(log={"file": "/nonexistent-warren-it/w.log"}),
                                  "log.file: cannot open '/nonexistent-warren-it/w.log': "
                                  "No such file or directory"),
    "frame_max not an integer": (lambda c: c.update(limits={"frame_max": "big"}), "frame_max"),
    "heartbeat not an integer": (lambda c: c.update(limits={"heartbeat": 1.5}), "heartbeat"),
    "listeners not an array": (lambda c: c.update(listeners={"port": 1}), "listeners"),
    "port not an integer": (lambda c: c["listeners"][0].update(port="5672"), "port"),
    "vhosts not an array": (lambda c: c.update(vhosts="/"), "vhosts"),
    "user password not a string": (lambda c: c["users"][0].update(password=123), "password"),
    "loopback_users not an array": (lambda c: c.update(loopback_users="guest"),
                                    "loopback_users"),
    "log level unknown": (lambda c: c.update(log={"level": "chatty"}), "level"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_config(warrend_binary, case):
    """An unknown key or a wrong type: non-zero exit, and stderr names the
    key and the file."""
    change, key = INVALID[case]
    p, path = run_with_config(warrend_binary, bad(change))
    err = p.stderr.decode(errors="replace")
    assert p.returncode != 0, "warrend accepted an invalid config (%s)" % case
    assert key in err, "stderr does not name %r:\n%s" % (key, err)
    assert path in err, "stderr does not name the file %s:\n%s" % (path, err)


def test_invalid_json(warrend_binary):
    p, path = run_with_config(warrend_binary, '{"listeners": [}')
    err = p.stderr.decode(errors="replace")
    assert p.returncode != 0
    assert path in err, err


def test_missing_config_file(warrend_binary):
    path = "/nonexistent/warren-it/warren.json"
    p = subprocess.run([warrend_binary, "--config", path], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=EXIT_DEADLINE)
    assert p.returncode != 0
    assert path in p.stderr.decode(errors="replace")


def test_sigterm_closes_clients_with_320(dedicated_broker):
    """SIGTERM: every client gets connection.close 320 CONNECTION_FORCED
    (RabbitMQ: "CONNECTION_FORCED - broker forced connection closure with
    reason 'shutdown'"), then warrend exits 0."""
    b = dedicated_broker()
    r = b.raw()
    r.handshake()
    r.open_channel(1)
    p = b.connect()
    ch = p.channel()
    ch.queue_declare("", exclusive=True)
    b.proc.send_signal(signal.SIGTERM)
    code, text, cls, mth = r.expect_connection_close(timeout=EXIT_DEADLINE)
    r.close()
    assert code == 320, (code, text)
    assert text.startswith("CONNECTION_FORCED - "), text
    assert (cls, mth) == (0, 0)

    def pika_closed():
        try:
            p.process_data_events(time_limit=0.05)
        except pex.ConnectionClosedByBroker as e:
            assert e.reply_code == 320 and e.reply_text.startswith("CONNECTION_FORCED - ")
            return True
        except pex.StreamLostError:
            raise AssertionError("pika connection dropped without connection.close 320")
        return False
    wait_for(pika_closed, timeout=EXIT_DEADLINE, what="pika to see connection.close 320")
    status = b.stop(timeout=EXIT_DEADLINE)    # already signalled: just waits
    assert status == 0, "warrend exit status %s after SIGTERM; log:\n%s" % (status, b.log())


def test_sigterm_after_close_ok_does_not_wait_for_client(dedicated_broker):
    """A client that got close-ok but keeps its socket open (the broker
    leaves closing to it, up to 30 s) does not hold a SIGTERM: warrend
    closes that socket and exits as soon as nothing else is open."""
    b = dedicated_broker()
    r = b.raw()
    r.handshake()
    r.send(raw.connection_close(200, "Goodbye"))
    r.expect(raw.CONNECTION_CLOSE_OK, channel=0)
    start = time.monotonic()
    b.proc.send_signal(signal.SIGTERM)
    r.wait_closed(timeout=EXIT_DEADLINE)
    status = b.stop(timeout=EXIT_DEADLINE)
    assert status == 0, "exit status %s; log:\n%s" % (status, b.log())
    assert "connections still open" not in b.log()
    assert time.monotonic() - start < 2.0
    r.close()


def test_sigterm_idle_exits_zero(dedicated_broker):
    b = dedicated_broker()
    status = b.stop(timeout=EXIT_DEADLINE)
    assert status == 0, "exit status %s; log:\n%s" % (status, b.log())


def test_two_listeners(dedicated_broker):
    """Every entry of "listeners" is served."""
    p1, p2 = free_port(), free_port()
    b = dedicated_broker({"listeners": [{"address": "127.0.0.1", "port": p1},
                                        {"address": "127.0.0.1", "port": p2}]})
    assert b.port == p1
    for port in (p1, p2):
        wait_for(lambda: listening(port), what="listener on port %d" % port)
        with raw.RawConnection("127.0.0.1", port) as c:
            c.handshake()
            c.open_channel(1)


def read(path):
    if not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        return f.read()


@pytest.fixture
def log_dir():
    d = tempfile.mkdtemp(prefix="warren-log-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_log_file(dedicated_broker, log_dir):
    """log.file: the lines go to that file (appended), not to stderr."""
    path = os.path.join(log_dir, "warrend.log")
    with open(path, "w") as f:
        f.write("an older line\n")
    b = dedicated_broker({"log": {"file": path}})
    wait_for(lambda: "listening on 127.0.0.1:%d" % b.port in read(path), what="the log file")
    assert read(path).startswith("an older line\n")
    assert "listening on" not in b.log()


def test_sighup_reopens_the_log_file(dedicated_broker, log_dir):
    """Log rotation: after the file is renamed, SIGHUP makes warrend write
    to a new file at the configured path; it keeps serving clients."""
    path = os.path.join(log_dir, "warrend.log")
    b = dedicated_broker({"log": {"file": path}})
    wait_for(lambda: "listening on" in read(path), what="the log file")
    os.rename(path, path + ".1")
    b.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "log file reopened" in read(path), what="a new log file at %s" % path)
    # The old file ends with the signal's line; what follows is in the new one.
    assert "received SIGHUP" in read(path + ".1").splitlines()[-1]
    assert_serves(b)
    wait_for(lambda: "connection accepted" in read(path), what="the new file to get new lines")
    assert "received SIGHUP" in read(path + ".1").splitlines()[-1]


def test_sighup_without_log_file(dedicated_broker):
    b = dedicated_broker()
    b.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "received SIGHUP" in b.log(), what="the SIGHUP log line")
    assert_serves(b)


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGUSR2])
def test_sigusr_ignored(dedicated_broker, sig):
    """SIGUSR1 and SIGUSR2 used to kill warrend without a word: they are
    logged and ignored."""
    b = dedicated_broker()
    b.proc.send_signal(sig)
    wait_for(lambda: "received %s; ignored" % sig.name in b.log(), what="the %s log line" % sig.name)
    assert_serves(b)
