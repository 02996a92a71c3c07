import json
import logging
import smtplib
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import holidays
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from cxm import emails
from cxm.access import cx_staff_users, is_cx_staff
from cxm.customers.models import Customer
from cxm.customers.selectors import segment_customers
from surveys.kinds import KINDS, SurveyKind
from surveys.models import Response

from . import defaults, replies
from .models import (
    SLACK_NOTICES,
    UNRESOLVED,
    AgentTurn,
    Assignment,
    ContactChannel,
    EventKind,
    FollowUp,
    FollowUpDigest,
    FollowUpEvent,
    FollowUpNotice,
    FollowUpRule,
    FollowUpStatus,
    NoticeKind,
    Priority,
    RootCause,
    StaffProfile,
    Team,
    TeamMember,
    overdue_q,
)
from .preferences import is_time_zone, start_pages_for
from .selectors import followups_digest

logger = logging.getLogger(__name__)
User = get_user_model()

# Follow-ups one sweep handles per step; the next sweep takes the rest.
SWEEP_BATCH = 500
# An owner email not sent this long after assignment lost its message: resend.
NOTIFY_GRACE = timedelta(minutes=2)


def followup_due_at(opened_at: datetime) -> datetime:
    """Returns when a follow-up without team or rule SLA opened then is due."""
    return sla_due_at(team=None, start=opened_at, hours=settings.FOLLOWUP_SLA_HOURS)


@lru_cache(maxsize=64)
def _public_holidays(country: str):
    # Expands to each year asked about (`day in ...`) and remembers it.
    return holidays.country_holidays(country)


def holiday_countries() -> set[str]:
    """The country codes whose public holidays sla_due_at knows."""
    return set(holidays.list_supported_countries())


# Where a team with no working day would otherwise look forever.
SLA_MAX_DAYS = 3 * 366


def sla_due_at(
    *, team: Team | None, start: datetime, hours: float | Decimal
) -> datetime:
    """
    Returns when an SLA of `hours` started at `start` runs out, in UTC: `hours`
    later, or, for a team that counts business hours only, once that many of its
    working hours (in its time zone, skipping nights, days off and its country's
    public holidays) have passed.
    """
    length = timedelta(hours=float(hours))
    if team is None or not team.business_hours_only:
        return (start + length).astimezone(UTC)
    zone = ZoneInfo(team.time_zone)
    days_off = _public_holidays(team.holiday_country) if team.holiday_country else ()
    workdays = set(team.workdays)
    local = start.astimezone(zone)
    day = local.date()
    for _day in range(SLA_MAX_DAYS):
        if day.weekday() in workdays and day not in days_off:
            # In UTC, so that a day with a clock change counts its real hours.
            opens = datetime.combine(day, team.workday_start, zone).astimezone(UTC)
            closes = datetime.combine(day, team.workday_end, zone).astimezone(UTC)
            begin = max(opens, start.astimezone(UTC))
            if begin < closes:
                if length <= closes - begin:
                    return begin + length
                length -= closes - begin
        day += timedelta(days=1)
    raise ValueError(f"Team {team.pk} has no working hours in {SLA_MAX_DAYS} days.")


# The scores of each kind that make a follow-up urgent: the angrier, the higher.
HIGH_PRIORITY_MAX = {SurveyKind.NPS: 3, SurveyKind.CSAT: 1, SurveyKind.CES: 1}


def followup_priority(kind: str, score: int | None) -> str:
    """Returns the priority of a follow-up opened by a `kind` score."""
    if kind not in HIGH_PRIORITY_MAX or score is None:
        return Priority.NORMAL
    return Priority.HIGH if score <= HIGH_PRIORITY_MAX[kind] else Priority.NORMAL


def followup_defaults_ensure() -> None:
    """Creates the default rules and root causes where there are none at all."""
    if not FollowUpRule.objects.exists():
        defaults.rules_create(FollowUpRule)
    if not RootCause.objects.exists():
        defaults.root_causes_create(RootCause)


# Rules


def _words_match(words: list[str], comment: str) -> bool:
    comment = comment.casefold()
    return any(w.strip().casefold() in comment for w in words if w.strip())


def _properties_match(wanted: dict, properties: dict) -> bool:
    # Compared as text, so that "42" in a rule matches 42 imported from a CSV.
    return all(
        key in properties and str(properties[key]) == str(value)
        for key, value in wanted.items()
    )


def rule_matches(rule: FollowUpRule, response: Response) -> bool:
    """True if the answer meets each condition `rule` sets."""
    kind = response.survey.kind
    if rule.survey_id is not None and rule.survey_id != response.survey_id:
        return False
    if rule.survey_kind and rule.survey_kind != kind:
        return False
    if rule.score_low is not None or rule.score_high is not None:
        if response.score is None or kind not in KINDS:
            return False
        low = rule.score_low if rule.score_low is not None else KINDS[kind].low
        high = rule.score_high if rule.score_high is not None else KINDS[kind].high
        if not low <= response.score <= high:
            return False
    if rule.comment_words and not _words_match(rule.comment_words, response.comment):
        return False
    # The customer is read only for a rule that asks about them.
    if rule.customer_properties and not _properties_match(
        rule.customer_properties, response.customer.properties or {}
    ):
        return False
    if rule.segment_id is not None:
        in_segment = (
            segment_customers(segment=rule.segment)
            .filter(pk=response.customer_id)
            .exists()
        )
        if not in_segment:
            return False
    return True


def followup_rule_match(response: Response) -> FollowUpRule | None:
    """
    Returns the first active rule, by position, that the answer meets, or None
    when the answer asks for no follow-up. The one place that decides.
    """
    rules = FollowUpRule.objects.filter(active=True).select_related("team", "segment")
    for rule in rules.order_by("position", "pk"):
        if rule_matches(rule, response):
            return rule
    return None


def followup_rule_validate(rule: FollowUpRule) -> None:
    """Raises ValidationError naming each field of `rule` that cannot work."""
    errors = {}
    kind = rule.survey.kind if rule.survey_id else rule.survey_kind
    if rule.survey_id and rule.survey_kind and rule.survey.kind != rule.survey_kind:
        errors["survey_kind"] = _("The survey is of another kind.")
    scale = KINDS.get(kind)
    has_range = rule.score_low is not None or rule.score_high is not None
    if has_range and scale is None:
        errors["survey_kind"] = _("A score range needs a survey kind with a scale.")
    elif scale is not None:
        for field in ("score_low", "score_high"):
            value = getattr(rule, field)
            if value is not None and not scale.low <= value <= scale.high:
                errors[field] = _("Give a score from %(low)d to %(high)d.") % {
                    "low": scale.low,
                    "high": scale.high,
                }
    if (
        rule.score_low is not None
        and rule.score_high is not None
        and rule.score_low > rule.score_high
    ):
        errors["score_high"] = _("The highest score is below the lowest.")
    words = rule.comment_words
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        errors["comment_words"] = _("Give a list of words.")
    props = rule.customer_properties
    if not isinstance(props, dict) or not all(
        isinstance(v, str | int | float | bool) for v in props.values()
    ):
        errors["customer_properties"] = _(
            "Give an object of property names and values."
        )
    if errors:
        raise ValidationError(errors)


