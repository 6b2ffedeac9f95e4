"""The widgets as a workshop participant uses them: JupyterLab in Debian's Chromium, driven by
Playwright (tests/browser_driver.py says what it checks). Skipped, with the reason, where no
browser is installed, e.g. on a participant's laptop; CI installs Chromium (.ci/run)."""
import time

import browser_driver
import pytest


def test_widgets_work_in_a_real_browser():
    reason = browser_driver.why_not_available()
    if reason:
        pytest.skip(f"browser test skipped: {reason}")
    start = time.monotonic()
    browser_driver.run(say=lambda message: print(f"[{time.monotonic() - start:5.0f} s] {message}",
                                                 flush=True))
