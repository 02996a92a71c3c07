from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response as ApiResponse
from rest_framework.views import APIView

from cxm.api import (
    PARSER_CLASSES,
    DetailSerializer,
    JSONObjectField,
    PrimaryKeyRelatedField,
)

from . import metrics, services
from .models import (
    Campaign,
    Invitation,
    Question,
    Response,
    Survey,
    validate_audience,
)


class QuestionSerializer(serializers.ModelSerializer):
    display_text = serializers.CharField(
        read_only=True, help_text="The question as the customer reads it."
    )

    class Meta:
        model = Question
        fields = ["id", "position", "kind", "text", "display_text", "required"]
        read_only_fields = fields


class SurveySerializer(serializers.ModelSerializer):
    questions = QuestionSerializer(many=True, read_only=True)

    class Meta:
        model = Survey
        fields = ["id", "name", "kind", "created_at", "questions"]
        read_only_fields = ["created_at"]

    def create(self, validated_data):
        return services.survey_create(**validated_data)


class SurveyViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """What is asked. A new survey gets the standard questions of its kind."""

    queryset = Survey.objects.prefetch_related("questions")
    serializer_class = SurveySerializer
    parser_classes = PARSER_CLASSES


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {
            "oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]
        },
    }
)
class AudienceField(JSONObjectField):
    pass


class CampaignSerializer(serializers.ModelSerializer):
    serializer_related_field = PrimaryKeyRelatedField
    audience = AudienceField(
        required=False,
        validators=[validate_audience],
        help_text=_(
            'Customers whose properties match all these values, e.g. {"plan": "pro"}. '
            "Empty: all customers."
        ),
    )
    invited = serializers.IntegerField(
        read_only=True, help_text="Invitations created when it was sent."
    )
    responses = serializers.IntegerField(read_only=True)
    nps = serializers.SerializerMethodField(
        help_text="Net Promoter Score, −100 to 100; null without responses."
    )
    margin_of_error = serializers.SerializerMethodField(
        help_text="The NPS's margin of error at 95 %, in NPS points."
    )

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "survey",
            "audience",
            "expires_at",
            "status",
            "created_at",
            "sent_at",
            "invited",
            "responses",
            "nps",
            "margin_of_error",
        ]
        read_only_fields = ["status", "created_at", "sent_at"]

    def get_nps(self, campaign) -> float | None:
        return metrics.nps_from_row(campaign).nps

    def get_margin_of_error(self, campaign) -> float | None:
        return metrics.nps_from_row(campaign).margin_of_error

    def update(self, instance, validated_data):
        return services.campaign_update(campaign=instance, **validated_data)


class SendResultSerializer(serializers.Serializer):
    invitations = serializers.IntegerField(
        help_text="How many invitations were created and queued."
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
        if self.action == "send":
            return qs
        # Ordered explicitly: an aggregate query leaves out Meta.ordering.
        return metrics.campaigns_with_nps(qs).order_by("-created_at", "-pk")

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
            400: OpenApiResponse(
                DetailSerializer, description="Already sent, or expired."
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def send(self, request, pk=None):
        """Invites the audience; their emails go out in the background."""
        campaign = self.get_object()
        created = services.campaign_send(campaign=campaign)
        return ApiResponse({"invitations": created}, status=status.HTTP_202_ACCEPTED)


class InvitationSerializer(serializers.ModelSerializer):
    customer_email = serializers.EmailField(source="customer.email", read_only=True)

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
            "due_at",
            "attempts",
            "last_error",
            "sent_at",
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


def campaign_filter(field_name: str = "campaign") -> filters.ModelChoiceFilter:
    """?campaign=<id>, with a 400 that says which campaign does not exist."""
    return filters.ModelChoiceFilter(
        field_name=field_name,
        queryset=Campaign.objects.all(),
        error_messages={"invalid_choice": _("There is no campaign %(value)s.")},
    )


class InvitationFilter(filters.FilterSet):
    campaign = campaign_filter()

    class Meta:
        model = Invitation
        fields = ["campaign", "customer", "status"]


class InvitationViewSet(viewsets.ReadOnlyModelViewSet):
    """Each customer's personal link for a campaign and its delivery state."""

    queryset = Invitation.objects.select_related("customer")
    serializer_class = InvitationSerializer
    filterset_class = InvitationFilter


class ResponseSerializer(serializers.ModelSerializer):
    campaign = serializers.IntegerField(source="invitation.campaign_id", read_only=True)
    customer = serializers.IntegerField(source="invitation.customer_id", read_only=True)
    customer_email = serializers.EmailField(
        source="invitation.customer.email", read_only=True
    )
    nps_bucket = serializers.CharField(read_only=True)

    class Meta:
        model = Response
        fields = [
            "id",
            "invitation",
            "campaign",
            "customer",
            "customer_email",
            "score",
            "nps_bucket",
            "comment",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ResponseFilter(filters.FilterSet):
    campaign = campaign_filter("invitation__campaign")

    class Meta:
        model = Response
        fields = ["campaign"]


class ResponseViewSet(viewsets.ReadOnlyModelViewSet):
    """What the customers said."""

    queryset = Response.objects.select_related("invitation__customer")
    serializer_class = ResponseSerializer
    filterset_class = ResponseFilter


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


class NpsQuerySerializer(serializers.Serializer):
    campaign = serializers.IntegerField(required=False)


class NpsView(APIView):
    """The Net Promoter Score of one campaign's responses, or of all responses."""

    @extend_schema(
        operation_id="metrics_nps",
        parameters=[
            OpenApiParameter(
                "campaign",
                OpenApiTypes.INT,
                description="A campaign id; all responses when omitted.",
            )
        ],
        responses={200: NpsSerializer},
    )
    def get(self, request):
        query = NpsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        campaign = None
        if "campaign" in query.validated_data:
            campaign = get_object_or_404(Campaign, pk=query.validated_data["campaign"])
        return ApiResponse(NpsSerializer(metrics.nps(campaign=campaign).as_dict()).data)