def followup_rule_save(*, rule: FollowUpRule) -> FollowUpRule:
    """Validates and saves a rule (new or changed)."""
    followup_rule_validate(rule)
    if isinstance(rule.comment_words, list):
        rule.comment_words = [w.strip() for w in rule.comment_words if w.strip()]
    with transaction.atomic():
        rule.save()
    return rule


def followup_rule_delete(*, rule: FollowUpRule) -> None:
    """Deletes a rule; the follow-ups it opened keep their history."""
    with transaction.atomic():
        rule.delete()


def root_cause_save(*, root_cause: RootCause) -> RootCause:
    """Validates and saves a root cause (new or changed)."""
    root_cause.full_clean()
    with transaction.atomic():
        root_cause.save()
    return root_cause


def root_cause_delete(*, root_cause: RootCause) -> None:
    """Deletes a root cause no follow-up names (else make it inactive)."""
    with transaction.atomic():
        if root_cause.followups.exists():
            raise ValidationError(
                _("Follow-ups name this root cause: make it inactive instead."),
                code="conflict",
            )
        root_cause.delete()


# Teams


def team_validate(team: Team) -> None:
    """Raises ValidationError naming each field of `team` that cannot work."""
    errors = {}
    try:
        ZoneInfo(team.time_zone)
    except (KeyError, ValueError):
        errors["time_zone"] = _("Give a time zone such as Asia/Seoul.")
    if team.holiday_country and team.holiday_country not in holiday_countries():
        errors["holiday_country"] = _("No public holidays are known for this code.")
    if (
        not isinstance(team.workdays, list)
        or not team.workdays
        or not all(isinstance(d, int) and 0 <= d <= 6 for d in team.workdays)
    ):
        errors["workdays"] = _("Give at least one working day, 0 (Monday) to 6.")
    if team.workday_start >= team.workday_end:
        errors["workday_end"] = _("The working day must end after it starts.")
    if team.slack_webhook_url and not slack_webhook_url_is_valid(
        team.slack_webhook_url
    ):
        errors["slack_webhook_url"] = (
            _("Give an https:// or http:// address.")
            if settings.SLACK_WEBHOOK_ALLOW_HTTP
            else _("Give an https:// address, such as Slack's hooks.slack.com one.")
        )
    if errors:
        raise ValidationError(errors)


def slack_webhook_url_is_valid(url: str) -> bool:
    """True for an https URL with a host (http too where SLACK_WEBHOOK_ALLOW_HTTP)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    schemes = ("https", "http") if settings.SLACK_WEBHOOK_ALLOW_HTTP else ("https",)
    return parts.scheme in schemes and bool(parts.hostname)


def team_save(*, team: Team, members=None) -> Team:
    """Validates and saves a team and, if given, its members (users)."""
    team.holiday_country = (team.holiday_country or "").upper()
    team_validate(team)
    with transaction.atomic():
        team.save()
        if members is not None:
            ids = {u.pk for u in members}
            TeamMember.objects.filter(team=team).exclude(user_id__in=ids).delete()
            TeamMember.objects.bulk_create(
                [TeamMember(team=team, user_id=pk) for pk in ids],
                ignore_conflicts=True,
            )
    return team


def team_delete(*, team: Team) -> None:
    """Deletes a team no rule sends follow-ups to; its follow-ups stay, with no
    team."""
    with transaction.atomic():
        if team.rules.exists():
            raise ValidationError(
                _("Follow-up rules send follow-ups to this team: change them first."),
                code="conflict",
            )
        team.delete()


def team_member_save(*, member: TeamMember) -> TeamMember:
    """Saves one member of a team (who, and whether available for assignment)."""
    with transaction.atomic():
        member.save()
    return member


def team_member_delete(*, member: TeamMember) -> None:
    """Takes a user off a team."""
    with transaction.atomic():
        member.delete()


def team_member_is(team: Team, user) -> bool:
    return team.manager_id == user.pk or (
        TeamMember.objects.filter(team=team, user=user).exists()
    )


# Assignment


def _event(
    followup: FollowUp,
    kind: str,
    *,
    actor=None,
    text: str = "",
    data: dict | None = None,
    now=None,
):
    return FollowUpEvent.objects.create(
        followup=followup,
        kind=kind,
        actor=actor,
        text=text,
        data=data or {},
        created_at=now or timezone.now(),
    )


def agents():
    return User.objects.filter(
        is_active=True, groups__name=settings.FOLLOWUP_AGENTS_GROUP
    )


def agent_turns_ensure(*, user_ids) -> None:
    """Gives these users a place in the round robin (agents joining the group)."""
    AgentTurn.objects.bulk_create(
        [AgentTurn(user_id=pk) for pk in user_ids], ignore_conflicts=True
    )


def on_groups_changed(sender, *, instance, action, reverse, pk_set, **kwargs) -> None:
    """Gives users added to the CX agents group their place in the round robin."""
    if action != "post_add" or not pk_set:
        return
    if reverse:  # group.user_set.add(...): instance is the group
        if instance.name == settings.FOLLOWUP_AGENTS_GROUP:
            agent_turns_ensure(user_ids=pk_set)
    elif Group.objects.filter(
        pk__in=pk_set, name=settings.FOLLOWUP_AGENTS_GROUP
    ).exists():
        agent_turns_ensure(user_ids=[instance.pk])


def _agent_turn_take(*, skip_locked: bool) -> AgentTurn | None:
    return (
        AgentTurn.objects.select_for_update(skip_locked=skip_locked, of=("self",))
        .select_related("user")
        .filter(user__is_active=True, user__groups__name=settings.FOLLOWUP_AGENTS_GROUP)
        .order_by(F("last_assigned_at").asc(nulls_first=True), "user_id")
        .first()
    )


def _member_turn_take(team: Team, *, skip_locked: bool) -> TeamMember | None:
    return (
        TeamMember.objects.select_for_update(skip_locked=skip_locked, of=("self",))
        .select_related("user")
        .filter(team=team, available=True, user__is_active=True)
        .order_by(F("last_assigned_at").asc(nulls_first=True), "user_id")
        .first()
    )


def followup_owner_next(*, now, team: Team | None = None):
    """
    Returns the available member of `team` (for no team: the CX agent) assigned
    least recently (round robin), or None, and marks them assigned at `now`.
    Call inside the transaction that assigns.

    It locks that person's turn, skipping turns other transactions hold, so two
    detractors answering at once get two people without waiting; with every turn
    held it waits for the least recent one.
    """
    if team is not None:
        turn = _member_turn_take(team, skip_locked=True) or _member_turn_take(
            team, skip_locked=False
        )
        if turn is None:
            return None
        TeamMember.objects.filter(pk=turn.pk).update(last_assigned_at=now)
        return turn.user
    turn = _agent_turn_take(skip_locked=True)
    if turn is None:
        if not agents().exists():
            return None
        # Every agent is being assigned right now, or some joined without a turn.
        agent_turns_ensure(user_ids=agents().values_list("pk", flat=True))
        turn = _agent_turn_take(skip_locked=False)
        if turn is None:
            return None
    AgentTurn.objects.filter(pk=turn.pk).update(last_assigned_at=now)
    return turn.user


def _turn_mark(*, owner, team: Team | None, now) -> None:
    """A follow-up given by hand counts as the owner's turn too."""
    if team is not None:
        TeamMember.objects.filter(team=team, user=owner).update(last_assigned_at=now)
    else:
        AgentTurn.objects.filter(user=owner).update(last_assigned_at=now)


