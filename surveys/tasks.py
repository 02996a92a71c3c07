from celery import shared_task

from . import services


@shared_task
def invitations_send(invitation_ids: list[int]) -> int:
    return services.invitations_deliver(invitation_ids=invitation_ids)


@shared_task
def invitations_sweep() -> int:
    return services.invitations_sweep()


@shared_task
def campaigns_sweep() -> int:
    return services.campaigns_sweep()
