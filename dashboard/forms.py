from django import forms


class BargeForm(forms.Form):
    """Collects the fields as typed; the rules (and their audit) live in calls.services."""

    phone_call_view_id = forms.CharField(required=False, max_length=16)
    send_call_to = forms.CharField(required=False, max_length=24)
    caller_id = forms.CharField(required=False, max_length=200)
    wait_for_pickup = forms.CharField(required=False, max_length=16)
    mode = forms.CharField(required=False, max_length=16)
