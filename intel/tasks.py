from celery import shared_task


@shared_task(name="intel.set_activate", acks_late=True, ignore_result=True)
def intel_set_activate_task(intel_set_id: int) -> None:
    from intel.services import intel_set_activate

    intel_set_activate(intel_set_id=intel_set_id)
