#!/usr/bin/env bash
# Install what the project needs and is missing: Debian packages and the virtualenv.
# Safe to run again; does nothing when everything is there.
#   --venv-only: only the virtualenv (make venv, lint, test-unit): no root, no Debian packages.
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf '[install] %s\n' "$*"; }

venv_only=0
[ "${1:-}" = "--venv-only" ] && venv_only=1

need=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15 postgresql-client-15)
command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
command -v redis-server >/dev/null || need+=(redis-server)
# PostgreSQL's automatic failover: Patroni over a three-member etcd, HAProxy routing to the
# leader (ADR 0015). Debian's packages start nothing by themselves here: the cluster does.
command -v patroni >/dev/null || need+=(patroni)
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
# The edge pair: two NGINX in network namespaces (iproute2's ip netns), keepalived holding the
# virtual address (ADR 0020). Its systemd unit never runs here (no systemd): the cluster starts it.
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need+=(iproute2)
command -v keepalived >/dev/null || [ -x /usr/sbin/keepalived ] || need+=(keepalived)
command -v openssl >/dev/null || need+=(openssl)
# Load tests (make bench) and the alert-rule tests (promtool, from Debian's prometheus package).
command -v wrk >/dev/null || need+=(wrk)
command -v promtool >/dev/null || need+=(prometheus)
# The unit tests check the rendered systemd units with systemd-analyze (nothing is booted).
command -v systemd-analyze >/dev/null || need+=(systemd)
# The page tests (tests/cluster/static/) open the admin in a real headless browser.
command -v chromium >/dev/null || need+=(chromium)
# make image and its test: buildah and podman (vfs storage, chroot isolation, runc), and
# mmdebstrap for a Debian base image made here instead of pulled from a registry.
command -v buildah >/dev/null || need+=(buildah)
command -v podman >/dev/null || need+=(podman)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v runc >/dev/null || [ -x /usr/sbin/runc ] || need+=(runc)
# The TLS scan of the edge (tests/cluster/edge/test_tls_scan.py).
command -v testssl >/dev/null || need+=(testssl.sh)
# Certificates over ACME, tested offline (tests/integration/deploy/test_acme_certificates.py):
# certbot, and pebble (a test ACME server, with its DNS pebble-challtestsrv).
command -v certbot >/dev/null || need+=(certbot)
command -v pebble >/dev/null || need+=(pebble)
# A beat's clock stepped ahead and back (tests/cluster/jobs/test_clock_step.py): libfaketime.
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || need+=(faketime)
# The runbooks' checks (docs/runbooks/) use curl.
command -v curl >/dev/null || need+=(curl)
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)

if [ "$venv_only" -eq 1 ]; then
    # Only the interpreter's venv module is needed from Debian here.
    need=()
    /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || { say "python3-venv is missing: run 'sudo make install' once"; exit 1; }
fi

if [ ${#need[@]} -gt 0 ]; then
    say "Debian packages: ${need[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        say "installing packages needs root: run 'sudo make install' once"; exit 1
    fi
    # Our scripts make their own PostgreSQL cluster; keep the package from starting one on 5432.
    mkdir -p /etc/postgresql-common
    [ -f /etc/postgresql-common/createcluster.conf ] || echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

stamp=.venv/.installed
if [ ! -x .venv/bin/python ] || [ ! -f "$stamp" ] || [ requirements-dev.lock -nt "$stamp" ]; then
    say "virtualenv .venv from requirements-dev.lock"
    # Debian's interpreter, so the postgres user can run the venv too.
    [ -x .venv/bin/python ] || /usr/bin/python3 -m venv .venv
    # The dev lock: the runtime lock's pins plus the test, lint and bench tools, every file hashed.
    .venv/bin/pip install -q --disable-pip-version-check --require-hashes -r requirements-dev.lock
    touch "$stamp"
fi
