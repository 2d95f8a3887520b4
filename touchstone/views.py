from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt


def health(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


@csrf_exempt  # it changes nothing; without this a POST would meet the CSRF check's HTML 403 first
def api_not_found(request: HttpRequest) -> JsonResponse:
    """Any path under /api/v1/ that no app's API claims: a JSON 404 like every other API answer."""
    return JsonResponse({"code": "not_found", "message": f"No API endpoint at {request.path}.", "extra": {}},
                        status=404)