def account_owner_of(customer: Customer, team: Team | None):
    """
    Returns the user the customer's account-owner property names (a username or
    an email), if they can own the follow-up (active CX staff, in the team), else
    None.
    """
    name = (customer.properties or {}).get(settings.FOLLOWUP_ACCOUNT_OWNER_PROPERTY)
    if not isinstance(name, str) or not name.strip():
        return None
    name = name.strip()
    user = (
        User.objects.filter(is_active=True)
        .filter(Q(**{f"{User.USERNAME_FIELD}__iexact": name}) | Q(email__iexact=name))
        .order_by("pk")
        .first()
    )
    if user is None or not is_cx_staff(user):
        return None
    if team is not None and not team_member_is(team, user):
        return None
    return user


def _owner_choose(*, assignment: str, customer_id: int, team, now):
    if assignment == Assignment.NOBODY:
        return None
    if assignment == Assignment.ACCOUNT_OWNER:
        owner = account_owner_of(Customer.objects.get(pk=customer_id), team)
        if owner is not None:
            _turn_mark(owner=owner, team=team, now=now)
            return owner
    return followup_owner_next(now=now, team=team)


# Opening


def _followup_create(
    *,
    customer_id: int,
    response: Response | None,
    rule: FollowUpRule | None,
    team: Team | None,
    priority: str,
    assignment: str,
    first_contact_hours,
    resolution_hours,
    owner=None,
    actor=None,
    text: str = "",
) -> FollowUp:
    now = timezone.now()
    if owner is None:
        owner = _owner_choose(
            assignment=assignment, customer_id=customer_id, team=team, now=now
        )
    elif owner:
        _turn_mark(owner=owner, team=team, now=now)
    resolution_hours = resolution_hours or settings.FOLLOWUP_SLA_HOURS
    followup = FollowUp.objects.create(
        response=response,
        customer_id=customer_id,
        rule=rule,
        team=team,
        owner=owner,
        priority=priority,
        first_contact_due_at=(
            sla_due_at(team=team, start=now, hours=first_contact_hours)
            if first_contact_hours
            else None
        ),
        due_at=sla_due_at(team=team, start=now, hours=resolution_hours),
        created_at=now,
        opened_by=actor,
        touched_at=now if actor else None,
        assigned_at=now if owner else None,
        owner_notified_at=now if owner and owner == actor else None,
    )
    data = {"score": response.score} if response and response.score is not None else {}
    events = [
        FollowUpEvent(
            followup=followup,
            kind=EventKind.OPENED,
            actor=actor,
            text=text or (response.comment if response else ""),
            data=data,
            created_at=now,
        )
    ]
    if owner:
        events.append(
            FollowUpEvent(
                followup=followup,
                kind=EventKind.ASSIGNED,
                actor=actor,
                text=owner.get_username(),
                created_at=now,
            )
        )
        if owner != actor:
            _notify_owner_on_commit(followup)
    FollowUpEvent.objects.bulk_create(events)
    if priority == Priority.HIGH:
        _slack_notice(followup, NoticeKind.SLACK_OPENED, now=now)
    return followup


def followup_open(*, response: Response) -> FollowUp | None:
    """
    Opens the follow-up the first matching rule asks for (by default NPS ≤ 6,
    CSAT ≤ 2, CES ≤ 3), once; returns it, or None when no rule matches or the
    answer has one already. Call inside the transaction that records the response.
    """
    rule = followup_rule_match(response)
    if rule is None:
        return None
    # No savepoint: the answer's transaction commits or rolls back the follow-up.
    # Called for an answer without a follow-up; the one-per-answer constraint
    # refuses a second, should two requests race.
    with transaction.atomic(savepoint=False):
        return _followup_create(
            customer_id=response.customer_id,
            response=response,
            rule=rule,
            team=rule.team,
            priority=rule.priority
            or followup_priority(response.survey.kind, response.score),
            assignment=rule.assignment,
            first_contact_hours=rule.first_contact_sla_hours,
            resolution_hours=rule.resolution_sla_hours,
        )


def followup_open_manual(
    *,
    customer: Customer,
    response: Response | None = None,
    actor,
    team: Team | None = None,
    priority: str = Priority.NORMAL,
    owner=None,
    note: str = "",
) -> FollowUp:
    """
    Opens a follow-up by hand, for a customer or one of their answers (which may
    have none yet), owned by `owner` or the team's round robin. Its SLA is the
    setting's, counted in the team's hours.
    """
    errors = {}
    if response is not None and response.customer_id != customer.pk:
        errors["response"] = _("This answer is another customer's.")
    if priority not in Priority.values:
        errors["priority"] = _("Choose a priority.")
    if owner is not None:
        try:
            followup_owner_validate(owner, team=team)
        except ValidationError as e:
            errors.update(e.message_dict)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        if response is not None:
            # Locks the answer: two people opening at once get one follow-up.
            Response.objects.select_for_update().filter(pk=response.pk).first()
            if FollowUp.objects.filter(response=response).exists():
                raise ValidationError(
                    _("This answer has a follow-up already."), code="conflict"
                )
        return _followup_create(
            customer_id=customer.pk,
            response=response,
            rule=None,
            team=team,
            priority=priority,
            assignment=Assignment.ROUND_ROBIN,
            first_contact_hours=None,
            resolution_hours=None,
            owner=owner,
            actor=actor,
            text=(note or "").strip(),
        )


