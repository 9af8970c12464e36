# SPDX-License-Identifier: MIT
# The management API's permission checks: each operation on an exchange,
# queue or binding checks what its AMQP method checks (configure, write,
# read on the names involved), with RabbitMQ 3.10's status codes and bodies
# for a refusal. Run against RabbitMQ with WARREN_BROKER and
# WARREN_MANAGEMENT set.
import base64
import os
import re
import resource
import socket
import time

import pytest

from helpers import wait_for

ACCESS_REFUSED = {"error": "not_authorised", "reason": "Access refused."}
NOT_FOUND = {"error": "Object Not Found", "reason": "Not Found"}
USER, PASSWORD = "mgr", "mgr-pw"
GET_BODY = {"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"}


def publish_body(key, payload="s3cret"):
    return {"properties": {}, "routing_key": key, "payload": payload, "payload_encoding": "string"}


def refused(kind, name):
    return "ACCESS_REFUSED - access to %s '%s' in vhost '/' refused for user '%s'" % (kind, name, USER)


@pytest.fixture(scope="module")
def setup(mgmt_broker):
    """As the administrator: a user whose permissions in "/" are ^mgr- for
    all three, queues secret (holding one message) and mgr-q, exchanges
    secretx and mgr-x, and bindings secretx -> mgr-q and mgr-x -> secret,
    both with routing key k."""
    api = mgmt_broker.mgmt
    assert api.put("/api/users/" + USER, {"password": PASSWORD, "tags": "management"}).status in (201, 204)
    assert api.put("/api/permissions/%2F/" + USER,
                   {"configure": "^mgr-", "write": "^mgr-", "read": "^mgr-"}).status in (201, 204)
    for q in ("secret", "mgr-q"):
        assert api.put("/api/queues/%2F/" + q, {}).status in (201, 204)
    for x in ("secretx", "mgr-x"):
        assert api.put("/api/exchanges/%2F/" + x, {"type": "direct"}).status in (201, 204)
    api.delete("/api/queues/%2F/secret/contents")
    r = api.post("/api/exchanges/%2F/amq.default/publish", publish_body("secret"))
    assert r.status == 200 and r.json == {"routed": True}, r
    assert api.post("/api/bindings/%2F/e/secretx/q/mgr-q", {"routing_key": "k"}).status == 201
    assert api.post("/api/bindings/%2F/e/mgr-x/q/secret", {"routing_key": "k"}).status == 201
    yield api
    api.delete("/api/users/" + USER)
    for q in ("secret", "mgr-q", "mgr-new-q"):
        api.delete("/api/queues/%2F/" + q)
    for x in ("secretx", "mgr-x", "mgr-new-x"):
        api.delete("/api/exchanges/%2F/" + x)


