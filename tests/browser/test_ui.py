# SPDX-License-Identifier: MIT
# The management UI in a real browser (headless Chromium via Selenium)
# against the real warrend: logins and what each user's tags show, a
# queue's life through the forms (declare with arguments, publish through
# the exchange page, watch the count rise, get, purge, delete), definitions
# import by file upload, the list's paging and filter, closing a connection,
# and names that are HTML rendering as text. Each test asserts on what the
# page shows.
import json
import os
import tempfile
import uuid

import pika
import pytest
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import DEADLINE, helpers, it

XSS = "<img src=x onerror=alert(1)>"


def wait(driver, cond, what):
    """Waits until cond(driver) is truthy (returning it), else fails with what."""
    return WebDriverWait(driver, DEADLINE, poll_frequency=0.05,
                         ignored_exceptions=[StaleElementReferenceException]).until(lambda d: cond(d), message=what)


def text_of(driver, css):
    """The rendered text of the first element css selects (None: none); read
    in one script call, so a refresh replacing the element cannot race it."""
    return driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.innerText : null;", css)


def wait_text(driver, css, expected):
    wait(driver, lambda d: text_of(d, css) == expected,
         "%s to show %r (shows %r)" % (css, expected, text_of(driver, css)))


def login(driver, url, user, password):
    driver.get(url + "/")
    driver.execute_script("sessionStorage.clear()")
    driver.get(url + "/?login")
    wait(driver, lambda d: d.find_elements(By.ID, "username"), "the login form")
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()


def login_ok(driver, url, user, password):
    login(driver, url, user, password)
    wait_text(driver, "#whoami", user)


def goto(driver, url, route):
    driver.get(url + "/#/" + route)


def click_button(driver, scope_css, label):
    scope = driver.find_element(By.CSS_SELECTOR, scope_css)
    for b in scope.find_elements(By.TAG_NAME, "button"):
        if b.text == label:
            b.click()
            return
    raise AssertionError("no button %r in %s" % (label, scope_css))


def confirm_click(driver, scope_css, label):
    """The UI's two-click confirmation buttons."""
    click_button(driver, scope_css, label)
    click_button(driver, scope_css, "Confirm: " + label)


def no_alert(driver):
    try:
        driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


@pytest.fixture
def page(driver, ui_broker):
    """The driver, checked after the test: no alert open and no console
    error other than the API's refusals (no CSP violation, no script error)."""
    driver.get_log("browser")
    yield driver
    assert no_alert(driver)
    errors = [e["message"] for e in driver.get_log("browser")
              if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]
    assert errors == []


@pytest.fixture
def api(ui_broker):
    return ui_broker.mgmt


def q_api(name):
    return "/api/queues/%2F/" + it.quote(name)


def test_admin_login_sees_everything(page, ui_broker, api):
    login_ok(page, ui_broker.url, "guest", "guest")
    nav = [a.text for a in page.find_elements(By.CSS_SELECTOR, "nav.tabs a")]
    assert nav == ["Overview", "Connections", "Channels", "Exchanges", "Queues", "Admin"]
    queues = api.get("/api/overview").json["object_totals"]["queues"]
    wait_text(page, "[data-total=queues] .count", "{:,}".format(queues))
    node = api.get("/api/nodes").json[0]["name"]
    wait(page, lambda d: node in d.find_element(By.ID, "nodes").text, "the nodes table")
    goto(page, ui_broker.url, "admin/users")
    wait(page, lambda d: "mon" in d.find_element(By.ID, "admin-users").text.split(), "the users list")


def test_wrong_password(page, ui_broker):
    login(page, ui_broker.url, "guest", "wrong")
    wait_text(page, "#login-error", "Login failed")
    assert page.find_elements(By.ID, "whoami") == []


