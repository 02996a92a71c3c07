import dataclasses
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Value
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, parsers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from cxm.access import customer_for_user
from cxm.api import (
    PARSER_CLASSES,
    ErrorSerializer,
    FilterSet,
    IsoDateTimeFilter,
    JSONObjectField,
    ModelSerializer,
    StrictCharField,
    StrictEmailField,
    StrictIntegerField,
    name_free_check,
)
from cxm.paginators import EstimatedCountPagination

from . import selectors, services, timeline
from .csvfiles import CSVFileError, CSVRows
from .models import (
    INTERACTION_KIND,
    Customer,
    Interaction,
    Segment,
    validate_segment_conditions,
)
from .segments import conditions_schema


def _page_limit(text: str | None) -> int:
    """Returns the page length `text` asks for; a ValidationError if none."""
    if text is None or text == "":
        return timeline.PAGE_SIZE
    if not re.fullmatch(r"[0-9]{1,4}", text) or not 1 <= int(text) <= timeline.PAGE_MAX:
        raise ValidationError(
            _("limit is a whole number from 1 to %(max)d.") % {"max": timeline.PAGE_MAX}
        )
    return int(text)


class ImportFileSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text=_(
            "A CSV file in UTF-8 whose first line names the columns. Up to "
            "IMPORT_MAX_BYTES (100 MB unless set)."
        )
    )


class ImportErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField(
        help_text=_("The line of the file; 1 is the header.")
    )
    error = serializers.CharField()


class CustomerImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    errors = ImportErrorSerializer(
        many=True,
        help_text=_("The rows refused, by line: the first 1,000 of them."),
    )
    error_count = serializers.IntegerField(help_text=_("All the rows refused."))


class InteractionImportResultSerializer(CustomerImportResultSerializer):
    updated = serializers.IntegerField(
        help_text=_("Always 0: a recorded interaction is never changed.")
    )
    recorded_before = serializers.IntegerField(
        help_text=_(
            "Rows whose external_id was recorded before for the same customer "
            "and kind: retries, recorded once."
        )
    )


def csv_import(request, *, importer, known, required: set, any_of: set = frozenset()):
    """Reads the request's CSV file as a stream into importer; the answer's body."""
    serializer = ImportFileSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    upload = serializer.validated_data["file"]
    if upload.size > settings.IMPORT_MAX_BYTES:
        raise exceptions.ValidationError(
            {
                "file": [
                    _("The file is larger than %(limit)s bytes.")
                    % {"limit": settings.IMPORT_MAX_BYTES}
                ]
            }
        )
    upload.seek(0)
    try:
        rows = CSVRows(upload.file, known=set(known), required=required, any_of=any_of)
    except CSVFileError as e:
        raise exceptions.ValidationError({"file": [str(e)]})
    try:
        result = importer(rows=rows)
    finally:
        rows.detach()
    return dataclasses.asdict(result)


IMPORT_REQUEST = {"multipart/form-data": ImportFileSerializer}


class CustomerSerializer(ModelSerializer):
    properties = JSONObjectField(
        required=False,
        help_text=_('Free attributes used for segments, e.g. {"plan": "pro"}.'),
    )

    class Meta:
        model = Customer
        fields = [
            "id",
            "email",
            "name",
            "locale",
            "external_id",
            "properties",
            "unsubscribed_at",
            "bounced_at",
            "complained_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "unsubscribed_at",
            "bounced_at",
            "complained_at",
            "created_at",
            "updated_at",
        ]
        # The services check uniqueness, with the model's messages, as a conflict.
        extra_kwargs = {"external_id": {"validators": []}}

    def create(self, validated_data):
        return services.customer_create(**validated_data)

    def update(self, instance, validated_data):
        return services.customer_update(customer=instance, **validated_data)


