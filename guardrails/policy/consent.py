"""What a user has consented to when their ledger says nothing: the one table of defaults.

Current consent is the latest ConsentRecord per channel and purpose (guardrails.policy
.selectors.consent_current); where there is none, DEFAULTS decides. Onboarding messages in the product's
own UI and by email are the service the user signed up for (legitimate interest) and are allowed
until withdrawn; every such email carries a one-click unsubscribe. Everything else needs an
explicit grant: marketing on any channel, and SMS, push and Intercom, which reach the user
outside the product or cost them money.
"""

from guardrails.models import Channel, Purpose

DEFAULTS: dict[tuple[str, str], bool] = {
    (Channel.IN_APP, Purpose.ONBOARDING): True,
    (Channel.EMAIL, Purpose.ONBOARDING): True,
    (Channel.SMS, Purpose.ONBOARDING): False,
    (Channel.PUSH, Purpose.ONBOARDING): False,
    (Channel.INTERCOM, Purpose.ONBOARDING): False,
    (Channel.IN_APP, Purpose.MARKETING): False,
    (Channel.EMAIL, Purpose.MARKETING): False,
    (Channel.SMS, Purpose.MARKETING): False,
    (Channel.PUSH, Purpose.MARKETING): False,
    (Channel.INTERCOM, Purpose.MARKETING): False,
}

PAIRS: tuple[tuple[str, str], ...] = tuple(
    (channel, purpose) for channel in Channel.values for purpose in Purpose.values
)


def consent_default(channel: str, purpose: str) -> bool:
    return DEFAULTS.get((channel, purpose), False)


def consent_effective(current: dict[tuple[str, str], bool | None], channel: str, purpose: str) -> bool:
    """The ledger's latest value for the pair, else the default."""
    recorded = current.get((channel, purpose))
    return consent_default(channel, purpose) if recorded is None else recorded
