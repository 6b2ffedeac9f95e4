"""Drive the notebooks' widgets in a real browser, as a workshop participant would.

JupyterLab runs on a free local port over a temporary copy of ``notebooks/`` (nothing in the
clone changes; the data cache is the usual one, so trained checkpoints are reused), token-less,
with the room's settings (``tools/lab-overrides.json``, as ``./workshop.sh lab`` installs them)
and its own empty Jupyter folders. Debian's Chromium (``/usr/bin/chromium``, or the browser in
``LIGHTGCN_CHROMIUM``), driven by Playwright (which downloads no browser), then:

1. opens 01, runs all, moves the threshold slider away and back to 3.5 with the mouse, reads
   "13,136" (ratings of exactly 3.5) in the output, saves, finds the widget state in the
   saved file, and reopens 01 with a new kernel: the slider is drawn, no widget error;
2. opens 07, runs it up to the live picker, types "star wars", ticks two titles, and sees ten
   recommendations, each "because you liked" one of the two.

No JavaScript page error, no error output in a cell, no traceback in the server's log, no news
toast. Every process started here is stopped at the end, also on failure; on failure a
screenshot is written to ``tests/browser-screenshots/`` (git-ignored). tests/test_browser.py
runs it; ``python tests/browser_driver.py`` runs it alone (``--keep`` keeps the temporary folder).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("LIGHTGCN_CHROMIUM", "/usr/bin/chromium"))
SETTINGS = ROOT / "tools" / "lab-overrides.json"
SHOTS = ROOT / "tests" / "browser-screenshots"
# the flags this machine's Chromium needs (no sandbox as root, no network beyond localhost)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update", "--disable-quic"]
STAR_WARS = ("Star Wars: Episode IV - A New Hope (1977)",
             "Star Wars: Episode V - The Empire Strikes Back (1980)")


def why_not_available() -> str | None:
    """``None`` when the browser test can run here, else a one-line reason."""
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (requirements.txt)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """JupyterLab over a temporary copy of the notebooks; ``stop()`` ends it and its kernels."""

    def __init__(self, notebooks=("01_data_exploration.ipynb", "07_someone_new.ipynb")):
        from lightgcn_helpers.data import default_data_dir

        self.tmp = Path(tempfile.mkdtemp(prefix="lightgcn-browser-"))
        self.work = self.tmp / "notebooks"
        self.work.mkdir()
        for name in notebooks:
            shutil.copy2(ROOT / "notebooks" / name, self.work / name)
        settings = self.tmp / "lab-settings" / "overrides.d"
        settings.mkdir(parents=True)
        shutil.copy2(SETTINGS, settings / "lightgcn-workshop.json")
        env = {k: v for k, v in os.environ.items() if k not in ("CI", "LIGHTGCN_QUIET")}
        env.update(LIGHTGCN_DATA_DIR=str(default_data_dir().resolve()), PYTHONUNBUFFERED="1")
        for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                         ("JUPYTERLAB_SETTINGS_DIR", "user-settings"), ("IPYTHONDIR", "ipython"),
                         ("JUPYTERLAB_WORKSPACES_DIR", "workspaces")):
            env[var] = str(self.tmp / sub)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.tmp / "server.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
             f"--port={self.port}", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
             "--ServerApp.password=", "--ServerApp.allow_root=True",
             "--ServerApp.disable_check_xsrf=True",  # the REST calls below, token-less
             f"--ServerApp.root_dir={self.work}",
             f"--LabApp.app_settings_dir={self.tmp / 'lab-settings'}"],
            cwd=self.work, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited ({self.proc.returncode}):\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def leftover_pids(self) -> list[int]:
        """Processes whose command line names this run's temporary folder (server, kernels)."""
        pids = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and int(proc.name) != os.getpid():
                try:
                    cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
                except OSError:
                    continue
                if str(self.tmp).encode() in cmd:
                    pids.append(int(proc.name))
        return pids

    def stop(self, keep: bool = False) -> None:
        """Shut the kernels down, then the server (SIGTERM, SIGKILL after 15 s), then kill
        whatever process of this run is left; remove the temporary folder unless ``keep``."""
        try:
            req = urllib.request.Request(f"{self.url}/api/kernels")
            with urllib.request.urlopen(req, timeout=5) as resp:
                for kernel in json.load(resp):
                    urllib.request.urlopen(urllib.request.Request(
                        f"{self.url}/api/kernels/{kernel['id']}", method="DELETE"), timeout=10)
        except OSError:
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        for pid in self.leftover_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._log.close()
        if not keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------- steps in the page

