"""Cost per request of one list endpoint: plain Django ``JsonResponse`` vs django-ninja vs DRF.

Each variant lists 50 contacts as JSON through the full Django WSGI handler (every
middleware included), in one process, with no network, so the differences are the
framework's own work: routing, (de)serialisation, validation, rendering. Two datasets:
``static`` (50 prebuilt objects, no database: framework cost alone) and ``db`` (50 rows read
from PostgreSQL through PgBouncer: the realistic mix). Rounds are interleaved so drift
affects every variant alike; the median of the round medians is reported.

DRF is not a project dependency; install it aside for the run only:

    .venv/bin/pip install --target /tmp/bench-drf --no-deps djangorestframework
    DB_NAME=bench_messaging .venv/bin/python -m bench.api_framework.bench --drf-path /tmp/bench-drf

The ``db`` dataset needs a seeded database (``manage.py seed_demo``); pass ``--no-db`` without one.
"""

import argparse
import io
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

VARIANTS = ["plain", "ninja", "drf"]


def _setup(drf_path: str | None) -> bool:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ["DJANGO_DEBUG"] = "false"  # DEBUG keeps every query in memory
    if drf_path:
        sys.path.insert(0, drf_path)
    import django
    from django.conf import settings

    try:
        import rest_framework  # noqa: F401

        has_drf = True
    except ImportError:
        has_drf = False
    settings.ROOT_URLCONF = __name__ + "_urls"
    if has_drf:
        settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "rest_framework"]
    django.setup()
    # One log line per request to stderr would dominate the timings and bury the table.
    logging.getLogger("app.request").setLevel(logging.WARNING)
    return has_drf


def _build_urls(has_drf: bool, church_id: int | None) -> None:
    """Register a URLconf module with the three variants of each dataset."""
    import types
    from datetime import UTC, datetime

    from django.http import HttpRequest, JsonResponse
    from django.urls import path
    from ninja import NinjaAPI, Schema

    from messaging.models import Contact

    now = datetime.now(UTC)
    static_rows = [
        Contact(
            id=i,
            church_id=1,
            phone=f"+1212{2000000 + i:07d}",
            name=f"Member {i}",
            opted_out=False,
            created_at=now,
        )
        for i in range(50)
    ]

    def rows(dataset: str) -> list[Contact]:
        if dataset == "static":
            return static_rows
        assert church_id is not None
        return list(Contact.objects.filter(church_id=church_id).order_by("id")[:50])

    def plain_view(dataset: str) -> Callable[[HttpRequest], JsonResponse]:
        def view(request: HttpRequest) -> JsonResponse:
            items = [
                {
                    "id": c.id,
                    "phone": c.phone,
                    "name": c.name,
                    "opted_out": c.opted_out,
                    "created_at": c.created_at.isoformat(),
                }
                for c in rows(dataset)
            ]
            return JsonResponse({"items": items})

        return view

    class ContactOut(Schema):
        id: int
        phone: str
        name: str
        opted_out: bool
        created_at: datetime

    class Page(Schema):
        items: list[ContactOut]

    api = NinjaAPI(urls_namespace="bench-ninja", openapi_url=None, docs_url=None)

    @api.get("/static", response=Page)
    def ninja_static(request: HttpRequest) -> dict[str, object]:
        return {"items": rows("static")}

    @api.get("/db", response=Page)
    def ninja_db(request: HttpRequest) -> dict[str, object]:
        return {"items": rows("db")}

    urlpatterns: list[Any] = [
        path("plain/static", plain_view("static")),
        path("plain/db", plain_view("db")),
        path("ninja/", api.urls),
    ]
    if has_drf:
        from rest_framework import serializers
        from rest_framework.permissions import AllowAny
        from rest_framework.renderers import JSONRenderer
        from rest_framework.response import Response
        from rest_framework.views import APIView

        class ContactSerializer(serializers.ModelSerializer):
            class Meta:
                model = Contact
                fields = ["id", "phone", "name", "opted_out", "created_at"]

        def drf_view(dataset: str) -> Callable[..., Any]:
            class ListView(APIView):
                authentication_classes: list[Any] = []
                permission_classes = [AllowAny]
                renderer_classes = [JSONRenderer]

                def get(self, request: Any) -> Response:
                    return Response({"items": ContactSerializer(rows(dataset), many=True).data})

            return ListView.as_view()

        urlpatterns += [path("drf/static", drf_view("static")), path("drf/db", drf_view("db"))]
    module = types.ModuleType(__name__ + "_urls")
    module.urlpatterns = urlpatterns  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module


def _caller(path: str) -> Callable[[], int]:
    from django.core.handlers.wsgi import WSGIHandler

    handler = WSGIHandler()
    status: list[str] = []

    def start_response(
        code: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        status.append(code)
        return lambda _data: None

    def call() -> int:
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "HTTP_HOST": "localhost",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }
        body = b"".join(handler(environ, start_response))
        if not status[-1].startswith("200"):
            raise RuntimeError(f"{path}: {status[-1]} {body[:200]!r}")
        return len(body)

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drf-path", help="a folder where djangorestframework is installed")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=300, help="requests per variant per round")
    parser.add_argument("--no-db", action="store_true", help="skip the database dataset")
    args = parser.parse_args()
    has_drf = _setup(args.drf_path)

    from messaging.models import Church

    church_id = None if args.no_db else Church.objects.order_by("id").values_list("id", flat=True).first()
    datasets = ["static"] if church_id is None else ["static", "db"]
    _build_urls(has_drf, church_id)
    variants = [v for v in VARIANTS if v != "drf" or has_drf]
    callers = {(v, d): _caller(f"/{v}/{d}") for v in variants for d in datasets}
    for call in callers.values():  # warm up: imports, connections, caches
        for _ in range(50):
            call()
    medians: dict[tuple[str, str], list[float]] = {key: [] for key in callers}
    for _ in range(args.rounds):
        for key, call in callers.items():
            samples = []
            for _ in range(args.requests):
                started = time.perf_counter_ns()
                call()
                samples.append((time.perf_counter_ns() - started) / 1000)
            medians[key].append(statistics.median(samples))
    print(f"median µs per request ({args.rounds} rounds x {args.requests} requests; 50 items per response)")
    print(f"{'dataset':8} {'variant':6} {'µs/req':>8} {'vs plain':>9} {'req/s/core':>11}")
    for dataset in datasets:
        base = statistics.median(medians[("plain", dataset)])
        for variant in variants:
            value = statistics.median(medians[(variant, dataset)])
            print(f"{dataset:8} {variant:6} {value:8.0f} {value / base:8.2f}x {1e6 / value:11.0f}")
    if not has_drf:
        print("DRF not importable: install it aside (see the module docstring) to include it.")


if __name__ == "__main__":
    main()
