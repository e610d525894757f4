"""Every command in the runbooks exists: manage.py commands parse their arguments, make targets
are in the Makefile, ``python -m`` modules import and the cluster knows the process names."""

import importlib.util
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, get_commands, load_command_class

from deploy.local import cluster
from deploy.local.cluster import REPO
from tests.programs import require_program

pytestmark = pytest.mark.unit

RUNBOOKS = REPO / "docs" / "runbooks"
EXPECTED = {
    "deploy.md",
    "add-a-fourth-server.md",
    "rolling-restart.md",
    "rollback.md",
    "troubleshooting.md",
    # the alerts' runbook_url pages (deploy/monitoring/alerts.yml)
    "lock-quorum-lost.md",
    "force-releasing-a-lock.md",
    "replica-lost-or-lagging.md",
    "pool-saturated.md",
    "certificates.md",
    # PostgreSQL failover (ADR 0017)
    "postgres-failover.md",
    "postgres-switchover.md",
    "etcd-quorum-lost.md",
    "move-onto-patroni.md",
    # the PgBouncer pair (ADR 0018)
    "pgbouncer-lost.md",
    # the broker Redis under Sentinel (ADR 0019)
    "broker-failover.md",
    # the edge pair (ADR 0020)
    "edge-pair.md",
}
SHELL_WORDS = {"for", "until", "while", "do", "done", "then", "fi", "if", "export", "sleep", "true"}
SEPARATORS = {"|", "||", "&&", ";", "(", ")", "$", "do", "then"}
# kubectl comes from a wheel into the virtualenv, which a plain `.venv/bin/pytest` has not on PATH.
SEARCH_PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])
# Programs the runbooks use that `make install` brings from Debian (absent after `make test-unit`
# alone on a fresh machine).
DEBIAN_PACKAGES = {
    "nginx": "nginx",
    "curl": "curl",
    "psql": "postgresql-client-15",
    "pgbouncer": "pgbouncer",
    "redis-cli": "redis-tools",
    "systemctl": "systemd",
    "journalctl": "systemd",
    "systemd-analyze": "systemd",
    "certbot": "certbot",
    "patronictl": "patroni",
    "etcdctl": "etcd-client",
}
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def _shell_blocks(page: Path) -> list[list[str]]:
    return [
        block.strip().splitlines() for block in re.findall(r"```sh\n(.*?)```", page.read_text(), re.DOTALL)
    ]


def _commands(line: str) -> list[list[str]]:
    """The simple commands of one shell line, without leading VAR=value and sudo options."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True  # split on blanks and operators only: keep host:port, a,b
    segments: list[list[str]] = [[]]
    for token in lexer:
        if token in SEPARATORS or set(token) <= set("();|&"):
            segments.append([])
        else:
            segments[-1].append(token)
    commands = []
    for words in segments:
        while words and (ASSIGNMENT.match(words[0]) or words[0] in ("sudo", "-E", "-u")):
            words = words[2:] if words[0] == "-u" else words[1:]
        if words:
            commands.append(words)
    return commands


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), re.MULTILINE))


def _check_manage_py(args: list[str]) -> None:
    name, rest = args[0], args[1:]
    commands = get_commands()
    assert name in commands, f"manage.py {name} does not exist"
    command = load_command_class(commands[name], name)
    command.create_parser("manage.py", name).parse_args(rest)  # raises CommandError on a bad flag


def _check_cluster(args: list[str], app_ports: list[int] | None) -> None:
    assert args[0] in ("up", "down", "status", "start", "stop", "restart"), args
    if args[0] in ("start", "stop", "restart"):
        settings = cluster.Settings(app_ports=app_ports) if app_ports else cluster.Settings()
        assert args[1] in cluster.services(settings), f"the cluster has no process {args[1]}"


def _check_page(page: Path) -> int:
    checked = 0
    for block in _shell_blocks(page):
        app_ports = None
        for line in block:
            exported = re.match(r"export APP_PORTS=([\d,]+)", line)
            if exported:
                app_ports = [int(port) for port in exported.group(1).split(",")]
            for words in _commands(line):
                program = words[0]
                if program in SHELL_WORDS:
                    continue
                if program.endswith("python") and len(words) > 1 and words[1].endswith("manage.py"):
                    _check_manage_py(words[2:])
                elif program.endswith("python") and words[1:2] == ["-m"]:
                    assert importlib.util.find_spec(words[2]), f"no module {words[2]}"
                    if words[2] == "deploy.local.cluster":
                        _check_cluster(words[3:], app_ports)
                elif program == "make":
                    assert set(words[1:]) - {"up"} <= _make_targets(), words
                elif program.startswith(".venv/") or not program.startswith("/"):
                    found = (
                        (REPO / program).exists()
                        if "/" in program
                        else shutil.which(program, path=SEARCH_PATH)
                    )
                    if not found and program in DEBIAN_PACKAGES:
                        found = require_program(program, DEBIAN_PACKAGES[program])
                    assert found, f"{page.name}: {program} is not a program here"
                checked += 1
    return checked


def test_there_is_one_page_per_procedure():
    assert {page.name for page in RUNBOOKS.glob("*.md")} == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_command_in_the_runbook_exists(name):
    assert _check_page(RUNBOOKS / name) > 0


def test_a_misspelled_command_is_caught(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```sh\npython manage.py render_deploy pgbouncer --output /tmp/x\n```\n")
    with pytest.raises(CommandError, match="unrecognized arguments: --output"):
        _check_page(page)
    page.write_text("```sh\nsudo .venv/bin/python -m deploy.local.cluster restart app9\n```\n")
    with pytest.raises(AssertionError, match="no process app9"):
        _check_page(page)
    page.write_text("```sh\nmake deploy\n```\n")
    with pytest.raises(AssertionError):
        _check_page(page)