class CustomerFilter(FilterSet):
    email = filters.CharFilter(method="email_filter")

    class Meta:
        model = Customer
        fields = ["email", "external_id", "locale"]

    def email_filter(self, queryset, name, value):
        # In any case, as lower(email) = lower(value): the unique index on
        # lower(email) finds it (iexact's UPPER(email) would read every row).
        return queryset.alias(email_lower=Lower("email")).filter(
            email_lower=Lower(Value(value))
        )


class TimelineEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField(help_text=_("When it happened."))
    kind = serializers.ChoiceField(
        choices=[],
        help_text=_(
            "What happened: interaction, invitation, reminder, response (an "
            "answer's current version), response_revision (an earlier version), "
            "followup_event, followup_message, unsubscribed, bounced, complained."
        ),
    )
    id = serializers.IntegerField(
        help_text=_("The id of its row (the interaction, the invitation …).")
    )
    data = serializers.DictField(
        help_text=_("What the customer page shows of it; its keys depend on kind.")
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = list(timeline.BRANCHES)


class TimelinePageSerializer(serializers.Serializer):
    next = serializers.URLField(
        allow_null=True, help_text=_("The next (older) page; null on the last.")
    )
    results = TimelineEntrySerializer(many=True)


# A 409 when the only thing wrong is an email or external id another customer has.
DUPLICATE = OpenApiResponse(
    ErrorSerializer, description="Another customer has this email or external id."
)


@extend_schema_view(
    create=extend_schema(responses={201: CustomerSerializer, 409: DUPLICATE}),
    update=extend_schema(responses={200: CustomerSerializer, 409: DUPLICATE}),
    partial_update=extend_schema(responses={200: CustomerSerializer, 409: DUPLICATE}),
)
class CustomerViewSet(viewsets.ModelViewSet):
    """
    The people we survey, by email. Over 10,000 customers, a list's `count` is
    PostgreSQL's estimate, not an exact count.
    """

    # By lower(email), which its unique index serves (email alone is a sort of
    # every row); a large list's count is PostgreSQL's estimate.
    queryset = Customer.objects.order_by(Lower("email"))
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    pagination_class = EstimatedCountPagination
    parser_classes = PARSER_CLASSES

    def perform_destroy(self, instance):
        services.customer_delete(customer=instance)

    @extend_schema(
        request=IMPORT_REQUEST,
        responses={200: CustomerImportResultSerializer},
        description=(
            "Creates or updates customers from a CSV file: columns email "
            "(required), name, locale, external_id, and any other column as a "
            "property (a plain number becomes a number). A row matches a customer "
            "by external_id, else by email in any case; an empty cell leaves a "
            "field as it is. The good rows are imported, the others named by line."
        ),
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[parsers.MultiPartParser],
        filterset_class=None,
        pagination_class=None,
    )
    def import_csv(self, request):
        return Response(
            csv_import(
                request,
                importer=services.customers_import,
                known=services.CUSTOMER_COLUMNS,
                required={"email"},
            )
        )

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "cursor",
                str,
                description=(
                    "The cursor of the next link (a page's `next`); none for the "
                    "newest page. Any other text is a 400."
                ),
            ),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": timeline.PAGE_MAX},
                description=f"Entries per page, 1 to {timeline.PAGE_MAX} "
                f"({timeline.PAGE_SIZE} unless given).",
            ),
        ],
        responses={200: TimelinePageSerializer, 400: ErrorSerializer},
        description=(
            "Everything that happened with the customer, on every channel, newest "
            "first, as on the customer page: interactions, invitations and "
            "reminders with their delivery state, every version of every answer, "
            "the events and emails of the follow-ups you may see, unsubscribes, "
            "bounces and complaints. Paged by a cursor (follow next). CX agents "
            "see the customers of the follow-ups they see (every customer with "
            "CUSTOMER_PAGES_ALL_AGENTS); managers and staff every customer."
        ),
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="timeline",
        filterset_class=None,
        pagination_class=None,
    )
    def timeline(self, request, pk=None):
        customer = customer_for_user(request.user, pk)
        cursor, errors = None, {}
        try:
            if request.query_params.get("cursor"):
                cursor = timeline.Cursor.decode(request.query_params["cursor"])
        except ValidationError as e:
            errors["cursor"] = e.messages
        try:
            limit = _page_limit(request.query_params.get("limit"))
        except ValidationError as e:
            errors["limit"] = e.messages
        if errors:
            raise exceptions.ValidationError(errors)
        page = timeline.customer_timeline(
            customer_id=customer.pk, user=request.user, cursor=cursor, limit=limit
        )
        next_url = None
        if page["next"]:
            query = request.query_params.copy()
            query["cursor"] = page["next"].encode()
            next_url = request.build_absolute_uri(
                request.path + "?" + query.urlencode()
            )
        results = [
            {key: entry[key] for key in ("at", "kind", "id", "data")}
            for entry in page["entries"]
        ]
        return Response(
            TimelinePageSerializer({"next": next_url, "results": results}).data
        )


