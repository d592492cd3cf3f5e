"""The web UI in a real browser: Debian's headless chromium driven by selenium (chromedriver from
/usr/bin; nothing downloads a browser), against a real hub process (``--workers 2`` on PostgreSQL, so that the
page's live updates and the session work whichever worker answers; SQLite otherwise) and the builder daemon with
the quick build function of the daemon tests (test_orch_builder_daemon.py; the real deb-mock build runs in
test_orch_builder_integration.py). A build submitted from the CLI is watched live to its result, a second one is
canceled and resubmitted from its page, forged form posts are refused and recorded, and revoking the token ends
the session. Screenshots are kept under the test's tmp_path and copied to $DEB_TEST_ARTIFACTS when it is set."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from orch_helpers import built, make_source
from orch_hub import CLI, POSTGRES_URL, HubProcess, postgres_database
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By

from deb_mock.request import BuildRequest, BuildResult
from deb_orchestrator.builder.daemon import Builder, BuilderConfig
from deb_orchestrator.client import HubClient
from debarchive.dsc import parse_dsc

pytestmark = pytest.mark.integration
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
MIRROR = "http://deb.debian.org/debian"
STEPS = 8  # log lines of the watched build, 0.5 s apart


def slow_build(request: BuildRequest) -> BuildResult:
    """A build that streams a log line every 0.5 s, then makes its .deb with dpkg-deb (as the daemon tests do)."""
    pkg = parse_dsc(Path(request.source))
    for i in range(STEPS):
        if request.on_log_line:
            request.on_log_line(f"step {i + 1} of {STEPS} building {pkg.ident}")
        time.sleep(0.5)
    return built(request)


@pytest.fixture
def hub(tmp_path: Path, signing_home: Path) -> Iterator[HubProcess]:
    data = tmp_path / "data"
    shutil.copytree(signing_home, data / "gnupg", ignore=shutil.ignore_patterns("S.*", "*.lock"))
    fast = ("--heartbeat", "0.5", "--log-level", "warning")
    if POSTGRES_URL:
        with postgres_database() as db:
            h = HubProcess(data, "--db", db, "--workers", "2", *fast)
            yield h
            h.stop()
    else:
        h = HubProcess(data, *fast)
        yield h
        h.stop()


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), "apt-get install chromium chromium-driver " \
        "(scripts/install-deps.sh)"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(arg)
    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium's manager: never fetch a driver or a browser
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "driver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


class Shots:
    def __init__(self, driver: Any, root: Path) -> None:
        self.driver, self.root, self.n = driver, root / "screenshots", 0
        self.root.mkdir(parents=True, exist_ok=True)
        self.artifacts = os.environ.get("DEB_TEST_ARTIFACTS")

    def __call__(self, name: str) -> None:
        self.n += 1
        path = self.root / f"{self.n:02d}-{name}.png"
        assert self.driver.save_screenshot(str(path)), path
        if self.artifacts:
            dest = Path(self.artifacts) / "webui"
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / path.name)


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def text_of(driver: Any, css: str) -> str:
    """The text of the first element ``css`` selects ("" for none), read in the page in one step. The live pages
    reload themselves when a state changes, so a read during a reload is tried again."""
    for _ in range(50):
        try:
            return str(driver.execute_script(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css))
        except WebDriverException:  # the document went away under the read (a reload)
            time.sleep(0.1)
    raise AssertionError(f"{css}: the page kept reloading for 5 s")


def test_watch_cancel_resubmit_csrf_and_revocation(hub: HubProcess, browser: Any, tmp_path: Path) -> None:
    shot = Shots(browser, tmp_path)
    with HubClient(hub.url, hub.token) as admin:
        admin.add_tag("base", external_repos=[{"url": MIRROR, "suite": "trixie", "components": ["main"]}])
        admin.add_tag("build", parents=["base"])
        admin.add_target("t", "build", "base")
        host_token = str(admin.add_host("b1", ["amd64"])["token"])
        op = admin.create_token("operator", ["build"])
    token_file = tmp_path / "operator.token"
    token_file.write_text(op["token"] + "\n")

    # sign in with the operator's token
    browser.get(f"{hub.url}/login?next=/dashboard")
    browser.find_element(By.ID, "token").send_keys(op["token"])
    browser.find_element(By.ID, "sign-in-button").click()
    wait_for("the dashboard, signed in", lambda: text_of(browser, "#signed-in-user") == "operator")
    assert "b1" in text_of(browser, "#builders") and "0/1" in text_of(browser, "#builders")
    shot("dashboard-signed-in")
    cookie = browser.get_cookie("dob_session")
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    # a build submitted from the CLI, watched live on its buildArch task's page
    submit = subprocess.run([*CLI, "build", "--hub", hub.url, "--token-file", str(token_file), "--json", "t",
                             str(make_source(tmp_path / "a", "orch-webui-live", "1.0"))],
                            capture_output=True, text=True, timeout=120, check=True)
    assert "orch-webui-live" in submit.stdout
    with HubClient(hub.url, hub.token) as admin:
        leaf = next(t["id"] for t in admin.build("orch-webui-live_1.0")["tasks"] if t["method"] == "buildArch")
    browser.get(f"{hub.url}/tasks/{leaf}")
    assert "free" in text_of(browser, "table.fields")
    builder = Builder(BuilderConfig(hub=hub.url, token=host_token, work_dir=tmp_path / "work", idle_exit=2.0,
                                    claim_wait=0.5, build_fn=slow_build))
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(builder._loop()))
    thread.start()
    try:
        wait_for("the live log tail", lambda: "step 3 of" in text_of(browser, "#log"))
        browser.execute_script("document.getElementById('log').scrollIntoView()")
        shot("task-running-live-log")
        assert "open" in text_of(browser, "table.fields")  # reloaded once when claimed; the log streams in place
        wait_for("the task's result", lambda: "closed" in text_of(browser, "table.fields"))
        assert f"step {STEPS} of {STEPS}" in text_of(browser, "#log") and "build.log" in browser.page_source
        shot("task-closed")
    finally:
        thread.join(timeout=60)
    assert codes == [0]
    browser.get(f"{hub.url}/builds/orch-webui-live_1.0")
    wait_for("the build's result", lambda: "complete" in text_of(browser, "table.fields"))
    shot("build-complete")

    # a second build (no builder now): canceled and resubmitted from its page
    subprocess.run([*CLI, "build", "--hub", hub.url, "--token-file", str(token_file), "t",
                    str(make_source(tmp_path / "b", "orch-webui-cancel", "1.0"))],
                   capture_output=True, text=True, timeout=120, check=True)
    browser.get(f"{hub.url}/builds/orch-webui-cancel_1.0")
    browser.find_element(By.ID, "cancel-build").click()
    wait_for("the canceled build", lambda: "canceled" in text_of(browser, "table.fields"))
    shot("build-canceled")
    browser.find_element(By.ID, "resubmit-build").click()
    wait_for("the resubmitted build", lambda: "building" in text_of(browser, "table.fields"))
    shot("build-resubmitted")

    # forged posts from the page itself: without the CSRF token, with a wrong one
    for csrf in (None, "forged"):
        browser.execute_script(
            "const f = document.createElement('form'); f.method = 'post'; f.action = location.pathname + '/cancel';"
            "if (arguments[0] !== null) { const i = document.createElement('input'); i.type = 'hidden';"
            " i.name = 'csrf'; i.value = arguments[0]; f.appendChild(i); }"
            "document.body.appendChild(f); f.submit();", csrf)
        wait_for("the refusal", lambda: "CSRF check failed" in browser.page_source)
        assert text_of(browser, "h1") == "Refused"
        shot(f"csrf-refused-{csrf or 'missing'}")
        browser.get(f"{hub.url}/builds/orch-webui-cancel_1.0")
    assert "building" in text_of(browser, "table.fields")

    # revoking the token ends the session: the open page's form is refused, the next page is signed out
    with HubClient(hub.url, hub.token) as admin:
        admin.revoke_token(op["id"])
        browser.find_element(By.ID, "cancel-build").click()
        wait_for("the refusal", lambda: text_of(browser, "h1") == "Sign in first")
        shot("session-ended")
        browser.get(f"{hub.url}/dashboard")
        assert browser.find_elements(By.ID, "sign-in") and not browser.find_elements(By.ID, "signed-in-user")
        assert admin.build("orch-webui-cancel_1.0")["state"] == "building"
        records = [r.to_json() for r in admin.audit(limit=200) if r.to_json()["via"] == "web"]
    done = sorted({r["action"] for r in records if r["outcome"] == "done"})
    assert done == ["build.cancel", "build.resubmit", "session.create"]
    refused = [r for r in records if r["outcome"] == "refused"]
    assert any(r["action"] == "build.cancel" and r["status"] == 403 and "CSRF" in r["reason"]
               and r["user"] == "operator" for r in refused)
    assert any(r["action"] == "build.cancel" and r["status"] == 401 for r in refused)
    assert len(list((tmp_path / "screenshots").glob("*.png"))) == 9
