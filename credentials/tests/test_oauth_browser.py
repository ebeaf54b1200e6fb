"""The admin's Connect and Disconnect buttons in a real headless Chromium."""

import shutil
import tempfile
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from credentials.tests.conftest import connect, credential_headers, list_tool_names, shared_grant
from servers.models import McpServer
from servers.services import server_check

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs /usr/bin/chromium and /usr/bin/chromedriver (apt-get install chromium "
        "chromium-driver)",
    ),
]


@pytest.fixture
def browser():
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="needs selenium (pip install selenium)"
    )
    profile = tempfile.mkdtemp(prefix="oauth-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # Explicit driver path: Selenium Manager would otherwise try to download one.
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _log_in(browser, login_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(login_url)
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("pw-admin-123")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, 15).until(expected_conditions.url_contains(login_url.split("next=")[1]))


def test_it_connects_a_server_through_the_admin_connect_button(
    live_server, browser, peers, settings
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    settings.MCPCONTROL_PUBLIC_URL = live_server.url
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    User.objects.create_superuser("admin", "admin@example.com", "pw-admin-123")
    server = McpServer.objects.create(
        name="Protected", path="/protected", url=peers.mcp_url, auth_type=McpServer.AuthType.OAUTH
    )
    assert server_check(server_id=server.pk).outcome == "auth_required"

    change = f"/admin/servers/mcpserver/{server.pk}/change/"
    _log_in(browser, f"{live_server.url}/admin/login/?next={change}")
    browser.find_element(By.ID, "oauth-connect").click()  # → AS /authorize → /oauth/callback
    WebDriverWait(browser, 20).until(
        expected_conditions.text_to_be_present_in_element(
            (By.CSS_SELECTOR, "ul.messagelist"), "Connected"
        )
    )

    assert browser.current_url.endswith(change)
    assert browser.find_element(By.ID, "oauth-connect").text == "Reconnect"
    server = McpServer.objects.get(pk=server.pk)
    assert shared_grant(server) is not None
    assert list_tool_names(server.url, credential_headers(server=server)) == ["echo"]
    assert server_check(server_id=server.pk).outcome == "healthy"


def test_it_disconnects_a_server_through_the_admin_disconnect_button(
    live_server, browser, peers, settings
):
    """The button sits inside the change form: it must POST, CSRF token included, to the
    disconnect view rather than submit the form as a save."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]  # testserver: connect()
    admin = User.objects.create_superuser("admin", "admin@example.com", "pw-admin-123")
    server = McpServer.objects.create(
        name="Protected", path="/protected", url=peers.mcp_url, auth_type=McpServer.AuthType.OAUTH
    )
    connect(server=server, user=admin)
    refresh = shared_grant(server).refresh_secret.reveal()

    change = f"/admin/servers/mcpserver/{server.pk}/change/"
    _log_in(browser, f"{live_server.url}/admin/login/?next={change}")
    browser.find_element(By.ID, "oauth-disconnect").click()
    WebDriverWait(browser, 20).until(
        expected_conditions.text_to_be_present_in_element(
            (By.CSS_SELECTOR, "ul.messagelist"), "Disconnected Protected."
        )
    )

    assert browser.current_url.endswith(change)
    assert browser.find_element(By.ID, "oauth-connect").text == "Connect"
    assert not browser.find_elements(By.ID, "oauth-disconnect")
    assert shared_grant(server) is None
    assert refresh in peers.provider.revoked
