"""Forms of the template admin (nudges/content/admin.py): a template's identity, and the draft
editor of its versions."""

from django import forms

from nudges.models import NudgeTemplate, TemplateVersion


class NudgeTemplateForm(forms.ModelForm):
    class Meta:
        model = NudgeTemplate
        fields = ("trigger", "name", "channel", "persona", "locale")

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None:
            return cleaned  # the model's unique constraint is validated with every field present
        # Trigger and channel are read-only once created: the constraint check skips them.
        clash = (
            NudgeTemplate.objects.filter(
                trigger_id=self.instance.trigger_id,
                channel=self.instance.channel,
                persona=cleaned.get("persona", ""),
                locale=cleaned.get("locale", ""),
            )
            .exclude(pk=self.instance.pk)
            .exists()
        )
        if clash:
            raise forms.ValidationError(
                "Another template of this trigger and channel has this persona and locale."
            )
        return cleaned


class TemplateVersionForm(forms.ModelForm):
    class Meta:
        model = TemplateVersion
        fields = ("variant", "subject", "body", "cta_text", "cta_url")
        widgets = {"body": forms.Textarea(attrs={"rows": 10, "cols": 80})}
