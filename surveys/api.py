from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import BasePagination
from rest_framework.response import Response as ApiResponse
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from cxm.api import (
    CONFLICT,
    PARSER_CLASSES,
    WHITESPACE,
    DateTimeField,
    DetailSerializer,
    ErrorSerializer,
    FilterSet,
    ModelSerializer,
    QueryIntegerField,
    ReferenceFilter,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    error_codes,
)

from . import metrics, selectors, services
from .exports import filtered_export
from .filters import ResponseFilter
from .kinds import SCORE_MAX, SCORE_MIN, Bucket, SurveyKind
from .models import (
    CHOICE_LABEL_MAX,
    CHOICE_TYPES,
    CHOICE_VALUE,
    MAX_CHOICES,
    SCHEDULE_FIELDS,
    Answer,
    Campaign,
    Invitation,
    InvitationStatus,
    Question,
    QuestionRole,
    QuestionType,
    Response,
    SkipReason,
    Survey,
    schedule_problems,
)
from .selectors import campaign_audience_preview


class ChoiceSerializer(serializers.Serializer):
    value = serializers.CharField(help_text="Stored in answers; stays once answered.")
    en = serializers.CharField(help_text="The label in English.")
    ko = serializers.CharField(
        required=False, allow_blank=True, help_text="The label in Korean."
    )


class ChoiceWriteSerializer(serializers.Serializer):
    value = StrictCharField(
        trim_whitespace=False,
        validators=[RegexValidator(CHOICE_VALUE.pattern)],
        help_text=(
            "Stored in answers; stays once answered. Lower-case letters, digits, - "
            "and _; unique within the question."
        ),
    )
    en = StrictCharField(max_length=CHOICE_LABEL_MAX, help_text="The label in English.")
    ko = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=CHOICE_LABEL_MAX,
        help_text="The label in Korean.",
    )


class QuestionSerializer(serializers.ModelSerializer):
    display_text = serializers.CharField(
        read_only=True,
        help_text="The question as a customer reads it, in the request's language.",
    )
    scale = serializers.SerializerMethodField(
        help_text="[lowest, highest] of a score question; null otherwise."
    )
    choices = ChoiceSerializer(many=True, read_only=True)

    class Meta:
        model = Question
        fields = [
            "id",
            "position",
            "role",
            *services.QUESTION_FIELDS,
            "display_text",
            "scale",
        ]
        read_only_fields = fields

    def get_scale(self, question) -> list[int] | None:
        scale = question.scale
        return list(scale) if scale else None


def _has(name: str, *values) -> dict:
    """JSON Schema: the object has `name`, one of `values` if any are given."""
    if not values:
        return {"required": [name]}
    return {"required": [name], "properties": {name: {"enum": list(map(str, values))}}}


BLANK = {"type": "string", "pattern": rf"^[{WHITESPACE}]*$"}
NO_SCALE = {"scale_low": {"type": "null"}, "scale_high": {"type": "null"}}
NO_LABELS = {name: BLANK for name in services.TEXT_FIELDS if name.startswith("label_")}
NO_CHOICES = {"choices": {"maxItems": 0}}
# A scale's ends: SCORE_MIN <= low < high <= SCORE_MAX, one rule per low end.
SCALE_ORDER = [
    {
        "if": {"properties": {"scale_low": {"const": low}}},
        "then": {"properties": {"scale_high": {"minimum": low + 1}}},
    }
    for low in range(SCORE_MIN, SCORE_MAX)
]


def _question_rules() -> list[dict]:
    """JSON Schema of what services._spec_clean asks of a new question, by role
    and type (the choices' values, unique in a question, it cannot state)."""
    by_type = [
        {
            "if": _has("type", QuestionType.SCORE),
            "then": {
                "required": ["scale_low", "scale_high"],
                "properties": {
                    "scale_low": {"type": "integer", "maximum": SCORE_MAX - 1},
                    "scale_high": {"type": "integer", "minimum": SCORE_MIN + 1},
                    **NO_CHOICES,
                },
                "allOf": SCALE_ORDER,
            },
        },
        {
            "if": _has("type", *CHOICE_TYPES),
            "then": {
                "required": ["choices"],
                "properties": {"choices": {"minItems": 2}, **NO_SCALE, **NO_LABELS},
            },
        },
        {
            "if": _has("type", *services.TEXT_LIMITS),
            "then": {"properties": {**NO_SCALE, **NO_LABELS, **NO_CHOICES}},
        },
    ]
    return [
        {
            "if": _has("role", QuestionRole.HEADLINE),
            "then": {
                "properties": {
                    "type": {"const": str(QuestionType.SCORE)},
                    **NO_SCALE,
                    **NO_CHOICES,
                }
            },
        },
        {
            "if": _has("role", QuestionRole.REASON),
            "then": {
                "properties": {
                    "type": {"const": str(QuestionType.LONG_TEXT)},
                    **NO_SCALE,
                    **NO_LABELS,
                    **NO_CHOICES,
                }
            },
        },
        {
            # An extra question: no role, or a blank one.
            "if": {"anyOf": [{"not": _has("role")}, _has("role", "")]},
            "then": {
                "required": ["type", "text_en"],
                "properties": {
                    "text_en": {"pattern": rf"[^\x00{WHITESPACE}]"},
                },
                "allOf": by_type,
            },
        },
    ]


