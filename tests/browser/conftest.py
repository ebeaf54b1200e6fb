"""A real headless Chromium (Debian's /usr/bin/chromium and chromedriver, never a downloaded
browser) for the browser tests, and the folder their screenshots go to."""

import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.peers.oauth_server import OAuthPeers, run_oauth_peers

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# Screenshots of every step, kept for CI as artifacts (.run/ is ignored by git).
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".run" / "browser-screenshots"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1280,1000",
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = not (CHROMIUM.exists() and CHROMEDRIVER.exists())
    for item in items:
        if "tests/browser/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.browser)
            if missing:
                item.add_marker(
                    pytest.mark.skip(
                        reason="needs /usr/bin/chromium and /usr/bin/chromedriver "
                        "(apt-get install -y chromium chromium-driver, or make system-deps)"
                    )
                )


@pytest.fixture
def downloads() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="browser-downloads-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def browser(downloads: Path) -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium")
    profile = tempfile.mkdtemp(prefix="browser-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    # Explicit driver path: Selenium Manager would otherwise try to download one.
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    driver.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def screenshot(browser: Any, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """Save the page as .run/browser-screenshots/<test>-<step>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)

    def take(step: str) -> Path:
        path = SCREENSHOTS / f"{test}-{step}.png"
        browser.save_screenshot(str(path))
        return path

    return take


@pytest.fixture
def oauth_peers() -> Iterator[OAuthPeers]:
    """The local authorization server and the MCP server it protects (127.0.0.1)."""
    with run_oauth_peers() as running:
        yield running
