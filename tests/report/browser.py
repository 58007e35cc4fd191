"""Open an HTML report in Debian's chromium (headless), driven by Playwright with the system browser.

Never downloads a browser (no ``playwright install``). Used by the browser test and, as a script, to take
the README's screenshot: ``python -m tests.report.browser REPORT.html OUT.png``.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class OpenedReport:
    page: Any  # playwright.sync_api.Page
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    requests: list[str] = field(default_factory=list)  # every URL the page asked for


def chromium_available() -> bool:
    return Path(CHROMIUM).is_file()


@contextlib.contextmanager
def open_report(path: Path, width: int = 1280, height: int = 900) -> Iterator[OpenedReport]:
    """Load ``path`` with the network cut off (any request but the file itself is aborted and recorded)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            opened = OpenedReport(page)
            page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: opened.errors.append(str(exc)))

            def route(request_route: Any) -> None:
                opened.requests.append(request_route.request.url)
                if request_route.request.url.startswith("file://"):
                    request_route.continue_()
                else:
                    request_route.abort()

            page.route("**/*", route)
            page.goto(path.resolve().as_uri(), wait_until="load")
            page.wait_for_selector(".js-plotly-plot .main-svg")
            yield opened
        finally:
            browser.close()


def screenshot(report: Path, out: Path) -> None:
    """The top of the report (cards and charts) as a PNG."""
    with open_report(report, width=1280, height=1000) as opened:
        if opened.errors:
            raise RuntimeError(f"the report logged errors: {opened.errors}")
        opened.page.screenshot(path=str(out), full_page=False)


if __name__ == "__main__":
    screenshot(Path(sys.argv[1]), Path(sys.argv[2]))