def on_response_recorded(
    sender, *, response: Response, created: bool, changed: set, **kwargs
) -> None:
    """
    Opens a follow-up for an answer a rule matches. On a changed answer, notes it
    on the follow-up, raises the priority of an angrier score, and closes the
    follow-up as "no action needed" when no rule matches any more and nobody
    has acted on it yet.
    """
    if created:
        followup_open(response=response)
        return
    if not {"score", "comment"} & changed:
        return
    followup = FollowUp.objects.filter(response=response).first()
    if followup is None:
        followup_open(response=response)
        return
    if "score" in changed:
        _event(
            followup,
            EventKind.ANSWER_CHANGED,
            text=response.comment,
            data={"score": response.score},
        )
    elif response.comment:
        _event(followup, EventKind.COMMENTED, text=response.comment)
    if followup.rule_id is None:
        return  # opened by a person: a person closes it
    rule = followup_rule_match(response)
    if rule is None:
        _followup_close_no_action(followup_id=followup.pk)
        return
    # An angrier second answer raises the priority; a kinder one never lowers it.
    priority = rule.priority or followup_priority(response.survey.kind, response.score)
    if "score" in changed and priority == Priority.HIGH:
        try:
            followup_set_priority(followup=followup, priority=Priority.HIGH, actor=None)
        except ValidationError:
            pass  # resolved: its priority is history, the answer still counts


def _followup_close_no_action(*, followup_id: int) -> bool:
    """Closes an untouched, unresolved follow-up as "no action needed"."""
    now = timezone.now()
    with transaction.atomic():
        followup = (
            FollowUp.objects.select_for_update(of=("self",))
            .filter(pk=followup_id, status__in=UNRESOLVED, touched_at__isnull=True)
            .first()
        )
        if followup is None:
            return False
        followup.status = FollowUpStatus.CLOSED
        followup.closed_at = now
        followup.no_action_needed = True
        followup.save(update_fields=["status", "closed_at", "no_action_needed"])
        _event(followup, EventKind.NO_ACTION_NEEDED, now=now)
    return True


def _notify_owner_on_commit(followup: FollowUp) -> None:
    from . import tasks

    pk = followup.pk
    # robust: a broker that is down must not fail the request; the sweep resends.
    transaction.on_commit(lambda: tasks.followup_notify_owner.delay(pk), robust=True)


def _notice_on_commit(notice: FollowUpNotice) -> None:
    from . import tasks

    pk = notice.pk
    transaction.on_commit(lambda: tasks.followup_notice_send.delay(pk), robust=True)


# Who may do what: the roles


def is_manager_of(user, followup: FollowUp) -> bool:
    """
    True if `user` manages the follow-up's team (its manager, or a member in the
    CX managers group) or, for one without a team, is in the CX managers group;
    and for staff accounts.
    """
    if not user.is_active:
        return False
    if user.is_staff:
        return True
    in_managers = user.groups.filter(name=settings.FOLLOWUP_MANAGERS_GROUP).exists()
    if followup.team_id is None:
        return in_managers
    team = followup.team
    if team.manager_id == user.pk:
        return True
    return in_managers and TeamMember.objects.filter(team=team, user=user).exists()


def followup_owner_validate(owner, *, team: Team | None = None) -> None:
    """Raises ValidationError unless `owner` can own follow-ups (of `team`)."""
    if not owner.is_active:
        raise ValidationError({"owner": _("This user is not active.")})
    if not is_cx_staff(owner):
        raise ValidationError({"owner": _("This user is not CX staff.")})
    if team is not None and not team_member_is(team, owner):
        raise ValidationError({"owner": _("This user is not in the follow-up's team.")})


def _locked(followup: FollowUp) -> FollowUp:
    return (
        FollowUp.objects.select_for_update(of=("self",))
        .select_related("team")
        .get(pk=followup.pk)
    )


def _refuse_unless_unresolved(followup: FollowUp) -> None:
    if not followup.is_unresolved:
        raise ValidationError(
            _("This follow-up is %(status)s.")
            % {"status": followup.get_status_display().lower()},
            code="conflict",
        )


def followup_assign(*, followup: FollowUp, owner, actor) -> FollowUp:
    """
    Gives the follow-up to `owner` (None: nobody), on its timeline with the
    previous owner; the new owner is emailed unless they took it themselves, and
    the previous one is told unless they gave it away themselves.

    Agents may take a follow-up for themselves (or give up their own); giving it
    to someone else is for the team's manager (is_manager_of). No actor: the
    system (round robin).
    """
    if actor is not None and owner != actor and not is_manager_of(actor, followup):
        if not (owner is None and followup.owner_id == actor.pk):
            raise PermissionDenied(
                _("Only the team's manager can give a follow-up to someone else.")
            )
    now = timezone.now()
    with transaction.atomic():
        followup = _locked(followup)
        # Checked on the locked row: the caller's copy may predate a resolve.
        _refuse_unless_unresolved(followup)
        if owner is not None:
            followup_owner_validate(owner, team=followup.team)
        previous = followup.owner
        if followup.owner_id == (owner.pk if owner else None):
            return followup
        followup.owner = owner
        followup.assigned_at = now if owner else None
        followup.owner_notified_at = now if owner == actor else None
        fields = ["owner", "assigned_at", "owner_notified_at"]
        if actor is not None and followup.touched_at is None:
            followup.touched_at = now
            fields.append("touched_at")
        followup.save(update_fields=fields)
        if owner:
            _turn_mark(owner=owner, team=followup.team, now=now)
        _event(
            followup,
            EventKind.ASSIGNED,
            actor=actor,
            now=now,
            text=owner.get_username() if owner else "",
            data={
                "previous": previous.get_username() if previous else "",
                "owner": owner.get_username() if owner else "",
            },
        )
        if owner and owner != actor:
            _notify_owner_on_commit(followup)
        if previous is not None and previous != actor and previous.is_active:
            notice = FollowUpNotice.objects.create(
                followup=followup,
                kind=NoticeKind.REASSIGNED_AWAY,
                recipient=previous,
                new_owner=owner,
                actor=actor,
                due_at=now,
            )
            _notice_on_commit(notice)
    return followup


