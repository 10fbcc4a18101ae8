"""The end user an API call names, for every API that takes `/users/{user_id}/...`."""

from rest_framework import exceptions

from tenancy import tokens
from tenancy.models import EndUser
from tenancy.selectors import end_user_get


def end_user_for_request(request, user_id: str) -> EndUser:
    """The workspace's end user with this external id: 404 when there is none, 403 when the
    request's end-user token was issued to another person under the same id."""
    end_user = end_user_get(workspace=request.user.workspace, external_id=user_id)
    if end_user is None:
        raise exceptions.NotFound(f"No such user: {user_id!r}.")
    token = request.auth if isinstance(request.auth, tokens.EndUserToken) else None
    if token is not None and end_user.pk != token.end_user_id:
        # Same external id, another person: the user was deleted and re-created after issuing.
        raise exceptions.PermissionDenied("This end-user token is for another user.")
    return end_user
