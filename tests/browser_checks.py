"""Open an HTML report in headless Chromium (Playwright driving the system `chromium` of the OS package manager;
Playwright's own browser download is not needed) and check what a reader would notice: console errors, images
that do not load, links to configs and logs that lead nowhere, a verdict that is not on the first screen.

Also a script: `python -m tests.browser_checks REPORT.html [--screenshot PNG]` prints the checks (and keeps a
screenshot of the first screen, as in docs/).
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}


def chromium_path() -> str | None:
    """The system Chromium, if installed."""
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


@dataclass
class PageCheck:
    console_errors: list[str] = field(default_factory=list)
    images: int = 0
    broken_images: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # resolved URLs of the links to files
    broken_links: list[str] = field(default_factory=list)
    verdict_box: dict | None = None  # the verdict's bounding box on the first screen
    verdict_text: str = ""
    plan_row: str | None = None  # the plan's row as a reader sees it ("" when hidden); None: the page has none

    @property
    def verdict_on_first_screen(self) -> bool:
        box = self.verdict_box
        return bool(box) and box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"] and box["width"] > 0


def check_report(html: Path, screenshot: Path | None = None) -> PageCheck:
    from playwright.sync_api import Error, sync_playwright

    result = PageCheck()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.on("console", lambda msg: result.console_errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: result.console_errors.append(str(exc)))
            page.goto(Path(html).resolve().as_uri(), wait_until="load")
            images = page.eval_on_selector_all("img", "els => els.map(e => [e.alt, e.complete, e.naturalWidth])")
            result.images = len(images)
            result.broken_images = [alt for alt, complete, width in images if not (complete and width > 0)]
            result.verdict_box = page.locator("#verdict").bounding_box()
            result.verdict_text = page.locator("#verdict").inner_text()
            if page.locator("#plan-row").count():
                result.plan_row = page.locator("#plan-row").inner_text() if page.locator("#plan-row").is_visible() \
                    else ""
            if screenshot is not None:
                page.screenshot(path=str(screenshot))
            result.links = page.eval_on_selector_all(
                "a[href]", "els => els.map(e => e.href).filter(h => h.startsWith('file:'))")
            viewer = browser.new_page()
            for url in dict.fromkeys(result.links):
                try:
                    viewer.goto(url, wait_until="load")
                except Error as exc:
                    result.broken_links.append(f"{url}: {exc.message.splitlines()[0]}")
        finally:
            browser.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--screenshot", type=Path, help="Keep a PNG of the first screen (1280x800).")
    args = parser.parse_args()
    check = check_report(args.report, args.screenshot)
    print(f"console errors: {check.console_errors or 'none'}")
    print(f"images: {check.images}, not loaded: {check.broken_images or 'none'}")
    print(f"links to files: {len(check.links)}, not resolving: {check.broken_links or 'none'}")
    print(f"verdict on the first screen: {check.verdict_on_first_screen} ({check.verdict_box})")


if __name__ == "__main__":
    main()
