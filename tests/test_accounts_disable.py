"""Back-office accounts, over HTTP (the portal as a test client) on SQLite and PostgreSQL: a
disabled user's session, token and password are refused, a revoked token is refused, and a
password reset ends sessions and revokes tokens; each action is in the audit log; the CLI verbs
`disclosure users disable | enable | revoke` say what they did."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from publishing import audit, users

PASSWORD = "correct horse battery staple"
PROBE = "/api/v1/review/requests/YX20990101-000001/decision"


@pytest.fixture
def staff(engine):
    users.add_user(engine, "wang", "approver", PASSWORD)
    users.add_user(engine, "li", "reviewer", PASSWORD)


def login(client, name="wang", password=PASSWORD):
    page = client.get("/review/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post("/review/login", data={"name": name, "password": password, "csrf": csrf})


def token_answer(client, token: str) -> int:
    """401 when the decision API refuses the token; 422 (the decision is invalid) when it takes
    it, so that nothing is decided."""
    headers = {"Authorization": f"Bearer {token}"}
    return client.post(PROBE, json={"decision": "maybe"}, headers=headers).status_code


def actions(engine, name: str) -> list[str]:
    with engine.connect() as conn:
        return [e["action"] for e in audit.for_target(conn, "user", name)]


def test_a_disabled_user_has_no_session_no_token_and_no_login(engine, client, staff):
    token = users.new_token(engine, "wang")
    other = users.new_token(engine, "li")
    assert login(client).status_code == 303
    assert client.get("/review").status_code == 200
    assert token_answer(client, token) == 422
    assert users.disable_user(engine, "wang") == [token[: users.HINT_LENGTH]]
    session = client.get("/review")
    assert session.status_code == 303 and session.headers["location"] == "/review/login"
    assert token_answer(client, token) == 401
    refused = login(client)
    assert refused.status_code == 401 and "用户名或密码错误" in refused.text  # as for anyone
    with pytest.raises(users.UserError, match="已停用"):
        users.new_token(engine, "wang")
    assert token_answer(client, other) == 422  # the other users go on
    # enabled again: the password works, the old session and token do not come back
    users.enable_user(engine, "wang")
    assert token_answer(client, token) == 401
    assert login(client).status_code == 303 and client.get("/review").status_code == 200
    assert token_answer(client, users.new_token(engine, "wang")) == 422
    assert actions(engine, "wang") == [
        "user.add",
        "token.add",
        "login",
        "user.disable",
        "login.unknown",  # a disabled name is answered and counted as an unknown one
        "user.enable",
        "login",
        "token.add",
    ]
    with engine.connect() as conn:
        disabled = next(
            e for e in audit.for_target(conn, "user", "wang") if e["action"] == "user.disable"
        )
    assert disabled["after"] == {"active": False, "tokens_revoked": [token[:10]]}
    assert audit.verify(engine) == (True, None)


def test_revoked_tokens_are_refused(engine, client, staff):
    first, second = users.new_token(engine, "wang"), users.new_token(engine, "wang")
    assert token_answer(client, first) == token_answer(client, second) == 422
    assert users.revoke_tokens(engine, "wang", hint=first[:10]) == [first[:10]]
    assert token_answer(client, first) == 401
    assert token_answer(client, second) == 422  # only the one named
    with pytest.raises(users.UserError, match="没有以"):
        users.revoke_tokens(engine, "wang", hint=first[:10])  # revoked already
    with pytest.raises(users.UserError, match="没有用户"):
        users.revoke_tokens(engine, "nobody")
    assert users.revoke_tokens(engine, "wang") == [second[:10]]
    assert token_answer(client, second) == 401
    assert login(client).status_code == 303  # revoking tokens leaves the password alone
    with engine.connect() as conn:
        revoked = [
            e["after"]
            for e in audit.for_target(conn, "user", "wang")
            if e["action"] == "token.revoke"
        ]
    assert revoked == [{"hints": [first[:10]]}, {"hints": [second[:10]]}]


def test_a_password_reset_ends_sessions_and_revokes_tokens(engine, client, staff):
    token = users.new_token(engine, "wang")
    assert login(client).status_code == 303 and client.get("/review").status_code == 200
    users.add_user(engine, "wang", "approver", "a new password of the right length")
    assert client.get("/review").status_code == 303
    decision = {"decision": "reject", "reason": "材料不全"}
    old = client.post(PROBE, json=decision, headers={"Authorization": f"Bearer {token}"})
    assert old.status_code == 401
    assert login(client).status_code == 401  # the old password neither
    assert login(client, password="a new password of the right length").status_code == 303
    with engine.connect() as conn:
        reset = [e for e in audit.for_target(conn, "user", "wang") if e["action"] == "user.reset"]
    assert reset[-1]["after"]["tokens_revoked"] == [token[:10]]


def test_cli_disable_enable_revoke(engine, database_url, client, tmp_path):
    env = {
        **os.environ,
        "DISCLOSURE_DATABASE_URL": database_url,
        "DISCLOSURE_DATA_DIR": str(tmp_path / "var"),
    }

    def cli(*args, stdin=""):
        return subprocess.run(
            [sys.executable, "-m", "portal.cli", "users", *args],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert cli("add", "zhao", "--role", "approver", stdin=PASSWORD + "\n").returncode == 0
    token = cli("token", "zhao").stdout.strip()
    assert token_answer(client, token) == 422
    for verb in ("disable", "enable", "revoke"):
        missing = cli(verb, "nobody")
        assert missing.returncode == 1 and "没有用户 nobody" in missing.stderr
    disabled = cli("disable", "zhao")
    assert disabled.returncode == 0, disabled.stderr
    assert "已停用用户 zhao" in disabled.stdout and f"令牌 1 个（{token[:10]}…）" in disabled.stdout
    assert token_answer(client, token) == 401 and login(client, "zhao").status_code == 401
    assert cli("token", "zhao").returncode == 1
    enabled = cli("enable", "zhao")
    assert enabled.returncode == 0 and "已启用用户 zhao" in enabled.stdout
    assert login(client, "zhao").status_code == 303
    kept, dropped = cli("token", "zhao").stdout.strip(), cli("token", "zhao").stdout.strip()
    one = cli("revoke", "zhao", "--hint", dropped[:10])
    assert one.returncode == 0 and f"令牌 1 个（{dropped[:10]}…）" in one.stdout
    assert token_answer(client, dropped) == 401 and token_answer(client, kept) == 422
    assert cli("revoke", "zhao", "--hint", "dsk_nothere").returncode == 1
    reset = cli("add", "zhao", "--role", "approver", stdin=PASSWORD + "\n")
    assert reset.returncode == 0 and "API 令牌全部吊销" in reset.stdout
    assert token_answer(client, kept) == 401
    assert actions(engine, "zhao") == [
        "user.add",
        "token.add",
        "user.disable",
        "login.unknown",
        "user.enable",
        "login",
        "token.add",
        "token.add",
        "token.revoke",
        "user.reset",
    ]
    assert audit.verify(engine) == (True, None)  # the CLI's entries are keyed alike


def test_a_reset_keeps_a_disabled_account_disabled(engine, client, staff):
    users.disable_user(engine, "wang")
    users.add_user(engine, "wang", "approver", "a new password of the right length")
    assert login(client, password="a new password of the right length").status_code == 401
    users.enable_user(engine, "wang")
    assert login(client, password="a new password of the right length").status_code == 303


def test_a_token_is_revoked_by_any_start_of_its_hint(engine, client, staff):
    token = users.new_token(engine, "wang")
    for too_short in ("", "dsk_", token[:6]):
        with pytest.raises(users.UserError, match="至少"):
            users.revoke_tokens(engine, "wang", hint=too_short)
    assert users.revoke_tokens(engine, "wang", hint=token[:7]) == [token[:10]]
    assert token_answer(client, token) == 401


def test_a_user_name_fits_the_audit_log(engine):
    """A 41–64 character name was accepted, then its audit entry (target_id, 40 characters)
    failed on PostgreSQL: `users add` ended in a traceback."""
    from publishing.users import NAME_MAX, UserError, add_user, login

    with pytest.raises(UserError, match=f"1–{NAME_MAX} 个字符"):
        add_user(engine, "a" * (NAME_MAX + 1), "reviewer", PASSWORD)
    add_user(engine, "a" * NAME_MAX, "reviewer", PASSWORD)
    assert login(engine, "a" * NAME_MAX, PASSWORD, source="127.0.0.1").user is not None
