"""``render_deploy redis``: each Redis role's ACL file for production, passwords hashed, the app
users without the admin commands, replication and Sentinel with exactly theirs (issue 22, item 9).
tests/integration/deploy/test_redis_acl.py runs these lines in real servers."""

import hashlib

import pytest
from django.core.management import CommandError, call_command

from deploy.redis import acl

pytestmark = pytest.mark.unit

PASSWORDS = {
    "LOCK_REDIS_PASSWORD": "lock-secret",
    "BROKER_REDIS_PASSWORD": "broker-secret",
    "REDIS_REPLICATION_PASSWORD": "replication-secret",
    "REDIS_SENTINEL_PASSWORD": "sentinel-secret",
}


@pytest.fixture
def environ(monkeypatch):
    for name, value in {
        **PASSWORDS,
        "LOCK_REDIS_USERNAME": "app-lock",
        "BROKER_REDIS_USERNAME": "app-broker",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_REPLICATION_USERNAME", raising=False)
    monkeypatch.delenv("REDIS_SENTINEL_USERNAME", raising=False)


def _users(path) -> dict[str, list[str]]:
    lines = [line.split() for line in path.read_text().splitlines()]
    return {words[1]: words[2:] for words in lines}


def test_each_role_gets_its_users_with_hashed_passwords(tmp_path, environ):
    # when
    call_command("render_deploy", "redis", "--out", str(tmp_path))
    # then
    lock, broker = _users(tmp_path / "lock-users.acl"), _users(tmp_path / "broker-users.acl")
    assert set(lock) == {"default", "app-lock"}
    assert set(broker) == {"default", "app-broker", "replication", "sentinel"}
    assert lock["default"] == broker["default"] == ["off"]
    text = (tmp_path / "lock-users.acl").read_text() + (tmp_path / "broker-users.acl").read_text()
    for password in PASSWORDS.values():
        assert password not in text
        assert f"#{hashlib.sha256(password.encode()).hexdigest()}" in text
    assert (tmp_path / "lock-users.acl").stat().st_mode & 0o077 == 0o040  # the redis group reads it


def test_the_lock_user_reaches_only_lock_keys_with_the_lock_services_commands(tmp_path, environ):
    call_command("render_deploy", "redis", "--out", str(tmp_path))
    rules = _users(tmp_path / "lock-users.acl")["app-lock"]
    assert [rule for rule in rules if rule.startswith("~")] == ["~lock:*"]
    assert "resetchannels" in rules and not [rule for rule in rules if rule.startswith("&")]
    allowed = {rule for rule in rules if rule.startswith("+")}
    assert allowed == set(acl.CONNECTION) | set(acl.LOCK_COMMANDS)
    assert rules.index("-@all") < min(rules.index(rule) for rule in allowed)


@pytest.mark.parametrize("role", ["app-lock", "app-broker"])
def test_no_app_user_keeps_the_admin_commands(tmp_path, environ, role):
    call_command("render_deploy", "redis", "--out", str(tmp_path))
    users = {**_users(tmp_path / "lock-users.acl"), **_users(tmp_path / "broker-users.acl")}
    rules = users[role]
    assert "+@all" not in rules and "allcommands" not in rules
    # the last word on these is a refusal, after every grant
    last_grant = max(index for index, rule in enumerate(rules) if rule.startswith("+"))
    for refusal in ("-@admin", "-@dangerous"):
        assert rules.index(refusal) > last_grant, refusal


def test_replication_and_sentinel_keep_exactly_what_they_need(tmp_path, environ):
    call_command("render_deploy", "redis", "--out", str(tmp_path))
    broker = _users(tmp_path / "broker-users.acl")
    assert {rule for rule in broker["replication"] if rule.startswith("+")} == {
        "+psync",
        "+replconf",
        "+ping",
    }
    assert {rule for rule in broker["sentinel"] if rule.startswith("+")} == set(acl.SENTINEL_COMMANDS)


def test_a_missing_password_or_a_default_user_is_named(tmp_path, environ, monkeypatch):
    monkeypatch.delenv("REDIS_SENTINEL_PASSWORD")
    monkeypatch.setenv("LOCK_REDIS_USERNAME", "default")
    with pytest.raises(
        CommandError, match=r"set LOCK_REDIS_USERNAME, REDIS_SENTINEL_PASSWORD in the environment"
    ):
        call_command("render_deploy", "redis", "--out", str(tmp_path))


def test_a_password_with_a_space_would_split_the_rule_and_is_refused(tmp_path, environ, monkeypatch):
    monkeypatch.setenv("BROKER_REDIS_PASSWORD", "two words")
    with pytest.raises(CommandError, match="no spaces"):
        call_command("render_deploy", "redis", "--out", str(tmp_path))
