from __future__ import annotations

from django import forms

from intel.models import IntelSet
from intel.parsers import MAX_FILE_BYTES

FORMAT_CHOICES = [
    ("TXT", "TXT: one IP, CIDR or domain per line"),
    ("STIX", "STIX (2.x JSON bundle or 1.x XML)"),
    ("OTX_CSV", "OTX_CSV (AlienVault OTX CSV)"),
    ("ALIEN_VAULT", "ALIEN_VAULT (reputation feed)"),
    ("PROOF_POINT", "PROOF_POINT (ET Intelligence CSV)"),
    ("FIRE_EYE", "FIRE_EYE (iSIGHT CSV)"),
]


class IntelSetForm(forms.Form):
    """Create a list (name, kind, format, file or s3:// location). Shape only: services decide."""

    name = forms.CharField(max_length=300)
    kind = forms.ChoiceField(choices=IntelSet.Kind.choices, initial=IntelSet.Kind.THREAT)
    format = forms.ChoiceField(choices=FORMAT_CHOICES, initial=IntelSet.Format.TXT)
    file = forms.FileField(required=False, help_text="Up to 35 MB.")
    location = forms.CharField(label="Or an S3 location", max_length=300, required=False,
                               widget=forms.TextInput(attrs={"placeholder": "s3://bucket/key"}))
    activate = forms.BooleanField(required=False, initial=True)

    def clean(self) -> dict:
        data = super().clean()
        upload = data.get("file")
        if bool(upload) == bool(data.get("location")):
            raise forms.ValidationError("Give either a file or an s3:// location.")
        if upload and upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError(f"The file is {upload.size:,} bytes; the limit is {MAX_FILE_BYTES:,} bytes (35 MB).")
        return data


class ReplaceForm(forms.Form):
    """New content for an existing list (GuardDuty's Update with Activate=true)."""

    format = forms.ChoiceField(choices=FORMAT_CHOICES)
    file = forms.FileField(required=False)
    location = forms.CharField(label="Or an S3 location", max_length=300, required=False)

    def clean(self) -> dict:
        data = super().clean()
        if data.get("file") and data.get("location"):
            raise forms.ValidationError("Give either a file or an s3:// location, not both.")
        return data


class CheckForm(forms.Form):
    value = forms.CharField(label="IP address or domain", max_length=300)
