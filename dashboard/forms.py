from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import RegexValidator

from calls.audit import AuditFilters, AuditReader
from calls.models import EXTENSION_NUMBER_RE, BargeInAttempt, Organization


class BargeForm(forms.Form):
    """The barge-in's fields, collected exactly as typed; the rules (and their audit) live in
    calls.services.

    The form does not clean them: a field that fails a Django field's own check drops out of
    ``cleaned_data``, and the service would then take its default (an over-long caller ID
    became the phone's own). ``typed()`` passes every field on as posted, so what is not valid
    is refused with a message. Fields not listed here are ignored.
    """

    phone_call_view_id = forms.CharField(required=False, strip=False)
    send_call_to = forms.CharField(required=False, strip=False)
    caller_id = forms.CharField(required=False, strip=False)
    wait_for_pickup = forms.CharField(required=False, strip=False)
    mode = forms.CharField(required=False, strip=False)
    reason = forms.CharField(required=False, strip=False)

    def typed(self) -> dict[str, str]:
        """Each field as posted (the last value when one is posted twice), "" when absent."""
        return {name: str(self.data.get(self.add_prefix(name), "")) for name in self.fields}


# An extension in the extended format, as the audit records agents and queues.
_extension = RegexValidator(EXTENSION_NUMBER_RE, "Enter an extension such as 0001*201.")
# The browser's date picker; it sends and shows ISO dates.
_DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _suggesting(values: str) -> forms.TextInput:
    return forms.TextInput(attrs={"list": f"audit-{values}", "autocomplete": "off"})


class AuditFilterForm(forms.Form):
    """The audit's filters, read from the query string. ``organization`` is offered to readers
    of every Organization only; ``from`` and ``to`` are local dates of the Organization."""

    # Each text input suggests values from a <datalist> of the page (see calls.audit).
    supervisor = forms.CharField(
        required=False, max_length=150, label="Supervisor", widget=_suggesting("supervisors")
    )
    agent = forms.CharField(
        required=False,
        max_length=24,
        validators=[_extension],
        label="Agent",
        widget=_suggesting("agents"),
    )
    queue = forms.CharField(
        required=False,
        max_length=24,
        validators=[_extension],
        label="Queue",
        widget=_suggesting("queues"),
    )
    mode = forms.ChoiceField(
        required=False, choices=[("", "Any"), *BargeInAttempt.Mode.choices], label="Mode"
    )
    outcome = forms.ChoiceField(
        required=False, choices=[("", "Any"), *BargeInAttempt.Outcome.choices], label="Outcome"
    )

    def __init__(self, *args: Any, reader: AuditReader, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword: these two are added here rather than declared above.
        self.fields["from"] = forms.DateField(required=False, label="From", widget=_DATE)
        self.fields["to"] = forms.DateField(required=False, label="To", widget=_DATE)
        if reader.everywhere:
            self.fields["organization"] = forms.ModelChoiceField(
                queryset=Organization.objects.order_by("name"),
                required=False,
                empty_label="All organizations",
                label="Organization",
            )
        self.order_fields(["organization"])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("from"), data.get("to")
        if start and end and end < start:
            self.add_error("to", "The end date is before the start date.")
        return data

    def filters(self) -> AuditFilters:
        """The filters as the audit's selector takes them; call once the form is valid."""
        data = self.cleaned_data
        return AuditFilters(
            organization=data.get("organization"),
            supervisor=data.get("supervisor", ""),
            agent=data.get("agent", ""),
            queue=data.get("queue", ""),
            mode=data.get("mode", ""),
            outcome=data.get("outcome", ""),
            date_from=data.get("from"),
            date_to=data.get("to"),
        )
