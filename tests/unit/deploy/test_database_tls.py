"""Under the production settings, a database connection that leaves the host is verify-full
against a CA; one over loopback (a VM's own PgBouncer) is left alone (issue 22, item 8)."""

import json

import pytest

from tests.unit.production_env import run_under_production

pytestmark = pytest.mark.unit

SCRIPT = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({alias: {key: db["OPTIONS"].get(key) for key in ("sslmode", "sslrootcert")}
                  for alias, db in settings.DATABASES.items()}))
"""


def _tls_options(**environ: str) -> dict[str, dict[str, str | None]]:
    return json.loads(run_under_production(SCRIPT, drop=("DJANGO_", "DB_", "PGBOUNCER_"), **environ))


def test_a_vms_direct_replica_connection_is_verified_and_its_local_pgbouncer_is_not():
    # given a VM: PgBouncer on loopback, the replica on another host
    options = _tls_options(DB_HOST="127.0.0.1", DB_REPLICA_HOST="db-replica.internal")
    # then
    assert options["replica"] == {"sslmode": "verify-full", "sslrootcert": "/etc/app/tls/db-ca.crt"}
    assert options["default"] == {"sslmode": None, "sslrootcert": None}


def test_in_kubernetes_both_connections_are_verified_against_the_mounted_ca():
    options = _tls_options(
        DB_HOST="pgbouncer", DB_REPLICA_HOST="postgres-replica", DB_SSLROOTCERT="/etc/app/tls/db-ca.crt"
    )
    for alias in ("default", "replica"):
        assert options[alias] == {"sslmode": "verify-full", "sslrootcert": "/etc/app/tls/db-ca.crt"}, alias
