from django.apps import AppConfig


class FindingsConfig(AppConfig):
    name = "findings"

    def ready(self) -> None:
        # Suppression rules decide at upsert time whether a new finding is stored archived.
        from findings import services, suppression

        if suppression.suppression_hook not in services.SUPPRESSION_HOOKS:
            services.SUPPRESSION_HOOKS.append(suppression.suppression_hook)
