"""The public site in a real browser: Debian's chromium driven by Playwright against a real
uvicorn server over a temporary SQLite database with published sample data.

- the journey search → profile → record on a desktop and a phone viewport (screenshots in
  test-artifacts/);
- axe-core finds no serious or critical violation on home, search, profile and a listing;
- Lighthouse (offline) scores accessibility ≥ 0.95, best practices ≥ 0.95, SEO ≥ 0.9 there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import select

from tests.servers import CHROME_ARGS, CHROMIUM, chromium, portal_server

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
LIGHTHOUSE = ROOT / "node_modules" / ".bin" / "lighthouse"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 360, "height": 740}}
THRESHOLDS = {"accessibility": 0.95, "best-practices": 0.95, "seo": 0.9}


def _node_tools() -> None:
    if not AXE.exists() or not LIGHTHOUSE.exists():
        subprocess.run(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=ROOT, check=True)


def _publish_sample(url: str, workdir: Path) -> dict[str, str]:
    """Sample files published through the pipeline, the search index brought up to date; returns
    the entity and record the journey visits."""
    from publishing.commit import ENTITIES, RECORDS
    from publishing.db import make_engine, upgrade
    from publishing.publish import publish
    from publishing.sample import generate

    engine = make_engine(url)
    upgrade(engine)
    paths = generate(workdir / "sample", 400)
    result = publish(
        sorted(paths.values()), engine=engine, show_progress=False, accept_partial=True
    )
    assert result.published
    from publishing.search.sync import sync

    sync(engine)
    with engine.connect() as conn:
        # an entity with a penalty and a credit mark, so the profile has a timeline to show
        row = conn.execute(
            select(ENTITIES.c.id, ENTITIES.c.name, RECORDS.c.id.label("record"))
            .join(RECORDS, RECORDS.c.entity_id == ENTITIES.c.id)
            .where(RECORDS.c.kind == "penalty", RECORDS.c.status == "active")
            .order_by(ENTITIES.c.id)
            .limit(1)
        ).one()
    engine.dispose()
    return {"uscc": row.id, "name": row.name, "record": row.record}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium fonts-wqy-microhei")
    _node_tools()
    workdir = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{workdir / 'disclosure.db'}"
    sample = _publish_sample(url, workdir)
    env = {"DISCLOSURE_DATABASE_URL": url, "DISCLOSURE_DATA_DIR": str(workdir)}
    with portal_server(env, start_timeout=10, stop_timeout=10) as (base, _):
        yield {"base": base, **sample}


@pytest.fixture(scope="module")
def browser():
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium() as launched:
        yield launched


def _pages(server) -> dict[str, str]:
    base = server["base"]
    return {
        "home": f"{base}/",
        "search": f"{base}/search?q={quote(server['name'][:4])}",
        "profile": f"{base}/entities/{server['uscc']}",
        "listing": f"{base}/penalties",
    }


def _assert_fits(page) -> None:
    """No horizontal scrolling of the page itself (wide tables scroll inside their region)."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], (page.url, width)


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_search_profile_record_journey(server, browser, viewport):
    context = browser.new_context(viewport=VIEWPORTS[viewport], locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server["base"] + "/")
    page.get_by_label("企业名称、统一社会信用代码或行政处罚决定书文号").fill(server["name"])
    page.get_by_role("button", name="查询").first.click()
    page.wait_for_url("**/search?**")
    assert page.locator("h1").inner_text() == "信用查询"
    page.screenshot(path=ARTIFACTS / f"search-{viewport}.png", full_page=True)
    _assert_fits(page)
    page.locator(f'.hits a[href="/entities/{server["uscc"]}"]').first.click()
    page.wait_for_url(f"**/entities/{server['uscc']}")
    assert page.locator("h1").inner_text() == server["name"]
    assert page.get_by_text(server["uscc"]).first.is_visible()
    page.screenshot(path=ARTIFACTS / f"profile-{viewport}.png", full_page=True)
    _assert_fits(page)
    page.emulate_media(media="print")  # the print stylesheet drops the site's chrome
    assert page.locator(".site-header").is_hidden() and page.locator("h1").is_visible()
    page.emulate_media(media="screen")
    page.locator(f'.timeline a[href="/records/{server["record"]}"]').click()
    page.wait_for_url(f"**/records/{server['record']}")
    assert "行政处罚" in page.locator("h1").inner_text()
    page.screenshot(path=ARTIFACTS / f"record-{viewport}.png", full_page=True)
    _assert_fits(page)
    # keyboard users: the first Tab reaches the skip link, which moves focus to <main>
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "跳到主要内容"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    context.close()
    assert errors == []


def test_axe_finds_no_serious_violations(server, browser):
    # bypass_csp: axe is injected as an inline script, which the site's CSP rightly refuses
    context = browser.new_context(viewport=VIEWPORTS["desktop"], bypass_csp=True)
    page = context.new_page()
    found = {}
    for name, url in _pages(server).items():
        page.goto(url)
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']} ×{len(v['nodes'])}"
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        found[name] = bad
        print(f"axe {name}: {len(result['violations'])} violations, serious/critical: {bad}")
    context.close()
    assert found == {name: [] for name in found}


def _lighthouse(url: str, out: Path) -> dict[str, float]:
    subprocess.run(
        [
            str(LIGHTHOUSE),
            url,
            "--output=json",
            f"--output-path={out}",
            "--quiet",
            "--chrome-flags=" + " ".join(CHROME_ARGS),
            "--only-categories=accessibility,best-practices,seo",
        ],
        env={**os.environ, "CHROME_PATH": CHROMIUM},
        check=True,
        timeout=120,
    )
    report = json.loads(out.read_text())
    return {k: c["score"] for k, c in report["categories"].items()}


def test_lighthouse_scores(server, tmp_path):
    pages = _pages(server)
    with ThreadPoolExecutor(max_workers=len(pages)) as pool:
        futures = {
            name: pool.submit(_lighthouse, url, tmp_path / f"{name}.json")
            for name, url in pages.items()
        }
        scores = {name: f.result() for name, f in futures.items()}
    for name, s in scores.items():
        print(f"lighthouse {name}: " + "  ".join(f"{k} {v:.2f}" for k, v in s.items()))
        shutil.copy(tmp_path / f"{name}.json", ARTIFACTS / f"lighthouse-{name}.json")
    for name, s in scores.items():
        for category, minimum in THRESHOLDS.items():
            assert s[category] >= minimum, (name, category, s[category])
