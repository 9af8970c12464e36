# SPDX-License-Identifier: MIT
# The management listener's web UI assets (mgmt_ui.c: served at / and /ui/
# with a CSP, ETags, no inline script) and the list pagination the UI's
# tables use (RabbitMQ's ?page, page_size, name, use_regex: mgmt.c). The UI
# itself is driven in a browser by tests/browser.
import re
import uuid

import pytest

from conftest import quote

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-ancestors 'none'")


@pytest.fixture
def api(mgmt_broker):
    if mgmt_broker.external:
        pytest.skip("warren's UI and pagination (RabbitMQ's UI is another program)")
    return mgmt_broker.mgmt


# --- the UI's assets --------------------------------------------------------

def test_index_served_without_credentials(api):
    r = api.get("/", auth=False)
    assert r.status == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert '<script type="module" src="/ui/js/app.js"></script>' in r.body
    # No inline script or style: every <script> has a src, no style= or <style>.
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", r.body))
    assert "<style" not in r.body and not re.search(r"\s(style|on[a-z]+)=", r.body)


def test_assets_and_etags(api):
    for path, ctype in [("/ui/js/app.js", "text/javascript; charset=utf-8"),
                        ("/ui/style.css", "text/css; charset=utf-8"),
                        ("/ui/index.html", "text/html; charset=utf-8")]:
        r = api.get(path, auth=False)
        assert (r.status, r.headers["content-type"]) == (200, ctype), path
        etag = r.headers["etag"]
        assert re.fullmatch(r'"[0-9a-f]{20}"', etag)
        assert r.headers["cache-control"] == "no-cache"
        again = api.get(path, auth=False, headers={"If-None-Match": etag})
        assert (again.status, again.body) == (304, "")
        other = api.get(path, auth=False, headers={"If-None-Match": '"0000"'})
        assert other.status == 200


def test_unknown_asset_and_methods(api):
    for path in ["/ui/nope.js", "/ui/../broker/mgmt.c", "/ui/js/%2e%2e/index.html"]:
        r = api.get(path, auth=False)
        assert (r.status, r.body) == (404, "Not Found\n"), path
        assert r.headers["content-security-policy"] == CSP
    for method in ["POST", "PUT", "DELETE"]:
        r = api.request(method, "/", auth=False)
        assert (r.status, r.headers["allow"]) == (405, "GET, HEAD"), method


def test_head(api):
    r = api.request("HEAD", "/ui/js/app.js", auth=False)
    assert (r.status, r.body) == (200, "")
    assert r.headers["etag"] == api.get("/ui/js/app.js", auth=False).headers["etag"]


def test_api_still_needs_credentials(api):
    r = api.get("/api/overview", auth=False)
    assert (r.status, r.json) == (401, {"error": "not_authorized", "reason": "Login failed"})
    assert api.get("/uix", auth=False).status == 401


# --- pagination (rabbit_mgmt_util's rules) ----------------------------------

@pytest.fixture
def queues(api):
    """12 queues pg-<tag>-00 .. -11; their names."""
    tag = uuid.uuid4().hex[:8]
    names = ["pg-%s-%02d" % (tag, i) for i in range(12)]
    for n in names:
        assert api.put("/api/queues/%2F/" + quote(n), {}).status == 201
    yield names
    for n in names:
        api.delete("/api/queues/%2F/" + quote(n))


def test_page_shape(api, queues):
    tag = queues[0][:11]
    r = api.get("/api/queues/%2F?page=2&page_size=5&name=" + tag)
    assert r.status == 200, r
    j = r.json
    assert list(j) == ["total_count", "item_count", "filtered_count", "page", "page_size", "page_count", "items"]
    assert (j["item_count"], j["filtered_count"], j["page"], j["page_size"], j["page_count"]) == (5, 12, 2, 5, 3)
    assert j["total_count"] >= 12
    assert [q["name"] for q in j["items"]] == queues[5:10]
    last = api.get("/api/queues?page=3&page_size=5&name=" + tag).json
    assert [q["name"] for q in last["items"]] == queues[10:]


def test_page_size_default_and_columns(api, queues):
    j = api.get("/api/queues/%2F?page=1&columns=name,messages&name=" + queues[0][:11]).json
    assert j["page_size"] == 100
    assert j["items"][0] == {"name": queues[0], "messages": 0}


