"""Screenshot a report in headless Chromium: the top of the page, as docs/report.png shows it.

python docs/screenshot.py REPORT_HTML OUT_PNG [--full] [--width 1300] [--height 1100]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("report", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--full", action="store_true", help="the whole page, not only the top")
    p.add_argument("--width", type=int, default=1300)
    p.add_argument("--height", type=int, default=1100)
    p.add_argument("--chromium", default="/usr/bin/chromium")
    args = p.parse_args()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(args.report.resolve().as_uri(), wait_until="load")
        page.screenshot(path=str(args.out), full_page=args.full)
        browser.close()


if __name__ == "__main__":
    main()
