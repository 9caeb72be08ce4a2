from django import forms

from ingest.models import LogKind


class LogSourceForm(forms.Form):
    detector = forms.ChoiceField(label="Detector")
    kind = forms.ChoiceField(choices=LogKind.choices)
    bucket = forms.CharField(max_length=63)
    key_prefix = forms.CharField(max_length=512, required=False, label="Prefix before AWSLogs/")
    sqs_queue_url = forms.URLField(max_length=1024, required=False, label="SQS queue URL (optional)",
                                   assume_scheme="https")

    def __init__(self, *args, detectors=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["detector"].choices = [(d.detector_id, f"{d.region} · {d.detector_id}") for d in detectors]
