from django.contrib.auth import get_user_model
from django.core.validators import RegexValidator
from django.db import transaction
from django.db.models import Prefetch
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.response import Response as ApiResponse

from cxm.access import cx_staff_users
from cxm.api import (
    PARSER_CLASSES,
    ErrorSerializer,
    PrimaryKeyRelatedField,
    StrictCharField,
)

from . import services
from .models import FollowUp, FollowUpEvent, FollowUpStatus, RootCause
from .selectors import followups_filter, followups_visible_to

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
    campaign = serializers.IntegerField(source="response.campaign_id", read_only=True)
    score = serializers.IntegerField(source="response.score", read_only=True)
    comment = serializers.CharField(source="response.comment", read_only=True)
    owner_username = serializers.CharField(
        source="owner.get_username", read_only=True, allow_null=True
    )
    is_overdue = serializers.BooleanField(read_only=True)
    root_cause = serializers.ChoiceField(
        choices=RootCause.choices,
        allow_blank=True,
        read_only=True,
        help_text="Blank until the follow-up is resolved.",
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
            "owner",
            "owner_username",
            "priority",
            "status",
            "is_overdue",
            "due_at",
            "created_at",
            "assigned_at",
            "escalated_at",
            "resolved_at",
            "resolved_by",
            "resolution",
            "root_cause",
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
        required=False, max_length=5000, help_text="Add this note to the timeline."
    )
    status = serializers.ChoiceField(
        choices=[(FollowUpStatus.RESOLVED, FollowUpStatus.RESOLVED.label)],
        required=False,
        help_text="Resolve it; send resolution and root_cause with it.",
    )
    resolution = StrictCharField(
        required=False, max_length=5000, help_text="How it was resolved."
    )
    root_cause = serializers.ChoiceField(choices=RootCause.choices, required=False)

    # What validate() says, for the schema: one action at least, and status,
    # resolution and root_cause all three or none.
    body_required = True
    request_schema = {
        "anyOf": [{"required": [name]} for name in ("owner", "note", "status")],
        "dependentRequired": {
            "status": ["resolution", "root_cause"],
            "resolution": ["status"],
            "root_cause": ["status"],
        },
    }

    def validate(self, attrs):
        if "status" not in attrs and {"resolution", "root_cause"} & attrs.keys():
            raise serializers.ValidationError(
                {"status": [_('Send "resolved" with a resolution and root cause.')]}
            )
        if not {"owner", "note", "status"} & attrs.keys():
            raise serializers.ValidationError(
                _("Send owner, note or status to change the follow-up.")
            )
        if "status" not in attrs:
            return attrs
        errors = {}
        if "resolution" not in attrs:
            errors["resolution"] = [_("Say how it was resolved.")]
        if "root_cause" not in attrs:
            errors["root_cause"] = [_("Choose a root cause.")]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


OWNER = r"^(none|[0-9]{1,18})$"


@extend_schema_field(
    {
        "type": "string",
        "pattern": OWNER,
        "description": 'A user id, or "none" for follow-ups nobody owns.',
    }
)
class OwnerFilter(filters.CharFilter):
    pass


class FollowUpFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=FollowUpStatus.choices)
    owner = OwnerFilter(
        validators=[RegexValidator(OWNER, _('Give a user id or "none".'))],
    )
    overdue = filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")],
        help_text="Only follow-ups past their due time (true) or not (false).",
    )

    def filter_queryset(self, queryset):
        data = self.form.cleaned_data
        return followups_filter(
            queryset,
            status=data.get("status") or "",
            owner=data.get("owner") or "",
            overdue={"true": True, "false": False}.get(data.get("overdue") or ""),
        )


class FollowUpViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The closed-loop queue: detractors to call back, who owns them, what is late."""

    serializer_class = FollowUpSerializer
    filterset_class = FollowUpFilter
    parser_classes = PARSER_CLASSES
    cx_agents_may_write = True  # agents and managers work the queue
    queryset = FollowUp.objects.none()  # for the schema; get_queryset decides

    def get_queryset(self):
        return followups_visible_to(self.request.user).prefetch_related(
            Prefetch("events", queryset=FollowUpEvent.objects.select_related("actor"))
        )

    @extend_schema(
        request=FollowUpChangeSerializer,
        responses={
            200: FollowUpSerializer,
            409: OpenApiResponse(
                ErrorSerializer,
                description="Resolved already: it can take notes, nothing else.",
            ),
        },
    )
    def partial_update(self, request, pk=None):
        """Assigns, notes and/or resolves the follow-up, all or nothing."""
        followup = self.get_object()
        change = FollowUpChangeSerializer(data=request.data)
        change.is_valid(raise_exception=True)
        data = change.validated_data
        with transaction.atomic():
            if "owner" in data:
                services.followup_assign(
                    followup=followup, owner=data["owner"], actor=request.user
                )
            if "note" in data:
                services.followup_add_note(
                    followup=followup, actor=request.user, text=data["note"]
                )
            if data.get("status") == FollowUpStatus.RESOLVED:
                services.followup_resolve(
                    followup=followup,
                    actor=request.user,
                    resolution=data.get("resolution", ""),
                    root_cause=data.get("root_cause", ""),
                )
        return ApiResponse(FollowUpSerializer(self.get_object()).data)