class InteractionSerializer(ModelSerializer):
    customer = StrictIntegerField(
        source="customer_id",
        required=False,
        min_value=1,
        help_text=_(
            "The customer's id. Or name the customer by customer_email or "
            "customer_external_id instead."
        ),
    )
    customer_email = StrictEmailField(
        write_only=True,
        required=False,
        max_length=254,
        help_text=_("The customer's email, in place of customer."),
    )
    customer_external_id = StrictCharField(
        write_only=True,
        required=False,
        max_length=100,
        help_text=_("The customer's external id, in place of customer."),
    )
    properties = JSONObjectField(
        required=False, help_text=_('Details of the event, e.g. {"order_total": 42.5}.')
    )

    class Meta:
        model = Interaction
        fields = [
            "id",
            "customer",
            "customer_email",
            "customer_external_id",
            "kind",
            "channel",
            "occurred_at",
            "properties",
            "external_id",
            "created_at",
        ]
        read_only_fields = ["created_at"]
        # interaction_record tells a retry from a clash; DRF's check would not.
        extra_kwargs = {"external_id": {"validators": []}}

    # What validate_interaction_kind takes, for the schema.
    # The customer named exactly once, by one of its three names.
    request_schema = {
        "properties": {"kind": {"pattern": INTERACTION_KIND.pattern}},
        "oneOf": [
            {"required": ["customer"]},
            {"required": ["customer_email"]},
            {"required": ["customer_external_id"]},
        ],
    }
    body_required = True

    def validate(self, attrs):
        given = [
            name
            for name in ("customer_id", "customer_email", "customer_external_id")
            if name in attrs
        ]
        if len(given) != 1:
            raise serializers.ValidationError(
                {
                    "customer": [
                        _(
                            "Name the customer once: by customer (an id), "
                            "customer_email or customer_external_id."
                        )
                    ]
                }
            )
        attrs["customer"] = self._customer(given[0], attrs.pop(given[0]))
        return attrs

    def _customer(self, field: str, value) -> Customer:
        customers = Customer.objects.all()
        if field == "customer_id":
            found = customers.filter(pk=value).first()
            message = _("There is no customer %(value)s.")
        elif field == "customer_email":
            found = (
                customers.alias(email_lower=Lower("email"))
                .filter(email_lower=Lower(Value(value)))
                .first()
            )
            message = _("There is no customer with the email %(value)s.")
        else:
            found = customers.filter(external_id=value).first() if value else None
            message = _("There is no customer with the external id %(value)r.")
        if found is None:
            name = "customer" if field == "customer_id" else field
            raise serializers.ValidationError({name: [message % {"value": value}]})
        return found


class InteractionFilter(FilterSet):
    occurred_after = IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Interaction
        fields = ["customer", "kind", "channel", "external_id"]


