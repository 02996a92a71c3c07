from celery import shared_task

from . import services


@shared_task
def followup_notify_owner(followup_id: int) -> bool:
    return services.followup_owner_notify(followup_id=followup_id)


@shared_task
def followups_sweep() -> dict:
    return services.followups_sweep()


@shared_task
def followup_notice_send(notice_id: int) -> bool:
    return services.followup_notice_send(notice_id=notice_id)


@shared_task
def followup_message_send(message_id: int) -> bool:
    from .replies import followup_message_send

    return followup_message_send(message_id=message_id)


@shared_task
def followup_digests_send() -> int:
    return services.followup_digests_send()