def _touch(followup: FollowUp, now, fields: list[str]) -> None:
    if followup.touched_at is None:
        followup.touched_at = now
        fields.append("touched_at")


def followup_set_priority(*, followup: FollowUp, priority: str, actor) -> FollowUp:
    """Changes the priority of an unresolved follow-up, on its timeline."""
    if priority not in Priority.values:
        raise ValidationError({"priority": _("Choose a priority.")})
    now = timezone.now()
    with transaction.atomic():
        followup = _locked(followup)
        _refuse_unless_unresolved(followup)
        if followup.priority == priority:
            return followup
        followup.priority = priority
        fields = ["priority"]
        if actor is not None:
            _touch(followup, now, fields)
        followup.save(update_fields=fields)
        _event(
            followup,
            EventKind.PRIORITY_CHANGED,
            actor=actor,
            now=now,
            data={"priority": priority},
        )
    return followup


def followup_add_note(*, followup: FollowUp, actor, text: str) -> FollowUpEvent:
    text = (text or "").strip()
    if not text:
        raise ValidationError({"note": _("Write the note first.")})
    now = timezone.now()
    with transaction.atomic():
        FollowUp.objects.filter(pk=followup.pk, touched_at__isnull=True).update(
            touched_at=now
        )
        return _event(followup, EventKind.NOTE, actor=actor, text=text, now=now)


# The workflow: new → contacted ⇄ waiting on customer → resolved → closed, and
# reopen (resolved or closed → contacted if the customer was contacted, else new).
TRANSITIONS = {
    FollowUpStatus.NEW: {
        FollowUpStatus.CONTACTED,
        FollowUpStatus.WAITING,
        FollowUpStatus.RESOLVED,
    },
    FollowUpStatus.CONTACTED: {FollowUpStatus.WAITING, FollowUpStatus.RESOLVED},
    FollowUpStatus.WAITING: {FollowUpStatus.CONTACTED, FollowUpStatus.RESOLVED},
    FollowUpStatus.RESOLVED: {FollowUpStatus.CLOSED},
    FollowUpStatus.CLOSED: set(),
}


def _refuse_transition(followup: FollowUp, to: str) -> None:
    if to not in TRANSITIONS[followup.status]:
        raise ValidationError(
            _("A follow-up that is %(from)s cannot become %(to)s.")
            % {
                "from": followup.get_status_display().lower(),
                "to": FollowUpStatus(to).label.lower(),
            },
            code="conflict",
        )


def followup_log_contact(
    *, followup: FollowUp, actor, channel: str, note: str = ""
) -> FollowUp:
    """
    Records that `actor` contacted the customer (a call, an email …): the first
    contact, if it is, and the status "contacted". The reply email calls it too.
    """
    if channel not in ContactChannel.values:
        raise ValidationError({"channel": _("Choose how you contacted the customer.")})
    now = timezone.now()
    with transaction.atomic():
        followup = _locked(followup)
        _refuse_unless_unresolved(followup)
        fields = []
        if followup.status != FollowUpStatus.CONTACTED:
            followup.status = FollowUpStatus.CONTACTED
            fields.append("status")
        if followup.first_contact_at is None:
            followup.first_contact_at = now
            fields.append("first_contact_at")
        _touch(followup, now, fields)
        followup.save(update_fields=fields)
        _event(
            followup,
            EventKind.CONTACTED,
            actor=actor,
            now=now,
            text=(note or "").strip(),
            data={"channel": channel},
        )
    return followup


def followup_wait_on_customer(*, followup: FollowUp, actor, note: str = ""):
    """Marks the follow-up as waiting on the customer (asked for something)."""
    now = timezone.now()
    with transaction.atomic():
        followup = _locked(followup)
        _refuse_transition(followup, FollowUpStatus.WAITING)
        followup.status = FollowUpStatus.WAITING
        fields = ["status"]
        _touch(followup, now, fields)
        followup.save(update_fields=fields)
        _event(
            followup,
            EventKind.STATUS_CHANGED,
            actor=actor,
            now=now,
            text=(note or "").strip(),
            data={"status": FollowUpStatus.WAITING},
        )
    return followup


def root_cause_choices():
    """The root causes a resolution may name now."""
    return RootCause.objects.filter(active=True).order_by("position", "pk")


def followup_resolve(
    *, followup: FollowUp, actor, resolution: str, root_cause: RootCause | str | None
):
    """
    Resolves the follow-up, recording who, when, how and the root cause (an
    active RootCause, or its code).
    """
    resolution = (resolution or "").strip()
    if isinstance(root_cause, str):
        root_cause = root_cause_choices().filter(code=root_cause).first()
    errors = {}
    if not resolution:
        errors["resolution"] = _("Say how it was resolved.")
    if root_cause is None or not root_cause.active:
        errors["root_cause"] = _("Choose a root cause.")
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    with transaction.atomic():
        followup = _locked(followup)
        if followup.status == FollowUpStatus.RESOLVED:
            raise ValidationError(
                _("This follow-up is already resolved."), code="conflict"
            )
        _refuse_transition(followup, FollowUpStatus.RESOLVED)
        followup.status = FollowUpStatus.RESOLVED
        followup.resolution = resolution
        followup.root_cause = root_cause
        followup.resolved_at = now
        followup.resolved_by = actor
        fields = ["status", "resolution", "root_cause", "resolved_at", "resolved_by"]
        _touch(followup, now, fields)
        followup.save(update_fields=fields)
        _event(followup, EventKind.RESOLVED, actor=actor, now=now, text=resolution)
        replies.followup_checkin_schedule(followup=followup, now=now)
    return followup


def followup_close(*, followup: FollowUp, actor, note: str = "") -> FollowUp:
    """Closes a resolved follow-up: nothing more is expected of anyone."""
    now = timezone.now()
    with transaction.atomic():
        followup = _locked(followup)
        _refuse_transition(followup, FollowUpStatus.CLOSED)
        followup.status = FollowUpStatus.CLOSED
        followup.closed_at = now
        followup.save(update_fields=["status", "closed_at"])
        _event(
            followup, EventKind.CLOSED, actor=actor, now=now, text=(note or "").strip()
        )
    return followup


