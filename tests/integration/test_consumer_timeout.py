# SPDX-License-Identifier: MIT
# Consumer timeout (docs/QUEUES.md): a delivery not acknowledged within the
# timeout closes its channel with RabbitMQ 3.10's 406 text and its messages
# go back to the queue, redelivered; a consumer that acks in time keeps its
# channel; the x-consumer-timeout argument and the consumer-timeout policy
# override the node's limits.consumer_timeout (the smaller of the two, as in
# RabbitMQ 3.12); the management API shows the age of a channel's oldest
# unacked delivery. warren only: checking the timeout takes RabbitMQ 3.10 up
# to a minute (its channel tick), and 3.10 ignores the argument and policy.
import json
import subprocess
import time

import pika.exceptions as pex
import pytest

from conftest import Http, free_port
from helpers import Collector, wait_for

TEXT = ("PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out. Timeout value used: "
        "%d ms. This timeout value can be configured, see consumers doc guide to learn more")


@pytest.fixture
def timeout_broker(dedicated_broker):
    """A broker with a 1 s consumer timeout, a policy giving queues named
    ct-pol* 800 ms, and its management API (.mgmt)."""
    mgmt = free_port()
    b = dedicated_broker({
        "limits": {"consumer_timeout": 1000},
        "users": [{"name": "guest", "password": "guest", "vhosts": ["/"], "tags": ["administrator"]}],
        "management": {"address": "127.0.0.1", "port": mgmt},
        "policies": [{"vhost": "/", "name": "ct", "pattern": "^ct-pol", "apply-to": "queues",
                      "definition": {"consumer-timeout": 800}}],
    })
    b.mgmt = Http("127.0.0.1", mgmt)
    return b


def publish(b, q, n, arguments=None):
    conn = b.connect()
    ch = conn.channel()
    ch.queue_declare(q, arguments=arguments)
    for i in range(n):
        ch.basic_publish("", q, b"m%d" % i)
    conn.close()


def hold_until_closed(b, q):
    """Consumes q on channel 1 without acking until the broker closes the
    channel; returns (seconds from the first delivery, reply code, text, bodies)."""
    conn = b.connect()
    ch = conn.channel()
    got = Collector()
    ch.basic_consume(q, got)
    got.wait(conn, 1)
    t0 = time.monotonic()
    wait_for(lambda: ch.is_closed, timeout=10, what="the channel closed", conn=conn, step=0.01)
    held = time.monotonic() - t0
    reason = ch._closing_reason  # pika keeps the broker's channel.close here
    code, text = reason.reply_code, reason.reply_text
    conn.close()
    return held, code, text, got.bodies


def test_unacked_past_timeout_closes_channel_and_requeues(timeout_broker, name):
    b = timeout_broker
    q = name("ct")
    publish(b, q, 3)
    held, code, text, bodies = hold_until_closed(b, q)
    assert (code, text) == (406, TEXT % 1000)
    assert sorted(bodies) == [b"m0", b"m1", b"m2"]
    assert 0.9 <= held < 3, held
    # Another consumer gets them again, redelivered, in their order.
    conn = b.connect()
    again = Collector(ack=True)
    conn.channel().basic_consume(q, again)
    again.wait(conn, 3)
    assert again.bodies == [b"m0", b"m1", b"m2"]
    assert [m.redelivered for m, _, _ in again.deliveries] == [True] * 3
    conn.close()
    assert "delivery acknowledgement on channel 1 timed out" in b.log()


def test_acking_in_time_keeps_the_channel(timeout_broker, name):
    b = timeout_broker
    q = name("ct")
    conn = b.connect()
    ch = conn.channel()
    ch.queue_declare(q)
    got = Collector(ack=True)
    ch.basic_consume(q, got)
    # Messages keep arriving for 2.5 timeouts, each acked at once.
    end = time.monotonic() + 2.5
    n = 0
    while time.monotonic() < end:
        ch.basic_publish("", q, b"x")
        n += 1
        got.wait(conn, n)
        conn.process_data_events(time_limit=0.25)
    assert ch.is_open
    ch.basic_qos(prefetch_count=5)  # still usable
    conn.close()


@pytest.mark.parametrize("prefix, arguments, used", [
    ("ct-arg", {"x-consumer-timeout": 600}, 600),  # the argument beats the node's 1000
    ("ct-pol", None, 800),                         # the policy beats the node's 1000
    ("ct-pol", {"x-consumer-timeout": 1500}, 800),  # both: the smaller
    ("ct-pol", {"x-consumer-timeout": 500}, 500),
])
def test_argument_and_policy_override(timeout_broker, name, prefix, arguments, used):
    q = name(prefix)
    publish(timeout_broker, q, 1, arguments)
    held, code, text, _ = hold_until_closed(timeout_broker, q)
    assert (code, text) == (406, TEXT % used)
    assert used / 1000 - 0.1 <= held < used / 1000 + 2, held


def test_bad_argument_refused(timeout_broker, name):
    q = name("ct")
    conn = timeout_broker.connect()
    with pytest.raises(pex.ChannelClosedByBroker) as e:
        conn.channel().queue_declare(q, arguments={"x-consumer-timeout": -1})
    assert (e.value.reply_code, e.value.reply_text) == (
        406, "PRECONDITION_FAILED - invalid arg 'x-consumer-timeout' for queue '%s' in vhost '/': "
        "{value_negative,-1}" % q)
    conn.close()


def test_api_shows_oldest_unacked_age(timeout_broker, name):
    b = timeout_broker
    q = name("ct-arg")
    publish(b, q, 2, {"x-consumer-timeout": 60000})
    conn = b.connect()
    ch = conn.channel()
    got = Collector()
    ch.basic_consume(q, got)
    got.wait(conn, 2)

    def channel():
        chans = [c for c in b.mgmt.get("/api/channels").json
                 if c["messages_unacknowledged"] == 2]
        return chans[0] if chans else None

    wait_for(lambda: (channel() or {}).get("oldest_unacknowledged_age", 0) >= 300,
             what="an unacked age of 300 ms", conn=conn)
    ch.basic_ack(0, multiple=True)
    wait_for(lambda: any(c["oldest_unacknowledged_age"] is None
                         for c in b.mgmt.get("/api/channels").json),
             what="no unacked age once acked", conn=conn)
    conn.close()


@pytest.mark.parametrize("value, problem", [
    (-5, "limits.consumer_timeout: must be between 0 and 315360000000, got -5"),
    ("1s", "limits.consumer_timeout: expected an integer, got a string"),
    (False, None),
    (0, None),
])
def test_config_key(warrend_binary, tmp_path, value, problem):
    path = tmp_path / "warren.json"
    path.write_text(json.dumps({"limits": {"consumer_timeout": value}, "data_dir": str(tmp_path / "d")}))
    p = subprocess.run([warrend_binary, "--check-config", str(path)], capture_output=True, text=True,
                       timeout=30, cwd=str(tmp_path))
    if problem is None:
        assert p.returncode == 0, p.stderr
    else:
        assert (p.returncode, p.stderr.strip()) == (2, "%s: %s" % (path, problem))
