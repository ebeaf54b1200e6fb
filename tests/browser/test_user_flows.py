"""What a person does in a real browser: a member connects their agent at /me/ and takes
its client config; an administrator checks a server in the console.

Every step is photographed into .run/browser-screenshots/ (the CI keeps them).
"""

import json
import time
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from credentials.models import Grant
from servers.models import McpServer
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db(transaction=True)
WAIT = 20


def _wait() -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait


def _text_in(browser: Any, css: str, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    _wait()(browser, WAIT).until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))


def _log_in(browser: Any, url: str, username: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(url)
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit], input[type=submit]").click()


@pytest.fixture
def live(live_server: Any, settings: Any) -> Any:
    settings.MCPCONTROL_PUBLIC_URL = live_server.url  # the OAuth redirect comes back here
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    return live_server


@pytest.fixture
def member() -> User:
    return User.objects.create_user("member", "member@example.com", "pw-member-123")


def test_a_member_logs_in_to_their_page(live, browser, screenshot, member):
    from selenium.webdriver.common.by import By

    AgentFactory(owner=member, name="laptop")
    AgentFactory(name="not-mine")

    _log_in(browser, f"{live.url}/me/", "member", "pw-member-123")  # → login → back to /me/
    _text_in(browser, "h1", "My agents")
    screenshot("my-agents")

    names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#agents a")]
    assert names == ["laptop"]
    assert browser.current_url == f"{live.url}/me/"


def test_a_member_connects_an_oauth_server_and_copies_the_claude_code_config(
    live, browser, screenshot, member, oauth_peers, downloads
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    agent = AgentFactory(owner=member, name="laptop")
    server = McpServer.objects.create(
        name="Protected", path="/protected", url=oauth_peers.mcp_url,
        auth_type=McpServer.AuthType.OAUTH, credential_mode=McpServer.CredentialMode.PER_AGENT,
    )  # fmt: skip
    page = f"{live.url}/me/agents/{agent.pk}/"
    _log_in(browser, page, "member", "pw-member-123")
    _text_in(browser, f"#server-{server.pk} .credential-state", "not connected")
    screenshot("before-connect")

    browser.find_element(By.ID, f"connect-{server.pk}").click()  # → AS → /oauth/callback
    _text_in(browser, "#messages", "Connected Protected.")
    screenshot("connected")
    assert browser.current_url == page
    assert (
        "connected"
        in browser.find_element(By.CSS_SELECTOR, f"#server-{server.pk} .credential-state").text
    )
    grant = Grant.objects.get(server=server, agent=agent)
    assert grant.granted_by == member  # the member's own consent, in their own session

    Select(browser.find_element(By.ID, "client-picker")).select_by_value("claude-code")
    browser.find_element(By.ID, "show-config").click()
    _text_in(browser, "#config-file-name", ".mcp.json")
    shown = json.loads(browser.find_element(By.ID, "client-config").text)
    assert shown["mcpServers"]["protected"]["type"] == "http"
    assert shown["mcpServers"]["protected"]["headers"]["Authorization"].startswith("Bearer ")
    screenshot("claude-code-config")

    browser.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": live.url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    browser.find_element(By.ID, "copy-config").click()
    _text_in(browser, "#copy-status", "Copied.")
    copied = browser.execute_async_script(
        "const done = arguments[0]; navigator.clipboard.readText().then(done, e => done('ERR ' + e));"
    )
    assert json.loads(copied) == shown

    browser.find_element(By.ID, "download-config").click()
    downloaded = _downloaded(downloads)
    assert json.loads(downloaded.read_text()) == shown


def _downloaded(folder: Path) -> Path:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if not p.name.endswith(".crdownload")]
        if done:
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"nothing downloaded into {folder}")


def test_an_admin_checks_a_server_now_in_the_console(live, browser, screenshot, sdk_http_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    User.objects.create_superuser("admin", "admin@example.com", "pw-admin-123")
    server = McpServer.objects.create(name="Local SDK", path="/local-sdk", url=sdk_http_url)
    changelist = "/admin/servers/mcpserver/"
    _log_in(browser, f"{live.url}/admin/login/?next={changelist}", "admin", "pw-admin-123")
    _text_in(browser, "#result_list", "Local SDK")
    screenshot("server-list")

    browser.find_element(By.CSS_SELECTOR, f"input.action-select[value='{server.pk}']").click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("check_now")
    browser.find_element(By.CSS_SELECTOR, "button[name=index], input[name=index]").click()
    _text_in(browser, "ul.messagelist", "Local SDK: healthy")
    screenshot("checked")

    server.refresh_from_db()
    assert server.num_tools > 0