def test_monitoring_user_has_no_admin(page, ui_broker):
    login_ok(page, ui_broker.url, "mon", "mon")
    nav = [a.text for a in page.find_elements(By.CSS_SELECTOR, "nav.tabs a")]
    assert nav == ["Overview", "Connections", "Channels", "Exchanges", "Queues"]
    wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#nodes table"), "monitoring sees the nodes")
    goto(page, ui_broker.url, "admin")
    wait_text(page, "#not-authorised", "Not authorised: the Admin pages need the administrator or policymaker tag.")


def test_policymaker_sees_policies_only(page, ui_broker):
    login_ok(page, ui_broker.url, "pm", "pm")
    goto(page, ui_broker.url, "admin/users")
    wait(page, lambda d: d.find_elements(By.ID, "admin-policies"), "the policies tab instead of users")
    assert [a.text for a in page.find_elements(By.CSS_SELECTOR, "nav.subtabs a")] == ["Policies", "Limits"]


def test_queue_life_through_the_forms(page, ui_broker, api):
    name = "ui-q-" + uuid.uuid4().hex[:8]
    login_ok(page, ui_broker.url, "guest", "guest")
    # Declare with an argument picked from the list.
    goto(page, ui_broker.url, "queues")
    form = wait(page, lambda d: d.find_element(By.ID, "add-queue"), "the declare form")
    form.find_element(By.ID, "queue-name").send_keys(name)
    Select(form.find_element(By.NAME, "durable")).select_by_value("false")
    form.find_element(By.CSS_SELECTOR, "button[data-arg='x-max-length']").click()
    form.find_elements(By.CSS_SELECTOR, ".arg-row .arg-value")[-1].send_keys("10")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(page, lambda d: name in [a.text for a in d.find_elements(By.CSS_SELECTOR, "table.list td a")],
         "the new queue in the list")
    q = api.get(q_api(name)).json
    assert (q["durable"], q["arguments"]) == (False, {"x-max-length": 10})
    # Publish through the default exchange's page, with a header.
    goto(page, ui_broker.url, "exchanges/%2F/amq.default")
    form = wait(page, lambda d: d.find_element(By.ID, "publish"), "the publish form")
    form.find_element(By.ID, "publish-routing-key").send_keys(name)
    click_button(page, "#publish", "+ headers")
    form.find_element(By.CSS_SELECTOR, ".arg-key").send_keys("x-note")
    form.find_element(By.CSS_SELECTOR, ".arg-value").send_keys("<b>bold</b>")
    form.find_element(By.ID, "publish-payload").send_keys("hello <i>ui</i>")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_text(page, "#publish-result", "Message published.")
    # The queue's page shows it, and the count rises as more arrive.
    goto(page, ui_broker.url, "queues/%2F/" + name)
    wait_text(page, "#queue-title", name)
    wait_text(page, "#q-ready", "1")
    conn = pika.BlockingConnection(helpers.params(ui_broker.host, ui_broker.port))
    conn.channel().basic_publish("", name, b"second")
    conn.close()
    wait_text(page, "#q-ready", "2")
    # Get the first message back, requeued.
    click_button(page, "#get-messages", "Get message(s)")
    wait_text(page, "#messages pre.payload", "hello <i>ui</i>")
    assert "x-note: <b>bold</b>" in page.find_element(By.ID, "messages").text
    assert page.find_elements(By.CSS_SELECTOR, "#messages b, #messages i") == []
    # Purge, then delete.
    confirm_click(page, "#main", "Purge messages")
    wait_text(page, "#q-total", "0")
    assert api.get(q_api(name)).json["messages"] == 0
    confirm_click(page, "#delete-queue", "Delete queue")
    wait(page, lambda d: d.current_url.endswith("#/queues"), "back to the queue list")
    assert api.get(q_api(name)).status == 404


