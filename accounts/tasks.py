from celery import shared_task


@shared_task(name="accounts.member_email_verify", acks_late=True, ignore_result=True)
def member_email_verify_task(member_record_id: int) -> None:
    from accounts.services import member_email_verify

    member_email_verify(member_record_id=member_record_id)
