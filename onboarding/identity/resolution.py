"""Identity resolution: Segment's userId / anonymousId pairs to end users, in bulk.

A batch resolves with a handful of statements whatever its size. New rows are inserted in
sorted order with ON CONFLICT DO NOTHING, so concurrent batches neither deadlock nor duplicate.
"""

import logging
from collections.abc import Iterable

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.db import bulk
from onboarding.models import AnonymousIdentity, Contact, Event
from tenancy.models import FEATURE_TRAITS, EndUser, Workspace

logger = logging.getLogger(__name__)

IdentityPair = tuple[str | None, str | None]  # (userId, anonymousId)


def _lookup(query: str, workspace: Workspace, keys: Iterable[str]) -> list[tuple]:
    """Run a lookup query: `%s` is the workspace, `{in_keys}` tests the key column. Raw SQL because
    these two run on every batch with a hundred keys, and building them through the ORM cost more
    CPU than PostgreSQL spends answering. One list parameter (= ANY) keeps the text of the query
    the same for every batch, so psycopg parses it once."""
    keys = list(keys)
    if not keys:
        return []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(query.format(in_keys="= ANY(%s)"), [workspace.pk, keys])
        else:
            in_keys = "IN (" + ", ".join(["%s"] * len(keys)) + ")"
            cursor.execute(query.format(in_keys=in_keys), [workspace.pk, *keys])
        return cursor.fetchall()


def _end_users_by_external_id(workspace: Workspace, external_ids: Iterable[str]) -> dict[str, int]:
    end_users = connection.ops.quote_name(EndUser._meta.db_table)
    query = (
        f"SELECT external_id, id FROM {end_users} "  # noqa: S608 (table name from model metadata)
        "WHERE workspace_id = %s AND external_id {in_keys}"
    )
    return dict(_lookup(query, workspace, external_ids))


def _identities(workspace: Workspace, anonymous_ids: Iterable[str]) -> dict[str, tuple[int, bool]]:
    """anonymous id -> (end user id, whether that end user is still anonymous)."""
    identities = connection.ops.quote_name(AnonymousIdentity._meta.db_table)
    end_users = connection.ops.quote_name(EndUser._meta.db_table)
    # A subquery, not a join: PostgreSQL would hash-join a seq scan of every end user.
    query = (
        f"SELECT i.anonymous_id, i.end_user_id, "  # noqa: S608
        f"(SELECT u.external_id FROM {end_users} u WHERE u.id = i.end_user_id) FROM {identities} i "
        "WHERE i.workspace_id = %s AND i.anonymous_id {in_keys}"
    )
    rows = _lookup(query, workspace, anonymous_ids)
    return {anonymous_id: (end_user_id, external is None) for anonymous_id, end_user_id, external in rows}


_NEW_END_USER_FIELDS = (
    "workspace",
    "external_id",
    "traits",
    *FEATURE_TRAITS,
    "group_id",
    "created_at",
    "updated_at",
)


def _insert_end_users(workspace: Workspace, external_ids: list[str | None]) -> list[tuple[str | None, int]]:
    """New profiles (None: anonymous); (external id, id) of those inserted, in order. A userId
    a concurrent batch inserted first is skipped, not duplicated."""
    now = timezone.now()
    blank_features = [""] * len(FEATURE_TRAITS)
    rows = [(workspace.pk, external_id, {}, *blank_features, "", now, now) for external_id in external_ids]
    return bulk.insert(
        EndUser,
        _NEW_END_USER_FIELDS,
        rows,
        on_conflict="(workspace_id, external_id) WHERE external_id IS NOT NULL DO NOTHING",
        returning=("external_id", "id"),
    )


