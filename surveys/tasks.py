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


@shared_task
def rollups_fold() -> list[int]:
    """Adds what was written since the last fold to the dashboard's daily rollups
    (surveys.rollups), so that a read has little left to fold."""
    from .rollups import rollups_fold as fold

    return list(fold())
