"""A submission that fails for a server reason (on-call review): the request form, the
supplement and the intake API said only "服务器内部错误", leaving the applicant to wonder
whether it was received. Their 500 now says that nothing was saved and to send it again later;
other routes' 500 stays as it was. The failure is real: the attachments folder cannot be made
(a file is in its place), as when the disk is full; then a table the pages read is missing.
On SQLite and PostgreSQL, through the portal's HTTP interface."""

from __future__ import annotations

import re

from sqlalchemy import text

from portal.errors import NOT_SAVED, NOT_SAVED_TITLE, TITLES
from publishing import request_queries, review, users
from publishing import requests as rq
from publishing.settings import get_settings
from tests.requests_support import (
    PDF,
    PNG,
    count_attachments,
    count_requests,
    fields,
    files,
    form_token,
    objection_on_other,
)

PASSWORD = "correct horse battery staple"


def _break_attachments_folder() -> None:
    folder = get_settings().attachments_dir
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_bytes(b"")  # a file where the folder goes: storing an attachment fails


def _token(html: str) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', html).group(1)


def _says_not_saved(page) -> None:
    assert page.status_code == 500, page.text[:300]
    assert NOT_SAVED in page.text and f"<h1>{NOT_SAVED_TITLE}</h1>" in page.text
    assert TITLES[500] not in page.text


def test_a_request_that_cannot_be_stored_says_nothing_was_saved(engine, client, cases):
    _break_attachments_folder()
    repair = fields(uscc=cases.repairable_uscc, record_ids=[cases.repairable])
    page = client.post(
        "/requests/new",
        data={"form_token": form_token(client), **repair},
        files=files(("证明.pdf", PDF, "application/pdf")),
    )
    _says_not_saved(page)
    api = client.post("/api/v1/requests", data=repair,
                      files=files(("证明.pdf", PDF, "application/pdf")))
    assert api.status_code == 500
    assert api.json() == {"status_code": 500, "detail": NOT_SAVED}
    assert count_requests(engine) == 0 and count_attachments(engine) == 0


def test_a_supplement_that_cannot_be_stored_says_nothing_was_saved(engine, client, cases):
    receipt = rq.submit(engine, objection_on_other(cases))
    tracking, code = receipt.tracking_no, receipt.access_code
    approver, _ = users.add_user(engine, "wang", "approver", PASSWORD)
    review.act(engine, tracking, approver, "more_info", "请补充处罚决定书。", sync_search=False)
    _break_attachments_folder()
    lookup = client.get(f"/requests/{tracking}")
    status = client.post(f"/requests/{tracking}", data={"form_token": _token(lookup.text),
                                                        "code": code})
    sent = client.post(
        f"/requests/{tracking}/supplement",
        data={"form_token": _token(status.text), "code": code, "note": "处罚决定书见附件。"},
        files=files(("决定书.png", PNG, "image/png")),
    )
    _says_not_saved(sent)
    with engine.connect() as conn:
        req = request_queries.find(conn, tracking)
        assert req["status"] == "more_info"
        assert request_queries.files(conn, req["id"]) == []


def test_other_routes_keep_the_generic_server_error(engine, client, cases):
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE records RENAME TO records_away"))
    try:
        form = client.get(f"/requests/new?record={cases.repairable}")
        api = client.get("/api/v1/penalties")
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE records_away RENAME TO records"))
    assert form.status_code == 500 and f"<h1>{TITLES[500]}</h1>" in form.text
    assert NOT_SAVED not in form.text
    assert api.status_code == 500
    assert api.json() == {"status_code": 500, "detail": TITLES[500]}


def test_a_supplement_whose_second_file_fails_leaves_no_file_behind(engine, cases):
    """Storing the second file fails for real (a file-size limit: EFBIG, as a full disk fails
    a write): the first file, already stored, is removed with it, and nothing is recorded."""
    import io
    import resource
    import signal

    import pytest

    from publishing.attachments import Upload
    from tests.requests_support import stored_files

    receipt = rq.submit(engine, objection_on_other(cases))
    approver, _ = users.add_user(engine, "wang", "approver", PASSWORD)
    review.act(engine, receipt.tracking_no, approver, "more_info", "请补充处罚决定书。",
               sync_search=False)
    before = stored_files(engine)
    small = Upload("决定书.png", io.BytesIO(PNG))
    large = Upload("附件.pdf", io.BytesIO(PDF + b"0" * 400_000))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, hard))
    try:
        with pytest.raises(OSError):
            rq.supplement(engine, receipt.tracking_no, receipt.access_code, "见附件。",
                          [small, large])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert stored_files(engine) == before
    with engine.connect() as conn:
        req = request_queries.find(conn, receipt.tracking_no)
        assert req["status"] == "more_info" and request_queries.files(conn, req["id"]) == []
