"""The one request id rule of the app servers and the live server (NGINX's character set)."""

import re

import pytest

from config.request_ids import request_id_for

pytestmark = pytest.mark.unit

NEW_ID = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize(
    "given",
    ["req-from-nginx-0001", "a" * 8, "x" * 128, "0f3c.41_ab:99-zz", "1234567890abcdef1234567890abcdef"],
)
def test_an_acceptable_id_is_kept(given):
    assert request_id_for(given) == given


@pytest.mark.parametrize(
    "given",
    [
        None,
        "",
        "short",  # under 8
        "x" * 129,  # over 128
        "has spaces in it",
        'bad id"}\n{"forged": 1',
        "trailing-newline\n",
        # digits and letters outside ASCII: str.isdigit(), str.isalnum() and \d accept these
        "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",  # Arabic-Indic digits
        "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",  # fullwidth digits
        "request-\u0663-0001",
        "req-\u00efd-0001",  # a non-ASCII letter
    ],
)
def test_anything_else_is_replaced_by_a_new_id(given):
    made = request_id_for(given)
    assert made != given
    assert NEW_ID.fullmatch(made)


def test_each_new_id_is_new():
    assert request_id_for(None) != request_id_for(None)
