from django.apps import AppConfig


class GdapiConfig(AppConfig):
    name = "gdapi"
    verbose_name = "GuardDuty-compatible API"
