from django.db import IntegrityError, transaction
from django.db.models import Value
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets

from cxm.api import (
    CONFLICT,
    PARSER_CLASSES,
    ErrorSerializer,
    FilterSet,
    JSONObjectField,
    ModelSerializer,
)

from .models import Customer

# The field a unique constraint of Customer guards, to name it in a 400.
CONSTRAINT_FIELDS = {
    "customer_email_unique_ci": "email",
    "customer_external_id_unique": "external_id",
}
DUPLICATE_MESSAGES = {
    "email": _("A customer with this email already exists."),
    "external_id": _("A customer with this external id already exists."),
}


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
        # DRF would add its own unique check for external_id, with its own wording;
        # validate_external_id says it as the email check does.
        extra_kwargs = {"external_id": {"validators": []}}

    def _others(self):
        qs = Customer.objects.all()
        return qs.exclude(pk=self.instance.pk) if self.instance else qs

    def validate_email(self, value):
        # Lower() in the database: the same comparison as the unique constraint.
        taken = (
            self._others()
            .alias(email_lower=Lower("email"))
            .filter(email_lower=Lower(Value(value)))
        )
        if taken.exists():
            raise serializers.ValidationError(DUPLICATE_MESSAGES["email"], CONFLICT)
        return value

    def validate_external_id(self, value):
        if value and self._others().filter(external_id=value).exists():
            raise serializers.ValidationError(
                DUPLICATE_MESSAGES["external_id"], CONFLICT
            )
        return value

    def save(self, **kwargs):
        # Two requests with one email can both pass validation; the constraint
        # stops the second, which gets the same 400 as if validation had.
        try:
            with transaction.atomic():
                return super().save(**kwargs)
        except IntegrityError as e:
            for constraint, field in CONSTRAINT_FIELDS.items():
                if constraint in str(e):
                    raise serializers.ValidationError(
                        {field: [DUPLICATE_MESSAGES[field]]}, CONFLICT
                    )
            raise


class CustomerFilter(FilterSet):
    email = filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = Customer
        fields = ["email", "external_id", "locale"]


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
    """The people we survey."""

    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    parser_classes = PARSER_CLASSES
