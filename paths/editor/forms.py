"""Editor fields for the path admin: completion rules and questions without writing JSON.

* conditions: rows of property / operator / value. A value is read as JSON when it is valid JSON
  (42, 2.5, true, "42", ["a", "b"]) and as plain text otherwise; "in" and "not in" take a
  comma-separated list.
* durations: days, hours and minutes boxes.
* questions: one per line, `key | Label | type | required | choice, choice` (see QUESTIONS_HELP).
"""

import json
from datetime import timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from paths.models import Path, Step
from paths.steps import (
    CHOICE_TYPES,
    LIST_OPERATORS,
    NUMERIC_OPERATORS,
    OPERATORS,
    QUESTION_TYPES,
    STEP_FIELDS,
    VALUELESS_OPERATORS,
    question_errors,
    step_problems,
)

CONDITIONS_HELP = (
    "Every row must hold for the event to count. A value is read as a number, true/false or a "
    'quoted "text" when it is one, and as text otherwise; "is one of" takes a comma-separated list. '
    "Leave a row's property empty to remove it."
)
QUESTIONS_HELP = (
    "One question per line: key | Label | type | required or optional | choices. Types: "
    f"{', '.join(QUESTION_TYPES)}; choices (comma-separated) only for choice and multi_choice. "
    "Example: role | Your role | choice | required | admin, developer, designer"
)


# --- Conditions -----------------------------------------------------------------------------


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value
        return json.dumps(value)  # "42" stays text only when quoted
    return json.dumps(value, ensure_ascii=False)


def _parse_scalar(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


class ConditionsWidget(forms.Widget):
    template_name = "paths/widgets/conditions.html"
    blank_rows = 2

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        rows = []
        for row in value or []:
            if "text" in row:  # submitted rows, shown again with their errors
                rows.append(row)
            else:
                operator = row.get("operator", "eq")
                if operator in LIST_OPERATORS and isinstance(row.get("value"), list):
                    items = [_value_text(item) for item in row["value"]]
                    text = (
                        ", ".join(items)
                        if not any("," in item for item in items)
                        else json.dumps(row["value"])
                    )
                elif operator in VALUELESS_OPERATORS:
                    text = ""
                else:
                    text = _value_text(row.get("value"))
                rows.append({"property": row.get("property", ""), "operator": operator, "text": text})
        rows += [{"property": "", "operator": "eq", "text": ""}] * self.blank_rows
        context["widget"]["rows"] = rows
        context["widget"]["operators"] = list(OPERATORS.items())
        return context

    def format_value(self, value):
        return value

    def value_from_datadict(self, data, files, name):
        try:
            count = min(int(data.get(f"{name}-rows", 0)), 50)
        except (TypeError, ValueError):
            count = 0
        return [
            {
                "property": data.get(f"{name}-{index}-property", ""),
                "operator": data.get(f"{name}-{index}-operator", "eq"),
                "text": data.get(f"{name}-{index}-value", ""),
            }
            for index in range(count)
        ]

    def value_omitted_from_data(self, data, files, name):
        return f"{name}-rows" not in data


class ConditionsField(forms.Field):
    widget = ConditionsWidget

    def has_changed(self, initial, data):
        try:
            return self.to_python(data) != (initial or [])
        except ValidationError:
            return True

    def to_python(self, value):
        conditions, errors = [], []
        for number, row in enumerate(value or [], start=1):
            if "text" not in row:
                conditions.append(row)  # already a condition (the initial value)
                continue
            prop, operator, text = row["property"].strip(), row["operator"], row["text"].strip()
            if not prop:
                continue
            if operator not in OPERATORS:
                errors.append(f"Row {number}: unknown operator {operator!r}.")
                continue
            condition = {"property": prop, "operator": operator}
            if operator in LIST_OPERATORS:
                parsed = _parse_scalar(text) if text.startswith("[") else None
                if not isinstance(parsed, list):
                    parsed = [_parse_scalar(item.strip()) for item in text.split(",") if item.strip()]
                if not parsed:
                    errors.append(f"Row {number} ({prop}): '{OPERATORS[operator]}' needs at least one value.")
                condition["value"] = parsed
            elif operator in NUMERIC_OPERATORS:
                parsed = _parse_scalar(text)
                if isinstance(parsed, bool) or not isinstance(parsed, int | float):
                    errors.append(f"Row {number} ({prop}): '{OPERATORS[operator]}' needs a number.")
                condition["value"] = parsed
            elif operator not in VALUELESS_OPERATORS:
                condition["value"] = _parse_scalar(text)
            conditions.append(condition)
        if errors:
            raise ValidationError(errors)
        return conditions


# --- Durations ------------------------------------------------------------------------------


class DurationPartsWidget(forms.MultiWidget):
    template_name = "paths/widgets/duration.html"
    units = ("days", "hours", "minutes")

    def __init__(self, attrs=None):
        # Sized by class in the editor's stylesheet: the Content-Security-Policy refuses style="...".
        attrs = {"min": "0", "class": "paths-duration-part", **(attrs or {})}
        super().__init__([forms.NumberInput(attrs) for _ in self.units], attrs)

    def decompress(self, value):
        if not value:
            return [None, None, None]
        minutes = int(value.total_seconds()) // 60
        days, minutes = divmod(minutes, 1440)
        hours, minutes = divmod(minutes, 60)
        return [days or None, hours or None, minutes or None]

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["widget"]["parts"] = list(zip(context["widget"]["subwidgets"], self.units, strict=True))
        return context


class DurationPartsField(forms.MultiValueField):
    widget = DurationPartsWidget

    def __init__(self, **kwargs):
        kwargs.pop("max_length", None)
        fields = [forms.IntegerField(min_value=0, required=False) for _ in DurationPartsWidget.units]
        super().__init__(fields, require_all_fields=False, required=False, **kwargs)

    def compress(self, data_list):
        if not data_list or not any(data_list):
            return None
        days, hours, minutes = ((part or 0) for part in data_list)
        return timedelta(days=days, hours=hours, minutes=minutes)


# --- Questions ------------------------------------------------------------------------------


def questions_text(questions: list[dict[str, Any]]) -> str:
    lines = []
    for question in questions:
        parts = [
            question.get("key", ""),
            question.get("label", ""),
            question.get("type", ""),
            "required" if question.get("required") else "optional",
        ]
        if question.get("choices"):
            parts.append(", ".join(question["choices"]))
        lines.append(" | ".join(parts))
    return "\n".join(lines)


def parse_questions(text: str) -> list[dict[str, Any]]:
    questions, errors = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split("|")]
        if len(parts) < 3:
            errors.append(f"Line {number}: write key | Label | type, then optionally required and choices.")
            continue
        key, label, kind = parts[:3]
        question = {"key": key, "label": label, "type": kind, "required": False}
        for part in parts[3:]:
            if part.lower() in ("required", "optional"):
                question["required"] = part.lower() == "required"
            elif part:
                question["choices"] = [choice.strip() for choice in part.split(",") if choice.strip()]
        if kind in CHOICE_TYPES:
            question.setdefault("choices", [])
        questions.append(question)
    errors += [f"{error[0].upper()}{error[1:]}." for error in question_errors(questions)]
    if errors:
        raise ValidationError(errors)
    return questions


