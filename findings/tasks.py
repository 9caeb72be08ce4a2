"""Celery beat tasks: publish due findings to destinations, then deliver what is queued and run the
S3 exports that are due; and the one-off export that verifies a new or changed S3 destination."""

from celery import shared_task


@shared_task(name="findings.publish", acks_late=True, ignore_result=True)
def publish_findings_task() -> int:
    from findings.notifications import publish_due

    return publish_due()


@shared_task(name="findings.deliver", acks_late=True, ignore_result=True)
def deliver_findings_task() -> dict:
    from findings.notifications import deliver_due

    return deliver_due()


@shared_task(name="findings.export", acks_late=True, ignore_result=True)
def export_findings_task(destination_id: int) -> int:
    from findings.models import Destination
    from findings.notifications import destination_export

    destination = Destination.objects.select_related("account", "detector").filter(pk=destination_id).first()
    return destination_export(destination=destination) if destination is not None else 0