def followup_reopen(*, followup: FollowUp, actor, note: str = "") -> FollowUp:
    """
    Reopens a resolved or closed follow-up: back to "contacted" if the customer
    was contacted, else "new", with a fresh resolution clock (its rule's SLA, in
    its team's hours) and no escalation yet. The old resolution stays on the
    timeline.
    """
    now = timezone.now()
    with transaction.atomic():
        followup = (
            FollowUp.objects.select_for_update(of=("self",))
            .select_related("team", "rule")
            .get(pk=followup.pk)
        )
        if followup.is_unresolved:
            raise ValidationError(_("This follow-up is open already."), code="conflict")
        hours = (
            followup.rule.resolution_sla_hours if followup.rule else None
        ) or settings.FOLLOWUP_SLA_HOURS
        followup.status = (
            FollowUpStatus.CONTACTED
            if followup.first_contact_at
            else FollowUpStatus.NEW
        )
        followup.due_at = sla_due_at(team=followup.team, start=now, hours=hours)
        followup.escalated_at = None
        followup.escalated_again_at = None
        followup.resolved_at = None
        followup.resolved_by = None
        followup.resolution = ""
        followup.root_cause = None
        followup.closed_at = None
        followup.no_action_needed = False
        fields = [
            "status",
            "due_at",
            "escalated_at",
            "escalated_again_at",
            "resolved_at",
            "resolved_by",
            "resolution",
            "root_cause",
            "closed_at",
            "no_action_needed",
        ]
        _touch(followup, now, fields)
        followup.save(update_fields=fields)
        _event(
            followup,
            EventKind.REOPENED,
            actor=actor,
            now=now,
            text=(note or "").strip(),
            data={"status": followup.status},
        )
    return followup


# Background work: swept rows


def _claim(pk: int, *q, **conditions) -> FollowUp | None:
    """Locks and returns the follow-up if it still meets the conditions, else None."""
    return (
        FollowUp.objects.select_for_update(skip_locked=True, of=("self",))
        # The response too: every email about a follow-up quotes its answer.
        .select_related("owner", "customer", "team__manager", "response")
        .filter(*q, pk=pk, **conditions)
        .first()
    )


def followup_owner_notify(*, followup_id: int) -> bool:
    """Emails the owner about their new follow-up, once; returns whether it sent."""
    with transaction.atomic():
        followup = _claim(
            followup_id,
            status__in=UNRESOLVED,
            owner__isnull=False,
            owner__is_active=True,
            owner_notified_at__isnull=True,
        )
        if followup is None:
            return False
        if followup.owner.email:
            emails.send(
                "followup-assigned",
                to=[followup.owner.email],
                context={"followup": followup},
                language=user_language(followup.owner),
            )
        followup.owner_notified_at = timezone.now()
        followup.save(update_fields=["owner_notified_at"])
        _event(followup, EventKind.OWNER_NOTIFIED, text=followup.owner.email)
    return True


# The email of each kind of notice.
NOTICE_EMAILS = {
    NoticeKind.REASSIGNED_AWAY: "followup-reassigned",
    NoticeKind.REPLIED: "followup-replied",
    NoticeKind.NOT_RECOVERED: "followup-not-recovered",
}


def followup_notice_send(*, notice_id: int) -> bool:
    """
    Sends a notice once: an email to its recipient (the previous owner's "given to
    someone else", a customer's reply …), or a post to the team's Slack. True if
    it went out (or had nowhere to go).
    """
    with transaction.atomic():
        notice = (
            FollowUpNotice.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related(
                "followup__customer",
                "followup__response",
                "followup__team",
                "followup__owner",
                "recipient",
                "new_owner",
                "actor",
            )
            .filter(pk=notice_id, sent_at__isnull=True)
            .first()
        )
        if notice is None:
            return False
        if notice.kind in SLACK_NOTICES:
            return _slack_notice_post(notice)
        if notice.recipient.email and notice.recipient.is_active:
            emails.send(
                NOTICE_EMAILS[notice.kind],
                to=[notice.recipient.email],
                context={
                    "followup": notice.followup,
                    "recipient": notice.recipient,
                    "new_owner": notice.new_owner,
                    "actor": notice.actor,
                },
                language=user_language(notice.recipient),
            )
        notice.sent_at = timezone.now()
        notice.save(update_fields=["sent_at"])
        _event(notice.followup, EventKind.NOTIFIED, text=notice.recipient.email)
    return True


@transaction.atomic
def staff_profile_save(
    *, user, language: str = "", time_zone: str = "", start_page: str = ""
) -> StaffProfile:
    """
    Saves `user`'s preferences and returns their StaffProfile: blank values mean
    the browser's language, the site's time zone, the role's start page.
    Raises ValidationError naming the field of an unknown value.
    """
    errors = {}
    if language and language not in dict(settings.LANGUAGES):
        errors["language"] = _("Choose a language from the list.")
    if time_zone and not is_time_zone(time_zone):
        errors["time_zone"] = _("Give a time zone such as Asia/Seoul.")
    if start_page and start_page not in dict(start_pages_for(user)):
        errors["start_page"] = _("Choose a start page from the list.")
    if errors:
        raise ValidationError(errors)
    profile, _created = StaffProfile.objects.update_or_create(
        user=user,
        defaults={
            "language": language,
            "time_zone": time_zone,
            "start_page": start_page,
        },
    )
    return profile


def user_language(user) -> str:
    """Returns the language `user` reads cxm's emails in (StaffProfile)."""
    language = (
        StaffProfile.objects.filter(user_id=user.pk)
        .values_list("language", flat=True)
        .first()
    )
    return language or settings.LANGUAGE_CODE


# Slack


# Seconds a Slack post may take before it counts as failed (and is retried).
SLACK_TIMEOUT = 10
# The longest wait between two tries of a failing Slack post.
SLACK_RETRY_MAX = timedelta(hours=1)


class SlackError(Exception):
    """Slack (or what stands in for it) refused a post, or could not be reached."""


