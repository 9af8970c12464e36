# SPDX-License-Identifier: MIT
# The management API's permission checks: each operation on an exchange,
# queue or binding checks what its AMQP method checks (configure, write,
# read on the names involved), with RabbitMQ 3.10's status codes and bodies
# for a refusal. Run against RabbitMQ with WARREN_BROKER and
# WARREN_MANAGEMENT set.
import pytest

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
