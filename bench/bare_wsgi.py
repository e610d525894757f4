"""The baseline: the smallest WSGI app, served by the same gunicorn config as the app servers."""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\n"]
