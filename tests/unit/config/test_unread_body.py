"""What a view leaves of the request body is read before the response goes out."""

import io

import pytest

from config.unread_body import MAX_DRAIN_BYTES, drain_unread_body

pytestmark = pytest.mark.unit


def _early_404(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


def _call(body: bytes, declared: int):
    stream = io.BytesIO(body)
    environ = {"CONTENT_LENGTH": str(declared), "wsgi.input": stream}
    result = drain_unread_body(_early_404)(environ, lambda status, headers: None)
    return result, stream


def test_a_body_the_view_did_not_read_is_read_before_the_response():
    # given a POST whose view answers without reading the body / when it is served
    result, stream = _call(b"x" * 300_000, 300_000)
    # then the app's own answer goes out and nothing of the body is left unread
    assert result == [b"not found"]
    assert stream.read() == b""


def test_a_body_larger_than_the_edge_allows_is_left_to_the_server():
    result, stream = _call(b"x" * 10, MAX_DRAIN_BYTES + 1)
    assert result == [b"not found"]
    assert stream.read() == b"x" * 10
