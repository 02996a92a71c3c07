"""
The admin's CSV import and export of customers (django-import-export). Each row
goes through the same rules as the API's import: customer_fields_from_row reads
it, customer_match finds the customer it updates, customer_clean validates it and
customer_create or customer_update writes it, so the preview shows what the
import will create, update and refuse.
"""

import json

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from import_export import fields, resources

from . import services
from .models import Customer


class CustomerResource(resources.ModelResource):
    properties = fields.Field(attribute="properties", column_name="properties")

    class Meta:
        model = Customer
        fields = ("email", "name", "locale", "external_id", "properties")
        export_order = fields
        # Each row is written by a service in its own transaction, inside the
        # import's: a preview is rolled back as a whole.
        use_transactions = True
        clean_model_instances = True

    def before_import(self, dataset, **kwargs):
        # The known columns in any case, as the API reads them.
        dataset.headers = [
            (header or "").strip().lower()
            if (header or "").strip().lower()
            in (*services.CUSTOMER_COLUMNS, "properties")
            else (header or "").strip()
            for header in dataset.headers
        ]
        if "email" not in dataset.headers:
            raise ValidationError(_("The header has no email column."))

    def _row_fields(self, row) -> dict:
        row = {name: "" if value is None else str(value) for name, value in row.items()}
        given = row.pop("properties", "").strip()
        fields = services.customer_fields_from_row(row)
        if given:
            try:
                properties = json.loads(given)
            except ValueError:
                properties = None
            if not isinstance(properties, dict):
                raise ValidationError(
                    {"properties": _('Expected an object, e.g. {"plan": "pro"}.')}
                )
            fields["properties"] = {**properties, **fields.get("properties", {})}
        return fields

    def get_instance(self, instance_loader, row):
        fields = self._row_fields(row)
        return services.customer_match(
            email=fields.get("email", ""), external_id=fields.get("external_id", "")
        )

    def import_instance(self, instance, row, **kwargs):
        fields = self._row_fields(row)
        if "properties" in fields:
            fields["properties"] = {**instance.properties, **fields["properties"]}
        for name, value in fields.items():
            setattr(instance, name, value)
        # What the service will write, for save_instance.
        instance._import_fields = fields

    def validate_instance(self, instance, import_validation_errors=None, **kwargs):
        errors = dict(import_validation_errors or {})
        try:
            services.customer_clean(customer=instance)
        except ValidationError as e:
            errors = e.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def save_instance(self, instance, is_create, row, **kwargs):
        fields = instance._import_fields
        if is_create:
            saved = services.customer_create(**fields)
        else:
            saved = services.customer_update(
                customer=Customer.objects.get(pk=instance.pk), **fields
            )
        instance.pk = saved.pk

    def dehydrate_properties(self, customer):
        return json.dumps(customer.properties, ensure_ascii=False, sort_keys=True)