class QuestionWriteSerializer(serializers.Serializer):
    """A new question as a client sends it; the survey service checks the rules."""

    role = serializers.ChoiceField(
        choices=QuestionRole.choices,
        required=False,
        help_text=(
            'Give "headline" or "reason" to reword the standard score or "why?" '
            "question of an NPS, CSAT or CES survey."
        ),
    )
    type = serializers.ChoiceField(choices=QuestionType.choices, required=False)
    required = StrictBooleanField(required=False)
    text_en = StrictCharField(required=False, allow_blank=True, max_length=500)
    text_ko = StrictCharField(required=False, allow_blank=True, max_length=500)
    scale_low = StrictIntegerField(
        required=False, allow_null=True, min_value=SCORE_MIN, max_value=SCORE_MAX
    )
    scale_high = StrictIntegerField(
        required=False, allow_null=True, min_value=SCORE_MIN, max_value=SCORE_MAX
    )
    label_low_en = StrictCharField(required=False, allow_blank=True, max_length=100)
    label_low_ko = StrictCharField(required=False, allow_blank=True, max_length=100)
    label_high_en = StrictCharField(required=False, allow_blank=True, max_length=100)
    label_high_ko = StrictCharField(required=False, allow_blank=True, max_length=100)
    choices = ChoiceWriteSerializer(many=True, required=False, max_length=MAX_CHOICES)

    # spectacular leaves out a nested list's max_length.
    request_schema = {
        "properties": {"choices": {"maxItems": MAX_CHOICES}},
        "allOf": _question_rules(),
    }


class QuestionChangeSerializer(QuestionWriteSerializer):
    """A question in a PATCH: an existing one by id (what it leaves out it keeps),
    or a new one."""

    id = StrictIntegerField(
        required=False, help_text="An existing question of this survey."
    )

    request_schema = {
        "properties": {"choices": {"maxItems": MAX_CHOICES}},
        "if": _has("id"),
        "else": {"allOf": _question_rules()},
    }


def _role_at_most_once(role: str) -> dict:
    return {"contains": _has("role", role), "minContains": 0, "maxContains": 1}


SCORED_KINDS = [kind for kind in SurveyKind.values if kind != SurveyKind.CUSTOM]
# The questions a new NPS, CSAT or CES survey may be given besides its standard two
# (the service counts those in services.MAX_QUESTIONS whether given or added).
MAX_ADDED_QUESTIONS = services.MAX_QUESTIONS - 2


# The rules of a survey's question list, new or changed, that its items cannot state.
QUESTIONS_SCHEMA = {
    "maxItems": services.MAX_QUESTIONS,
    "allOf": [
        _role_at_most_once(QuestionRole.HEADLINE),
        _role_at_most_once(QuestionRole.REASON),
    ],
}


class SurveyWriteSerializer(serializers.Serializer):
    """A new survey."""

    name = StrictCharField(max_length=200)
    kind = serializers.ChoiceField(choices=SurveyKind.choices)
    questions = QuestionWriteSerializer(
        many=True,
        required=False,
        max_length=services.MAX_QUESTIONS,
        help_text=(
            "Questions added after the standard score and “why?” questions of NPS, "
            "CSAT and CES (give one with its role to reword it); a custom survey "
            "needs at least one, and has no roles."
        ),
    )

    request_schema = {
        "properties": {"questions": QUESTIONS_SCHEMA},
        "allOf": [
            {
                "if": _has("kind", SurveyKind.CUSTOM),
                "then": {
                    "required": ["questions"],
                    "properties": {
                        "questions": {
                            "minItems": 1,
                            "items": {"properties": {"role": {"const": ""}}},
                        }
                    },
                },
            },
            {
                "if": _has("kind", *SCORED_KINDS),
                "then": {
                    "properties": {"questions": {"maxItems": MAX_ADDED_QUESTIONS}}
                },
            },
        ],
    }

    def validate(self, attrs):
        if attrs["kind"] in SCORED_KINDS:
            if len(attrs.get("questions", [])) > MAX_ADDED_QUESTIONS:
                message = _(
                    "Give at most %(limit)d questions: the survey's standard two "
                    "count in its %(total)d."
                ) % {"limit": MAX_ADDED_QUESTIONS, "total": services.MAX_QUESTIONS}
                raise serializers.ValidationError({"questions": [message]})
        return attrs


class SurveyChangeSerializer(serializers.Serializer):
    """What a PATCH of a survey may change."""

    name = StrictCharField(required=False, max_length=200)
    kind = serializers.ChoiceField(
        choices=SurveyKind.choices, required=False, help_text="The survey's own."
    )
    questions = QuestionChangeSerializer(
        many=True,
        required=False,
        max_length=services.MAX_QUESTIONS,
        help_text=(
            "The whole new list, the standard questions included; existing questions "
            "named by id. A question with answers can be reworded, not removed or "
            "re-typed."
        ),
    )

    request_schema = {"properties": {"questions": QUESTIONS_SCHEMA}}

    def validate_kind(self, kind):
        if kind != self.context["survey"].kind:
            raise serializers.ValidationError(
                _("A survey keeps its kind; copy it to ask another kind."), CONFLICT
            )
        return kind


class SurveySerializer(serializers.ModelSerializer):
    questions = QuestionSerializer(many=True, read_only=True)

    class Meta:
        model = Survey
        fields = ["id", "name", "kind", "created_at", "questions"]
        read_only_fields = fields


class SurveyTemplateSerializer(serializers.Serializer):
    template = serializers.ChoiceField(
        choices=list(services.SURVEY_TEMPLATES),
        help_text="relationship_nps, post_purchase_csat or post_support_ces.",
    )
    name = StrictCharField(
        required=False, allow_blank=True, max_length=200, help_text="Optional."
    )


class SurveyCopySerializer(serializers.Serializer):
    name = StrictCharField(
        required=False, allow_blank=True, max_length=200, help_text="Optional."
    )


class SurveyTemplateInfoSerializer(serializers.Serializer):
    template = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()


class SurveyViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """
    What is asked. NPS, CSAT and CES surveys get their standard score and "why?"
    questions; add your own (score, single or multiple choice, short or long text).
    A question with answers can be reworded, not removed or re-typed.
    """

    queryset = Survey.objects.prefetch_related("questions")
    serializer_class = SurveySerializer
    parser_classes = PARSER_CLASSES
    http_method_names = ["get", "post", "patch", "head", "options"]

    def _answer(self, survey, status_code):
        survey = self.get_queryset().get(pk=survey.pk)
        return ApiResponse(SurveySerializer(survey).data, status=status_code)

    def _write(self, call):
        """Runs a survey service; its per-question errors get DRF's nested shape."""
        try:
            return call()
        except DjangoValidationError as e:
            per_question = getattr(e, "per_question", None)
            if per_question is None:
                raise
            code = CONFLICT if error_codes(e) == {CONFLICT} else None
            raise serializers.ValidationError({"questions": per_question}, code)

    @extend_schema(request=SurveyWriteSerializer, responses={201: SurveySerializer})
    def create(self, request, *args, **kwargs):
        data = SurveyWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        survey = self._write(lambda: services.survey_create(**data.validated_data))
        return self._answer(survey, status.HTTP_201_CREATED)

    @extend_schema(
        request=SurveyChangeSerializer,
        responses={
            200: SurveySerializer,
            409: OpenApiResponse(
                ErrorSerializer,
                description=(
                    "What the survey has refuses the change: another kind, a "
                    "question it does not have, one with answers removed or re-typed, "
                    "its score question left out."
                ),
            ),
        },
    )
    def partial_update(self, request, *args, **kwargs):
        """Renames the survey and/or replaces its questions (existing ones by id)."""
        survey = self.get_object()
        data = SurveyChangeSerializer(data=request.data, context={"survey": survey})
        data.is_valid(raise_exception=True)
        self._write(
            lambda: services.survey_update(
                survey=survey,
                name=data.validated_data.get("name"),
                questions=data.validated_data.get("questions"),
            )
        )
        return self._answer(survey, status.HTTP_200_OK)

    @extend_schema(responses={200: SurveyTemplateInfoSerializer(many=True)})
    @action(detail=False, methods=["get"], pagination_class=None)
    def templates(self, request):
        """The ready surveys to start from."""
        return ApiResponse(
            [
                {"template": key, "name": str(name), "kind": kind}
                for key, (name, kind, _en, _ko) in services.SURVEY_TEMPLATES.items()
            ]
        )

    @extend_schema(request=SurveyTemplateSerializer, responses={201: SurveySerializer})
    @action(detail=False, methods=["post"], url_path="from-template")
    def from_template(self, request):
        """Creates a survey from a ready template (see templates/)."""
        data = SurveyTemplateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        survey = services.survey_from_template(**data.validated_data)
        return self._answer(survey, status.HTTP_201_CREATED)

    @extend_schema(request=SurveyCopySerializer, responses={201: SurveySerializer})
    @action(detail=True, methods=["post"])
    def copy(self, request, pk=None):
        """Creates a new survey with this one's kind and questions, no answers."""
        data = SurveyCopySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        survey = services.survey_copy(survey=self.get_object(), **data.validated_data)
        return self._answer(survey, status.HTTP_201_CREATED)


class CampaignSerializer(ModelSerializer):
    invited = serializers.IntegerField(
        read_only=True, help_text="Invitations created when it was sent."
    )
    responses = serializers.SerializerMethodField()
    kind = serializers.CharField(source="survey.kind", read_only=True)
    score = serializers.SerializerMethodField(
        help_text=(
            "The survey's headline metric: NPS (−100 to 100), CSAT (% satisfied) or "
            "CES (mean, 1–7); null without responses or for a custom survey."
        )
    )
    nps = serializers.SerializerMethodField(
        help_text="Net Promoter Score, −100 to 100; null without responses."
    )
    margin_of_error = serializers.SerializerMethodField(
        help_text="The score's margin of error at 95 %, in the score's units."
    )
    window_weekdays = serializers.ListField(
        child=StrictIntegerField(min_value=1, max_value=7),
        max_length=7,
        required=False,
        help_text=(
            "Spread: the weekdays to send on, 1 (Monday) to 7 (Sunday); empty: "
            "every day."
        ),
    )

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "survey",
            "segment",
            "expires_at",
            "expires_after_days",
            "contact_frequency_days",
            "reminders",
            "reminder_interval_days",
            "subject_en",
            "subject_ko",
            "intro_en",
            "intro_ko",
            "status",
            "created_at",
            "sent_at",
            "invited",
            "responses",
            "kind",
            "score",
            "nps",
            "margin_of_error",
            *SCHEDULE_FIELDS,
            "wave",
            "next_wave_at",
        ]
        read_only_fields = ["status", "created_at", "sent_at", "wave", "next_wave_at"]
        extra_kwargs = {
            "schedule": {
                "help_text": (
                    "now: when sent; at: at starts_at; spread: over window_days "
                    "from starts_at, on window_weekdays between window_start_hour "
                    "and window_end_hour in each customer's time zone; triggered: "
                    "trigger_delay_hours after each interaction of trigger_kind; "
                    "recurring: the audience again every recur_every_days days."
                )
            },
            "trigger_kind": {
                # An interaction kind, or nothing (blank): schedule_problems asks
                # for one only of a triggered campaign.
                "validators": [
                    RegexValidator(
                        r"^[a-z][a-z0-9_.-]{0,63}$",
                        _(
                            "Use lowercase letters, digits, _, . and -, starting "
                            "with a letter (e.g. purchase)."
                        ),
                    )
                ]
            },
            "wave": {"help_text": "Waves of invitations created so far."},
            "next_wave_at": {"help_text": "Recurring: when the next wave is due."},
        }

    def validate(self, attrs):
        values = {
            f: attrs.get(f, getattr(self.instance, f) if self.instance else None)
            for f in SCHEDULE_FIELDS
        }
        if problems := schedule_problems(values):
            raise serializers.ValidationError(problems)
        return attrs

    def get_responses(self, campaign) -> int:
        return metrics.campaign_responded(campaign)

    def get_score(self, campaign) -> float | None:
        metric = metrics.campaign_metric(campaign)
        return metric.score if metric else None

    def get_nps(self, campaign) -> float | None:
        return self.get_score(campaign) if campaign.survey.kind == "nps" else None

    def get_margin_of_error(self, campaign) -> float | None:
        metric = metrics.campaign_metric(campaign)
        return metric.margin_of_error if metric else None

    def create(self, validated_data):
        return services.campaign_create(**validated_data)

    def update(self, instance, validated_data):
        return services.campaign_update(campaign=instance, **validated_data)


