"""Choosers the composer asks before its own rule (cold start, then the bandit), so that a higher
app (experiments: an experiment on the template) picks the version without nudges importing it.
Higher apps register one at start (AppConfig.ready). A chooser:

* `choose(template=, end_user=)`: a `Pick` (one of the template's versions, and why), or None to
  let the next chooser, then the cold-start rule and the bandit, decide.
* `sent(nudge=)`: called after the commit of a send the bandit counts (the provider accepted
  it, or a person settled it as delivered), for what its choices record (an exposure).

A chooser that raises is skipped, and so is a pick the template cannot send (another template's
version, a draft, a retired one): the failure is logged and named in the explanation, and the
bandit decides. A chooser's own recovery (an experiment's "allocation fails -> control") is
its business: it returns that pick with its reason.
"""

import logging
from dataclasses import dataclass
from typing import Protocol

from django.db import transaction

from nudges.models import Nudge, NudgeTemplate, TemplateVersion
from tenancy.models import EndUser

logger = logging.getLogger(__name__)

# Approved versions are immutable and passed the second admin's review: a chooser may send one
# that the bandit does not (an experiment's challenger). Drafts and retired versions never go out.
SENDABLE = (TemplateVersion.Status.APPROVED, TemplateVersion.Status.ACTIVE)


@dataclass(frozen=True, slots=True)
class Pick:
    version: TemplateVersion
    reason: str


class Chooser(Protocol):
    source: str  # "experiment": named in the explanation when it fails

    def choose(self, *, template: NudgeTemplate, end_user: EndUser) -> Pick | None: ...

    def sent(self, *, nudge: Nudge) -> None: ...


class UnsendablePick(ValueError):
    """A chooser picked a version this template must not send."""


_CHOOSERS: list[tuple[int, Chooser]] = []


def chooser_register(chooser: Chooser, *, order: int) -> None:
    """Register once per source; lower order chooses first."""
    _CHOOSERS[:] = [(rank, known) for rank, known in _CHOOSERS if known.source != chooser.source]
    _CHOOSERS.append((order, chooser))
    _CHOOSERS.sort(key=lambda item: item[0])


def chooser_unregister(source: str) -> None:
    _CHOOSERS[:] = [(rank, known) for rank, known in _CHOOSERS if known.source != source]


def choosers() -> list[Chooser]:
    return [chooser for _, chooser in _CHOOSERS]


def check_sendable(template: NudgeTemplate, version: TemplateVersion) -> None:
    if version.template_id != template.pk:
        raise UnsendablePick(f"v{version.number} is a version of another template")
    if version.status not in SENDABLE:
        raise UnsendablePick(f"v{version.number} is {version.status}, not approved")


def pick(*, template: NudgeTemplate, end_user: EndUser) -> tuple[Pick | None, list[str]]:
    """The first registered chooser's pick, and the failures met before it (for the explanation)."""
    failures: list[str] = []
    for chooser in choosers():
        try:
            picked = chooser.choose(template=template, end_user=end_user)
            if picked is not None:
                check_sendable(template, picked.version)
        except Exception as error:
            logger.exception(
                "nudges.chooser.failed",
                extra={"source": chooser.source, "template_id": template.pk, "end_user_id": end_user.pk},
            )
            failures.append(f"{chooser.source} failed ({type(error).__name__}: {error})")
            continue
        if picked is not None:
            return picked, failures
    return None, failures


def _notify(nudge: Nudge) -> None:
    for chooser in choosers():
        try:
            chooser.sent(nudge=nudge)
        except Exception:  # what a chooser records never undoes nor fails a send
            logger.exception(
                "nudges.chooser.sent_failed", extra={"source": chooser.source, "nudge_id": nudge.pk}
            )


def version_sent(*, nudge: Nudge) -> None:
    """Tell the choosers, once the current transaction commits, that the nudge was sent."""
    if _CHOOSERS and nudge.template_version_id is not None:
        transaction.on_commit(lambda: _notify(nudge))
