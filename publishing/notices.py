"""The bureau's e-mails to an applicant: that a request was received (send_confirmation) and
what a reviewer decided on it (send_decision), each sent only when SMTP is configured and the
applicant gave an address, after the commit and best-effort (publishing.mail); and the
address of a request's status page that the receipt and the mails give (status_url).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine

from publishing import mail
from publishing.request_deadlines import review_fallback
from publishing.request_models import MORE_INFO, TYPE_LABELS, status_label
from publishing.request_queries import find
from publishing.settings import get_settings
from publishing.site import AUTHORITY

# The mails greet with fixed words: nothing the applicant typed goes into the bureau's mail
# (else anyone could have it send their text to any address).


def status_url(tracking_no: str, base_url: str = "") -> str:
    """The request's status page: a path, or with the site's base URL the address to mail."""
    return f"{base_url.rstrip('/')}/requests/{tracking_no}"


def _mail_applicant(
    engine: Engine,
    tracking_no: str,
    letter: Callable[[Connection, dict[str, Any], str], tuple[str, str]],
) -> bool:
    """Send the applicant of `tracking_no` the (subject, body) that `letter` writes from the
    request and its status page's address; False when no mail can or need be sent."""
    settings = get_settings()
    if not settings.smtp_url:
        return False
    with engine.connect() as conn:
        req = find(conn, tracking_no)
        if not req or not req.get("email"):
            return False
        subject, body = letter(conn, req, status_url(tracking_no, settings.base_url))
    return mail.send(req["email"], subject, body)


def send_confirmation(engine: Engine, tracking_no: str) -> bool:
    """E-mail the applicant that the request was received (when SMTP and an address exist)."""

    def letter(conn: Connection, req: dict[str, Any], url: str) -> tuple[str, str]:
        note = "（按周一至周五推算，已扣除元旦、劳动节、国庆节，以实际节假日安排为准）"
        review_note = note if review_fallback(conn, req) else ""
        decision_note = note if req["calendar_fallback"] else ""
        body = (
            f"您好：\n\n我们已收到{req['entity_name']}的{TYPE_LABELS[req['type']]}申请。\n"
            f"受理编号：{tracking_no}\n初审期限：{req['review_due']}{review_note}\n"
            f"办理期限：{req['decision_due']}{decision_note}"
            f"\n\n凭受理编号和提交时显示的查询码查看进度：{url}\n"
            f"（为安全起见，本邮件不含查询码。）\n\n{AUTHORITY}"
        )
        return f"【信用信息公示】已收到您的申请 {tracking_no}", body

    return _mail_applicant(engine, tracking_no, letter)


def send_decision(engine: Engine, tracking_no: str) -> bool:
    """E-mail the applicant the request's new status and its reason (more material asked for,
    approved, rejected), when SMTP and an address exist."""

    def letter(conn: Connection, req: dict[str, Any], url: str) -> tuple[str, str]:
        label = status_label(req["type"], req["status"])
        reason_title = "需补正的材料" if req["status"] == MORE_INFO else "理由"
        body = (
            f"您好：\n\n您提交的{TYPE_LABELS[req['type']]}申请（受理编号 {tracking_no}，"
            f"主体：{req['entity_name']}）处理结果：{label}。\n\n"
            f"{reason_title}：{req['decision_reason']}\n\n"
            f"凭受理编号和查询码查看详情：{url}\n\n{AUTHORITY}"
        )
        return f"【信用信息公示】申请 {tracking_no}：{label}", body

    return _mail_applicant(engine, tracking_no, letter)
