"""The notices' headers: RFC 5322 requires an origination date (without one, mail clients show
the arrival time and spam filters score the message as MISSING_DATE)."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta

from publishing import clock, mail


def test_a_notice_carries_its_date_and_identity():
    config = mail.parse_url("smtp://127.0.0.1:25?from=xypt@scjg.yantai.gov.cn")
    built = mail.build(config, "qiye@example.com", "已收到您的申请", "正文")
    message = email.message_from_bytes(built.as_bytes(), policy=email.policy.default)
    sent = message["Date"].datetime
    assert sent.utcoffset() == timedelta(hours=8)  # Beijing time, as the bureau writes it
    assert abs(sent - clock.now()) < timedelta(minutes=1)
    assert message["Message-ID"].endswith("@scjg.yantai.gov.cn>")
    assert message["To"] == "qiye@example.com"


def test_a_failed_send_does_not_log_the_applicants_address(caplog):
    import logging
    import socket

    with socket.socket() as s:  # a port nothing listens on: the connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = mail.parse_url(f"smtp://127.0.0.1:{port}?from=xypt@scjg.yantai.gov.cn")
    with caplog.at_level(logging.WARNING, logger="publishing.mail"):
        assert mail.send("zhang.san.1390015@example.com", "YX20261129-000001", "正文", config) is False
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "YX20261129-000001" in logged and "example.com" in logged
    assert "zhang.san" not in logged


def test_a_refused_recipient_is_logged_by_its_code_not_its_address(caplog):
    """The commonest failure, a mistyped address: the server's answer repeats the address."""
    import logging

    from aiosmtpd.controller import Controller

    from tests.servers import free_port

    class Refuse:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
            return f"550 5.1.1 <{address}>: Recipient address rejected"

    port = free_port()
    controller = Controller(Refuse(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = mail.parse_url(f"smtp://127.0.0.1:{port}?from=xypt@scjg.yantai.gov.cn")
        with caplog.at_level(logging.WARNING, logger="publishing.mail"):
            sent = mail.send("zhang.san.13912345678@example.com", "YX20261129-000002", "正文", config)
    finally:
        controller.stop()
    assert sent is False
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "SMTPRecipientsRefused [550]" in logged and "YX20261129-000002" in logged
    assert "zhang.san" not in logged and "13912345678" not in logged