def slack_post(*, url: str, payload: dict) -> None:
    """Posts `payload` as JSON to a Slack incoming webhook; raises SlackError."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=SLACK_TIMEOUT) as answer:
            answer.read()
    except (OSError, ValueError) as e:  # HTTPError and URLError are OSErrors
        raise SlackError(str(e)) from e


def _slack_escape(text: str) -> str:
    # Slack reads &, < and > as markup: https://api.slack.com/reference/surfaces/formatting
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(notice: FollowUpNotice) -> dict:
    """Returns the Slack message of a notice, in the site's language."""
    followup = notice.followup
    with translation.override(settings.LANGUAGE_CODE):
        if notice.kind == NoticeKind.SLACK_OPENED:
            headline = _("New high-priority follow-up #%(id)s") % {"id": followup.pk}
        else:
            headline = _("Follow-up #%(id)s missed its SLA") % {"id": followup.pk}
        lines = [_("Customer: %(customer)s") % {"customer": followup.customer}]
        response = followup.response
        if response is not None and response.score is not None:
            lines.append(_("Score: %(score)s") % {"score": response.score})
        lines = [_slack_escape(line) for line in lines]
        if response is not None and response.comment:
            lines.append("> " + _slack_escape(" ".join(response.comment.split())))
        owner = _("Owner: %(owner)s") % {"owner": followup.owner or _("nobody")}
        lines = [
            f"*{_slack_escape(headline)}* ({_slack_escape(str(followup.team))})",
            *lines,
            _slack_escape(owner),
            f"<{followup.link}|{_slack_escape(_('Open the follow-up'))}>",
        ]
    return {"text": "\n".join(lines)}


def _slack_notice(followup: FollowUp, kind: str, *, now) -> None:
    """Queues a post to the follow-up team's Slack, if it has one."""
    team = followup.team
    if team is None or not team.slack_webhook_url:
        return
    notice = FollowUpNotice.objects.create(followup=followup, kind=kind, due_at=now)
    _notice_on_commit(notice)


def _slack_notice_post(notice: FollowUpNotice) -> bool:
    """Posts a locked Slack notice; on failure counts the try and retries later."""
    team = notice.followup.team
    url = team.slack_webhook_url if team is not None else ""
    now = timezone.now()
    if url:
        try:
            slack_post(url=url, payload=slack_payload(notice))
        except SlackError as e:
            notice.attempts += 1
            notice.due_at = now + min(
                timedelta(minutes=2**notice.attempts), SLACK_RETRY_MAX
            )
            notice.save(update_fields=["attempts", "due_at"])
            logger.warning(
                "Follow-up notice %s: Slack post failed (try %s): %s",
                notice.pk,
                notice.attempts,
                e,
            )
            return False
    notice.sent_at = now
    notice.save(update_fields=["sent_at"])
    if url:
        _event(notice.followup, EventKind.NOTIFIED, text="Slack")
    return True


def managers_emails(followup: FollowUp | None = None) -> list[str]:
    """
    Who hears of a late follow-up: its team's manager, or, without a team (or a
    manager), the CX managers group.
    """
    manager = followup.team.manager if followup and followup.team_id else None
    if manager is not None and manager.is_active and manager.email:
        return [manager.email]
    return list(
        User.objects.filter(
            is_active=True, groups__name=settings.FOLLOWUP_MANAGERS_GROUP
        )
        .exclude(email="")
        .order_by("pk")
        .values_list("email", flat=True)
    )


def followup_escalate(*, followup_id: int, now=None) -> bool:
    """
    Emails the manager(s) about an overdue follow-up, once, and sets its
    escalated_at (the status stays what it is); True if it did.
    """
    with transaction.atomic():
        followup = _claim(
            followup_id,
            overdue_q(now or timezone.now()),
            escalated_at__isnull=True,
        )
        if followup is None:
            return False
        recipients = managers_emails(followup)
        if recipients:
            emails.send(
                "followup-escalated", to=recipients, context={"followup": followup}
            )
        followup.escalated_at = timezone.now()
        followup.save(update_fields=["escalated_at"])
        _event(
            followup,
            EventKind.ESCALATED,
            text=", ".join(recipients),
        )
        _slack_notice(followup, NoticeKind.SLACK_BREACHED, now=followup.escalated_at)
    return True


def escalate_again_emails() -> list[str]:
    """
    Who hears of the second breach level: FOLLOWUP_ESCALATE_AGAIN_TO, or, if it
    names nobody, the CX managers group.
    """
    if settings.FOLLOWUP_ESCALATE_AGAIN_TO:
        return list(settings.FOLLOWUP_ESCALATE_AGAIN_TO)
    return managers_emails(None)


def _escalate_again_q(now) -> Q:
    """Escalated, and still overdue FOLLOWUP_ESCALATE_AGAIN_AFTER_HOURS later."""
    after = timedelta(hours=settings.FOLLOWUP_ESCALATE_AGAIN_AFTER_HOURS)
    return overdue_q(now - after) & Q(
        escalated_at__isnull=False, escalated_again_at__isnull=True
    )


def followup_escalate_again(*, followup_id: int, now=None) -> bool:
    """
    The second breach level: emails FOLLOWUP_ESCALATE_AGAIN_TO (or the CX managers)
    about a follow-up still overdue FOLLOWUP_ESCALATE_AGAIN_AFTER_HOURS past due,
    once, and sets its escalated_again_at; True if it did.
    """
    with transaction.atomic():
        followup = _claim(followup_id, _escalate_again_q(now or timezone.now()))
        if followup is None:
            return False
        recipients = escalate_again_emails()
        if recipients:
            emails.send(
                "followup-escalated-again",
                to=recipients,
                context={
                    "followup": followup,
                    "hours": settings.FOLLOWUP_ESCALATE_AGAIN_AFTER_HOURS,
                },
            )
        followup.escalated_again_at = timezone.now()
        followup.save(update_fields=["escalated_again_at"])
        _event(followup, EventKind.ESCALATED_AGAIN, text=", ".join(recipients))
    return True


# Reminders before a due time: (the due-time column, the column holding the due
# time last reminded of, extra conditions). First contact only while nobody has
# contacted the customer.
REMINDERS = {
    "first_contact": (
        "first_contact_due_at",
        "first_contact_reminded_for",
        Q(first_contact_at__isnull=True),
    ),
    "resolution": ("due_at", "resolution_reminded_for", Q()),
}


def _remind_q(sla: str, now) -> Q:
    """
    Unresolved, with an owner who had it before the reminder window opened, due
    within FOLLOWUP_REMIND_BEFORE_HOURS, and not yet reminded of this due time.
    """
    due, reminded, extra = REMINDERS[sla]
    lead = timedelta(hours=settings.FOLLOWUP_REMIND_BEFORE_HOURS)
    return (
        extra
        & Q(status__in=UNRESOLVED, owner__isnull=False, owner__is_active=True)
        & Q(**{f"{due}__gt": now, f"{due}__lte": now + lead})
        & Q(assigned_at__lte=F(due) - lead)
        & (
            Q(**{f"{reminded}__isnull": True})
            | Q(**{f"{reminded}__lt": F(due)})
            | Q(**{f"{reminded}__gt": F(due)})
        )
    )