def test_definitions_import(page, ui_broker, api):
    name = "ui-imported-" + uuid.uuid4().hex[:8]
    defs = {"queues": [{"name": name, "vhost": "/", "durable": True, "auto_delete": False,
                        "arguments": {"x-message-ttl": 60000}}]}
    fd, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(defs, f)
    try:
        login_ok(page, ui_broker.url, "guest", "guest")
        goto(page, ui_broker.url, "admin/definitions")
        wait(page, lambda d: d.find_elements(By.ID, "definitions-file"), "the import form")
        page.find_element(By.ID, "definitions-file").send_keys(path)
        click_button(page, "#import", "Upload broker definitions")
        wait_text(page, "#import-result", "Definitions imported from %s." % os.path.basename(path))
    finally:
        os.unlink(path)
    q = api.get(q_api(name))
    assert (q.status, q.json["arguments"]) == (200, {"x-message-ttl": 60000})
    api.delete(q_api(name))


def list_links(driver):
    return [a.text for a in driver.find_elements(By.CSS_SELECTOR, "table.list td a")]


def queues_named(api, tag):
    """25 queues TAG-00..TAG-24, and one more that the filter TAG leaves out,
    so a filtered list never looks like the whole one. Returns the 25 and
    the other."""
    names = ["%s-%02d" % (tag, i) for i in range(25)]
    other = "other-" + uuid.uuid4().hex[:6]
    for n in names + [other]:
        assert api.put(q_api(n), {}).status == 201
    return names, other


def wait_filtered_first_page(driver, tag, names):
    """Pages of 20 and the filter TAG; waits for its first page, not the
    unfiltered one that shows until the filter's delay is up (Next there is
    undone when the filter applies, which goes back to page 1)."""
    Select(driver.find_element(By.NAME, "page_size")).select_by_value("20")
    driver.find_element(By.CSS_SELECTOR, "input.filter").send_keys(tag)
    wait(driver, lambda d: list_links(d) == names[:20] and d.find_element(By.CSS_SELECTOR, ".page-info").text
         .startswith("Page 1 of 2 \u2014 25 shown of "), "page 1 of the filtered list")


def test_queue_list_pages_sorts_filters(page, ui_broker, api):
    tag = "ui-pg-" + uuid.uuid4().hex[:6]
    names, other = queues_named(api, tag)
    try:
        login_ok(page, ui_broker.url, "guest", "guest")
        goto(page, ui_broker.url, "queues")
        wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, "input.filter"), "the filter")
        wait_filtered_first_page(page, tag, names)
        links = list_links
        click_button(page, ".toolbar", "Next \u2192")
        wait(page, lambda d: links(d) == names[20:], "page 2")
        click_button(page, "thead", "Name")
        wait(page, lambda d: links(d) == names[:20], "sorted by name, back on page 1")
        click_button(page, "thead", "Name \u25b2")
        wait(page, lambda d: links(d) == names[::-1][:20], "sorted by name, descending")
        assert text_of(page, "th[aria-sort=descending]") == "Name \u25bc"
        page.find_element(By.CSS_SELECTOR, "input.regex").click()
        f = page.find_element(By.CSS_SELECTOR, "input.filter")
        f.clear()
        f.send_keys("^%s-0[12]$" % tag)
        wait(page, lambda d: links(d) == [names[2], names[1]], "the regex filter")
    finally:
        for n in names + [other]:
            api.delete(q_api(n))


# Holds the page's first request to /api/queues for a second, so that its
# answer comes after those of the requests made after it.
HOLD_FIRST_QUEUES_FETCH = """
const real = window.fetch;
window.heldFetch = 'waiting';
window.fetch = (url, init) => {
  const p = real(url, init);
  if (window.heldFetch !== 'waiting' || !String(url).startsWith('/api/queues')) return p;
  window.heldFetch = 'holding';
  return new Promise((resolve) => setTimeout(() => { window.heldFetch = 'released'; resolve(p); }, 1000));
};
"""


