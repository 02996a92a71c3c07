from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Prefetch
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import exceptions, mixins, serializers, viewsets
from rest_framework.response import Response as ApiResponse
from rest_framework.views import APIView

from cxm.access import cx_staff_users
from cxm.api import (
    PARSER_CLASSES,
    DetailSerializer,
    ErrorSerializer,
    PrimaryKeyRelatedField,
    StrictBooleanField,
    StrictCharField,
)
from cxm.customers.models import Customer
from surveys.models import Response

from . import reports, services
from .filters import FollowUpFilter
from .forms import ReportFilterForm
from .models import (
    ContactChannel,
    FollowUp,
    FollowUpEvent,
    FollowUpStatus,
    Priority,
    RootCause,
    Team,
)
from .selectors import (
    followups_by_ids,
    followups_visible_to,
    may_see_reports,
    teams_of,
)

User = get_user_model()


class FollowUpCustomerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()


class FollowUpEventSerializer(serializers.ModelSerializer):
    actor_username = serializers.CharField(
        source="actor.get_username", read_only=True, allow_null=True
    )
    text = serializers.CharField(
        source="description",
        read_only=True,
        help_text="What happened, in the request's language (Accept-Language).",
    )

    class Meta:
        model = FollowUpEvent
        fields = ["id", "kind", "actor", "actor_username", "text", "created_at"]
        read_only_fields = fields


class FollowUpSerializer(serializers.ModelSerializer):
    # One shape for list and detail, timeline included: a second shape would give
    # the schema two components sharing the status enum.
    customer = FollowUpCustomerSerializer(read_only=True)
    campaign = serializers.IntegerField(
        source="response.campaign_id", read_only=True, allow_null=True
    )
    score = serializers.IntegerField(
        source="response.score", read_only=True, allow_null=True
    )
    comment = serializers.CharField(
        source="response.comment", read_only=True, allow_null=True
    )
    owner_username = serializers.CharField(
        source="owner.get_username", read_only=True, allow_null=True
    )
    team_name = serializers.CharField(
        source="team.name", read_only=True, allow_null=True
    )
    is_overdue = serializers.BooleanField(
        read_only=True,
        help_text="Unresolved and past a due time (first contact or resolution); "
        "derived, never stored.",
    )
    root_cause = serializers.SlugRelatedField(
        slug_field="code",
        read_only=True,
        allow_null=True,
        help_text="The root cause's code; null until the follow-up is resolved.",
    )
    root_cause_name = serializers.CharField(
        source="root_cause.name", read_only=True, allow_null=True
    )
    events = FollowUpEventSerializer(
        many=True, read_only=True, help_text="The timeline, oldest first."
    )

    class Meta:
        model = FollowUp
        fields = [
            "id",
            "response",
            "campaign",
            "customer",
            "score",
            "comment",
            "team",
            "team_name",
            "owner",
            "owner_username",
            "priority",
            "status",
            "is_overdue",
            "first_contact_due_at",
            "first_contact_at",
            "due_at",
            "created_at",
            "assigned_at",
            "escalated_at",
            "escalated_again_at",
            "resolved_at",
            "resolved_by",
            "resolution",
            "root_cause",
            "root_cause_name",
            "closed_at",
            "no_action_needed",
            "events",
        ]
        read_only_fields = fields


