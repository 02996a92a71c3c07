"""
Writes of journey maps: journeys, their stages and the touchpoints in each, one
function each, which the admin (and any later API) calls.
"""

from django.db import transaction

from .models import Journey, Stage, Touchpoint


def journey_save(*, journey: Journey) -> Journey:
    """Validates and saves a journey (new or changed)."""
    journey.full_clean()
    with transaction.atomic():
        journey.save()
    return journey


def journey_delete(*, journey: Journey) -> None:
    """Deletes a journey with its stages and touchpoints."""
    with transaction.atomic():
        journey.delete()


def stage_save(*, stage: Stage) -> Stage:
    """Validates and saves a stage of a journey."""
    stage.full_clean()
    with transaction.atomic():
        stage.save()
    return stage


def stage_delete(*, stage: Stage) -> None:
    """Deletes a stage with its touchpoints."""
    with transaction.atomic():
        stage.delete()


def touchpoint_save(*, touchpoint: Touchpoint) -> Touchpoint:
    """Validates and saves a touchpoint of a stage."""
    touchpoint.full_clean()
    with transaction.atomic():
        touchpoint.save()
    return touchpoint


def touchpoint_delete(*, touchpoint: Touchpoint) -> None:
    """Deletes a touchpoint."""
    with transaction.atomic():
        touchpoint.delete()
