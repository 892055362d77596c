from django import forms


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
