# SPDX-License-Identifier: MIT
# Fixtures for the management UI's browser tests: a warrend with its
# management API (started with tests/integration's helpers) and Debian's
# Chromium driven headless through Selenium and chromium-driver.
#
#   WARREND=$PWD/build/broker/warrend /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/browser
#
# Without Chromium, chromedriver or python3-selenium the tests skip.
import importlib.util
import os
import shutil
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
IT_DIR = os.path.join(HERE, "..", "integration")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1440,1000"]
# How long a test waits for the page to show something.
DEADLINE = 10.0


def _load_integration():
    """tests/integration/conftest.py under another name (its start_warrend,
    mgmt_config and Http)."""
    spec = importlib.util.spec_from_file_location("warren_it_conftest", os.path.join(IT_DIR, "conftest.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


it = _load_integration()
helpers = it.helpers

USERS = [
    {"name": "guest", "password": "guest", "vhosts": ["/"], "tags": ["administrator"]},
    {"name": "mon", "password": "mon", "vhosts": ["/"], "tags": ["monitoring"]},
    {"name": "pm", "password": "pm", "vhosts": ["/"], "tags": ["policymaker"]},
]


@pytest.fixture(scope="session")
def ui_broker():
    """warrend with the management listener; .mgmt is an Http client, .url
    the UI's base URL."""
    if not os.environ.get("WARREND"):
        raise pytest.UsageError("WARREND is not set")
    amqp, mgmt, prom = helpers.free_port(), helpers.free_port(), helpers.free_port()
    cfg = it.mgmt_config(amqp, mgmt, prom)
    cfg["users"] = USERS
    b = it.start_warrend(raw_config=cfg)
    b.mgmt = it.Http("127.0.0.1", mgmt)
    b.url = "http://127.0.0.1:%d" % mgmt
    helpers.wait_for(lambda: it._http_up(b.mgmt), what="the management API to listen")
    yield b
    it.stop_and_check(b)


def _selenium():
    try:
        from selenium import webdriver  # noqa: F401
    except ImportError:
        pytest.skip("python3-selenium is not installed (scripts/deps --test)")
    for p in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(p):
            pytest.skip("%s is not installed (scripts/deps --test)" % p)


def new_driver(profile_dir):
    """A headless Chromium with a fresh profile in profile_dir."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in CHROMIUM_FLAGS + ["--user-data-dir=" + profile_dir]:
        opts.add_argument(f)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


@pytest.fixture(scope="session")
def driver():
    _selenium()
    profile = tempfile.mkdtemp(prefix="warren-chromium-")
    d = new_driver(profile)
    yield d
    d.quit()
    shutil.rmtree(profile, ignore_errors=True)
