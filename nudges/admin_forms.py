"""Forms of the nudges admin (nudges/admin.py): trigger settings per kind instead of JSON, lists
one per line, provider settings without secrets. The template forms: nudges/content/forms.py."""

import re

from django import forms

from guardrails.models import Channel
from nudges.models import ChannelProvider, NudgeSettings, Trigger
from nudges.triggers import engine as triggers
from nudges.triggers.registry import KINDS

Kind = Trigger.Kind

# The Trigger.config keys each kind's form fields hold (its module under nudges/triggers/kinds/).
KIND_FIELDS = {
    kind: registered.config_fields for kind, registered in KINDS.items() if registered.config_fields
}
CONFIG_FIELDS = tuple(dict.fromkeys(name for names in KIND_FIELDS.values() for name in names))

PROVIDER_CHANNELS = {
    ChannelProvider.Provider.SENDGRID: Channel.EMAIL,
    ChannelProvider.Provider.MAILGUN: Channel.EMAIL,
    ChannelProvider.Provider.AMAZON_SES: Channel.EMAIL,
    ChannelProvider.Provider.SMTP: Channel.EMAIL,
    ChannelProvider.Provider.TWILIO: Channel.SMS,
    ChannelProvider.Provider.WEBPUSH: Channel.PUSH,
    ChannelProvider.Provider.IN_APP: Channel.IN_APP,
    ChannelProvider.Provider.INTERCOM: Channel.INTERCOM,
}
# A settings key that would hold a credential. Keys ending in "_secret" name a WorkspaceSecret.
SECRET_KEY_NAME = re.compile(
    r"(password|passwd|api_?key|auth_?token|access_?key|private_?key|token|credential)$"
)
DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


class LinesField(forms.CharField):
    """A list edited as one item per line (commas separate too)."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 60})

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        items = [item.strip() for item in re.split(r"[\n,]", text)]
        return list(dict.fromkeys(item for item in items if item))


class NudgeSettingsForm(forms.ModelForm):
    allowed_link_domains = LinesField(
        required=False,
        help_text="One domain per line, e.g. app.example.com; its subdomains are allowed too. "
        "Relative deep links (/settings) are always allowed.",
    )
    banned_words = LinesField(
        required=False, help_text="One word or phrase per line; matched as whole words, any case."
    )

    class Meta:
        model = NudgeSettings
        fields = (
            "workspace",
            "postal_address",
            "allowed_link_domains",
            "banned_words",
            "sms_opt_out_text",
            "conversion_window_hours",
            "personalisation_enabled",
            "send_at_active_hour",
        )

    def clean_allowed_link_domains(self):
        domains, wrong = [], []
        for item in self.cleaned_data["allowed_link_domains"]:
            domain = item.lower().removeprefix("*.").strip(".")
            (domains if DOMAIN.fullmatch(domain) else wrong).append(domain or item)
        if wrong:
            raise forms.ValidationError(
                f"Not a domain name: {', '.join(wrong)} (write app.example.com, without https:// or a path)."
            )
        return list(dict.fromkeys(domains))


class TriggerForm(forms.ModelForm):
    """The kind's settings as fields; Trigger.config is built from them and validated by
    nudges.triggers.engine.config_errors. Keys the form does not know are kept as they were."""

    channel_order = forms.CharField(
        label="channels",
        help_text="Tried in this order, comma-separated: the first one allowed is used. "
        f"Choices: {', '.join(Channel.values)}.",
    )
    days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=365,
        help_text="Inactivity: no events for this many days (default 3). "
        "Re-engagement: abandoned for this many days (default 14).",
    )
    step = forms.CharField(
        required=False, max_length=80, label="step key", help_text="Milestone: when this step is completed..."
    )
    percent = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=100,
        help_text="... or when this percentage of the path is complete (give one of the two).",
    )
    event_a = forms.CharField(required=False, max_length=255, label="event A", help_text="e.g. Cart Viewed")
    # JSON for this rarer case: paths' conditions editor lives in paths' admin, which another
    # app does not import.
    conditions_a = forms.JSONField(
        required=False,
        label="event A's properties",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Optional: only A events matching every condition count, e.g. "
        '[{"property": "total", "operator": "gte", "value": 20}] (operators as in path steps).',
    )
    event_b = forms.CharField(
        required=False, max_length=255, label="event B", help_text="e.g. Order Completed"
    )
    window_hours = forms.FloatField(
        required=False, min_value=0.01, label="within (hours)", help_text="B must follow A within this time."
    )

    class Meta:
        model = Trigger
        fields = ("workspace", "name", "kind", "purpose", "is_active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        config = self.instance.config or {}
        self.fields["channel_order"].initial = ", ".join(self.instance.channels or [])
        for name in CONFIG_FIELDS:
            if name in config:
                self.fields[name].initial = config[name]

    def clean_channel_order(self):
        channels = [item.strip() for item in self.cleaned_data["channel_order"].split(",") if item.strip()]
        unknown = [channel for channel in channels if channel not in Channel.values]
        if unknown:
            raise forms.ValidationError(
                f"Unknown channel: {', '.join(unknown)}. Choices: {', '.join(Channel.values)}."
            )
        if not channels:
            raise forms.ValidationError("Give at least one channel.")
        return list(dict.fromkeys(channels))

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if not kind:
            return cleaned
        config = {
            key: value for key, value in (self.instance.config or {}).items() if key not in CONFIG_FIELDS
        }
        for name in KIND_FIELDS.get(kind, ()):
            value = cleaned.get(name)
            if value in (None, "", []):
                continue
            if name == "window_hours" and float(value).is_integer():
                value = int(value)
            config[name] = value.strip() if isinstance(value, str) else value
        for field, message in triggers.config_errors(kind, config).items():
            self.add_error(field if field in self.fields else None, message)
        self.config = config
        return cleaned

    def save(self, commit=True):
        self.instance.config = self.config
        self.instance.channels = self.cleaned_data["channel_order"]
        return super().save(commit)


class ChannelProviderForm(forms.ModelForm):
    class Meta:
        model = ChannelProvider
        fields = (
            "workspace",
            "channel",
            "provider",
            "priority",
            "region",
            "settings",
            "secret_name",
            "is_active",
        )
        help_texts = {
            "settings": 'Non-secret settings as JSON, e.g. {"from_email": "hello@example.com"}. '
            "Keys, tokens and passwords go in a workspace secret named below, never here.",
        }

    def clean_settings(self):
        value = self.cleaned_data["settings"]
        if not isinstance(value, dict):
            raise forms.ValidationError("The settings are a JSON object.")
        secret_looking = [
            key
            for key in value
            if SECRET_KEY_NAME.search(str(key).lower())
            and not str(key).lower().endswith(("_secret", "_secret_name"))
        ]
        if secret_looking:
            raise forms.ValidationError(
                f"{', '.join(secret_looking)} would hold a secret: store it as a workspace secret and put "
                "its name in “secret name” (or a key ending in _secret)."
            )
        return value

    def clean(self):
        cleaned = super().clean()
        provider, channel = cleaned.get("provider"), cleaned.get("channel")
        if provider and channel and PROVIDER_CHANNELS.get(provider) != channel:
            self.add_error(
                "provider",
                f"{ChannelProvider.Provider(provider).label} delivers {PROVIDER_CHANNELS[provider]},"
                f" not {channel}.",
            )
        return cleaned
