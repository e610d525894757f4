"""Two-factor login for the admin (django-otp, TOTP) with ``ADMIN_TWO_FACTOR`` on, as the
production settings force it; the API's login is unchanged."""

import json

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from logins.services import admin_totp_device_create
from tests.integration.messaging.factories import StaffMemberFactory

pytestmark = pytest.mark.integration

PASSWORD = "an-admin-password"


@pytest.fixture
def two_factor(settings):
    settings.ADMIN_TWO_FACTOR = True
    return settings


@pytest.fixture
def admin_user(db):
    return User.objects.create_user("otp-admin", password=PASSWORD, is_staff=True, is_superuser=True)


def _code(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def _admin_login(**fields: str) -> Client:
    client = Client()
    client.post("/admin/login/?next=/admin/", {"username": "otp-admin", "password": PASSWORD, **fields})
    return client


def _in_admin(client: Client) -> bool:
    answer = client.get("/admin/")
    assert answer.status_code in (200, 302)
    return answer.status_code == 200


def test_a_password_alone_does_not_open_the_admin(two_factor, admin_user):
    admin_totp_device_create(username="otp-admin")
    assert not _in_admin(_admin_login())


def test_a_wrong_code_does_not_open_the_admin(two_factor, admin_user):
    device = admin_totp_device_create(username="otp-admin")
    wrong = f"{(int(_code(device)) + 1) % 10**6:06d}"
    assert not _in_admin(_admin_login(otp_token=wrong))


def test_password_and_the_devices_current_code_open_the_admin(two_factor, admin_user):
    device = admin_totp_device_create(username="otp-admin")
    assert _in_admin(_admin_login(otp_token=_code(device)))


def test_a_staff_user_without_a_device_cannot_log_in(two_factor, admin_user):
    assert not _in_admin(_admin_login(otp_token="123456"))


def test_a_session_that_passed_no_second_factor_is_refused(two_factor, admin_user):
    # given: a session logged in by password only (as before the setting was on)
    client = Client()
    client.force_login(admin_user)
    # then: the admin treats it as not logged in
    assert not _in_admin(client)


def test_with_the_setting_off_the_password_is_enough(settings, admin_user):
    settings.ADMIN_TWO_FACTOR = False
    assert _in_admin(_admin_login())


def test_the_api_login_is_unchanged(db, two_factor):
    # an admin user who is also church staff, without a device, logs into the API by password
    staff = StaffMemberFactory.create()
    staff.user.is_staff = True
    staff.user.save()
    body = json.dumps({"username": staff.user.username, "password": "a-staff-password"})
    response = Client().post("/auth/login", data=body, content_type="application/json")
    assert response.status_code == 200
    assert "token" in response.json()


def test_the_command_gives_a_device_and_prints_its_url_once(admin_user, capsys):
    # when: a device is made, then replaced (a lost phone)
    call_command("admin_totp", "otp-admin")
    first = capsys.readouterr().out.strip()
    call_command("admin_totp", "otp-admin", "--replace", "--name", "new phone")
    second = capsys.readouterr().out.strip()
    # then: each is an otpauth URL, and only the new device is left, confirmed
    assert first.startswith("otpauth://totp/") and second.startswith("otpauth://totp/")
    assert first != second
    devices = list(TOTPDevice.objects.filter(user=admin_user))
    assert [(device.name, device.confirmed) for device in devices] == [("new phone", True)]


def test_the_command_refuses_a_user_the_admin_would_not_let_in(db):
    User.objects.create_user("not-staff", password=PASSWORD)
    with pytest.raises(CommandError, match="no active staff user"):
        call_command("admin_totp", "not-staff")
