"""Data regions: outbound calls carrying user data go only to endpoints of the workspace's region.

Each workspace has a data region (WorkspacePolicy.data_region, "us" by default). Every service
that sends user data out (the LLM, email, SMS, push and Intercom providers, Segment destinations)
asks `endpoint_for` for its base URL before the call; the endpoints come from the environment,
read once in settings.REGION_ENDPOINTS. A region without a configured endpoint blocks the call:
`RegionBlocked` carries the reason, which the caller records (a policy reason, a fallback reason)
and the call does not happen. There is no fallback to another region's endpoint: sending an EU
workspace's data to a US endpoint is exactly what this prevents.
"""

import logging

from django.conf import settings

from guardrails.models import DataRegion, WorkspacePolicy
from tenancy.models import Workspace

logger = logging.getLogger(__name__)

SERVICES = ("llm", "email", "sms", "push", "intercom", "segment_destinations")
BLOCKED_CODE = "region.endpoint_missing"


class RegionBlocked(Exception):
    """No endpoint is configured for this service in the workspace's region."""

    def __init__(self, reason: str, *, service: str, region: str):
        super().__init__(reason)
        self.reason = reason
        self.service = service
        self.region = region

    def as_reason(self) -> dict[str, str]:
        """The shape of a policy decision's reason: a code and a message for the admin."""
        return {"code": BLOCKED_CODE, "message": self.reason}


def workspace_region(*, workspace: Workspace) -> str:
    """The workspace's data region; a workspace without a policy row is in the default region."""
    region = WorkspacePolicy.objects.filter(workspace=workspace).values_list("data_region", flat=True).first()
    return region or DataRegion.US


def endpoint_for(*, workspace: Workspace, service: str) -> str:
    """The base URL of `service` in the workspace's data region; RegionBlocked when there is none."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
    region = workspace_region(workspace=workspace)
    endpoint = settings.REGION_ENDPOINTS.get(service, {}).get(region, "")
    if endpoint:
        return endpoint
    variable = f"{settings.REGION_ENDPOINT_VARIABLES[service]}_{region.upper()}"
    reason = (
        f"blocked: no {service} endpoint is configured for the workspace's data region "
        f"'{region}' (set {variable}); user data is never sent to another region"
    )
    logger.warning(
        "guardrails.region.blocked",
        extra={"workspace_id": workspace.pk, "service": service, "region": region},
    )
    raise RegionBlocked(reason, service=service, region=region)
