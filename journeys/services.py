"""Writes to journeys: personas, journeys with their stages and touchpoints."""

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from .models import DEFAULT_STAGES, Journey, Persona, Stage, Touchpoint

TOUCHPOINT_FIELDS = {
    "name",
    "channel",
    "position",
    "interaction_kind",
    "expected_emotion",
}


def persona_create(*, name: str, description: str = "", segment=None) -> Persona:
    """Saves a new persona after checking it."""
    persona = Persona(name=name, description=description, segment=segment)
    persona.full_clean()
    with transaction.atomic():
        persona.save()
    return persona


def persona_update(*, persona: Persona, **fields) -> Persona:
    """Changes a persona; the journeys drawn for it show the change."""
    for name, value in fields.items():
        setattr(persona, name, value)
    persona.full_clean()
    with transaction.atomic():
        persona.save()
    return persona


def journey_add_default_stages(*, journey: Journey) -> list[Stage]:
    """Adds the five classic stages, named in the active language, to a journey."""
    stages = [
        Stage(journey=journey, name=str(name), position=number)
        for number, name in enumerate(DEFAULT_STAGES, start=1)
    ]
    return Stage.objects.bulk_create(stages)


def journey_save(*, journey: Journey) -> Journey:
    """Saves a journey's own fields (the admin's form, before its inlines)."""
    journey.full_clean()
    journey.save()
    return journey


def journey_create(
    *,
    name: str,
    description: str = "",
    persona: Persona | None = None,
    stages: list[dict] | None = None,
) -> Journey:
    """
    Saves a new journey with `stages` (dicts of name, position and touchpoints, as
    journey_update takes them), or with the five classic stages when None.
    """
    journey = Journey(name=name, description=description, persona=persona)
    journey.full_clean()
    with transaction.atomic():
        journey.save()
        if stages is None:
            journey_add_default_stages(journey=journey)
        else:
            _stages_sync(journey, stages)
    return journey


def journey_update(
    *, journey: Journey, stages: list[dict] | None = None, **fields
) -> Journey:
    """
    Changes a journey's fields and, when `stages` is given, makes its stages and
    their touchpoints what it lists: an item with an "id" changes that one, one
    without is added, and the ones left out are deleted.
    """
    for name, value in fields.items():
        setattr(journey, name, value)
    journey.full_clean()
    with transaction.atomic():
        journey.save()
        if stages is not None:
            _stages_sync(journey, stages)
    return journey


def _by_id(items: Iterable, existing: dict, what: str) -> None:
    """Raises a ValidationError when an item names an id that is not one of ours."""
    for item in items:
        if item.get("id") is not None and item["id"] not in existing:
            raise ValidationError(
                _("There is no %(what)s %(id)s in this journey.")
                % {"what": what, "id": item["id"]},
                code="not_in_journey",
            )


def _stages_sync(journey: Journey, stages: list[dict]) -> None:
    existing = {stage.pk: stage for stage in journey.stages.all()}
    _by_id(stages, existing, _("stage"))
    kept = {item["id"] for item in stages if item.get("id") is not None}
    touchpoints = {
        touchpoint.pk: touchpoint
        for touchpoint in Touchpoint.objects.filter(stage__journey=journey)
    }
    given = [tp for item in stages for tp in item.get("touchpoints") or []]
    _by_id(given, touchpoints, _("touchpoint"))
    named = {item["id"] for item in given if item.get("id") is not None}
    Stage.objects.filter(journey=journey).exclude(pk__in=kept).delete()
    for number, item in enumerate(stages, start=1):
        stage = existing.get(item.get("id")) or Stage(journey=journey)
        stage.name = item["name"]
        stage.position = item.get("position") or number
        stage.full_clean()
        stage.save()
        if item.get("touchpoints") is not None:
            _touchpoints_sync(stage, item["touchpoints"], touchpoints, named)


def _touchpoints_sync(
    stage: Stage, touchpoints: list[dict], existing: dict, named: set
) -> None:
    # A touchpoint named under another stage moves there rather than being deleted.
    Touchpoint.objects.filter(stage=stage).exclude(pk__in=named).delete()
    for number, item in enumerate(touchpoints, start=1):
        touchpoint = existing.get(item.get("id")) or Touchpoint()
        touchpoint.stage = stage
        for name in TOUCHPOINT_FIELDS & item.keys():
            setattr(touchpoint, name, item[name])
        if not item.get("position"):
            touchpoint.position = number
        touchpoint.full_clean()
        touchpoint.save()
        if "campaigns" in item:
            touchpoint.campaigns.set(item["campaigns"])


def journey_delete(*, journey: Journey) -> None:
    """Deletes a journey with its stages and touchpoints."""
    with transaction.atomic():
        journey.delete()


def persona_delete(*, persona: Persona) -> None:
    """Deletes a persona; its journeys keep their maps, without a persona."""
    with transaction.atomic():
        persona.delete()


def stage_save(*, stage: Stage) -> Stage:
    """Validates and saves a stage of a journey (the admin's inline rows)."""
    stage.full_clean()
    with transaction.atomic():
        stage.save()
    return stage


def stage_delete(*, stage: Stage) -> None:
    """Deletes a stage with its touchpoints."""
    with transaction.atomic():
        stage.delete()


def touchpoint_save(*, touchpoint: Touchpoint) -> Touchpoint:
    """Validates and saves a touchpoint of a stage (the admin's rows)."""
    touchpoint.full_clean()
    with transaction.atomic():
        touchpoint.save()
    return touchpoint


def touchpoint_delete(*, touchpoint: Touchpoint) -> None:
    """Deletes a touchpoint."""
    with transaction.atomic():
        touchpoint.delete()
