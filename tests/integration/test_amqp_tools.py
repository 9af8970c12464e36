# SPDX-License-Identifier: MIT
# The amqp-tools command-line clients (rabbitmq-c based) against the broker.
import shutil
import subprocess
import time

import pika.exceptions as pex
import pytest

from helpers import wait_for

TOOLS = ["amqp-declare-queue", "amqp-publish", "amqp-get", "amqp-consume", "amqp-delete-queue"]

pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                                reason="amqp-tools not installed")


def tool(broker, name, *args, stdin=None, check=True):
    p = subprocess.run([name, "--server", broker.host, "--port", str(broker.port),
                        "--username", "guest", "--password", "guest", "--vhost", "/",
                        *args], input=stdin, capture_output=True, timeout=20)
    if check:
        assert p.returncode == 0, "%s %s failed (%d): %s" % (
            name, " ".join(args), p.returncode, p.stderr.decode(errors="replace"))
    return p


def test_declare_publish_get_delete(broker, name):
    q = name("tools")
    p = tool(broker, "amqp-declare-queue", "-q", q)
    assert p.stdout.decode().strip() == q
    tool(broker, "amqp-publish", "-r", q, "-b", "hello from amqp-publish",
         "-C", "text/plain", "-H", "x-tool: yes")
    p = tool(broker, "amqp-get", "-q", q)
    assert p.stdout == b"hello from amqp-publish"
    # empty now: amqp-get exits non-zero and says so
    p = tool(broker, "amqp-get", "-q", q, check=False)
    assert p.returncode != 0
    tool(broker, "amqp-delete-queue", "-q", q)
    p = tool(broker, "amqp-get", "-q", q, check=False)
    assert p.returncode != 0


def test_server_named_queue(broker):
    p = tool(broker, "amqp-declare-queue", "-q", "")
    q = p.stdout.decode().strip()
    assert q.startswith("amq.gen-")
    tool(broker, "amqp-delete-queue", "-q", q)


def test_publish_lines_and_consume(broker, name):
    q = name("tools")
    tool(broker, "amqp-declare-queue", "-q", q)
    tool(broker, "amqp-publish", "-r", q, "-l", stdin=b"one\ntwo\nthree\n")
    p = tool(broker, "amqp-consume", "-q", q, "-c", "3", "-p", "1", "cat")
    assert p.stdout == b"one\ntwo\nthree\n"   # -l keeps each line's newline
    p = tool(broker, "amqp-delete-queue", "-q", q)


def test_consume_via_exchange_binding(broker, name):
    """amqp-consume declares a server-named queue bound to amq.topic; a
    message published after it is consuming reaches it."""
    key = name("tools.key")
    cons = subprocess.Popen(["amqp-consume", "--server", broker.host, "--port", str(broker.port),
                             "-e", "amq.topic", "-r", key + ".#", "-c", "1", "-A", "cat"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    c = broker.connect()
    try:
        # The consumer binds asynchronously: publish mandatory with confirms
        # until the message is routed (unroutable ones come back), so
        # exactly one copy reaches it.
        ch = c.channel()
        ch.confirm_delivery()
        deadline = time.monotonic() + 15

        def routed():
            try:
                ch.basic_publish("amq.topic", key + ".x", b"bound", mandatory=True)
                return True
            except pex.UnroutableError:
                assert cons.poll() is None, cons.communicate()
                return False
        wait_for(routed, timeout=15, what="amqp-consume's queue to be bound")
        out, err = cons.communicate(timeout=max(1, deadline - time.monotonic()))
        assert cons.returncode == 0, err
        assert out == b"bound"
    finally:
        c.close()
        if cons.poll() is None:
            cons.kill()
            cons.wait()


def test_declare_durable_and_delete_if_empty(broker, name):
    q = name("tools")
    tool(broker, "amqp-declare-queue", "-d", "-q", q)
    tool(broker, "amqp-publish", "-r", q, "-b", "x")
    p = tool(broker, "amqp-delete-queue", "-e", "-q", q, check=False)
    assert p.returncode != 0
    assert b"PRECONDITION_FAILED" in p.stderr or b"406" in p.stderr
    tool(broker, "amqp-delete-queue", "-q", q)
