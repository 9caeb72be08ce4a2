from django.apps import AppConfig


class GdapiConfig(AppConfig):
    name = "gdapi"
    verbose_name = "GuardDuty-compatible API"

    def ready(self) -> None:
        # ARCHIVE filters suppress matching new findings inside findings' one write path.
        from findings.services import SUPPRESSION_HOOKS
        from gdapi.filters import suppression_hook

        if suppression_hook not in SUPPRESSION_HOOKS:
            SUPPRESSION_HOOKS.append(suppression_hook)
