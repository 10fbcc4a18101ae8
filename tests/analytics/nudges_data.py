"""Known nudges for the nudges dashboard's tests (queries, page, browser), counted by hand.

D10 = 2026-03-10, D11 = 2026-03-11 (UTC); the range is D10..D11.

| # | template     | channel | variant | created | sent | reached            | status     |
| 1 | Stuck email  | email   | A       | D10     | D10  | opened             | opened     |
| 2 | Stuck email  | email   | A       | D10     | D10  | clicked, converted | converted  |
| 3 | Stuck email  | email   | B       | D10     | D11  |                    | sent       |
| 4 | Stuck email  | email   | B       | D11     |      |                    | failed     |
| 5 | Welcome push | push    | A       | D11     | D11  | clicked            | clicked    |
| 6 | (none)       | (none)  | (none)  | D10     |      |                    | suppressed |
| 7 | another workspace's email, D10, sent and converted                                |

Per channel and day:
- email: created D10 3 (#1-3), all sent: send rate 100%; created D11 1 (#4), not sent: 0%.
  sent D10 2 (#1, #2): opened 2 (a click is an open), converted 1: open 100%, conversion 50%;
  sent D11 1 (#3): open 0%, conversion 0%.
- push: created D10 none (rates null), D11 1 sent: 100%; sent D10 none (null); sent D11 1 (#5):
  open 100% (clicked), conversion 0%.
- (none): created D10 1 (#6), not sent: send rate 0%; nothing sent.
Per variant, conversion per day: A D10 1/2 = 50%, A D11 0/1 = 0% (#5); B D10 null, B D11 0/1.
Per template: Stuck email conversion D10 50%, D11 0%; Welcome push D10 null, D11 0%.
"""

from datetime import UTC, date, datetime

from nudges.models import Nudge
from tenancy.models import Workspace
from tests.factories import EndUserFactory
from tests.nudges.factories import NudgeFactory, NudgeTemplateFactory, TemplateVersionFactory, TriggerFactory

FIRST, LAST = date(2026, 3, 10), date(2026, 3, 11)


def at(day: int) -> datetime:
    return datetime(2026, 3, day, 10, tzinfo=UTC)


def nudges(workspace: Workspace, other: Workspace) -> None:
    trigger = TriggerFactory(workspace=workspace, name="Stuck")
    email = NudgeTemplateFactory(trigger=trigger, name="Stuck email", channel="email")
    push = NudgeTemplateFactory(trigger=trigger, name="Welcome push", channel="push")
    email_a = TemplateVersionFactory(template=email, variant="A", number=1)
    email_b = TemplateVersionFactory(template=email, variant="B", number=2)
    push_a = TemplateVersionFactory(template=push, variant="A", number=1)
    end_user = EndUserFactory(workspace=workspace)
    rows = [
        (email_a, "email", 10, 10, {"opened_at": at(10)}, "opened"),
        (email_a, "email", 10, 10, {"clicked_at": at(10), "converted_at": at(10)}, "converted"),
        (email_b, "email", 10, 11, {}, "sent"),
        (email_b, "email", 11, None, {}, "failed"),
        (push_a, "push", 11, 11, {"clicked_at": at(11)}, "clicked"),
        (None, "", 10, None, {}, "suppressed"),
    ]
    for number, (version, channel, created, sent, reached, status) in enumerate(rows, start=1):
        nudge = NudgeFactory(
            trigger=trigger,
            end_user=end_user,
            template_version=version,
            channel=channel,
            sent_at=at(sent) if sent else None,
            status=status,
            occasion=f"dashboard-{number}",
            **reached,
        )
        Nudge.objects.filter(pk=nudge.pk).update(created_at=at(created))
    other_nudge = NudgeFactory(
        trigger=TriggerFactory(workspace=other), sent_at=at(10), converted_at=at(10), status="converted"
    )
    Nudge.objects.filter(pk=other_nudge.pk).update(created_at=at(10))