def test_a_late_answer_does_not_overwrite_a_newer_page(page, ui_broker, api):
    """The queue list's first answer (all queues, 100 a page) comes after
    the one for the filtered first page of 20 asked for after it. The newer
    page stays, with Next enabled, and Next brings page 2; the late answer
    used to replace it and disable Next (page 1 of 1)."""
    tag = "ui-late-" + uuid.uuid4().hex[:6]
    names, other = queues_named(api, tag)
    try:
        login_ok(page, ui_broker.url, "guest", "guest")
        page.execute_script(HOLD_FIRST_QUEUES_FETCH)
        page.execute_script("location.hash = '#/queues'")
        wait(page, lambda d: d.execute_script("return window.heldFetch") == "holding", "the first list request")
        wait_filtered_first_page(page, tag, names)
        links = list_links
        wait(page, lambda d: d.execute_script("return window.heldFetch") == "released", "the late answer")
        # One more round trip: the late answer, already read, is handled before it ends.
        page.execute_script("return fetch('/').then((r) => r.status)")
        assert links(page) == names[:20]
        assert page.find_element(By.CSS_SELECTOR, ".page-info").text.startswith("Page 1 of 2 \u2014 25 shown of ")
        click_button(page, ".toolbar", "Next \u2192")
        wait(page, lambda d: links(d) == names[20:], "page 2")
    finally:
        for n in names + [other]:
            api.delete(q_api(n))


def test_close_connection_with_reason(page, ui_broker, api):
    conn = pika.BlockingConnection(helpers.params(ui_broker.host, ui_broker.port))
    local = conn._impl._transport._sock.getsockname()
    client = "%s:%d -> %s:%d" % (local[0], local[1], ui_broker.host, ui_broker.port)
    try:
        login_ok(page, ui_broker.url, "guest", "guest")
        goto(page, ui_broker.url, "connections")
        wait(page, lambda d: client in d.find_element(By.ID, "main").text, "the client's name in the list")
        wait(page, lambda d: d.find_element(By.LINK_TEXT, client).click() or True, "the link to click")
        reason = wait(page, lambda d: d.find_element(By.NAME, "reason"), "the close form")
        reason.clear()
        reason.send_keys("maintenance")
        confirm_click(page, "#main", "Close connection")
        wait(page, lambda d: d.current_url.endswith("#/connections"), "back to the list")
        with pytest.raises(pika.exceptions.ConnectionClosed) as e:
            conn.process_data_events(time_limit=DEADLINE)
            conn.channel()
        assert "maintenance" in str(e.value)
    finally:
        if conn.is_open:
            conn.close()


def test_html_in_names_renders_as_text(page, ui_broker, api):
    assert api.put(q_api(XSS), {}).status in (201, 204)
    assert api.put("/api/exchanges/%2F/" + it.quote(XSS), {"type": "fanout"}).status in (201, 204)
    try:
        login_ok(page, ui_broker.url, "guest", "guest")
        for route in ["queues", "exchanges"]:
            goto(page, ui_broker.url, route)
            f = wait(page, lambda d: d.find_element(By.CSS_SELECTOR, "input.filter"), "the filter")
            f.send_keys("onerror")
            wait(page, lambda d: XSS in [a.text for a in d.find_elements(By.CSS_SELECTOR, "table.list td a")],
                 "the name as text in the %s list" % route)
            assert page.find_elements(By.CSS_SELECTOR, "main img") == []
        wait(page, lambda d: d.find_element(By.LINK_TEXT, XSS).click() or True, "the link to click")
        wait_text(page, "#exchange-name", XSS)
        goto(page, ui_broker.url, "queues/%2F/" + it.quote(XSS))
        wait_text(page, "#queue-title", XSS)
        assert page.find_elements(By.CSS_SELECTOR, "main img") == []
        assert no_alert(page)
    finally:
        api.delete(q_api(XSS))
        api.delete("/api/exchanges/%2F/" + it.quote(XSS))
