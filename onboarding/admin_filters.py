"""Admin filters of the event table: typed input (tenancy.admin_filters.InputFilter), not a scan."""

from django.db.models import Q

from tenancy.admin_filters import InputFilter
from tenancy.models import EndUser


class EventNameFilter(InputFilter):
    title = "event name"
    parameter_name = "name"
    field_lookup = "name"


class EventUserFilter(InputFilter):
    title = "user (userId or anonymousId)"
    parameter_name = "user"

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        if not value:
            return queryset
        # The person behind the id too: their events sent under their other ids (before an
        # identify, or from another device) belong to them.
        people = EndUser.objects.filter(Q(external_id=value) | Q(anonymous_identities__anonymous_id=value))
        return queryset.filter(Q(user_id=value) | Q(anonymous_id=value) | Q(end_user__in=people))
