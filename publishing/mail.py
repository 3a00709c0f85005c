"""E-mail notices through SMTP when DISCLOSURE_SMTP_URL is set.

    smtp://user:pass@host:25            plain SMTP (STARTTLS when the server offers it)
    smtps://user:pass@host:465          SMTP over TLS
    smtp://host:1025?from=x@example.cn  the sender address (default noreply@<host>)

Sending is best-effort and happens after the action has been committed: a mail server that is
down never loses or blocks a request, it is logged.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

from publishing import clock
from publishing.site import AUTHORITY

log = logging.getLogger("publishing.mail")
TIMEOUT = 15
SENDER_NAME = f"{AUTHORITY}信用信息公示"


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    user: str | None
    password: str | None
    tls: bool  # implicit TLS (smtps)
    sender: str


def parse_url(url: str) -> SmtpConfig:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(f"DISCLOSURE_SMTP_URL 应以 smtp:// 或 smtps:// 开头:{url!r}")
    host = parts.hostname or "localhost"
    tls = parts.scheme == "smtps"
    query = parse_qs(parts.query)
    sender = query.get("from", [f"noreply@{host}"])[0]
    return SmtpConfig(
        host,
        parts.port or (465 if tls else 25),
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
        tls,
        sender,
    )


def configured() -> SmtpConfig | None:
    from publishing.settings import get_settings

    url = get_settings().smtp_url
    return parse_url(url) if url else None


def build(config: SmtpConfig, to: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = formataddr((SENDER_NAME, config.sender))
    msg["To"] = to
    msg["Subject"] = subject
    # RFC 5322 requires it; without it clients show the arrival time and filters score it as spam
    msg["Date"] = format_datetime(clock.now().astimezone(clock.BEIJING))
    msg["Message-ID"] = make_msgid(domain=config.sender.rpartition("@")[2] or None)
    msg.set_content(body)
    return msg


def send(to: str, subject: str, body: str, config: SmtpConfig | None = None) -> bool:
    """Send one message; False (and a log line) when not configured or it failed."""
    config = config or configured()
    if config is None or not to:
        return False
    msg = build(config, to, subject, body)
    try:
        if config.tls:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                config.host, config.port, timeout=TIMEOUT, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=TIMEOUT)
        with smtp:
            smtp.ehlo()
            if not config.tls and smtp.has_extn("starttls"):
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if config.user:
                smtp.login(config.user, config.password or "")
            smtp.send_message(msg)
        return True
    except (OSError, smtplib.SMTPException) as err:
        # the address is an applicant's personal data: the log names its domain only (the
        # subject names the request), and the error by its kind and SMTP code, since
        # SMTPRecipientsRefused and the server's texts repeat the address
        log.warning("mail (%s) to an address at %s not sent: %s", subject, to.rpartition("@")[2],
                    _failure(err))
        return False


def _failure(err: Exception) -> str:
    """An SMTP or network failure without the addresses and texts it may carry."""
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _ in err.recipients.values()})
        return f"{type(err).__name__} {codes}"
    if isinstance(err, smtplib.SMTPResponseException):
        return f"{type(err).__name__} {err.smtp_code}"
    if isinstance(err, OSError):
        return f"{type(err).__name__} {err.strerror or err.errno or ''}".strip()
    return type(err).__name__