# (method, path, body, status, reply) for each refused operation.
REFUSED = [
    ("PUT", "/api/queues/%2F/secret", {}, 401, ACCESS_REFUSED),
    ("PUT", "/api/queues/%2F/other", {}, 401, ACCESS_REFUSED),
    ("PUT", "/api/queues/%2F/mgr-dl", {"arguments": {"x-dead-letter-exchange": "secretx"}}, 401,
     ACCESS_REFUSED),
    ("DELETE", "/api/queues/%2F/secret", None, 401, ACCESS_REFUSED),
    ("DELETE", "/api/queues/%2F/secret/contents", None, 401, ACCESS_REFUSED),
    ("POST", "/api/queues/%2F/secret/get", GET_BODY, 401,
     {"error": "not_authorised", "reason": refused("queue", "secret")}),
    ("POST", "/api/queues/%2F/nosuch/get", GET_BODY, 401,
     {"error": "not_authorised", "reason": refused("queue", "nosuch")}),
    ("PUT", "/api/exchanges/%2F/secretx", {"type": "direct"}, 401, ACCESS_REFUSED),
    ("PUT", "/api/exchanges/%2F/mgr-ae", {"type": "direct", "arguments": {"alternate-exchange": "secretx"}},
     401, ACCESS_REFUSED),
    ("DELETE", "/api/exchanges/%2F/secretx", None, 401, ACCESS_REFUSED),
    ("POST", "/api/exchanges/%2F/secretx/publish", publish_body("k"), 400,
     {"error": "bad_request", "reason": "403 " + refused("exchange", "secretx")}),
    ("POST", "/api/exchanges/%2F/amq.default/publish", publish_body("secret"), 400,
     {"error": "bad_request", "reason": "403 " + refused("exchange", "amq.default")}),
    ("POST", "/api/exchanges/%2F/nosuchx/publish", publish_body("k"), 400,
     {"error": "bad_request", "reason": "403 " + refused("exchange", "nosuchx")}),
    ("POST", "/api/bindings/%2F/e/secretx/q/mgr-q", {"routing_key": "k2"}, 401, ACCESS_REFUSED),
    ("POST", "/api/bindings/%2F/e/mgr-x/q/secret", {"routing_key": "k2"}, 401, ACCESS_REFUSED),
    ("POST", "/api/bindings/%2F/e/mgr-x/q/nosuch", {"routing_key": "k2"}, 401, ACCESS_REFUSED),
    ("POST", "/api/bindings/%2F/e/secretx/e/mgr-x", {"routing_key": "k2"}, 401, ACCESS_REFUSED),
    ("POST", "/api/bindings/%2F/e/mgr-x/e/secretx", {"routing_key": "k2"}, 401, ACCESS_REFUSED),
    ("DELETE", "/api/bindings/%2F/e/secretx/q/mgr-q/k", None, 401, ACCESS_REFUSED),
    ("DELETE", "/api/bindings/%2F/e/mgr-x/q/secret/k", None, 401, ACCESS_REFUSED),
    # A missing object is reported before the permission, as in RabbitMQ.
    ("DELETE", "/api/queues/%2F/nosuch", None, 404, NOT_FOUND),
    ("DELETE", "/api/queues/%2F/nosuch/contents", None, 404, NOT_FOUND),
    ("DELETE", "/api/exchanges/%2F/nosuchx", None, 404, NOT_FOUND),
]


@pytest.mark.parametrize("method,path,body,status,reply", REFUSED,
                         ids=["%s %s" % (m, p) for m, p, _, _, _ in REFUSED])
def test_refused_as_over_amqp(setup, method, path, body, status, reply):
    api = setup
    r = api.request(method, path, body=body, user=USER, password=PASSWORD)
    assert (r.status, r.json) == (status, reply), r
    # Whatever was refused, secret still holds its message and its binding.
    r = api.post("/api/queues/%2F/secret/get",
                 {"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto"})
    assert r.status == 200 and [m["payload"] for m in r.json] == ["s3cret"], r
    r = api.get("/api/bindings/%2F/e/mgr-x/q/secret")
    assert [b["routing_key"] for b in r.json] == ["k"], r
    assert api.get("/api/exchanges/%2F/secretx").status == 200


def test_permitted_on_own_names(setup):
    """The same operations succeed on names the permissions grant."""
    api = setup

    def as_mgr(method, path, body=None):
        return api.request(method, path, body=body, user=USER, password=PASSWORD)

    assert as_mgr("PUT", "/api/queues/%2F/mgr-new-q", {}).status == 201
    assert as_mgr("PUT", "/api/exchanges/%2F/mgr-new-x", {"type": "fanout"}).status == 201
    assert as_mgr("POST", "/api/bindings/%2F/e/mgr-new-x/q/mgr-new-q", {"routing_key": "r"}).status == 201
    r = as_mgr("POST", "/api/exchanges/%2F/mgr-new-x/publish", publish_body("r", "mine"))
    assert (r.status, r.json) == (200, {"routed": True}), r
    r = as_mgr("POST", "/api/queues/%2F/mgr-new-q/get", GET_BODY)
    assert r.status == 200 and [m["payload"] for m in r.json] == ["mine"], r
    assert as_mgr("DELETE", "/api/queues/%2F/mgr-new-q/contents").status == 204
    assert as_mgr("DELETE", "/api/bindings/%2F/e/mgr-new-x/q/mgr-new-q/r").status == 204
    assert as_mgr("DELETE", "/api/exchanges/%2F/mgr-new-x").status == 204
    assert as_mgr("DELETE", "/api/queues/%2F/mgr-new-q").status == 204
    # Reading what exists in the vhost needs no permission on the name.
    assert as_mgr("GET", "/api/queues/%2F/secret").status == 200
    names = [q["name"] for q in as_mgr("GET", "/api/queues/%2F").json]
    assert "secret" in names and "mgr-q" in names


