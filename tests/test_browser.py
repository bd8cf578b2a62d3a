"""The workbook as a person sees it: JupyterLab from the project's environment, driven in Debian's
Chromium by Playwright. Executed case and summary notebooks show the verdict, the cited evidence
and every plot; the investigate notebook, replaying a stored bundle, runs from the UI (Run All)
and shows its verdict; STATUS.html shows its tables and every plot.

No engine needed. Without Chromium or Playwright the tests skip, which CI
(REDFIX_REQUIRE_ENGINE=1) turns into failures. Screenshots go to $REDFIX_ARTIFACTS (default
tests/artifacts/, git-ignored)."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "outputs" / "example"
CHROMIUM = os.environ.get("REDFIX_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("REDFIX_ARTIFACTS") or ROOT / "tests" / "artifacts")
CASE = "lab-gitea"                      # a deterministic recipe failure: cited logs + a static rule
TIMEOUT_MS = 60_000
NB = ".jp-NotebookPanel:not(.lm-mod-hidden)"    # the notebook in front (a restored layout may hold others)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _plots_in(nb_path: Path) -> int:
    nb = json.loads(nb_path.read_text())
    return sum(1 for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
               if {"image/png", "image/svg+xml"} & set(o.get("data", {})))


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (scripts/setup.sh installs Debian's chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        pytest.skip(f"playwright is not installed: {e}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory, browser):
    """JupyterLab on 127.0.0.1:<free port> with a generated token, serving a copy of
    outputs/example and a replay-parametrized investigate.ipynb beside a copied bundle."""
    import papermill as pm
    root = tmp_path_factory.mktemp("jlab")
    shutil.copytree(EXAMPLE, root / "example")
    replay = root / "replay"
    shutil.copytree(EXAMPLE / CASE, replay / CASE)
    pm.execute_notebook(str(ROOT / "notebooks" / "investigate.ipynb"), str(replay / "investigate.ipynb"),
                        parameters={"mode": "replay", "bundle_dir": CASE}, prepare_only=True, progress_bar=False)
    # private Jupyter dirs; the notebook is rendered whole (no windowing) and no news pop-up covers it
    settings = root / ".settings"
    for ext, plugin, value in (("notebook-extension", "tracker", {"windowingMode": "none", "autoStartDefaultKernel": True}),
                               ("apputils-extension", "notification", {"fetchNews": "false", "checkForUpdates": False})):
        f = settings / "@jupyterlab" / ext / f"{plugin}.jupyterlab-settings"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(value))
    token, port = uuid.uuid4().hex, _free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / ".jcfg"), JUPYTER_RUNTIME_DIR=str(root / ".jrt"),
               JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(root / ".ws"))
    log = open(root / "jupyterlab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
                             f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
                             "--ServerApp.port_retries=0", "--KernelManager.transport_encryption=auto",
                             f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={root / '.ws'}"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("JupyterLab did not start:\n" + (root / "jupyterlab.log").read_text()[-3000:])
            time.sleep(0.5)
    yield {"root": root, "base": base, "token": token}
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.copy(root / "jupyterlab.log", ARTIFACTS / "jupyterlab.log")


def _open(browser, lab, rel: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{lab['base']}/lab/workspaces/{uuid.uuid4().hex[:8]}/tree/{rel}?token={lab['token']}")
    page.locator(f"{NB} .jp-Notebook .jp-Cell").first.wait_for()
    page.locator(f"{NB} .jp-OutputArea-output").first.wait_for()
    return page


def _assert_plots_render(page, expected: int, what: str):
    imgs = page.locator(f"{NB} .jp-RenderedImage img, {NB} .jp-RenderedSVG svg")
    page.wait_for_function(
        f"n => document.querySelectorAll('{NB} .jp-RenderedImage img, {NB} .jp-RenderedSVG svg').length >= n",
        arg=expected)
    assert imgs.count() == expected, f"{what}: {imgs.count()} plots rendered, the notebook has {expected}"
    for i in range(expected):
        el = imgs.nth(i)
        el.scroll_into_view_if_needed()
        ok = el.evaluate("e => e.tagName.toLowerCase() === 'svg' ? e.getBoundingClientRect().width > 50 "
                         ": (e.complete && e.naturalWidth > 50 && e.getBoundingClientRect().width > 50)")
        assert ok, f"{what}: plot {i} did not render (not decoded or zero size)"


def test_case_notebook_shows_verdict_cited_evidence_and_every_plot(browser, lab):
    v = json.loads((EXAMPLE / CASE / "verdict.json").read_text())
    page = _open(browser, lab, f"example/{CASE}.ipynb")
    nb = page.locator(f"{NB} .jp-Notebook")
    verdict_out = nb.locator(".jp-OutputArea-output", has_text="Verdict:").first
    verdict_out.wait_for()
    page.keyboard.press("Control+b")                  # hide the file browser: the notebook gets the width
    verdict_out.evaluate("e => e.closest('.jp-Cell').previousElementSibling.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "case-notebook-verdict.png"))
    text = nb.inner_text()
    assert f"{v['cause']} / {v['sub_cause']}" in text and v["flake_or_genuine"] in text
    for ev in v["evidence_cited"]:                       # every cited item is named on the page
        assert ev in text, f"cited evidence {ev} not shown"
    assert "FOR (cited)" in text                        # the for/against table rendered as a table
    assert nb.locator("table").count() >= 4
    link = nb.locator(f"a[href*='/files/example/{CASE}/runs/']").first   # failing lines link into the bundle
    target = link.inner_text().split(":")[0].rsplit("/", 1)[-1]
    assert link.count() == 1 and target
    for s in v["cold_verify"]:
        assert s["how"] in text
    _assert_plots_render(page, _plots_in(EXAMPLE / f"{CASE}.ipynb"), f"{CASE}.ipynb")
    page.locator(f"{NB} .jp-RenderedImage img").first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "case-notebook-timeline.png"))
    nb.locator("table", has_text="FOR (cited)").first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "case-notebook-evidence.png"))
    link.click()                                          # the link opens the log inside JupyterLab
    page.locator(".lm-TabBar-tabLabel", has_text=target).first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "case-notebook-log-opened.png"))
    page.close()


def test_summary_notebook_shows_every_case_and_plot(browser, lab):
    vs = [json.loads(p.read_text()) for p in sorted(EXAMPLE.glob("*/verdict.json"))]
    page = _open(browser, lab, "example/summary.ipynb")
    nb = page.locator(f"{NB} .jp-Notebook")
    nb.locator(".jp-RenderedMarkdown", has_text="Causes across cases").first.wait_for()
    text = nb.inner_text()
    for v in vs:
        assert v["recipe"] in text and (v["sub_cause"] or v["cause"]) in text
    assert "pending" in text or "verified" in text
    for v in vs:           # JupyterLab resolves the relative links into its own file URLs
        assert nb.locator(f"a[href*='/files/example/{v['case']}.ipynb']").count() >= 1
    _assert_plots_render(page, _plots_in(EXAMPLE / "summary.ipynb"), "summary.ipynb")
    nb.locator(".jp-RenderedMarkdown", has_text="Cases").first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "summary-notebook.png"))
    page.close()


def test_investigate_notebook_runs_all_from_the_ui_and_shows_the_verdict(browser, lab):
    stored = (EXAMPLE / CASE / "verdict.json").read_bytes()
    vf = lab["root"] / "replay" / CASE / "verdict.json"
    vf.unlink()                                           # the replay must write it again
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{lab['base']}/lab/workspaces/{uuid.uuid4().hex[:8]}/tree/replay/investigate.ipynb?token={lab['token']}")
    page.locator(f"{NB} .jp-Notebook .jp-Cell").first.wait_for()
    page.locator(f"{NB} .jp-Notebook-ExecutionIndicator").first.wait_for()
    nb = page.locator(f"{NB} .jp-Notebook")
    done = nb.locator(".jp-OutputArea-output", has_text="nothing asked").first     # the last cell's output
    accept = page.locator(".jp-Dialog .jp-mod-accept")       # should JupyterLab still ask for a kernel: the default
    page.wait_for_timeout(1000)
    deadline, run, last, tries = time.monotonic() + 120, True, 0.0, 0
    started = nb.locator(".jp-InputPrompt", has_text=re.compile(r"\[(\*|\d+)\]"))
    while not done.is_visible():
        if accept.count():
            accept.first.click()
            run = True                                        # a Run All given before the kernel may be lost
        if run or (not started.count() and time.monotonic() - last > 8):   # nothing started: ask again
            tries += 1
            if tries <= 2:
                page.locator(".lm-MenuBar-item", has_text="Run").first.click()
                page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()
            else:                                             # a kernel that never answers: restart it
                page.locator(".lm-MenuBar-item", has_text="Kernel").first.click()
                page.locator(".lm-Menu-item", has_text="Restart Kernel and Run All Cells").first.click()
            run, last = False, time.monotonic()
        if time.monotonic() > deadline:
            page.screenshot(path=str(ARTIFACTS / "investigate-run-all-FAILED.png"))
            shutil.copy(lab["root"] / "jupyterlab.log", ARTIFACTS / "jupyterlab-FAILED.log")
            pytest.fail("Run All did not reach the last cell in 120 s (screenshot investigate-run-all-FAILED.png)")
        page.wait_for_timeout(250)
    nb.locator(".jp-OutputArea-output", has_text="Verdict:").first.wait_for()
    text = nb.inner_text()
    assert "Traceback" not in text
    v = json.loads(stored)
    assert "Verdict:" in text and f"{v['cause']} / {v['sub_cause']}" in text
    assert vf.read_bytes() == stored                      # replay re-classified byte for byte
    _assert_plots_render(page, _plots_in(EXAMPLE / f"{CASE}.ipynb"), "investigate.ipynb after Run All")
    nb.locator(".jp-OutputArea-output", has_text="Verdict:").first.evaluate(
        "e => e.closest('.jp-Cell').scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "investigate-run-all.png"))
    page.close()


def test_status_html_renders_tables_links_and_every_plot(browser):
    html = (EXAMPLE / "STATUS.html").read_text()
    n_plots = html.count("data:image/png;base64,")
    vs = [json.loads(p.read_text()) for p in sorted(EXAMPLE.glob("*/verdict.json"))]
    assert n_plots >= len(vs) + 1 and "\x1b" not in html
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto((EXAMPLE / "STATUS.html").as_uri())
    imgs = page.locator("img")
    assert imgs.count() == n_plots
    for i in range(n_plots):
        assert imgs.nth(i).evaluate("e => e.complete && e.naturalWidth > 100 && e.getBoundingClientRect().width > 300"), \
            f"STATUS.html plot {i} did not render at a readable size"
    assert page.locator("table").count() >= 4 and page.locator("pre").count() == 0
    assert page.locator("td.v-genuine, td.v-flake, td.v-unknown").count() >= len(vs)
    for v in vs:
        assert page.locator(f"a[href='{v['case']}.ipynb']").count() == 1
        assert page.locator(f"a[href='{v['case']}/']").count() == 1
    page.screenshot(path=str(ARTIFACTS / "status-html.png"), full_page=True)
    page.close()
