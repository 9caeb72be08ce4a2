"""Take console screenshots for the README from a running Vigil (`make run`).

usage: .venv/bin/python docs/screenshots.py http://127.0.0.1:8000 USER PASSWORD path=name[@selector] ...

With @selector, that element is clicked first and the shot waits for the network to settle
(e.g. `/findings/=finding-detail@a.findinglink` opens the first finding's side panel).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]


def main() -> None:
    base, username, password, *shots = sys.argv[1:]
    out = Path(__file__).parent / "img"
    out.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{base}/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        for shot in shots:
            path, name = shot.split("=", 1)
            name, _, click = name.partition("@")
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            if click:
                page.locator(click).first.click()
                page.wait_for_load_state("networkidle")
                page.wait_for_timeout(300)
            page.screenshot(path=str(out / f"{name}.png"), full_page=False)
            print(out / f"{name}.png")
        browser.close()


if __name__ == "__main__":
    main()
