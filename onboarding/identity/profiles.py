"""What identify, group and alias calls do to end-user profiles, applied in bulk per batch."""

from collections import defaultdict
from typing import Any

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Model
from django.utils import timezone

from core.db import bulk
from onboarding.identity.resolution import merge_end_users
from onboarding.models import AnonymousIdentity, Contact
from tenancy.models import CONTACT_TRAITS, FEATURE_TRAITS, EndUser, Workspace

# Segment's reserved traits may arrive in camelCase; features are stored snake_case.
_FEATURE_ALIASES = {"signupSource": "signup_source", "companySize": "company_size", "useCase": "use_case"}


def _save_fields(objects: list[Model], fields: list[str]) -> None:
    """Write these fields of these objects in one statement (core.db.bulk), as they are."""
    if objects:
        rows = [(obj.pk, *(getattr(obj, name) for name in fields)) for obj in objects]
        bulk.update(type(objects[0]), tuple(fields), rows)


_CONTACT_FIELDS = ("email", "phone", "first_name", "last_name", "name", "address", "updated_at")


def split_contact_traits(traits: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split identify traits into (features, contact data)."""
    features, contact = {}, {}
    for key, value in traits.items():
        (contact if key in CONTACT_TRAITS else features)[key] = value
    return features, contact


def _feature_columns(traits: dict[str, Any]) -> dict[str, str]:
    columns = {}
    for key, value in traits.items():
        column = _FEATURE_ALIASES.get(key, key)
        if column in FEATURE_TRAITS and value is not None and not isinstance(value, dict | list):
            max_length = EndUser._meta.get_field(column).max_length
            columns[column] = str(value)[:max_length]
    return columns


def _normalise_phone(value: Any, locale: str) -> str:
    text = str(value).strip()
    region = locale.replace("_", "-").split("-")[-1].upper() if "-" in locale or "_" in locale else None
    try:
        number = phonenumbers.parse(text, region)
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    return text[:32]


def _apply_contact(contact: Contact, traits: dict[str, Any], locale: str) -> None:
    if "email" in traits:
        email = str(traits["email"] or "").strip()
        try:
            validate_email(email)
            contact.email = email
        except ValidationError:
            contact.email = ""
    if traits.get("phone") not in (None, ""):
        contact.phone = _normalise_phone(traits["phone"], locale)
    for key, field in (
        ("firstName", "first_name"),
        ("first_name", "first_name"),
        ("lastName", "last_name"),
        ("last_name", "last_name"),
    ):
        if key in traits:
            setattr(contact, field, str(traits[key] or "")[:150])
    if "name" in traits:
        contact.name = str(traits["name"] or "")[:300]
    elif (contact.first_name or contact.last_name) and not contact.name:
        contact.name = f"{contact.first_name} {contact.last_name}".strip()
    if isinstance(traits.get("address"), dict):
        contact.address = traits["address"]


def apply_identifies(identifies: list[dict]) -> None:
    """Merge identify traits into profiles (features) and contacts, oldest call first."""
    by_user: dict[int, list[dict]] = defaultdict(list)
    for event in sorted(identifies, key=lambda event: event["timestamp"]):
        by_user[event["end_user_id"]].append(event)
    # NO KEY UPDATE: concurrent batches inserting events for these users take KEY SHARE locks
    # (foreign key checks) at commit; a plain FOR UPDATE would block them and could deadlock.
    end_users = list(EndUser.objects.select_for_update(no_key=True).filter(pk__in=by_user).order_by("pk"))
    contacts = {contact.end_user_id: contact for contact in Contact.objects.filter(end_user_id__in=by_user)}
    new_contacts, changed_contacts = [], []
    now = timezone.now()
    for end_user in end_users:
        for event in by_user[end_user.pk]:
            end_user.traits = {**end_user.traits, **event["traits"]}
            for column, value in _feature_columns(event["traits"]).items():
                setattr(end_user, column, value)
            if event["contact"]:
                contact = contacts.get(end_user.pk)
                if contact is None:
                    contact = contacts[end_user.pk] = Contact(end_user=end_user)
                    new_contacts.append(contact)
                elif contact not in changed_contacts:
                    changed_contacts.append(contact)
                _apply_contact(contact, event["contact"], end_user.locale)
        end_user.updated_at = now
    _save_fields(end_users, ["traits", *FEATURE_TRAITS, "updated_at"])
    for contact in changed_contacts:
        contact.updated_at = now
    for contact in new_contacts:
        contact.updated_at = now
    bulk.insert(
        Contact,
        ("end_user", *_CONTACT_FIELDS),
        [
            (contact.end_user_id, *(getattr(contact, name) for name in _CONTACT_FIELDS))
            for contact in new_contacts
        ],
    )
    _save_fields(changed_contacts, list(_CONTACT_FIELDS))


def apply_groups(groups: list[dict]) -> None:
    """The latest group call sets the user's company: its id, and its traits under "group"."""
    latest: dict[int, dict] = {}
    for event in sorted(groups, key=lambda event: event["timestamp"]):
        latest[event["end_user_id"]] = event
    end_users = list(EndUser.objects.select_for_update(no_key=True).filter(pk__in=latest).order_by("pk"))
    for end_user in end_users:
        event = latest[end_user.pk]
        end_user.group_id = event["group_id"]
        end_user.traits = {**end_user.traits, "group": {"id": event["group_id"], **event["traits"]}}
        end_user.updated_at = timezone.now()
    _save_fields(end_users, ["group_id", "traits", "updated_at"])


def apply_aliases(workspace: Workspace, aliases: list[dict]) -> None:
    """alias(previousId -> userId): the profile known by previousId folds into userId's."""
    for event in sorted(aliases, key=lambda event: event["timestamp"]):
        target = EndUser.objects.filter(workspace=workspace, pk=event["end_user_id"]).first()
        if target is None:
            continue
        previous_id = event["previous_id"]
        identity = (
            AnonymousIdentity.objects.select_related("end_user")
            .filter(workspace=workspace, anonymous_id=previous_id)
            .first()
        )
        source = (
            identity.end_user
            if identity
            else EndUser.objects.filter(workspace=workspace, external_id=previous_id).first()
        )
        if source is not None:
            merge_end_users(source=source, target=target)
        if identity is None:
            AnonymousIdentity.objects.get_or_create(
                workspace=workspace, anonymous_id=previous_id, defaults={"end_user": target}
            )


def apply_merges(workspace: Workspace, merges: set[tuple[int, int]]) -> None:
    for source_id, target_id in sorted(merges):
        source = EndUser.objects.filter(workspace=workspace, pk=source_id).first()
        target = EndUser.objects.filter(workspace=workspace, pk=target_id).first()
        if source is not None and target is not None:
            merge_end_users(source=source, target=target)
