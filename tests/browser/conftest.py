"""The dashboard driven as a person uses it: headless Chromium (Debian's ``chromium``
package) through Playwright's Python package, launched with ``executable_path`` (Playwright's
own browser download is never used).

Without Chromium or Playwright the tests are skipped with the reason; with
``THEAZO_REQUIRE_BROWSER=1`` (set by CI) they fail instead. Each test's last screenshot goes
to ``$THEAZO_TEST_ARTIFACTS/browser`` (default ``.artifacts/browser`` in the checkout, which
git ignores), never into the repository's files.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.fake_models import FakeProvider, gateway_options
from tests.support.server import REPO, ServerProcess, new_api_key

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, ViewportSize

CHROMIUM = os.environ.get("THEAZO_CHROMIUM", "/usr/bin/chromium")
WIDE: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


def browser_required() -> bool:
    return os.environ.get("THEAZO_REQUIRE_BROWSER", "") not in ("", "0")


def browser_missing() -> str | None:
    """None when Chromium and Playwright are installed, else why not."""
    if shutil.which(CHROMIUM) is None:
        return (
            f"no Chromium at {CHROMIUM}: install Debian's chromium package "
            "(scripts/install-test-needs does, as root)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright's Python package is not installed: pip install -e '.[test]'"
    return None


def artifacts_dir() -> Path:
    root = Path(os.environ.get("THEAZO_TEST_ARTIFACTS", REPO / ".artifacts"))
    folder = root / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    reason = browser_missing()
    if reason is not None:
        if browser_required():
            pytest.fail(f"THEAZO_REQUIRE_BROWSER is set, but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    """Two API keys, each in a project of its own."""
    return new_api_key(), new_api_key()


@pytest.fixture(scope="module")
def server(
    browser: Browser,
    tmp_path_factory: pytest.TempPathFactory,
    keys: tuple[str, str],
    openai_fake: FakeProvider,
) -> Iterator[ServerProcess]:
    """A server whose model gateway forwards to a fake OpenAI (tasks' tokens to show)."""
    folder = tmp_path_factory.mktemp("dashboard")
    gateway, env = gateway_options(openai_fake, folder)
    with ServerProcess.start(folder, api_keys=list(keys), args=gateway, env=env) as node:
        yield node


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser profile (no cookies) at desktop width; its screen is kept at the end."""
    context = browser.new_context(viewport=WIDE)
    context.set_default_timeout(15_000)
    opened = context.new_page()
    try:
        yield opened
    finally:
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        opened.screenshot(path=str(artifacts_dir() / f"{name}.png"), full_page=True)
        context.close()