def test_empty_permissions_grant_nothing(setup):
    """Empty expressions match only the empty name, as RabbitMQ's "^$"."""
    api = setup
    assert api.put("/api/permissions/%2F/" + USER, {"configure": "", "write": "", "read": ""}).status == 204
    try:
        r = api.request("PUT", "/api/queues/%2F/mgr-q2", body={}, user=USER, password=PASSWORD)
        assert (r.status, r.json) == (401, ACCESS_REFUSED), r
    finally:
        api.put("/api/permissions/%2F/" + USER, {"configure": "^mgr-", "write": "^mgr-", "read": "^mgr-"})


UNSUPPORTED = {"error": "unsupported_media_type", "reason": "a request body must be sent as application/json"}


@pytest.mark.parametrize("ctype,raw", [
    ("text/plain", b'{"properties":{},"routing_key":"k","payload":"x","payload_encoding":"string"}'),
    ("application/x-www-form-urlencoded", b"routing_key=k"),
    ("multipart/form-data; boundary=b", b"--b--\r\n"),
    (None, b""),
])
def test_post_must_be_json(setup, mgmt_broker, ctype, raw):
    """What a cross-site form can send is refused (warren's rule: RabbitMQ
    3.10 takes any content type)."""
    if mgmt_broker.proc is None:
        pytest.skip("RabbitMQ 3.10 accepts any content type")
    api = setup
    headers = {"Content-Type": ctype} if ctype else {}
    for path in ("/api/exchanges/%2F/mgr-x/publish", "/api/bindings/%2F/e/mgr-x/q/mgr-q"):
        r = api.request("POST", path, raw=raw, headers=headers)
        assert (r.status, r.json) == (415, UNSUPPORTED), r
    r = api.get("/api/bindings/%2F/e/mgr-x/q/mgr-q")
    assert r.json == [], r


def test_json_types_accepted(setup, mgmt_broker):
    api = setup
    r = api.request("PUT", "/api/queues/%2F/mgr-typed", raw=b'{"durable":false}',
                    headers={"Content-Type": "Application/JSON; charset=utf-8"})
    assert r.status == 201, r
    # A PUT without a body needs no type (no form can send a PUT).
    assert api.request("PUT", "/api/queues/%2F/mgr-typed").status == 204
    if mgmt_broker.proc is not None:
        r = api.request("PUT", "/api/queues/%2F/mgr-typed", raw=b"{}", headers={"Content-Type": "text/plain"})
        assert (r.status, r.json) == (415, UNSUPPORTED), r
    assert api.delete("/api/queues/%2F/mgr-typed").status == 204


# --- The management port before authentication -----------------------------

DEADLINE_SEC = 30  # WR_MGMT_HTTP_DEADLINE_SEC


def ours(mgmt_broker):
    if mgmt_broker.proc is None:
        pytest.skip("warren's own limits")
    return mgmt_broker


def raw_request(port, head, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(head)
    return s


def read_reply(s):
    """Everything the server sends until it closes or pauses 5 s."""
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                head, _, body = data.partition(b"\r\n\r\n")
                m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                if m and len(body) >= int(m.group(1)):
                    break
    except socket.timeout:
        pass
    return data


def basic(user="guest", password="guest"):
    return base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def post_head(length, auth=None):
    return ("POST /api/definitions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n%s\r\n"
            % (length, "Authorization: Basic %s\r\n" % auth if auth else "")).encode()


def test_preauth_body_refused_before_it_is_sent(mgmt_broker):
    """A 10 MiB body without credentials is refused from its headers: the
    reply comes while not one octet of the body has been sent."""
    port = ours(mgmt_broker).mgmt.port
    for auth in (None, basic("guest", "wrong"), basic()):
        s = raw_request(port, post_head(10 * 1024 * 1024, auth))
        reply = read_reply(s)
        s.close()
        assert reply.startswith(b"HTTP/1.1 413 "), (auth, reply[:200])


def test_authorised_body_is_read(mgmt_broker):
    """An authorised body larger than the pre-authentication cap is read
    whole and served; the same body without credentials is not."""
    port = ours(mgmt_broker).mgmt.port
    body = b'{"queues": [' + b",".join([b'{"name":"x%d","vhost":"no-such-vhost"}' % i
                                       for i in range(2000)]) + b"]}"
    assert len(body) > 64 * 1024
    s = raw_request(port, post_head(len(body), basic()) + body)
    reply = read_reply(s)
    s.close()
    assert reply.startswith(b"HTTP/1.1 400 ") and b"does not exist" in reply, reply[:300]
    s = raw_request(port, post_head(len(body), None))
    reply = read_reply(s)
    s.close()
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]


