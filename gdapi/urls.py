"""GuardDuty's REST paths under one prefix: boto3 appends an operation's path to endpoint_url's
path, so endpoint_url="https://vigil.example/gd" reaches /gd/detector/… here."""

from django.urls import re_path

from gdapi import views

app_name = "gdapi"

urlpatterns = [
    re_path(r"^(?P<rest>.*)$", views.dispatch, name="dispatch"),
]
