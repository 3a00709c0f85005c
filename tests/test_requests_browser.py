"""Credit repair end to end in a real browser (Debian's chromium through Playwright) against a
real uvicorn server over a temporary SQLite database:

an enterprise opens its record, files a repair request with an attachment and gets its receipt;
a reviewer logs in to /review and approves; the record then answers 410, is gone from search
and from the credit check, the change log and the entity's feed carry the withdrawal, and the
applicant's status page shows the decision. axe-core checks the form and the back office.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.factories import penalty_row, uscc, write_csv
from tests.requests_support import PDF, months_ago
from tests.servers import CHROMIUM, chromium, portal_server

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "reviewer password 2026"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from sqlalchemy import select

    from publishing import users
    from publishing.commit import RECORDS
    from publishing.db import make_engine, upgrade
    from publishing.publish import publish
    from publishing.search.sync import sync

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium fonts-wqy-microhei")
    workdir = tmp_path_factory.mktemp("requests-browser")
    url = f"sqlite:///{workdir / 'disclosure.db'}"
    engine = make_engine(url)
    upgrade(engine)
    rows = [
        penalty_row(
            70 + i,
            当事人名称=f"烟台浏览器测试{i}广告有限公司",
            处罚决定日期=months_ago(6),
            领域="广告",
        )
        for i in range(3)
    ]
    assert publish(
        [write_csv(workdir / "p.csv", rows)], engine=engine, show_progress=False
    ).published
    sync(engine)
    users.add_user(engine, "reviewer1", "approver", PASSWORD)
    with engine.connect() as conn:
        record = conn.execute(
            select(RECORDS.c.id).where(RECORDS.c.entity_id == uscc(70))
        ).scalar_one()
    engine.dispose()
    proof = workdir / "缴款凭证.pdf"
    proof.write_bytes(PDF)
    env = {"DISCLOSURE_DATABASE_URL": url, "DISCLOSURE_DATA_DIR": str(workdir / "var")}
    with portal_server(env) as (base, _):
        yield {
            "base": base,
            "record": record,
            "uscc": uscc(70),
            "name": "烟台浏览器测试0广告有限公司",
            "proof": proof,
        }


@pytest.fixture(scope="module")
def browser():
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium() as launched:
        yield launched


def _axe(page) -> list[str]:
    if not AXE.exists():
        return []
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_repair_request_filed_reviewed_and_gone_everywhere(site, browser):
    base, record = site["base"], site["record"]
    errors: list[str] = []

    # -- the enterprise -----------------------------------------------------------------------
    applicant = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = applicant.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/records/{record}")
    link = page.locator(f'a[href*="/requests/new"][href*="{record}"]')
    if link.count():  # the record page links to the form, prefilled
        link.first.click()
    else:
        page.goto(f"{base}/requests/new?record={record}")
    page.wait_for_url("**/requests/new?**")
    assert site["name"] in page.content()
    page.get_by_label("信用修复：已纠正失信行为，申请提前停止公示").check()
    box = page.locator(f'input[name="record_ids"][value="{record}"]')
    if not box.is_checked():
        box.check()
    page.get_by_label("联系人姓名", exact=True).fill("王经理")
    page.get_by_label("手机号码", exact=True).fill("13805351234")
    page.get_by_label("电子邮箱（选填）").fill("wang@example.com")
    page.get_by_label("申请理由", exact=True).fill(
        "已于上月全额缴纳罚款并下架违法广告,整改到位,申请信用修复。"
    )
    page.get_by_label("证明材料", exact=True).set_input_files(str(site["proof"]))
    page.get_by_label("本单位已阅读并作出以上守信承诺").check()
    page.screenshot(path=ARTIFACTS / "request-form.png", full_page=True)
    page.get_by_role("button", name="提交申请").click()
    page.wait_for_selector("#tracking-no")
    tracking = page.locator("#tracking-no").inner_text().strip()
    code = page.locator("#access-code").inner_text().strip()
    assert re.fullmatch(r"YX\d{8}-\d{6}", tracking) and re.fullmatch(
        r"[A-Z2-9]{5}-[A-Z2-9]{5}", code
    )
    page.screenshot(path=ARTIFACTS / "request-receipt.png", full_page=True)

    # -- the reviewer ---------------------------------------------------------------------------
    office = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    review = office.new_page()
    review.on("pageerror", lambda e: errors.append(str(e)))
    review.goto(f"{base}/review")
    review.wait_for_url("**/review/login")
    review.get_by_label("用户名").fill("reviewer1")
    review.get_by_label("密码").fill(PASSWORD)
    review.get_by_role("button", name="登录").click()
    review.wait_for_url(f"{base}/review")
    review.get_by_role("link", name=tracking).click()
    review.wait_for_url(f"**/review/requests/{tracking}")
    assert "缴款凭证.pdf" in review.content()
    review.locator("#a-approve").check()
    review.get_by_label("理由（必填，至少 2 个字，将告知申请人）").fill("已履行行政处罚决定并完成整改,准予信用修复。")
    review.screenshot(path=ARTIFACTS / "review-request.png", full_page=True)
    review.get_by_role("button", name="确认").click()
    review.wait_for_selector("text=已批准")
    assert "准予信用修复" in review.locator("#request-status").inner_text()

    # -- the record is gone from every public output ---------------------------------------------
    # (a visitor without a copy in the browser cache: pages may be cached for up to a minute)
    visitor = browser.new_context(locale="zh-CN").new_page()
    gone = visitor.goto(f"{base}/records/{record}")
    assert gone.status == 410
    assert "已停止公示" in visitor.content()
    search = visitor.request.get(f"{base}/api/v1/search", params={"q": site["name"]}).json()
    assert record not in {hit["id"] for hit in search["hits"]}
    visitor.goto(f"{base}/search?q={site['name']}")
    assert f'href="/records/{record}"' not in visitor.content()
    check = visitor.request.get(f"{base}/api/v1/credit-check", params={"uscc": site["uscc"]}).json()
    assert record not in json.dumps(check, ensure_ascii=False)
    changes = visitor.request.get(f"{base}/api/v1/changes", params={"since": 0}).json()
    assert re.search(rf'"{record}".*"withdraw"|"withdraw".*"{record}"', json.dumps(changes)), (
        changes
    )
    # its only record gone, the entity's feed is empty, as for a code never on record; the
    # kind's feed carries the deletion, and nothing in it tells of the repair
    own = visitor.request.get(f"{base}/entities/{site['uscc']}/feed.atom")
    assert own.status == 200 and "entry" not in own.text() and site["name"] not in own.text()
    feed = visitor.request.get(f"{base}/feeds/penalty.atom")
    assert feed.status == 200
    deleted = re.search(rf"<at:deleted-entry[^>]*{record}[^>]*>.*?</at:deleted-entry>",
                        feed.text(), re.S)
    assert deleted and "已撤回" in deleted.group(0), feed.text()
    assert "修复" not in feed.text()

    # -- the applicant sees the decision ----------------------------------------------------------
    page.goto(f"{base}/requests/{tracking}")
    page.get_by_label("查询码").fill(code)
    page.get_by_role("button", name="查看办理进度").click()
    page.wait_for_selector("#request-status")
    assert page.url == f"{base}/requests/{tracking}"  # the code was posted, not put in the URL
    assert page.locator("#request-status").inner_text() == "准予信用修复"
    assert "准予信用修复。" in page.locator("#decision-reason").inner_text()
    page.screenshot(path=ARTIFACTS / "request-status.png", full_page=True)
    applicant.close()
    office.close()
    visitor.context.close()
    assert errors == []


def test_form_and_back_office_pass_axe(site, browser):
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    found = {}
    for name, path in {
        "form": f"/requests/new?uscc={site['uscc']}",
        "start": "/requests/new",
        "login": "/review/login",
        "lookup": "/requests/YX20260101-000001",
    }.items():
        page.goto(site["base"] + path)
        found[name] = _axe(page)
    context.close()
    assert found == {name: [] for name in found}