def _insert_identities(workspace: Workspace, links: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Link anonymous ids; (anonymous id, end user id) of the links inserted."""
    now = timezone.now()
    return bulk.insert(
        AnonymousIdentity,
        ("workspace", "anonymous_id", "end_user", "created_at"),
        [(workspace.pk, anonymous_id, end_user_id, now) for anonymous_id, end_user_id in links],
        on_conflict="(workspace_id, anonymous_id) DO NOTHING",
        returning=("anonymous_id", "end_user_id"),
    )


def resolve_end_users(
    *, workspace: Workspace, pairs: Iterable[IdentityPair]
) -> tuple[dict[IdentityPair, int], set[tuple[int, int]]]:
    """Map every (userId, anonymousId) pair to an end user id, creating and linking as needed.

    Also returns the (source, target) merges to apply once the batch's events are stored: an
    anonymous profile seen with a userId that already has a profile of its own.

    - a known userId wins; its anonymousId, if new, is linked to it;
    - an unknown userId seen with an anonymous-only profile claims that profile;
    - an anonymousId alone resolves to its profile, or to a new anonymous one.
    Must run inside a transaction.
    """
    pairs = set(pairs)
    external_ids = {user_id for user_id, _ in pairs if user_id}
    anonymous_ids = {anonymous_id for _, anonymous_id in pairs if anonymous_id}
    by_external = _end_users_by_external_id(workspace, external_ids)
    identities = _identities(workspace, anonymous_ids)
    _claim_anonymous_profiles(pairs, by_external, identities)
    missing_external = sorted(external_ids - by_external.keys())
    if missing_external:
        by_external.update(_insert_end_users(workspace, missing_external))
        # A concurrent batch created some of them first: read those.
        by_external.update(_end_users_by_external_id(workspace, external_ids - by_external.keys()))
    _link_new_anonymous_ids(workspace, pairs, by_external, identities)
    return _resolved_with_merges(pairs, by_external, identities)


def _claim_anonymous_profiles(
    pairs: set[IdentityPair], by_external: dict[str, int], identities: dict[str, tuple[int, bool]]
) -> None:
    """Anonymous profiles claimed by a userId seen with them for the first time (first pair wins):
    `by_external` and `identities` updated with the claims that took."""
    claims: dict[int, str] = {}
    for user_id, anonymous_id in sorted(pairs, key=lambda pair: (pair[0] or "", pair[1] or "")):
        if not user_id or user_id in by_external or anonymous_id not in identities:
            continue
        end_user_id, is_anonymous = identities[anonymous_id]
        if is_anonymous and end_user_id not in claims and user_id not in claims.values():
            claims[end_user_id] = user_id
    claimed = set(_claim(claims))
    for end_user_id in claimed:
        by_external[claims[end_user_id]] = end_user_id
    for anonymous_id, (end_user_id, _) in identities.items():
        if end_user_id in claimed:
            identities[anonymous_id] = (end_user_id, False)


def _link_new_anonymous_ids(
    workspace: Workspace,
    pairs: set[IdentityPair],
    by_external: dict[str, int],
    identities: dict[str, tuple[int, bool]],
) -> None:
    """Anonymous ids never seen: linked to the pair's user, or to a new anonymous profile
    (`identities` updated)."""
    new_links: dict[str, int] = {}
    anonymous_only = sorted(
        anonymous_id
        for user_id, anonymous_id in pairs
        if anonymous_id and not user_id
        if anonymous_id not in identities
    )
    for user_id, anonymous_id in pairs:
        if anonymous_id and user_id and anonymous_id not in identities:
            new_links.setdefault(anonymous_id, by_external[user_id])
    anonymous_only = [anonymous_id for anonymous_id in anonymous_only if anonymous_id not in new_links]
    if anonymous_only:
        created = _insert_end_users(workspace, [None] * len(anonymous_only))
        new_links.update(zip(anonymous_only, (end_user_id for _, end_user_id in created), strict=True))
    if not new_links:
        return
    new_profiles = set(anonymous_only)
    for anonymous_id, end_user_id in _insert_identities(workspace, sorted(new_links.items())):
        identities[anonymous_id] = (end_user_id, anonymous_id in new_profiles)
    # A concurrent batch linked some of them first: read those.
    identities.update(_identities(workspace, new_links.keys() - identities.keys()))
    # A concurrent batch linked some of these first: drop the profiles we made in vain.
    lost = [
        new_links[anonymous_id]
        for anonymous_id in anonymous_only
        if identities[anonymous_id][0] != new_links[anonymous_id]
    ]
    if lost:
        EndUser.objects.filter(pk__in=lost, external_id__isnull=True).delete()


def _resolved_with_merges(
    pairs: set[IdentityPair], by_external: dict[str, int], identities: dict[str, tuple[int, bool]]
) -> tuple[dict[IdentityPair, int], set[tuple[int, int]]]:
    resolved, merges = {}, set()
    for user_id, anonymous_id in pairs:
        resolved[(user_id, anonymous_id)] = by_external[user_id] if user_id else identities[anonymous_id][0]
        if user_id and anonymous_id:
            linked_id, is_anonymous = identities[anonymous_id]
            if is_anonymous and linked_id != by_external[user_id]:
                merges.add((linked_id, by_external[user_id]))
    return resolved, merges


def _claim(claims: dict[int, str]) -> list[int]:
    """Give anonymous profiles their userIds (end user id -> userId) in one statement; the ids of
    those claimed. When another profile got one of these userIds first, the statement fails as a
    whole and they are claimed one by one, each losing to the profile that has its id."""
    if not claims:
        return []
    rows = sorted(claims.items())
    try:
        with transaction.atomic():
            return bulk.update(EndUser, ("external_id",), rows, only_if_null="external_id")
    except IntegrityError:
        claimed = []
        for end_user_id, external_id in rows:
            try:
                with transaction.atomic():
                    claimed += bulk.update(
                        EndUser, ("external_id",), [(end_user_id, external_id)], only_if_null="external_id"
                    )
            except IntegrityError:
                continue
        return claimed


def merge_end_users(*, source: EndUser, target: EndUser) -> EndUser:
    """Fold `source` into `target`: events, anonymous ids, missing traits and contact move over.

    Used by alias calls and when a known user signs in on a device that had its own anonymous
    profile. The target's own values win.
    """
    if source.pk == target.pk:
        return target
    Event.objects.filter(end_user=source).update(end_user=target)
    AnonymousIdentity.objects.filter(end_user=source).update(end_user=target)
    target.traits = {**source.traits, **target.traits}
    for field in ("persona", "signup_source", "company_size", "use_case", "locale", "timezone", "group_id"):
        if not getattr(target, field):
            setattr(target, field, getattr(source, field))
    target.save()
    source_contact = Contact.objects.filter(end_user=source).first()
    if source_contact is not None:
        target_contact, _ = Contact.objects.get_or_create(end_user=target)
        for field in ("email", "phone", "first_name", "last_name", "name"):
            if not getattr(target_contact, field):
                setattr(target_contact, field, getattr(source_contact, field))
        target_contact.address = target_contact.address or source_contact.address
        target_contact.save()
    logger.info("end_user.merged", extra={"source_id": source.pk, "target_id": target.pk})
    source.delete()
    return target
