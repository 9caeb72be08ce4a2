"""Celery adapters for the findings export: ids in, the service does the work."""

from celery import shared_task


@shared_task(name="gdapi.publishing_export", acks_late=True, ignore_result=True)
def publishing_export_task(destination_id: int) -> None:
    from gdapi.publishing import destination_export

    destination_export(destination_id=destination_id)


@shared_task(name="gdapi.publishing_export_all", acks_late=True, ignore_result=True)
def publishing_export_all_task() -> None:
    from gdapi.publishing import destination_export_all

    destination_export_all()