def kernel_state(lab: Lab, name: str) -> str | None:
    """The execution state of the kernel of notebook ``name`` (from the server), or None."""
    with urllib.request.urlopen(f"{lab.url}/api/sessions", timeout=5) as resp:
        for session in json.load(resp):
            if session["path"].endswith(name) and session.get("kernel"):
                return session["kernel"].get("execution_state")
    return None


def stop_kernel(lab: Lab, name: str) -> None:
    """Shut down the session (and kernel) of notebook ``name``."""
    with urllib.request.urlopen(f"{lab.url}/api/sessions", timeout=5) as resp:
        for session in json.load(resp):
            if session["path"].endswith(name):
                urllib.request.urlopen(urllib.request.Request(
                    f"{lab.url}/api/sessions/{session['id']}", method="DELETE"), timeout=30)


def open_notebook(page, lab: Lab, name: str, timeout: float = 90) -> None:
    """Open ``name`` and wait for its kernel to be idle (answering JupyterLab's "Select
    Kernel" dialog, where it asks, as a participant would: with the notebook's own kernel)."""
    page.goto(f"{lab.url}/lab/tree/{name}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    deadline = time.monotonic() + timeout
    while kernel_state(lab, name) != "idle":
        if time.monotonic() > deadline:
            raise TimeoutError(f"the kernel of {name} did not start within {timeout:.0f} s")
        if dialog.count():
            dialog.get_by_role("button", name="Select", exact=True).click()
        time.sleep(0.5)


def menu(page, top: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=top).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


def select_cell(page, text: str):
    """Click the (unique) cell whose input contains ``text``; return the cell."""
    cell = page.locator(".jp-Notebook .jp-Cell").filter(
        has=page.locator(".jp-InputArea", has_text=text))
    cell.first.scroll_into_view_if_needed()
    cell.first.locator(".jp-InputPrompt").first.click()
    return cell.first


def error_outputs(page) -> list[str]:
    return page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                        has_text="Traceback").all_inner_texts()


