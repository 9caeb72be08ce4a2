"""Celery beat tasks: publish due findings to destinations, then deliver what is queued."""

from celery import shared_task


@shared_task(name="findings.publish", acks_late=True, ignore_result=True)
def publish_findings_task() -> int:
    from findings.notifications import publish_due

    return publish_due()


@shared_task(name="findings.deliver", acks_late=True, ignore_result=True)
def deliver_findings_task() -> dict:
    from findings.notifications import deliver_due

    return deliver_due()