def test_name_filter_case_insensitive_and_regex(api, queues):
    tag = queues[0][3:11]
    j = api.get("/api/queues?page=1&name=PG-" + tag.upper()).json
    assert j["filtered_count"] == 12
    j = api.get("/api/queues?page=1&use_regex=true&name=" + quote("^PG-%s-0[3-5]$" % tag)).json
    assert [q["name"] for q in j["items"]] == queues[3:6]
    # Without use_regex the pattern is a plain substring.
    assert api.get("/api/queues?page=1&name=" + quote("^pg-" + tag)).json["filtered_count"] == 0


def test_sort_then_page(api, queues):
    j = api.get("/api/queues?page=1&page_size=3&sort=name&sort_reverse=true&name=" + queues[0][:11]).json
    assert [q["name"] for q in j["items"]] == queues[::-1][:3]


def test_empty_page(api):
    j = api.get("/api/queues?page=1&name=no-such-queue-" + uuid.uuid4().hex).json
    assert (j["items"], j["item_count"], j["filtered_count"], j["page_count"]) == ([], 0, 0, 0)


@pytest.mark.parametrize("query,error,reason", [
    ("page=0", "invalid_pagination_parameters", "Invalid pagination parameters: page number 0, page size undefined"),
    ("page=1&page_size=501", "invalid_pagination_parameters",
     "Invalid pagination parameters: page number 1, page size 501"),
    ("page=1&page_size=0", "invalid_pagination_parameters", "Invalid pagination parameters: page number 1, page size 0"),
    ("page=x", "bad_request", "Pagination parameters are invalid"),
    ("page=1&page_size=", "bad_request", "Pagination parameters are invalid"),
    ("page=1&use_regex=true&name=%28", "bad_request", "Pagination parameters are invalid"),
    ("page=99&page_size=500", "page_out_of_range", None),
])
def test_bad_pagination(api, query, error, reason):
    r = api.get("/api/exchanges?" + query)
    assert (r.status, r.json["error"]) == (400, error), r
    if reason:
        assert r.json["reason"] == reason
    else:
        assert re.fullmatch(r"Page out of range, page: 99 page size: 500, len: \d+", r.json["reason"])


def test_lists_without_page_unchanged(api):
    assert isinstance(api.get("/api/exchanges?page_size=2").json, list)


def test_page_of_a_list_built_whole(api, queues):
    """Lists other than exchanges and queues, and those sorted by another
    key, are built whole and then paged by wr_mgmt_reply: same rules."""
    j = api.get("/api/vhosts?page=1&page_size=1&columns=name").json
    assert (j["items"], j["item_count"], j["page_count"]) == ([{"name": "/"}], 1, j["total_count"])
    r = api.get("/api/vhosts?page=3")
    assert (r.status, r.json) == (400, {"error": "page_out_of_range",
                                        "reason": "Page out of range, page: 3 page size: 100, len: %d"
                                        % j["total_count"]})
    tag = queues[0][:11]
    j = api.get("/api/queues?page=2&page_size=5&sort=messages&name=" + tag).json
    assert (j["filtered_count"], j["item_count"], j["page_count"]) == (12, 5, 3)


def test_page_sorted_by_a_value(api, queues):
    """?sort=KEY pages by the items' values (ties by vhost, name)."""
    for i, n in enumerate([queues[7], queues[2], queues[9]]):
        for _ in range(3 - i):
            r = api.post("/api/exchanges/%2F/amq.default/publish",
                         {"routing_key": n, "payload": "x", "payload_encoding": "string", "properties": {}})
            assert r.json == {"routed": True}
    tag = queues[0][:11]
    j = api.get("/api/queues/%2F?page=1&page_size=4&sort=messages&sort_reverse=true&columns=name,messages&name="
                + tag).json
    assert j["items"] == [{"name": queues[7], "messages": 3}, {"name": queues[2], "messages": 2},
                          {"name": queues[9], "messages": 1}, {"name": queues[11], "messages": 0}]
    j = api.get("/api/queues/%2F?page=3&page_size=5&sort=messages&columns=name&name=" + tag).json
    assert j["items"] == [{"name": queues[2]}, {"name": queues[7]}]