def test_small_unauthenticated_body_gets_401(mgmt_broker):
    port = ours(mgmt_broker).mgmt.port
    s = raw_request(port, post_head(2) + b"{}")
    reply = read_reply(s)
    s.close()
    assert reply.startswith(b"HTTP/1.1 401 ") and b'"Login failed"' in reply, reply[:300]


def test_keepalive_requests_each_checked(mgmt_broker):
    """On one connection, an authorised request, then one without
    credentials and a large body: the second is refused from its headers."""
    port = ours(mgmt_broker).mgmt.port
    s = raw_request(port, ("GET /api/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\n\r\n"
                           % basic()).encode())
    assert read_reply(s).startswith(b"HTTP/1.1 200 ")
    s.sendall(post_head(10 * 1024 * 1024))
    assert read_reply(s).startswith(b"HTTP/1.1 413 ")
    s.close()


def test_lf_only_headers(mgmt_broker):
    """Header lines ending in a bare LF (which evhttp takes) end the
    header block too: an authorised body above the pre-authentication cap
    is read, an unauthorised one refused from its headers."""
    port = ours(mgmt_broker).mgmt.port
    head = post_head(100000, basic()).replace(b"\r\n", b"\n")
    s = raw_request(port, head + b" " * 100000)
    assert read_reply(s).startswith(b"HTTP/1.1 400 ")  # not_json: it was read
    s.close()
    s = raw_request(port, post_head(100000).replace(b"\r\n", b"\n"))
    assert read_reply(s).startswith(b"HTTP/1.1 413 ")
    s.close()


def test_slow_request_is_cut_off(mgmt_broker):
    """A client sending a byte a second never finishes its headers; it is
    closed after the whole-request deadline, not kept forever."""
    port = ours(mgmt_broker).mgmt.port
    start = time.monotonic()
    s = raw_request(port, b"GET /api/overview HTTP/1.1\r\n")
    closed = None
    while time.monotonic() - start < DEADLINE_SEC + 15:
        try:
            s.sendall(b"X")
            s.settimeout(1.0)
            if s.recv(100) == b"":
                closed = time.monotonic() - start
                break
        except socket.timeout:
            continue
        except OSError:
            closed = time.monotonic() - start
            break
    s.close()
    assert closed is not None and DEADLINE_SEC - 1 <= closed <= DEADLINE_SEC + 5, closed
    assert "request not done within %d s" % DEADLINE_SEC in mgmt_broker.log()


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_fd_exhaustion_backs_off(warren):
    """With its descriptors exhausted the HTTP listener pauses instead of
    spinning on accept(): the log grows by a line or two a second and the
    CPU stays idle; the API serves again once connections close."""
    b = warren()
    pid = b.proc.pid
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (64, 64))
    socks = []
    try:
        def exhausted():
            for _ in range(8):
                socks.append(socket.create_connection(("127.0.0.1", b.mgmt_port), timeout=5))
            return "HTTP accept failed" in b.log()
        wait_for(exhausted, what="accept() to fail", step=0)
        lines, cpu, t0 = len(b.log().splitlines()), cpu_seconds(pid), time.monotonic()
        wait_for(lambda: time.monotonic() - t0 >= 3, what="3 s to pass")
        grown = len(b.log().splitlines()) - lines
        assert grown <= 8, b.log()[-2000:]
        assert cpu_seconds(pid) - cpu < 0.5
    finally:
        for s in socks:
            s.close()
    wait_for(lambda: b.mgmt.get("/api/overview").status == 200, what="the API to serve again")