def _counts_serializer(name: str, choices, help_text: str):
    """A serializer of one count (an integer) for each of `choices`."""
    fields = {
        value: serializers.IntegerField(help_text=str(label))
        for value, label in choices
    }
    return type(name, (serializers.Serializer,), {"__doc__": help_text, **fields})


InvitationStateCountsSerializer = _counts_serializer(
    "InvitationStateCounts",
    InvitationStatus.choices,
    "The campaign's invitations in each state.",
)
SkipReasonCountsSerializer = _counts_serializer(
    "SkipReasonCounts",
    SkipReason.choices,
    "The skipped invitations by the reason they were held back.",
)


class CampaignStatsSerializer(serializers.Serializer):
    invited = serializers.IntegerField(help_text="Invitations created by the send.")
    states = InvitationStateCountsSerializer()
    skipped = SkipReasonCountsSerializer()
    reminded = serializers.IntegerField(
        help_text="Invitations that got at least one reminder."
    )
    reminders_sent = serializers.IntegerField(help_text="Reminders sent in all.")
    delivered = serializers.IntegerField(
        help_text="Invitations whose email went out and did not bounce."
    )
    responses = serializers.IntegerField(help_text="Invitations answered.")
    response_rate = serializers.FloatField(
        allow_null=True,
        help_text="Responses ÷ delivered invitations, in %; null before any delivery.",
    )
    metric = serializers.DictField(
        allow_null=True,
        help_text=(
            "The answers so far: the headline metric as /api/metrics/<kind>/ gives "
            "it (NPS, CSAT or CES, with its counts and margin of error); null for "
            "a custom survey."
        ),
    )


class SendResultSerializer(serializers.Serializer):
    invitations = serializers.IntegerField(
        help_text="How many invitations were created and queued."
    )


NOT_A_DRAFT = OpenApiResponse(
    ErrorSerializer, description="Sent already: only a draft campaign changes."
)


class ExclusionsSerializer(serializers.Serializer):
    unsubscribed = serializers.IntegerField()
    bounced = serializers.IntegerField()
    complained = serializers.IntegerField(help_text="Reported our email as spam.")
    already_invited = serializers.IntegerField(
        help_text="Invited by this campaign before."
    )
    recently_contacted = serializers.IntegerField(
        help_text="Sent an invitation within the campaign's contact frequency."
    )


class AudiencePreviewSerializer(serializers.Serializer):
    audience = serializers.IntegerField(help_text="Customers in the segment now.")
    invited = serializers.IntegerField(help_text="Those sending would invite.")
    excluded = ExclusionsSerializer(
        help_text="Those it would leave out, each under the first reason that applies."
    )


