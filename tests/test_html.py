"""The HTML report in a real headless Chromium (Debian's, driven by Playwright; no browser is downloaded).

Real results of a local scan, with markup planted where hosts and people write (a capture, a host name, a
verdict's message, a waiver): the page loads with no console error and no network request, nothing
planted runs or becomes markup, the filters show what they say, and every verdict's links lead to its
captures and its check.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

EXE = Path(sys.executable).with_name("hds-compliance")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PLANT = '<script>window.__pwned = 1</script><img src="http://127.0.0.1:9/x" onerror="window.__pwned = 2">'


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of a local scan, with markup planted in a capture, the host's name, a message, a waiver."""
    root = tmp_path_factory.mktemp("html")
    assert _run(
        "scan", "--profile", "minimal", "--skip-tag", "fs-walk", "--json", "r.json", cwd=root
    ).returncode in (0, 1)
    data = json.loads((root / "r.json").read_text())
    evil = f"host{PLANT}"
    [host] = data["hosts"]
    host["name"] = evil
    host["captures"][0]["stdout"] += PLANT
    for verdict in data["verdicts"]:
        verdict["host"] = evil
    data["verdicts"][0]["message"] += PLANT
    (root / "planted.json").write_text(json.dumps(data))
    failing = next(v for v in data["verdicts"] if v["status"] == "fail")
    waiver = {
        "id": "W-1",
        "control": failing["control"],
        "justification": PLANT,
        "risk": "low",
        "approver": PLANT,
        "created": "2026-01-01",
        "expires": "2099-01-01",
    }
    (root / "w.yaml").write_text(yaml.safe_dump({"waivers": [waiver]}))
    done = _run("report", "planted.json", "--waivers", "w.yaml", "--html", "report.html", cwd=root)
    assert done.returncode in (0, 1), done.stderr
    return root / "report.html"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Debian's chromium is missing ({CHROMIUM}): scripts/install.sh dev installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _open(browser: Any, path: Path) -> tuple[Any, list[str], list[str]]:
    page = browser.new_page()
    problems: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    return page, problems, requests


def test_the_page_loads_offline_and_nothing_planted_runs(browser: Any, page_file: Path) -> None:
    page, problems, requests = _open(browser, page_file)
    assert problems == []
    assert requests == [page_file.as_uri()]
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("img").count() == 0 and page.locator("script").count() == 1  # only its own
    assert PLANT in page.locator("#verdicts").inner_text()
    assert PLANT in page.locator("#waivers").inner_text()
    page.locator("details").first.evaluate("d => d.open = true")
    assert PLANT in page.locator("details").first.inner_text()
    page.close()


def test_the_filters_show_what_they_say(browser: Any, page_file: Path) -> None:
    page, problems, _ = _open(browser, page_file)
    rows = page.locator("#verdicts tr[data-status]")
    total = rows.count()
    assert total > 10 and page.locator("#shown").inner_text() == str(total)
    page.select_option("#f-status", "fail")
    visible = page.locator("#verdicts tr[data-status]:not(.hidden)")
    fails = page.locator('#verdicts tr[data-status="fail"]').count()
    assert 0 < fails < total and visible.count() == fails
    assert page.locator("#shown").inner_text() == str(fails)
    assert set(visible.evaluate_all("rs => rs.map(r => r.dataset.status)")) == {"fail"}
    page.select_option("#f-framework", "anssi_bp028")
    with_anssi = visible.evaluate_all("rs => rs.map(r => r.dataset.frameworks)")
    assert with_anssi and all("anssi_bp028" in f.split() for f in with_anssi)
    page.select_option("#f-status", "")
    page.select_option("#f-framework", "")
    page.select_option("#f-severity", "high")
    assert set(visible.evaluate_all("rs => rs.map(r => r.dataset.severity)")) == {"high"}
    assert problems == []
    page.close()


def test_every_verdict_links_to_its_captures_and_its_check(browser: Any, page_file: Path) -> None:
    page, _, _ = _open(browser, page_file)
    targets = page.locator("#verdicts a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert targets and all(t.startswith("#") for t in targets)
    missing = page.evaluate(
        "ids => ids.filter(i => !document.getElementById(i))", sorted({t[1:] for t in targets})
    )
    assert missing == []
    assert any(t.startswith("#cap-") for t in targets) and any(t.startswith("#check-") for t in targets)
    page.close()
