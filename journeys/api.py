"""The journeys API: personas, journeys with nested stages and touchpoints, maps."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from cxm.api import (
    PARSER_CLASSES,
    DetailSerializer,
    ErrorSerializer,
    ModelSerializer,
    StrictIntegerField,
    name_free_check,
)

from . import selectors, services
from .forms import JourneyMapFilterForm
from .models import Channel, Journey, Persona, Stage, Touchpoint


class PersonaSerializer(ModelSerializer):
    class Meta:
        model = Persona
        fields = ["id", "name", "description", "segment", "created_at"]
        read_only_fields = ["created_at"]
        extra_kwargs = {"name": {"validators": []}}

    def validate_name(self, value):
        return name_free_check(
            Persona.objects.all(),
            instance=self.instance,
            name=value,
            message=_("A persona with this name already exists."),
        )

    def create(self, validated_data):
        return services.persona_create(**validated_data)

    def update(self, instance, validated_data):
        return services.persona_update(persona=instance, **validated_data)


DUPLICATE_NAME = OpenApiResponse(
    ErrorSerializer, description="Another persona has this name."
)


@extend_schema_view(
    create=extend_schema(responses={201: PersonaSerializer, 409: DUPLICATE_NAME}),
    update=extend_schema(responses={200: PersonaSerializer, 409: DUPLICATE_NAME}),
    partial_update=extend_schema(
        responses={200: PersonaSerializer, 409: DUPLICATE_NAME}
    ),
)
class PersonaViewSet(viewsets.ModelViewSet):
    """Reusable portraits of customers, each standing for a segment."""

    queryset = Persona.objects.select_related("segment")
    serializer_class = PersonaSerializer
    parser_classes = PARSER_CLASSES


ITEM_ID = {
    "required": False,
    "min_value": 1,
    "max_value": 2**63 - 1,
}


class TouchpointSerializer(ModelSerializer):
    id = StrictIntegerField(
        **ITEM_ID,
        help_text=_("Give it to change this touchpoint; leave it out to add one."),
    )

    class Meta:
        model = Touchpoint
        fields = [
            "id",
            "name",
            "channel",
            "position",
            "interaction_kind",
            "campaigns",
            "expected_emotion",
        ]
        extra_kwargs = {"position": {"required": False}}


class StageSerializer(ModelSerializer):
    id = StrictIntegerField(
        **ITEM_ID, help_text=_("Give it to change this stage; leave it out to add one.")
    )
    touchpoints = TouchpointSerializer(
        many=True,
        required=False,
        help_text=_("The stage's touchpoints; left out: unchanged."),
    )

    class Meta:
        model = Stage
        fields = ["id", "name", "position", "touchpoints"]
        extra_kwargs = {"position": {"required": False}}


class JourneySerializer(ModelSerializer):
    stages = StageSerializer(
        many=True,
        required=False,
        help_text=_(
            "The stages in order, with their touchpoints: those left out are "
            "deleted. Left out on create: the five classic stages; on update: "
            "unchanged."
        ),
    )

    class Meta:
        model = Journey
        fields = ["id", "name", "persona", "description", "stages", "created_at"]
        read_only_fields = ["created_at"]

    def create(self, validated_data):
        return services.journey_create(**_plain(validated_data))

    def update(self, instance, validated_data):
        return services.journey_update(journey=instance, **_plain(validated_data))


def _plain(data):
    """Validated data as plain dicts and lists, as the services take them."""
    if isinstance(data, dict):
        return {key: _plain(value) for key, value in data.items()}
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return [_plain(value) for value in data]
    return data


class MetricFiguresSerializer(serializers.Serializer):
    score = serializers.FloatField(
        allow_null=True,
        help_text=_("NPS (−100…100), CSAT (%) or CES (1…7); null without answers."),
    )
    responses = serializers.IntegerField()
    negative = serializers.IntegerField(
        help_text=_("Detractors, dissatisfied or hard answers.")
    )
    margin_of_error = serializers.FloatField(allow_null=True, help_text=_("At 95 %."))


class ThemeSerializer(serializers.Serializer):
    term = serializers.CharField(help_text=_("A word or a two-word phrase."))
    count = serializers.IntegerField(help_text=_("Comments that use it."))
    language = serializers.ChoiceField(choices=["en", "ko"])
    url = serializers.CharField(help_text=_("The responses page of its comments."))


class TouchpointFiguresSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    stage = serializers.IntegerField()
    channel = serializers.ChoiceField(choices=Channel.choices)
    interaction_kind = serializers.CharField()
    campaigns = serializers.ListField(child=serializers.IntegerField())
    kind = serializers.CharField(
        allow_null=True, help_text=_("The headline kind: nps, csat or ces.")
    )
    metric = MetricFiguresSerializer(allow_null=True)
    previous = MetricFiguresSerializer(
        allow_null=True, help_text=_("The same, in the previous period.")
    )
    change = serializers.FloatField(allow_null=True)
    negative = serializers.IntegerField()
    followups_open = serializers.IntegerField()
    followups_opened = serializers.IntegerField()
    expected_emotion = serializers.IntegerField(min_value=-2, max_value=2)
    measured_emotion = serializers.FloatField(
        allow_null=True, help_text=_("The score on the emotion scale, −2…2.")
    )
    themes = ThemeSerializer(
        many=True,
        help_text=_(
            "The top comment themes of the period's answers, English and Korean."
        ),
    )
    responses_url = serializers.CharField(allow_null=True)
    negative_responses_url = serializers.CharField(allow_null=True)


class StageFiguresSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    position = serializers.IntegerField()
    reached = serializers.IntegerField(
        help_text=_("Customers with an interaction of the stage in the period.")
    )
    reached_next = serializers.IntegerField(
        allow_null=True, help_text=_("Of them, those who reached the next stage.")
    )
    next_share = serializers.FloatField(allow_null=True)
    drop_off = serializers.FloatField(allow_null=True)
    touchpoints = TouchpointFiguresSerializer(many=True)


class JourneyRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class JourneyMapSerializer(serializers.Serializer):
    journey = JourneyRefSerializer()
    since = serializers.DateField()
    until = serializers.DateField()
    previous_since = serializers.DateField()
    previous_until = serializers.DateField()
    segment = serializers.IntegerField(allow_null=True)
    channel = serializers.CharField(allow_null=True)
    stages = StageFiguresSerializer(many=True)
    pain_points = serializers.ListField(
        child=serializers.IntegerField(),
        help_text=_("Touchpoint ids, worst first."),
    )


class JourneyViewSet(viewsets.ModelViewSet):
    """Customer journeys: stages in order, touchpoints in each; and their maps."""

    queryset = Journey.objects.prefetch_related(
        "stages__touchpoints__campaigns"
    ).order_by("name", "pk")
    serializer_class = JourneySerializer
    parser_classes = PARSER_CLASSES

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "since", OpenApiTypes.DATE, description="First day (90 days back)."
            ),
            OpenApiParameter(
                "until", OpenApiTypes.DATE, description="Last day, included (today)."
            ),
            OpenApiParameter(
                "segment",
                {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                description="A segment id.",
            ),
            OpenApiParameter("channel", enum=Channel.values),
        ],
        responses={
            200: JourneyMapSerializer,
            400: OpenApiResponse(
                ErrorSerializer,
                description=(
                    "A bad filter, or a period that ends before it starts or is "
                    "longer than 3660 days."
                ),
            ),
            404: OpenApiResponse(
                DetailSerializer, description="No such journey or segment."
            ),
        },
    )
    @action(detail=True, methods=["get"], url_path="map")
    def map(self, request, pk=None):
        """The journey map's figures for a period, segment and channel."""
        journey = self.get_object()
        form = JourneyMapFilterForm(request.query_params)
        if not form.is_valid():
            segment = request.query_params.get("segment", "")
            if (
                form.has_error("segment", "invalid_choice")
                and segment.isdigit()
                and int(segment) <= 2**63 - 1
            ):
                raise exceptions.NotFound(_("There is no such segment."))
            raise DjangoValidationError(form.errors.as_data())
        # The form's cleaned filters are the selector's: since, until, segment, channel.
        figures = selectors.journey_map(journey=journey, **form.cleaned_data)
        return Response(JourneyMapSerializer(figures.as_dict()).data)