def move_slider(page, slider, value: float, lo: float, hi: float) -> None:
    """Drag the slider's handle to ``value`` with the mouse, as a person would (scrolled into
    view first: a cell above may have grown while the notebook ran)."""
    slider.scroll_into_view_if_needed()
    track = slider.locator(".noUi-base").first.bounding_box()
    handle = slider.locator(".noUi-handle").first.bounding_box()
    x = track["x"] + (value - lo) / (hi - lo) * track["width"]
    y = handle["y"] + handle["height"] / 2
    page.mouse.move(handle["x"] + handle["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(x, y, steps=8)
    page.mouse.up()


def check_notebook_01(page, lab: Lab, say) -> None:
    open_notebook(page, lab, "01_data_exploration.ipynb")
    menu(page, "Run", "Run All Cells")
    cell = page.locator(".jp-Cell").filter(has=page.locator(".widget-slider"))
    out = cell.locator(".jp-OutputArea").first
    out.get_by_text("of which exactly 3.5: 13,136").wait_for(timeout=90_000)
    page.get_by_text("This notebook ran in").wait_for(timeout=90_000)
    say("01 ran; the slider shows 3.5 (13,136 ratings of exactly 3.5)")
    slider = cell.locator(".widget-slider").first
    slider.scroll_into_view_if_needed()
    wrong = []
    for value, expected in ((2.0, "of which exactly 2.0: 7,551"),
                            (3.5, "of which exactly 3.5: 13,136")):
        move_slider(page, slider, value, 0.5, 5.0)
        slider.locator(".widget-readout", has_text=f"{value:.2f}").wait_for(timeout=20_000)
        try:
            out.get_by_text(expected).wait_for(timeout=20_000)
            say(f"slider moved to {value}: the output reads {expected!r}")
        except Exception:  # playwright's TimeoutError
            wrong.append(f"moved to {value}, the output does not read {expected!r} but:\n"
                         f"{out.inner_text()}")
            say(wrong[-1])
    assert not wrong, "the slider's values are off their grid:\n" + "\n".join(wrong)
    page.keyboard.press("Control+s")
    saved = lab.work / "01_data_exploration.ipynb"
    deadline = time.monotonic() + 20
    state = {}
    while time.monotonic() < deadline and not state:
        state = json.loads(saved.read_text()).get("metadata", {}).get("widgets", {})
        time.sleep(0.5)
    assert "application/vnd.jupyter.widget-state+json" in state, "no widget state saved in 01"
    say("saved: the widget state is in the notebook file")
    # reopened with a new kernel and nothing run: the saved slider is drawn, not an error
    stop_kernel(lab, "01_data_exploration.ipynb")
    open_notebook(page, lab, "01_data_exploration.ipynb")
    page.locator(".jp-Cell .widget-slider").first.wait_for(timeout=30_000)
    assert page.get_by_text("Error displaying widget").count() == 0, "01 reopened: widget error"
    say("reopened with a new kernel: the slider is drawn from the saved state")


def because_you_liked(out) -> list[str]:
    """The "because you liked" column of the (first) table in an output area."""
    table = out.locator("table").first
    if not table.count():
        return []
    head = [t.strip() for t in table.locator("thead tr").first.locator("th").all_inner_texts()]
    if "because you liked" not in head:
        return []
    col = head.index("because you liked") - 1  # the first header cell is the index's
    return [row.locator("td").nth(col).inner_text().strip()
            for row in table.locator("tbody tr").all()]


def check_notebook_07(page, lab: Lab, say) -> None:
    open_notebook(page, lab, "07_someone_new.ipynb")
    # select the cell just below the picker, then run everything above it
    select_cell(page, "If ticking stops updating")
    menu(page, "Run", "Run All Above Selected Cell")
    search = page.locator("input[placeholder='part of a title, e.g. star wars']")
    # a fresh clone trains two models first (about 2 minutes on 2 idle cores; cached later):
    # 15 minutes leave room for a loaded CI machine
    search.wait_for(timeout=900_000)
    picker = page.locator(".jp-Cell").filter(has=search).first
    out = picker.locator(".jp-OutputArea").first
    out.get_by_text("because you liked").first.wait_for(timeout=30_000)  # MY_LIKES' top 10
    say("07 ran to the picker (MY_LIKES' top 10 shown)")
    picker.get_by_role("button", name="clear selection").click()
    out.get_by_text("Tick at least one movie").wait_for(timeout=20_000)
    search.click()
    search.press_sequentially("star wars", delay=40)
    for title in STAR_WARS:
        box = picker.locator(".widget-checkbox", has_text=title).locator("input").first
        box.wait_for(timeout=20_000)
        box.check()
    picker.get_by_text("2 selected").wait_for(timeout=20_000)
    liked = {re.sub(r" \(.*", "", t) for t in STAR_WARS}  # the table shows titles without year
    deadline, because = time.monotonic() + 30, []
    while time.monotonic() < deadline:
        because = because_you_liked(out)
        if len(because) == 10 and set(because) <= liked:
            break
        time.sleep(0.5)
    assert len(because) == 10 and set(because) <= liked, (
        f"after ticking {STAR_WARS}, 'because you liked' reads {because}:\n{out.inner_text()}")
    say("ticked two Star Wars films: 10 recommendations, each because you liked one of them")


def run(keep: bool = False, say=print) -> None:
    """The whole check; raises AssertionError (or a timeout) on failure."""
    from playwright.sync_api import sync_playwright

    reason = why_not_available()
    if reason:
        raise RuntimeError(reason)
    t0 = time.monotonic()
    lab = Lab()
    page_errors: list[str] = []
    page = None
    try:
        lab.wait_ready()
        say(f"JupyterLab answered on port {lab.port} after {time.monotonic() - t0:.0f} s")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.on("pageerror", lambda err: page_errors.append(str(err)))
                try:
                    check_notebook_01(page, lab, say)
                    check_notebook_07(page, lab, say)
                    toast = page.get_by_text("official Jupyter news")
                    assert toast.count() == 0, "JupyterLab showed the news toast"
                    errors = error_outputs(page)
                    assert not errors, f"a cell failed:\n{errors[0]}"
                except BaseException:
                    SHOTS.mkdir(exist_ok=True)
                    shot = SHOTS / f"failure-{time.strftime('%Y%m%d-%H%M%S')}.png"
                    page.screenshot(path=str(shot), full_page=False)
                    say(f"screenshot of the failure: {shot}")
                    raise
            finally:
                browser.close()
        assert not page_errors, f"JavaScript errors in the page: {page_errors}"
        log = lab.log()
        assert "Traceback" not in log, f"the server logged a traceback:\n{log[-3000:]}"
    finally:
        lab.stop(keep=keep)
        left = lab.leftover_pids()
        assert not left, f"processes of the run still alive: {left}"
    say(f"browser check passed in {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    run(keep="--keep" in sys.argv)
