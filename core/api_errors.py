"""Every API error is JSON with a `detail`, and `errors` [{field, reason}] when fields are at fault."""

from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler


def _field_errors(detail, prefix: str = "") -> list[dict[str, str]]:
    if isinstance(detail, dict):
        errors = []
        for key, value in detail.items():
            errors.extend(_field_errors(value, f"{prefix}.{key}" if prefix else str(key)))
        return errors
    if isinstance(detail, list):
        errors = []
        for item in detail:
            errors.extend(_field_errors(item, prefix))
        return errors
    return [{"field": prefix or "(request)", "reason": str(detail)}]


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail)
        response.data = {"detail": "Invalid request.", "errors": errors}
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"detail": str(response.data["detail"])}
    if context["view"].__class__.__module__ == "onboarding.ingestion.api":
        # Segment's clients read `code` and `message` from an error body.
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        response.data = {
            "success": False,
            "code": code if isinstance(code, str) else "invalid",
            "message": response.data["detail"],
            **response.data,
        }
    return response
