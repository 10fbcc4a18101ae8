"""The registry's one admin form: the reason of a promotion that overrides the A/B's verdict."""

from django import forms


class OverrideForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        strip=True,
        help_text="Why this version goes live without a winning or non-inferior A/B; kept in the audit log.",
    )