def followup_remind(*, followup_id: int, sla: str, now=None) -> bool:
    """
    Reminds the owner that an SLA ("first_contact" or "resolution") of their
    follow-up is due soon, once per due time; True if it did.
    """
    due, reminded, _extra = REMINDERS[sla]
    with transaction.atomic():
        followup = _claim(followup_id, _remind_q(sla, now or timezone.now()))
        if followup is None:
            return False
        if followup.owner.email:
            emails.send(
                "followup-reminder",
                to=[followup.owner.email],
                context={
                    "followup": followup,
                    "sla": sla,
                    "due": getattr(followup, due),
                },
                language=user_language(followup.owner),
            )
        setattr(followup, reminded, getattr(followup, due))
        followup.save(update_fields=[reminded])
        _event(
            followup, EventKind.REMINDED, text=followup.owner.email, data={"sla": sla}
        )
    return True


def _sweep_step(pks, send, what: str) -> int:
    done = 0
    for pk in list(pks):
        try:
            done += send(pk)
        except (smtplib.SMTPException, OSError) as e:
            logger.warning("Follow-up sweep: %s %s not sent: %s", what, pk, e)
    return done


def followups_sweep(*, now=None) -> dict:
    """
    Reminds owners before each SLA is due, escalates each overdue follow-up once
    (and a second time FOLLOWUP_ESCALATE_AGAIN_AFTER_HOURS later), and sends owner
    emails, notices, Slack posts and emails to customers (replies, check-ins)
    whose message was lost, whose try failed or whose time has come.
    Safe to run any number of times, on any number of workers: each row is claimed
    (SKIP LOCKED) and marked in one transaction. Each step scans its due-time
    column through its partial index (FollowUp.Meta.indexes).
    """
    now = now or timezone.now()
    with emails.one_connection():
        return _followups_sweep(now)


def _followups_sweep(now) -> dict:
    def first(qs, order: str):
        return qs.order_by(order).values_list("pk", flat=True)[:SWEEP_BATCH]

    reminded = 0
    if settings.FOLLOWUP_REMIND_BEFORE_HOURS:
        for sla, (due, _reminded, _extra) in REMINDERS.items():
            reminded += _sweep_step(
                first(FollowUp.objects.filter(_remind_q(sla, now)), due),
                lambda pk, sla=sla: followup_remind(followup_id=pk, sla=sla, now=now),
                "reminder",
            )
    escalated = _sweep_step(
        first(
            FollowUp.objects.overdue(now).filter(escalated_at__isnull=True), "due_at"
        ),
        lambda pk: followup_escalate(followup_id=pk, now=now),
        "escalation",
    )
    escalated_again = _sweep_step(
        first(FollowUp.objects.filter(_escalate_again_q(now)), "due_at"),
        lambda pk: followup_escalate_again(followup_id=pk, now=now),
        "second escalation",
    )
    notified = _sweep_step(
        FollowUp.objects.unresolved()
        .filter(
            owner__isnull=False,
            owner_notified_at__isnull=True,
            assigned_at__lt=now - NOTIFY_GRACE,
        )
        .values_list("pk", flat=True)[:SWEEP_BATCH],
        lambda pk: followup_owner_notify(followup_id=pk),
        "owner email",
    )
    noticed = _sweep_step(
        first(
            FollowUpNotice.objects.filter(
                sent_at__isnull=True, due_at__lt=now - NOTIFY_GRACE
            ),
            "due_at",
        ),
        lambda pk: followup_notice_send(notice_id=pk),
        "notice",
    )
    # Replies whose task was lost, and check-ins now due (failures counted there).
    messages = sum(
        replies.followup_message_send(message_id=pk, now=now)
        for pk in replies.followup_messages_due(now=now)
    )
    return {
        "reminded": reminded,
        "escalated": escalated,
        "escalated_again": escalated_again,
        "notified": notified,
        "notices": noticed,
        "messages": messages,
    }


# The daily digest

# What the digest calls "due soon": due before the next digest.
DIGEST_DUE_SOON = timedelta(hours=24)


def digest_recipients(*, day):
    """
    Returns the active CX staff with an email address who have open follow-ups
    (their own, or their teams' that nobody owns) and no digest for `day` yet.
    """
    unresolved = FollowUp.objects.filter(status__in=UNRESOLVED)
    owned = unresolved.filter(owner=OuterRef("pk"))
    unowned = unresolved.filter(
        owner__isnull=True,
        team__in=Team.objects.filter(
            Q(memberships__user=OuterRef(OuterRef("pk")))
            | Q(manager=OuterRef(OuterRef("pk")))
        ),
    )
    sent = FollowUpDigest.objects.filter(user=OuterRef("pk"), day=day)
    return (
        cx_staff_users()
        .exclude(email="")
        .filter(Exists(owned) | Exists(unowned))
        .exclude(Exists(sent))
        .order_by("pk")
    )


def followup_digest_send(*, user_id: int, day, now=None) -> bool:
    """
    Emails an agent their digest for `day`, in their language: their open
    follow-ups and their teams' unowned ones, overdue and due soon first. Once
    per agent and day (FollowUpDigest); nothing for an agent with nothing open.
    True if it sent.
    """
    now = now or timezone.now()
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.email:
        return False
    digest = followups_digest(user, now=now, due_soon=now + DIGEST_DUE_SOON)
    if not digest["total"]:
        return False
    with transaction.atomic():
        try:
            # A second sweep inserting the same row waits for this transaction,
            # then fails on the unique constraint: the digest goes out once.
            with transaction.atomic():
                FollowUpDigest.objects.create(
                    user=user, day=day, sent_at=now, followups=digest["total"]
                )
        except IntegrityError:
            return False
        emails.send(
            "followup-digest",
            to=[user.email],
            context={"user": user, "day": day, **digest},
            language=user_language(user),
        )
    return True


def followup_digests_send(*, now=None) -> int:
    """
    From FOLLOWUP_DIGEST_HOUR (in TIME_ZONE) on, sends each agent with open
    follow-ups who has none yet today their daily digest; returns how many went.
    """
    if settings.FOLLOWUP_DIGEST_HOUR is None:  # off
        return 0
    now = now or timezone.now()
    local = timezone.localtime(now)
    if local.hour < settings.FOLLOWUP_DIGEST_HOUR:
        return 0
    day = local.date()
    recipients = digest_recipients(day=day).values_list("pk", flat=True)
    return _sweep_step(
        recipients[:SWEEP_BATCH],
        lambda pk: followup_digest_send(user_id=pk, day=day, now=now),
        "digest",
    )