class QuestionsField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 4, "cols": 80, "class": "paths-questions"})

    def prepare_value(self, value):
        if isinstance(value, list):
            return questions_text(value)
        return value

    def to_python(self, value):
        if isinstance(value, list):
            return value
        return parse_questions(value or "")

    def has_changed(self, initial, data):
        try:
            return self.to_python(data) != (initial or [])
        except ValidationError:
            return True


# --- Forms ----------------------------------------------------------------------------------


class StepForm(forms.ModelForm):
    conditions = ConditionsField(required=False, help_text=CONDITIONS_HELP)
    questions = QuestionsField(required=False, help_text=QUESTIONS_HELP)
    expected_duration = DurationPartsField(
        help_text="How long a user usually needs; longer than this marks them stuck."
    )
    window = DurationPartsField(help_text="Optional: the events must happen within this time of the anchor.")

    class Meta:
        model = Step
        fields = (*STEP_FIELDS, "order")
        labels = {"count": "Times", "event_name": "Event name", "ui_component": "UI component"}
        widgets = {"body": forms.Textarea(attrs={"rows": 3, "cols": 80})}
        help_texts = {"order": "Lower comes first; empty puts a new step last. Or drag the ☰ handle."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["order"].required = False
        if self.instance.pk is None:
            self.initial["order"] = None

    def clean(self):
        """The services' own step checks, each shown on its field: a refused step (a javascript:
        deep link) comes back with everything typed still in it, where the services' refusal
        after the form had passed was a page banner over an emptied step."""
        cleaned = super().clean()
        values = {field: cleaned[field] for field in STEP_FIELDS if field in cleaned}
        already_refused = set(self.errors)
        for field, message in step_problems(values):
            if field in values and field not in already_refused:
                self.add_error(field, _field_message(field, message))
        return cleaned


def _field_message(field: str, message: str) -> str:
    """'deep_link must be ...' under the Deep link box reads 'Must be ...'."""
    message = message.removeprefix(f"{field} ")
    return f"{message[0].upper()}{message[1:]}."


class StepFormSet(forms.BaseInlineFormSet):
    def validate_unique(self):
        """Duplicate keys get one clear message (the model's own check words it poorly)."""
        seen = {}
        for form in self.forms:
            if not form.is_valid() or form in self.deleted_forms or not form.cleaned_data.get("key"):
                continue
            key = form.cleaned_data["key"]
            if key in seen:
                form.add_error("key", f"Another step already uses the key '{key}'.")
                raise ValidationError(f"Step keys must be unique: '{key}' is used twice.", code="duplicate")
            seen[key] = form


class CommaListField(forms.CharField):
    """An audience list as "admin, developer"; empty means everyone."""

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        if isinstance(value, list):
            return value
        return [item.strip() for item in (value or "").split(",") if item.strip()]

    def has_changed(self, initial, data):
        return self.to_python(data) != (initial or [])


class PathForm(forms.ModelForm):
    audience_personas = CommaListField(
        required=False, label="personas", help_text="Comma-separated; empty: all."
    )
    audience_use_cases = CommaListField(
        required=False, label="use cases", help_text="Comma-separated; empty: all."
    )
    audience_company_sizes = CommaListField(
        required=False, label="company sizes", help_text="Comma-separated; empty: all."
    )
    audience_signup_sources = CommaListField(
        required=False, label="signup sources", help_text="Comma-separated; empty: all."
    )

    class Meta:
        model = Path
        fields = (
            "workspace",
            "key",
            "name",
            "description",
            "priority",
            "is_default",
            *Path.AUDIENCE_FIELDS.values(),
        )
        help_texts = {
            "is_default": "Taken when no other path's audience matches; takes over from the current default."
        }

    def _get_validation_exclusions(self):
        # Making this path the default takes over from the current one (path_update does it), so
        # the one-default constraint must not refuse the form.
        exclusions = super()._get_validation_exclusions()
        exclusions.add("is_default")
        return exclusions
