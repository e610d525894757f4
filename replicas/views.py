"""Diagnostic endpoints (only routed when ``REPLICAS_DEBUG_ENDPOINTS``; off in production)."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from config.databases import PRIMARY_DB_ALIAS
from replicas.selectors import database_server, replica_states, routing_counts, routing_probe_read
from replicas.services import routing_probe_create


@csrf_exempt
@require_POST
def probe_create(request: HttpRequest) -> JsonResponse:
    probe = routing_probe_create(note=request.GET.get("note", ""))
    alias = probe._state.db or PRIMARY_DB_ALIAS
    return JsonResponse({"id": probe.pk, "alias": alias, "server": database_server(alias=alias)}, status=201)


@require_GET
def probe_detail(request: HttpRequest, probe_id: int) -> JsonResponse:
    read = routing_probe_read(probe_id=probe_id)
    if read is None:
        return JsonResponse({"id": probe_id, "error": "not found"}, status=404)
    return JsonResponse({"id": read.probe_id, "alias": read.alias, "server": read.server})


@require_GET
def status(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"replicas": [state.as_dict() for state in replica_states()], "routing": routing_counts()}
    )