@extend_schema_view(
    create=extend_schema(
        responses={
            201: InteractionSerializer,
            200: OpenApiResponse(
                InteractionSerializer,
                description=(
                    "Recorded before: a retry with the same external_id returns "
                    "the interaction it recorded."
                ),
            ),
            409: OpenApiResponse(
                ErrorSerializer,
                description="The external_id names another customer's or kind's.",
            ),
        }
    ),
)
class InteractionViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Events in customers' histories: purchases, support calls, visits."""

    queryset = Interaction.objects.all()
    serializer_class = InteractionSerializer
    filterset_class = InteractionFilter
    parser_classes = PARSER_CLASSES

    def perform_destroy(self, instance):
        services.interaction_delete(interaction=instance)

    @extend_schema(
        request=IMPORT_REQUEST,
        responses={200: InteractionImportResultSerializer},
        description=(
            "Records interactions from a CSV file: the customer by customer (an "
            "id), customer_email or customer_external_id; kind; channel; "
            "occurred_at (ISO 8601, UTC without an offset, now if empty); "
            "external_id; any other column as a property. A row whose external_id "
            "was recorded before for the same customer and kind is not recorded "
            "again. The good rows are imported, the others named by line."
        ),
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[parsers.MultiPartParser],
        filterset_class=None,
        pagination_class=None,
    )
    def import_csv(self, request):
        return Response(
            csv_import(
                request,
                importer=services.interactions_import,
                known=services.INTERACTION_COLUMNS,
                required={"kind"},
                any_of={"customer", "customer_email", "customer_external_id"},
            )
        )

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        interaction, created = services.interaction_record(**serializer.validated_data)
        return Response(
            self.get_serializer(interaction).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ConditionsField(serializers.JSONField):
    """A segment's conditions (see cxm.customers.segments)."""


class ConditionsFieldExtension(OpenApiSerializerFieldExtension):
    target_class = ConditionsField

    def map_serializer_field(self, auto_schema, direction):
        # Built when the schema is, after every app has registered its types.
        return conditions_schema()


class SegmentSerializer(ModelSerializer):
    conditions = ConditionsField(
        required=False,
        validators=[validate_segment_conditions],
        help_text=_("A list of conditions; none means every customer."),
    )

    class Meta:
        model = Segment
        fields = [
            "id",
            "name",
            "description",
            "match",
            "conditions",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {"name": {"validators": []}}

    def validate_name(self, value):
        return name_free_check(
            Segment.objects.all(),
            instance=self.instance,
            name=value,
            message=_("A segment with this name already exists."),
        )

    def create(self, validated_data):
        return services.segment_create(**validated_data)

    def update(self, instance, validated_data):
        return services.segment_update(segment=instance, **validated_data)


DUPLICATE_NAME = OpenApiResponse(
    ErrorSerializer, description="Another segment has this name."
)


class SegmentCountSerializer(serializers.Serializer):
    customers = serializers.IntegerField(help_text="Customers in the segment now.")
    contactable = serializers.IntegerField(
        help_text="Of them, those cxm may email (not unsubscribed or bounced)."
    )


@extend_schema_view(
    create=extend_schema(responses={201: SegmentSerializer, 409: DUPLICATE_NAME}),
    update=extend_schema(responses={200: SegmentSerializer, 409: DUPLICATE_NAME}),
    partial_update=extend_schema(
        responses={200: SegmentSerializer, 409: DUPLICATE_NAME}
    ),
)
class SegmentViewSet(viewsets.ModelViewSet):
    """Saved groups of customers, which campaigns target."""

    queryset = Segment.objects.all()
    serializer_class = SegmentSerializer
    parser_classes = PARSER_CLASSES

    @extend_schema(responses={200: SegmentCountSerializer})
    @action(detail=True, methods=["get"])
    def count(self, request, pk=None):
        """How many customers the segment holds now, and how many may be emailed."""
        counts = selectors.segment_counts(segment=self.get_object())
        return Response(SegmentCountSerializer(counts).data)

    @extend_schema(responses={200: CustomerSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def customers(self, request, pk=None):
        """The customers in the segment now, by email."""
        customers = selectors.segment_customers(segment=self.get_object())
        page = self.paginate_queryset(customers.order_by("email", "pk"))
        return self.get_paginated_response(CustomerSerializer(page, many=True).data)

    def perform_destroy(self, instance):
        services.segment_delete(segment=instance)