class FollowUpChangeSerializer(serializers.Serializer):
    """What a PATCH may change; each key present is one action, all in one go."""

    owner = PrimaryKeyRelatedField(
        queryset=cx_staff_users(),
        allow_null=True,
        required=False,
        error_messages={
            "does_not_exist": _("There is no active CX staff user {pk_value}.")
        },
        help_text="Give the follow-up to this CX staff user; null unassigns it.",
    )
    note = StrictCharField(
        required=False,
        max_length=5000,
        help_text="Add this note to the timeline; with a status change or reopen, "
        "it is that change's note.",
    )
    status = serializers.ChoiceField(
        choices=[
            (s, s.label)
            for s in (
                FollowUpStatus.CONTACTED,
                FollowUpStatus.WAITING,
                FollowUpStatus.RESOLVED,
                FollowUpStatus.CLOSED,
            )
        ],
        required=False,
        help_text="Move it: contacted (logs a contact, with channel), waiting (on "
        "the customer), resolved (with resolution and root_cause), closed (once "
        "resolved). A move the workflow does not allow answers 409.",
    )
    channel = serializers.ChoiceField(
        choices=ContactChannel.choices,
        required=False,
        help_text='How the customer was contacted, with status "contacted".',
    )
    reopen = StrictBooleanField(
        required=False,
        help_text="true reopens a resolved or closed follow-up.",
    )
    resolution = StrictCharField(
        required=False, max_length=5000, help_text="How it was resolved."
    )
    root_cause = StrictCharField(
        required=False,
        max_length=40,
        help_text="The code of an active root cause (GET /api/root-causes/).",
    )

    # What validate() says, for the schema: one action at least; resolution and
    # root_cause with status resolved, channel with status contacted.
    body_required = True
    request_schema = {
        "anyOf": [
            {"required": [name]} for name in ("owner", "note", "status", "reopen")
        ],
        "dependentRequired": {
            "resolution": ["status", "root_cause"],
            "root_cause": ["status", "resolution"],
            "channel": ["status"],
        },
        "allOf": [
            {
                "if": {
                    "required": ["status"],
                    "properties": {"status": {"const": "resolved"}},
                },
                "then": {"required": ["resolution", "root_cause"]},
                "else": {
                    "not": {
                        "anyOf": [
                            {"required": ["resolution"]},
                            {"required": ["root_cause"]},
                        ]
                    }
                },
            },
            {
                "if": {
                    "required": ["status"],
                    "properties": {"status": {"const": "contacted"}},
                },
                "then": {"required": ["channel"]},
                "else": {"not": {"required": ["channel"]}},
            },
            {
                "if": {"required": ["reopen"]},
                "then": {"not": {"required": ["status"]}},
            },
        ],
    }

    def validate(self, attrs):
        status = attrs.get("status")
        if (
            status != FollowUpStatus.RESOLVED
            and {
                "resolution",
                "root_cause",
            }
            & attrs.keys()
        ):
            raise serializers.ValidationError(
                {"status": [_('Send "resolved" with a resolution and root cause.')]}
            )
        if status != FollowUpStatus.CONTACTED and "channel" in attrs:
            raise serializers.ValidationError(
                {"status": [_('Send "contacted" with the channel.')]}
            )
        if "reopen" in attrs and status:
            raise serializers.ValidationError(
                {"reopen": [_("Reopen, or change the status, not both.")]}
            )
        if not {"owner", "note", "status", "reopen"} & attrs.keys():
            raise serializers.ValidationError(
                _("Send owner, note, status or reopen to change the follow-up.")
            )
        errors = {}
        if status == FollowUpStatus.RESOLVED:
            if "resolution" not in attrs:
                errors["resolution"] = [_("Say how it was resolved.")]
            if "root_cause" not in attrs:
                errors["root_cause"] = [_("Choose a root cause.")]
        if status == FollowUpStatus.CONTACTED and "channel" not in attrs:
            errors["channel"] = [_("Choose how you contacted the customer.")]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class FollowUpOpenSerializer(serializers.Serializer):
    """Opens a follow-up by hand, for a customer or one of their answers."""

    customer = PrimaryKeyRelatedField(queryset=Customer.objects.all())
    response = PrimaryKeyRelatedField(
        queryset=Response.objects.all(),
        required=False,
        allow_null=True,
        help_text="One of the customer's answers; none for the customer alone.",
    )
    team = PrimaryKeyRelatedField(
        queryset=Team.objects.all(),
        required=False,
        allow_null=True,
        help_text="A team you are in (staff: any); none for every CX agent.",
    )
    owner = PrimaryKeyRelatedField(
        queryset=cx_staff_users(),
        required=False,
        allow_null=True,
        error_messages={
            "does_not_exist": _("There is no active CX staff user {pk_value}.")
        },
        help_text="Who owns it; none for the team's round robin.",
    )
    priority = serializers.ChoiceField(
        choices=Priority.choices, required=False, default=Priority.NORMAL
    )
    note = StrictCharField(
        required=False, max_length=5000, help_text="Why it was opened."
    )


class RootCauseSerializer(serializers.ModelSerializer):
    name = serializers.CharField(
        read_only=True, help_text="In the request's language (Accept-Language)."
    )

    class Meta:
        model = RootCause
        fields = ["code", "name", "name_en", "name_ko", "active", "position"]
        read_only_fields = fields


class RootCauseViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The managed list of root causes a resolution names (edited in the admin)."""

    serializer_class = RootCauseSerializer
    queryset = RootCause.objects.order_by("position", "pk")
    pagination_class = None


class FollowUpViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """The closed-loop queue: detractors to call back, who owns them, what is late."""

    serializer_class = FollowUpSerializer
    filterset_class = FollowUpFilter
    parser_classes = PARSER_CLASSES
    cx_agents_may_write = True  # agents and managers work the queue
    queryset = FollowUp.objects.none()  # for the schema; get_queryset decides

    def filter_queryset(self, queryset):
        # The queue's filters and order are the list's; one follow-up is found by
        # its id whatever its status (the filters default to unresolved).
        if self.action != "list":
            return queryset
        return super().filter_queryset(queryset)

    def paginate_queryset(self, queryset):
        # The ids are sorted and paged alone (selectors.followups_by_ids).
        pks = super().paginate_queryset(queryset.values_list("pk", flat=True))
        return None if pks is None else followups_by_ids(queryset, pks)

    def get_queryset(self):
        return followups_visible_to(self.request.user).prefetch_related(
            Prefetch("events", queryset=FollowUpEvent.objects.select_related("actor"))
        )

    @extend_schema(
        request=FollowUpOpenSerializer,
        responses={
            201: FollowUpSerializer,
            409: OpenApiResponse(
                ErrorSerializer, description="The answer has a follow-up already."
            ),
        },
    )
    def create(self, request):
        """Opens a follow-up by hand for a customer, or one of their answers."""
        form = FollowUpOpenSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        team = data.get("team")
        if team is not None and not (
            request.user.is_staff or teams_of(request.user).filter(pk=team.pk).exists()
        ):
            raise serializers.ValidationError(
                {"team": [_("You are not in this team.")]}
            )
        followup = services.followup_open_manual(
            customer=data["customer"],
            response=data.get("response"),
            actor=request.user,
            team=team,
            priority=data.get("priority", Priority.NORMAL),
            owner=data.get("owner"),
            note=data.get("note", ""),
        )
        return ApiResponse(
            FollowUpSerializer(self.get_queryset().get(pk=followup.pk)).data,
            status=201,
        )

    @extend_schema(
        request=FollowUpChangeSerializer,
        responses={
            200: FollowUpSerializer,
            403: OpenApiResponse(
                ErrorSerializer,
                description="Giving it to someone else is for its team's manager.",
            ),
            409: OpenApiResponse(
                ErrorSerializer,
                description="The workflow does not allow this move now (resolved "
                "already, closed, not yet resolved).",
            ),
        },
    )
    def partial_update(self, request, pk=None):
        """Assigns, notes, moves and/or reopens the follow-up, all or nothing."""
        followup = self.get_object()
        change = FollowUpChangeSerializer(data=request.data)
        change.is_valid(raise_exception=True)
        data = change.validated_data
        with transaction.atomic():
            if "owner" in data:
                services.followup_assign(
                    followup=followup, owner=data["owner"], actor=request.user
                )
            status = data.get("status")
            note = data.get("note", "")
            if "note" in data and (
                status in (None, FollowUpStatus.RESOLVED) and not data.get("reopen")
            ):
                services.followup_add_note(
                    followup=followup, actor=request.user, text=note
                )
            actor = request.user
            if status == FollowUpStatus.CONTACTED:
                services.followup_log_contact(
                    followup=followup, actor=actor, channel=data["channel"], note=note
                )
            elif status == FollowUpStatus.WAITING:
                services.followup_wait_on_customer(
                    followup=followup, actor=actor, note=note
                )
            elif status == FollowUpStatus.RESOLVED:
                services.followup_resolve(
                    followup=followup,
                    actor=actor,
                    resolution=data["resolution"],
                    root_cause=data["root_cause"],
                )
            elif status == FollowUpStatus.CLOSED:
                services.followup_close(followup=followup, actor=actor, note=note)
            if data.get("reopen"):
                services.followup_reopen(followup=followup, actor=actor, note=note)
        return ApiResponse(FollowUpSerializer(self.get_object()).data)


class ReportFiguresSerializer(serializers.Serializer):
    followups = serializers.IntegerField(help_text="Follow-ups opened in the period.")
    open = serializers.IntegerField(help_text="New, contacted or waiting.")
    overdue = serializers.IntegerField(help_text="Open and past a due time.")
    resolved = serializers.IntegerField(help_text="Resolved (and maybe closed).")
    contacted = serializers.IntegerField(help_text="With a first contact.")
    first_contact_met = serializers.IntegerField(
        help_text="First contact at or before its due time."
    )
    first_contact_measured = serializers.IntegerField(
        help_text="With a first-contact SLA that is decided: contacted, or open "
        "and uncontacted past its due time."
    )
    first_contact_share = serializers.FloatField(
        allow_null=True, help_text="% of first_contact_measured that met it."
    )
    resolution_met = serializers.IntegerField(
        help_text="Resolved at or before the due time."
    )
    resolution_measured = serializers.IntegerField(
        help_text="Resolved, or open past the due time."
    )
    resolution_share = serializers.FloatField(
        allow_null=True, help_text="% of resolution_measured that met it."
    )
    median_first_contact_seconds = serializers.FloatField(
        allow_null=True, help_text="From opening to first contact; null for none."
    )
    median_resolution_seconds = serializers.FloatField(
        allow_null=True, help_text="From opening to resolution; null for none."
    )
    checkins_answered = serializers.IntegerField(
        help_text="Recovery check-ins the customer answered."
    )
    recovered = serializers.IntegerField(
        help_text="Answered check-ins that say the issue was resolved."
    )
    recovery_rate = serializers.FloatField(
        allow_null=True, help_text="% of checkins_answered that say recovered."
    )


class ReportRowSerializer(ReportFiguresSerializer):
    id = serializers.IntegerField(
        allow_null=True, help_text="The team, owner or root cause; null for none."
    )
    name = serializers.CharField(help_text="In the request's language.")


class ReportWeekSerializer(ReportFiguresSerializer):
    week = serializers.CharField(help_text="The ISO week of opening: 2026-W48.")


class FollowUpReportSerializer(serializers.Serializer):
    totals = ReportFiguresSerializer()
    by_team = ReportRowSerializer(many=True)
    by_owner = ReportRowSerializer(many=True)
    by_root_cause = ReportRowSerializer(many=True)
    by_week = ReportWeekSerializer(many=True)


def _report_data(report: reports.FollowUpReport) -> dict:
    data = {"totals": report.totals.as_dict()}
    for name, rows in report.breakdowns().items():
        key = "week" if name == "week" else "id"
        data[f"by_{name}"] = [
            {key: row.key, "name": row.label, **row.figures.as_dict()} for row in rows
        ]
    return data


class FollowUpReportView(APIView):
    """
    The closed loop's reports over the follow-ups the user may see, opened in the
    period: open, overdue and resolved counts, SLA compliance, median times, the
    recovery rate; in total and by team, owner, root cause and ISO week. For
    managers and staff.
    """

    @extend_schema(
        operation_id="reports_followups",
        parameters=[
            OpenApiParameter(
                "since",
                OpenApiTypes.DATE,
                description="Opened on or after this day (the server's time zone).",
            ),
            OpenApiParameter(
                "until",
                OpenApiTypes.DATE,
                description="Opened on or before this day.",
            ),
            OpenApiParameter(
                "team", OpenApiTypes.INT, description="One of your teams' ids."
            ),
        ],
        responses={
            200: FollowUpReportSerializer,
            400: OpenApiResponse(ErrorSerializer, description="A bad filter."),
            404: OpenApiResponse(
                DetailSerializer, description="None of your teams has this id."
            ),
        },
    )
    def get(self, request):
        if not may_see_reports(request.user):
            raise exceptions.PermissionDenied(_("Reports are for managers and staff."))
        form = ReportFilterForm(request.query_params, user=request.user)
        if not form.is_valid():
            raise DjangoValidationError(form.errors.as_data())
        report = reports.followups_report(
            user=request.user,
            since=form.cleaned_data.get("since"),
            until=form.cleaned_data.get("until"),
            team=form.cleaned_data.get("team"),
        )
        return ApiResponse(FollowUpReportSerializer(_report_data(report)).data)
