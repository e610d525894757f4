"""The admin (a password login) stays off the internet unless an operator switches it on, and a
browser session lasts a working day (issue 22, item 3). The NGINX rendering's half is in
tests/unit/deploy/test_nginx_render.py."""

import pytest
from django.conf import settings

from tests.unit.deploy.k8s_build import ingress_paths, render_and_build

pytestmark = pytest.mark.unit

ALLOW = "nginx.ingress.kubernetes.io/allowlist-source-range"
WHITELIST = "nginx.ingress.kubernetes.io/whitelist-source-range"
NOBODY = "127.0.0.1/32"  # no client reaches the controller from its own loopback


def test_by_default_the_ingress_answers_no_client_address_for_the_admin(tmp_path):
    # when
    paths = ingress_paths(render_and_build(tmp_path))
    # then: every admin path is served by an Ingress that allows nobody (403 from the controller)
    admin = {path: served for path, served in paths.items() if path.startswith("/admin")}
    assert set(admin) == {"/admin/", "/admin/login/"}
    for path, (_, annotations) in admin.items():
        assert annotations[ALLOW] == annotations[WHITELIST] == NOBODY, path
    # and the catch-all "/" does not reach it: a longer prefix wins in ingress-nginx
    assert paths["/"][1].get(ALLOW) is None


def test_the_switch_opens_the_admin_and_keeps_the_login_forms_rate_limit(tmp_path):
    # when
    paths = ingress_paths(render_and_build(tmp_path, DEPLOY_ADMIN_PUBLIC=True))
    # then
    for path in ("/admin/", "/admin/login/"):
        annotations = paths[path][1]
        assert ALLOW not in annotations and WHITELIST not in annotations, path
    login = paths["/admin/login/"][1]
    assert (
        login["nginx.ingress.kubernetes.io/limit-rps"]
        == paths["/auth/"][1]["nginx.ingress.kubernetes.io/limit-rps"]
    )
    # the operator paths stay closed whatever the switch says
    assert paths["/metrics"][1][ALLOW] == NOBODY


def test_an_admin_session_lasts_eight_hours_by_default():
    assert settings.SESSION_COOKIE_AGE == 8 * 3600
