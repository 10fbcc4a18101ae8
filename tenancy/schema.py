"""OpenAPI (drf-spectacular) description of how API clients authenticate.

Imported by the app config: drf-spectacular finds extensions by their subclass registration.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenancy.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": (
                "Segment's convention: the write key (or a secret key) as the user name and an empty "
                "password. A `writeKey` field in the JSON body, or `Authorization: Bearer <key>`, "
                "works too."
            ),
        }


class EndUserTokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenancy.authentication.EndUserTokenAuthentication"
    name = "endUserToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "`Authorization: Bearer ut_...`: a short-lived end-user token from "
                "POST /api/v1/users/{user_id}/token (secret key). It grants access to that one user."
            ),
        }