@extend_schema_view(
    update=extend_schema(responses={200: CampaignSerializer, 409: NOT_A_DRAFT}),
    partial_update=extend_schema(responses={200: CampaignSerializer, 409: NOT_A_DRAFT}),
)
class CampaignViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """A survey sent to an audience. Change it while it is a draft, then send it."""

    queryset = Campaign.objects.all()
    serializer_class = CampaignSerializer
    parser_classes = PARSER_CLASSES

    def get_queryset(self):
        qs = super().get_queryset()
        if self.action in {"send", "audience"}:
            return qs
        if self.action == "stats":
            return qs.select_related("survey")
        # Ordered explicitly: an aggregate query leaves out Meta.ordering.
        return metrics.campaigns_with_counts(qs).order_by("-created_at", "-pk")

    def _with_counts(self, serializer, status_code):
        campaign = self.get_queryset().get(pk=serializer.instance.pk)
        return ApiResponse(self.get_serializer(campaign).data, status=status_code)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return self._with_counts(serializer, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        serializer = self.get_serializer(
            self.get_object(), data=request.data, partial=partial
        )
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return self._with_counts(serializer, status.HTTP_200_OK)

    @extend_schema(
        request=None,
        responses={
            202: SendResultSerializer,
            409: OpenApiResponse(
                ErrorSerializer,
                description="Sent already, expired, or its send time has passed.",
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def send(self, request, pk=None):
        """
        Sends the campaign under its schedule; returns the invitations created now
        (none yet for a triggered one). Their emails go out in the background when
        due.
        """
        campaign = self.get_object()
        created = services.campaign_send(campaign=campaign)
        return ApiResponse({"invitations": created}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: AudiencePreviewSerializer})
    @action(detail=True, methods=["get"])
    def audience(self, request, pk=None):
        """
        How many customers the campaign's segment holds now, how many sending it
        would invite, and how many it would leave out, by reason.
        """
        preview = campaign_audience_preview(campaign=self.get_object())
        return ApiResponse(AudiencePreviewSerializer(preview).data)

    @extend_schema(responses={200: CampaignStatsSerializer})
    @action(detail=True, methods=["get"])
    def stats(self, request, pk=None):
        """
        Where the campaign's invitations stand: counts per state (scheduled,
        skipped, sent, bounced, answered, expired …) and per skip reason, reminders,
        the response rate (responses ÷ delivered) and the answers so far.
        """
        stats = metrics.campaign_stats(self.get_object())
        return ApiResponse(CampaignStatsSerializer(stats.as_dict()).data)

    def _move(self, service):
        campaign = service(campaign=self.get_object())
        campaign = self.get_queryset().get(pk=campaign.pk)
        return ApiResponse(self.get_serializer(campaign).data)

    @extend_schema(
        request=None,
        responses={
            200: CampaignSerializer,
            409: OpenApiResponse(
                ErrorSerializer, description="Not sending or running."
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        """Pauses a sending or running campaign: nothing of it goes out or is
        created until it is resumed."""
        return self._move(services.campaign_pause)

    @extend_schema(
        request=None,
        responses={
            200: CampaignSerializer,
            409: OpenApiResponse(ErrorSerializer, description="Not paused."),
        },
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Resumes a paused campaign."""
        return self._move(services.campaign_resume)

    @extend_schema(
        request=None,
        responses={
            200: CampaignSerializer,
            409: OpenApiResponse(ErrorSerializer, description="Ended already."),
        },
    )
    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        """Stops a campaign for good: nothing more of it is created or goes out."""
        return self._move(services.campaign_stop)


class InvitationSerializer(serializers.ModelSerializer):
    customer_email = serializers.EmailField(source="customer.email", read_only=True)
    skip_reason = serializers.ChoiceField(
        choices=SkipReason.choices,
        allow_blank=True,
        read_only=True,
        help_text="Why a skipped invitation was held back; empty otherwise.",
    )

    class Meta:
        model = Invitation
        fields = [
            "id",
            "campaign",
            "customer",
            "customer_email",
            "token",
            "link",
            "status",
            "skip_reason",
            "due_at",
            "wave",
            "attempts",
            "last_error",
            "sent_at",
            "reminders_sent",
            "reminded_at",
            "remind_due_at",
            "expires_at",
            "answered_at",
            "created_at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "token": {"help_text": "Staff accounts only."},
            "link": {"help_text": "The customer's personal link; staff accounts only."},
        }

    def to_representation(self, invitation):
        data = super().to_representation(invitation)
        request = self.context.get("request")
        if request is None or not request.user.is_staff:
            # A personal link answers and unsubscribes for the customer: not for
            # agents and managers (the outbox, which shows it too, is staff-only).
            data.pop("token")
            data.pop("link")
        return data


def campaign_filter(field_name: str = "campaign") -> ReferenceFilter:
    """?campaign=<id>, with a 404 that says which campaign does not exist."""
    return ReferenceFilter(
        field_name=field_name,
        queryset=Campaign.objects.all(),
        error_messages={"no_such": _("There is no campaign %(value)s.")},
    )


class InvitationFilter(FilterSet):
    campaign = campaign_filter()

    class Meta:
        model = Invitation
        fields = ["campaign", "customer", "status"]


class InvitationViewSet(viewsets.ReadOnlyModelViewSet):
    """Each customer's personal link for a campaign and its delivery state."""

    queryset = Invitation.objects.select_related("customer")
    serializer_class = InvitationSerializer
    filterset_class = InvitationFilter


class AnswerSerializer(serializers.ModelSerializer):
    value = serializers.JSONField(
        read_only=True,
        help_text="A number (score), text, or a list of choice values.",
    )

    class Meta:
        model = Answer
        fields = ["question", "value"]
        read_only_fields = fields


class ResponseSerializer(serializers.ModelSerializer):
    customer_email = serializers.EmailField(source="customer.email", read_only=True)
    kind = serializers.CharField(source="survey.kind", read_only=True)
    bucket = serializers.ChoiceField(
        choices=Bucket.choices,
        read_only=True,
        allow_null=True,
        help_text="Where the score falls for its kind; null for a custom survey.",
    )
    answers = AnswerSerializer(many=True, read_only=True)

    class Meta:
        model = Response
        fields = [
            "id",
            "invitation",
            "campaign",
            "survey",
            "customer",
            "customer_email",
            "kind",
            "score",
            "bucket",
            "comment",
            "answers",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def to_representation(self, response):
        # What DRF's fields would give, written out: a page of 50 with their answers
        # cost DRF's field machinery more than the database took for it.
        return {
            "id": response.pk,
            "invitation": response.invitation_id,
            "campaign": response.campaign_id,
            "survey": response.survey_id,
            "customer": response.customer_id,
            "customer_email": response.customer.email,
            "kind": response.survey.kind,
            "score": response.score,
            "bucket": response.bucket,
            "comment": response.comment,
            "answers": [
                {"question": a.question_id, "value": a.value}
                for a in response.answers.all()
            ],
            "created_at": _datetime_text(response.created_at),
            "updated_at": _datetime_text(response.updated_at),
        }


def _datetime_text(value) -> str:
    """A date-time as DRF's DateTimeField shows it: in the current time zone, UTC
    as Z."""
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class ResponsePagination(BasePagination):
    """
    Keyset paging, newest first: `next` carries a cursor after the page's last
    response. No total: counting a million rows of a join took longer than the page.
    """

    cursor_query_param = "cursor"

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        cursor = request.query_params.get(self.cursor_query_param)
        try:
            rows, self.next_cursor = selectors.responses_page(queryset, cursor=cursor)
        except ValueError:
            # Like a page number past the last: a well-formed request for a page
            # that is not there.
            raise exceptions.NotFound(_("This is not a cursor this list gave."))
        return rows

    def get_paginated_response(self, data):
        next_url = None
        if self.next_cursor:
            next_url = replace_query_param(
                self.request.build_absolute_uri(),
                self.cursor_query_param,
                self.next_cursor,
            )
        return ApiResponse({"next": next_url, "results": data})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["next", "results"],
            "properties": {
                "next": {
                    "type": ["string", "null"],
                    "format": "uri",
                    "description": "The next page, or null after the last.",
                },
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Where the page starts: the cursor of a `next` link.",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
            }
        ]


class ResponseViewSet(viewsets.ReadOnlyModelViewSet):
    """What the customers said: the headline score and every answer, newest first."""

    queryset = selectors.responses_listed_for_api(Response.objects.all())
    serializer_class = ResponseSerializer
    filterset_class = ResponseFilter
    pagination_class = ResponsePagination


class MetricQuerySerializer(serializers.Serializer):
    campaign = QueryIntegerField(required=False)
    survey = QueryIntegerField(required=False)
    since = DateTimeField(required=False)
    until = DateTimeField(required=False)


class NpsSerializer(serializers.Serializer):
    nps = serializers.FloatField(
        allow_null=True, help_text="−100 to 100; null without responses."
    )
    promoters = serializers.IntegerField()
    passives = serializers.IntegerField()
    detractors = serializers.IntegerField()
    responses = serializers.IntegerField()
    margin_of_error = serializers.FloatField(
        allow_null=True, help_text="At 95 %, in NPS points."
    )


class CsatSerializer(serializers.Serializer):
    csat = serializers.FloatField(
        allow_null=True, help_text="% of answers 4–5 on 1–5; null without responses."
    )
    satisfied = serializers.IntegerField(help_text="Answers 4–5.")
    neutral = serializers.IntegerField(help_text="Answers 3.")
    dissatisfied = serializers.IntegerField(help_text="Answers 1–2.")
    responses = serializers.IntegerField()
    margin_of_error = serializers.FloatField(
        allow_null=True, help_text="At 95 %, in percentage points."
    )


class CesSerializer(serializers.Serializer):
    ces = serializers.FloatField(
        allow_null=True, help_text="The mean, 1–7 (higher = easier)."
    )
    easy_share = serializers.FloatField(allow_null=True, help_text="% of answers 5–7.")
    easy = serializers.IntegerField(help_text="Answers 5–7.")
    neutral = serializers.IntegerField(help_text="Answers 4.")
    hard = serializers.IntegerField(help_text="Answers 1–3.")
    responses = serializers.IntegerField()
    margin_of_error = serializers.FloatField(
        allow_null=True, help_text="Of the mean, at 95 %; null below 2 answers."
    )
    easy_share_margin_of_error = serializers.FloatField(
        allow_null=True, help_text="Of easy_share, at 95 %, in percentage points."
    )


class MetricView(APIView):
    """A survey metric over the responses of a campaign or a survey, or all."""

    kind = ""
    serializer_class = None

    def get(self, request):
        query = MetricQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        filters = {"since": data.get("since"), "until": data.get("until")}
        if "campaign" in data:
            filters["campaign"] = get_object_or_404(
                Campaign.objects.select_related("survey"), pk=data["campaign"]
            )
        if "survey" in data:
            filters["survey"] = get_object_or_404(Survey, pk=data["survey"])
        try:
            result = metrics.metric(self.kind, **filters)
        except DjangoValidationError as e:
            # A campaign or survey of another kind: none of this kind has the id.
            raise exceptions.NotFound(" ".join(e.messages))
        return ApiResponse(self.serializer_class(result.as_dict()).data)


def _metric_view(kind: str, serializer, description: str):
    """A MetricView subclass for `kind`, with its own schema."""
    label = kind.upper()

    @extend_schema(
        operation_id=f"metrics_{kind}",
        parameters=[
            OpenApiParameter(
                "campaign", OpenApiTypes.INT, description=f"A {label} campaign id."
            ),
            OpenApiParameter(
                "survey", OpenApiTypes.INT, description=f"A {label} survey id."
            ),
            OpenApiParameter(
                "since", OpenApiTypes.DATETIME, description="Answered at or after."
            ),
            OpenApiParameter(
                "until", OpenApiTypes.DATETIME, description="Answered before."
            ),
        ],
        responses={
            200: serializer,
            400: OpenApiResponse(ErrorSerializer, description="A bad filter."),
            404: OpenApiResponse(
                DetailSerializer,
                description="No such campaign or survey, or one of another kind.",
            ),
        },
    )
    def get(self, request):
        return MetricView.get(self, request)

    return type(
        f"{kind.title()}View",
        (MetricView,),
        {
            "kind": kind,
            "serializer_class": serializer,
            "get": get,
            "__doc__": description,
        },
    )


NpsView = _metric_view(
    "nps", NpsSerializer, "Net Promoter Score: % promoters (9–10) − % detractors (0–6)."
)
CsatView = _metric_view(
    "csat", CsatSerializer, "Customer satisfaction: the % of answers 4–5 on 1–5."
)
CesView = _metric_view(
    "ces", CesSerializer, "Customer effort: the mean of 1–7, and the % of 5–7."
)


# Trends and period comparisons ------------------------------------------------

STANDARD_KINDS = [SurveyKind.NPS, SurveyKind.CSAT, SurveyKind.CES]


class TrendFilterSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=STANDARD_KINDS, default=SurveyKind.NPS)
    campaign = QueryIntegerField(required=False)
    survey = QueryIntegerField(required=False)
    segment = QueryIntegerField(required=False)

    def validate(self, attrs):
        if "campaign" in attrs and "survey" in attrs:
            raise serializers.ValidationError(
                _("Give a campaign or a survey, not both.")
            )
        return attrs


class TrendQuerySerializer(TrendFilterSerializer):
    interval = serializers.ChoiceField(choices=list(metrics.INTERVALS), default="week")
    by = serializers.CharField(required=False, max_length=40)
    since = DateTimeField(required=False)
    until = DateTimeField(required=False)

    def validate_by(self, by):
        try:
            return metrics.by_clean(by)
        except DjangoValidationError as e:
            raise serializers.ValidationError(e.messages)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if attrs.get("by") == metrics.BY_SEGMENT and "segment" in attrs:
            raise serializers.ValidationError(
                _("Split by segment or keep one segment, not both.")
            )
        _period_check(attrs.get("since"), attrs.get("until"), "until")
        return attrs


def _period_check(since, until, field: str) -> None:
    if since is not None and until is not None and since >= until:
        raise serializers.ValidationError(
            {field: [_("The end must come after the start.")]}
        )


class CompareQuerySerializer(TrendFilterSerializer):
    a_since = DateTimeField()
    a_until = DateTimeField()
    b_since = DateTimeField()
    b_until = DateTimeField()

    def validate(self, attrs):
        attrs = super().validate(attrs)
        _period_check(attrs["a_since"], attrs["a_until"], "a_until")
        _period_check(attrs["b_since"], attrs["b_until"], "b_until")
        return attrs


def _figure_filters(data: dict) -> dict:
    """The metrics' keyword filters of a validated query: its campaign, survey and
    segment fetched (404 if none has the id)."""
    from cxm.customers.models import Segment

    filters = {}
    if "campaign" in data:
        filters["campaign"] = get_object_or_404(
            Campaign.objects.select_related("survey"), pk=data["campaign"]
        )
    if "survey" in data:
        filters["survey"] = get_object_or_404(Survey, pk=data["survey"])
    if "segment" in data:
        filters["segment"] = get_object_or_404(Segment, pk=data["segment"])
    return filters


class SeriesSerializer(serializers.Serializer):
    key = serializers.CharField(
        help_text="What the points name: a segment id, a property's value, or "
        '"" when not split.'
    )
    label = serializers.CharField()


class MetricPointSerializer(serializers.Serializer):
    score = serializers.FloatField(
        allow_null=True,
        help_text="NPS (−100 to 100), CSAT (% satisfied) or CES (mean of 1–7).",
    )
    responses = serializers.IntegerField()
    negative = serializers.IntegerField(
        help_text="Detractors (0–6), dissatisfied (1–2) or hard (1–3)."
    )
    neutral = serializers.IntegerField()
    positive = serializers.IntegerField(
        help_text="Promoters (9–10), satisfied (4–5) or easy (5–7)."
    )
    margin_of_error = serializers.FloatField(
        allow_null=True, help_text="At 95 %, in the score's unit."
    )


class TrendPointSerializer(MetricPointSerializer):
    period = serializers.DateField(help_text="The first day of the week or month.")
    series = serializers.CharField()


class RatePointSerializer(serializers.Serializer):
    period = serializers.DateField(help_text="The week or month the emails went.")
    series = serializers.CharField()
    delivered = serializers.IntegerField()
    responses = serializers.IntegerField(help_text="Of those delivered, answered.")
    response_rate = serializers.FloatField(
        allow_null=True, help_text="responses ÷ delivered, in %."
    )


class DistributionPointSerializer(serializers.Serializer):
    series = serializers.CharField()
    score = serializers.IntegerField()
    responses = serializers.IntegerField()


class TrendSerializer(serializers.Serializer):
    kind = serializers.CharField()
    interval = serializers.CharField()
    by = serializers.CharField(allow_null=True)
    series = SeriesSerializer(many=True)
    points = TrendPointSerializer(many=True)
    response_rate = RatePointSerializer(many=True)
    distribution = DistributionPointSerializer(many=True)


def metric_point(metric: metrics.Metric) -> dict:
    """The kind-neutral numbers of a metric (MetricPointSerializer's)."""
    counts = {
        "nps": ("detractors", "passives", "promoters"),
        "csat": ("dissatisfied", "neutral", "satisfied"),
        "ces": ("hard", "neutral", "easy"),
    }[
        "nps"
        if isinstance(metric, metrics.Nps)
        else "csat"
        if isinstance(metric, metrics.Csat)
        else "ces"
    ]
    return {
        "score": metric.score,
        "responses": metric.responses,
        "negative": getattr(metric, counts[0]),
        "neutral": getattr(metric, counts[1]),
        "positive": getattr(metric, counts[2]),
        "margin_of_error": metric.margin_of_error,
    }


def trend_data(kind: str, *, interval: str, by, segments, **filters) -> dict:
    """The trend, response rate and distribution of `kind` as TrendSerializer's."""
    figure = metrics.trend(kind, interval=interval, by=by, segments=segments, **filters)
    rates = metrics.response_rate_trend(
        kind, interval=interval, by=by, segments=segments, **filters
    )
    spread = metrics.distribution(
        kind,
        by=by,
        segments=segments,
        **filters,
    )
    return {
        "kind": kind,
        "interval": interval,
        "by": by,
        "series": figure.series,
        "points": [
            {"period": p.period, "series": p.series, **metric_point(p.metric)}
            for p in figure.points
        ],
        "response_rate": [
            {
                "period": p.period,
                "series": p.series,
                "delivered": p.delivered,
                "responses": p.responses,
                "response_rate": p.response_rate,
            }
            for p in rates.points
        ],
        "distribution": spread.points,
    }


_FILTER_PARAMETERS = [
    OpenApiParameter(
        "kind",
        OpenApiTypes.STR,
        enum=STANDARD_KINDS,
        description="nps (default), csat or ces.",
    ),
    OpenApiParameter("campaign", OpenApiTypes.INT, description="A campaign id."),
    OpenApiParameter("survey", OpenApiTypes.INT, description="A survey id."),
    OpenApiParameter(
        "segment", OpenApiTypes.INT, description="Only customers in this segment."
    ),
]
_FIGURE_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="A bad parameter."),
    404: OpenApiResponse(
        DetailSerializer,
        description="No such campaign, survey or segment, or one of another kind.",
    ),
}


class TrendView(APIView):
    """A metric per week or month, with the response rate and the distribution of
    scores over the same responses; split by segment or a customer property."""

    @extend_schema(
        operation_id="metrics_trend",
        parameters=[
            *_FILTER_PARAMETERS,
            OpenApiParameter(
                "interval",
                OpenApiTypes.STR,
                enum=list(metrics.INTERVALS),
                description="week (default) or month.",
            ),
            OpenApiParameter(
                "by",
                OpenApiTypes.STR,
                pattern=f"^{metrics.PROPERTY_NAME.pattern}$",
                description=(
                    "Split into series: segment (every segment, up to "
                    f"{metrics.MAX_SERIES}), locale, or a customer property's name "
                    f"(plan, region …; its {metrics.MAX_SERIES} largest values)."
                ),
            ),
            OpenApiParameter(
                "since", OpenApiTypes.DATETIME, description="Answered at or after."
            ),
            OpenApiParameter(
                "until", OpenApiTypes.DATETIME, description="Answered before."
            ),
        ],
        responses={200: TrendSerializer, **_FIGURE_ERRORS},
    )
    def get(self, request):
        from cxm.customers.models import Segment

        query = TrendQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        by = data.get("by")
        segments = (
            list(Segment.objects.order_by("name")[: metrics.MAX_SERIES])
            if by == metrics.BY_SEGMENT
            else ()
        )
        try:
            result = trend_data(
                data["kind"],
                interval=data["interval"],
                by=by,
                segments=segments,
                since=data.get("since"),
                until=data.get("until"),
                **_figure_filters(data),
            )
        except DjangoValidationError as e:
            raise exceptions.NotFound(" ".join(e.messages))
        return ApiResponse(TrendSerializer(result).data)


class PeriodSerializer(MetricPointSerializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()


class ComparisonSerializer(serializers.Serializer):
    kind = serializers.CharField()
    a = PeriodSerializer()
    b = PeriodSerializer()
    difference = serializers.FloatField(
        allow_null=True, help_text="b's score − a's; null if either has none."
    )
    test = serializers.ChoiceField(
        choices=list(metrics.TESTS.values()),
        help_text=(
            "nps-z: a z-test on the difference of the two NPS, each with the "
            "variance of a +1/0/−1 answer; two-proportion-z: the pooled "
            "two-proportion z-test of the % satisfied; welch-t: Welch's t-test of "
            "the two means."
        ),
    )
    statistic = serializers.FloatField(
        allow_null=True, help_text="z or t; null below 2 responses on a side."
    )
    df = serializers.FloatField(
        allow_null=True, help_text="Welch's degrees of freedom (CES only)."
    )
    p_value = serializers.FloatField(allow_null=True, help_text="Two-sided.")
    significant = serializers.BooleanField(help_text="p < 0.05.")


def comparison_data(comparison: metrics.Comparison, a, b) -> dict:
    """A Comparison as ComparisonSerializer's, with the periods' bounds."""
    data = comparison.as_dict()
    data["a"] = {"since": a[0], "until": a[1], **metric_point(comparison.a)}
    data["b"] = {"since": b[0], "until": b[1], **metric_point(comparison.b)}
    return data


class CompareView(APIView):
    """A metric in two periods, and whether the difference is significant at 95 %."""

    @extend_schema(
        operation_id="metrics_compare",
        parameters=[
            *_FILTER_PARAMETERS,
            *[
                OpenApiParameter(
                    name,
                    OpenApiTypes.DATETIME,
                    required=True,
                    description=f"Period {name[0]}: answered "
                    + ("at or after." if name.endswith("since") else "before."),
                )
                for name in ("a_since", "a_until", "b_since", "b_until")
            ],
        ],
        responses={200: ComparisonSerializer, **_FIGURE_ERRORS},
    )
    def get(self, request):
        query = CompareQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        a = (data["a_since"], data["a_until"])
        b = (data["b_since"], data["b_until"])
        try:
            comparison = metrics.compare(
                data["kind"], a=a, b=b, **_figure_filters(data)
            )
        except DjangoValidationError as e:
            raise exceptions.NotFound(" ".join(e.messages))
        return ApiResponse(ComparisonSerializer(comparison_data(comparison, a, b)).data)


# ?bom= as DRF's boolean fields read it (empty: no).
BOOLEAN_TEXT = {"": False, "0": False, "false": False, "1": True, "true": True}


@extend_schema(
    summary="Export responses as CSV",
    description=(
        "The responses the filters choose (as GET /api/responses/ takes them), as "
        "CSV: one row per response, newest first; a column per question when one "
        "survey (or campaigns of one survey) is chosen; the customers' properties. "
        "Streamed however many rows."
    ),
    parameters=[
        OpenApiParameter(
            "bom",
            OpenApiTypes.BOOL,
            description="Start with a UTF-8 byte order mark, so that Excel opens "
            "Korean text right.",
        )
    ],
    responses={
        (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The CSV."),
        404: OpenApiResponse(
            DetailSerializer, description="An id the filters give names nothing."
        ),
    },
)
class ResponseExportView(GenericAPIView):
    queryset = Response.objects.all()
    filterset_class = ResponseFilter
    pagination_class = None

    def get(self, request):
        bom = request.query_params.get("bom", "")
        if bom.lower() not in BOOLEAN_TEXT:
            raise exceptions.ValidationError({"bom": [_("Give true or false.")]})
        filterset = ResponseFilter(
            request.query_params, queryset=self.get_queryset(), request=request
        )
        if not filterset.is_valid():
            raise translate_validation(filterset.errors)
        return filtered_export(filterset, bom=BOOLEAN_TEXT[bom.lower()])
