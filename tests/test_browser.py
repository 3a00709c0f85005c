"""The public site in a real browser: Debian's chromium driven by Playwright against a real
uvicorn server over a temporary SQLite database with published sample data.

- the journey search → profile → record on a desktop and a phone viewport (screenshots in
  test-artifacts/);
- axe-core finds no serious or critical violation on home, search, profile and a listing;
- on a phone, keyboard focus on /search goes the way the page reads (results, then facets), and
  the count tables keep district names whole and scroll inside their labelled region;
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

# one worker runs the module: one portal server and one browser, started once
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
LIGHTHOUSE = ROOT / "node_modules" / ".bin" / "lighthouse"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 360, "height": 740}}
THRESHOLDS = {"accessibility": 0.95, "best-practices": 0.95, "seo": 0.9}


def _node_tools() -> None:
    if not AXE.exists() or not LIGHTHOUSE.exists():
        subprocess.run(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=ROOT, check=True)


def _publish_sample(url: str, workdir: Path, entities: int = 400) -> dict[str, str]:
    """Sample files published through the pipeline, the search index brought up to date; returns
    the entity and record the journey visits."""
    from publishing.commit import ENTITIES, RECORDS
    from publishing.db import make_engine, upgrade
    from publishing.publish import publish
    from publishing.sample import generate

    engine = make_engine(url)
    upgrade(engine)
    paths = generate(workdir / "sample", entities)
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
    with portal_server(env, stop_timeout=10) as (base, _):
        yield {"base": base, **sample}


@pytest.fixture(scope="module")
def statistics_server(tmp_path_factory):
    """A second site whose rules publish 信用风险分类 only as statistics (public = false): the
    /credit-marks page has the scheme's count table."""
    from publishing.rules import DEFAULT_RULES_FILE, load_rules
    from publishing.settings import get_settings

    workdir = tmp_path_factory.mktemp("statistics")
    rules = workdir / "rules.toml"
    public = '[credit_mark.schemes."信用风险分类"]\npublic = true'
    text = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
    assert public in text
    rules.write_text(text.replace(public, public.replace("true", "false")), encoding="utf-8")
    url = f"sqlite:///{workdir / 'disclosure.db'}"
    env = {
        "DISCLOSURE_DATABASE_URL": url,
        "DISCLOSURE_DATA_DIR": str(workdir),
        "DISCLOSURE_RULES_FILE": str(rules),
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DISCLOSURE_RULES_FILE", str(rules))
        get_settings.cache_clear()
        load_rules.cache_clear()
        try:
            _publish_sample(url, workdir, 150)
        finally:
            get_settings.cache_clear()
            load_rules.cache_clear()
    with portal_server(env, stop_timeout=10) as (base, _):
        yield base


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


FOCUSED = """() => {
    const e = document.activeElement, r = e.getBoundingClientRect();
    return {top: Math.round(r.top + scrollY), text: e.textContent.trim().slice(0, 20),
            results: !!e.closest('.results'), facets: !!e.closest('.facets'),
            main: !!e.closest('main')};
}"""


def _tab_stops(page, start: str, limit: int = 120) -> list[dict]:
    """Where Tab takes keyboard focus from `start` on, until it leaves <main>."""
    page.focus(start)
    stops = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        stop = page.evaluate(FOCUSED)
        if not stop["main"]:
            break
        stops.append(stop)
    return stops


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_search_focus_order_follows_the_reading_order(server, browser, viewport):
    """WCAG 2.4.3: from the 查询 button, Tab goes through the results, then the facets; on a
    phone (one column) always down the page, on a desktop the facets are the right column."""
    context = browser.new_context(viewport=VIEWPORTS[viewport], locale="zh-CN")
    page = context.new_page()
    page.goto(f"{server['base']}/search?q={quote('烟台')}")
    assert page.locator(".hit").count() > 1 and page.locator(".facets a").count() > 1
    stops = _tab_stops(page, ".search-form button[type=submit]")
    regions = ["results" if s["results"] else "facets" if s["facets"] else "" for s in stops]
    assert regions[0] == "results", stops[:3]
    last_result = max(i for i, r in enumerate(regions) if r == "results")
    assert "facets" in regions and regions.index("facets") > last_result, regions
    if viewport == "phone":
        tops = [s["top"] for s in stops]
        assert tops == sorted(tops), stops
    else:
        results = page.locator(".results").bounding_box()
        facets = page.locator(".facets").bounding_box()
        assert facets["x"] >= results["x"] + results["width"], (results, facets)
    context.close()


TABLES = """() => [...document.querySelectorAll('table.numbers')].map(table => {
    const wrap = table.closest('.table-wrap'), box = wrap.getBoundingClientRect();
    const lines = th => {
        const range = document.createRange();
        range.selectNodeContents(th);
        return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
    };
    const label = document.getElementById(wrap.getAttribute('aria-labelledby'));
    return {
        caption: table.caption.textContent.trim(),
        inside: box.left >= 0 && box.right <= document.documentElement.clientWidth,
        region: [wrap.getAttribute('role'), wrap.getAttribute('tabindex'), !!label],
        overflows: wrap.scrollWidth > wrap.clientWidth,
        hint: getComputedStyle(wrap).backgroundImage,
        broken: [...table.querySelectorAll('th[scope=row]')]
            .filter(th => lines(th) > 1).map(th => th.textContent.trim()),
    };
})"""

AT_THE_END = """wrap => {
    wrap.scrollLeft = wrap.scrollWidth;
    const box = wrap.getBoundingClientRect();
    const last = wrap.querySelector('thead th:last-child').getBoundingClientRect();
    const name = wrap.querySelector('tbody th[scope=row]').getBoundingClientRect();
    return {total: last.left >= box.left - 1 && last.right <= box.right + 1,
            name: Math.abs(name.left - box.left) <= 1};
}"""


def test_count_tables_on_a_phone(server, statistics_server, browser):
    """At 360 px the counts tables (home, the /credit-marks statistics) keep each district's
    name on one line; a table wider than the screen scrolls inside its labelled, focusable
    region, with a shadow at the edge that has more (合计 can be scrolled to, by keyboard too),
    and the district names stay in view."""
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="zh-CN")
    page = context.new_page()
    for name, url in (
        ("home", server["base"] + "/"),
        ("statistics", statistics_server + "/credit-marks"),
    ):
        page.goto(url)
        tables = page.evaluate(TABLES)
        assert tables, name
        _assert_fits(page)
        page.screenshot(path=ARTIFACTS / f"counts-{name}-phone.png", full_page=True)
        for i, table in enumerate(tables):
            assert table["broken"] == [] and table["inside"], (name, table)
            assert table["region"] == ["region", "0", True], (name, table)
            if not table["overflows"]:
                continue
            assert "radial-gradient" in table["hint"], (name, table)
            wrap = page.locator(".table-wrap:has(table.numbers)").nth(i)
            wrap.focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_function("el => el.scrollLeft > 0", arg=wrap.element_handle())
            assert wrap.evaluate(AT_THE_END) == {"total": True, "name": True}, (name, table)
    context.close()
