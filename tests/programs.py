"""Programs from Debian packages that some tests that need no services still run.

``make test-unit`` and ``make lint`` install no Debian packages, so on a fresh machine such a
test is skipped with the package to install. ``make test`` installs them and sets
``TESTS_REQUIRE_PROGRAMS=1``, under which a missing program (or root, for the few tests that
need it) fails the test instead: the full suite never passes by skipping.
"""

import os
import shutil
from typing import NoReturn

import pytest

SBIN = os.pathsep.join(["/usr/local/sbin", "/usr/sbin", "/sbin"])


def missing(message: str) -> NoReturn:
    """Skip a test this machine lacks something for, saying what; fail it under ``make test``."""
    if os.environ.get("TESTS_REQUIRE_PROGRAMS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def require_program(name: str, package: str) -> str:
    """The program's path; else skip (or fail under ``make test``) naming the Debian package."""
    found = shutil.which(name) or shutil.which(name, path=SBIN)
    if found:
        return found
    missing(f"{name} is not installed (Debian package {package}; `make install` installs it)")


def require_root(what: str) -> None:
    """Skip (or fail under ``make test``, which runs as root) unless this process is root."""
    if os.geteuid() != 0:
        missing(f"{what} needs root")
