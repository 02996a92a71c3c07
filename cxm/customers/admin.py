import json

from django.conf import settings
from django.contrib import admin
from django.db.models.functions import Lower
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from import_export.admin import ImportExportMixin
from import_export.formats.base_formats import CSV

from cxm.admin_site import LargeListMixin, ServiceDeleteMixin
from cxm.paginators import EstimatedCountPaginator

from . import services
from .models import Customer, Interaction, Segment
from .resources import CustomerResource
from .selectors import segment_counts

# A property filter offers the values found among this many of the newest
# customers: a common property's values, without reading a million rows.
PROPERTY_VALUES_SAMPLE = 2_000


def property_column(name: str):
    """Returns a list_display column showing the customer property `name`."""

    def column(obj):
        value = (obj.properties or {}).get(name)
        return "" if value is None else value

    column.short_description = name
    column.__name__ = f"property_{name}"
    return column


def property_filter(name: str) -> type[admin.SimpleListFilter]:
    """Returns a list filter on the customer property `name`, offering the values
    the newest customers have (PROPERTY_VALUES_SAMPLE)."""

    class PropertyFilter(admin.SimpleListFilter):
        title = name
        parameter_name = f"property_{name}"

        def lookups(self, request, model_admin):
            values = (
                Customer.objects.filter(pk__gte=_newest_from(request))
                .filter(**{f"properties__{name}__isnull": False})
                .values_list(f"properties__{name}", flat=True)
                .order_by()
                .distinct()[:50]
            )
            found = {json.dumps(v, ensure_ascii=False) for v in values}
            if self.value():
                found.add(self.value())
            return [(v, _json_label(v)) for v in sorted(found)]

        def queryset(self, request, queryset):
            if not self.value():
                return queryset
            try:
                value = json.loads(self.value())
            except ValueError:
                value = self.value()
            # Containment: the GIN index on properties serves it.
            return queryset.filter(properties__contains={name: value})

    PropertyFilter.__name__ = f"PropertyFilter_{name}"
    return PropertyFilter


def _newest_from(request) -> int:
    """Returns the id from which the PROPERTY_VALUES_SAMPLE newest customers go
    (kept on the request for the next filter): a range of the primary key, which
    its index reads (a LIMIT in a subquery made PostgreSQL read every row)."""
    if not hasattr(request, "_customers_newest_from"):
        ids = Customer.objects.order_by("-pk").values_list("pk", flat=True)
        found = list(ids[PROPERTY_VALUES_SAMPLE - 1 : PROPERTY_VALUES_SAMPLE])
        request._customers_newest_from = found[0] if found else 0
    return request._customers_newest_from


def _json_label(encoded: str) -> str:
    try:
        value = json.loads(encoded)
    except ValueError:
        return encoded
    return value if isinstance(value, str) else encoded


@admin.display(description=_("customer"), ordering="customer")
def customer_link(obj):
    """A list column: the row's customer (select_related by the list), linked to
    their staff page, where their whole history is."""
    return format_html(
        '<a href="{}">{}</a>', obj.customer.get_absolute_url(), obj.customer
    )


class ContactableFilter(admin.SimpleListFilter):
    title = _("contactable")
    parameter_name = "contactable"

    def lookups(self, request, model_admin):
        return [
            ("yes", _("Yes")),
            ("unsubscribed", _("Unsubscribed")),
            ("bounced", _("Bounced")),
            ("complained", _("Complained")),
        ]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.contactable()
        if self.value() == "unsubscribed":
            return queryset.filter(unsubscribed_at__isnull=False)
        if self.value() == "bounced":
            return queryset.filter(bounced_at__isnull=False)
        if self.value() == "complained":
            return queryset.filter(complained_at__isnull=False)
        return queryset


@admin.register(Customer)
class CustomerAdmin(
    LargeListMixin, ServiceDeleteMixin, ImportExportMixin, admin.ModelAdmin
):
    # Import (with its preview) and export of CSV; big files go through the
    # API's import, which streams them.
    resource_classes = [CustomerResource]
    import_formats = [CSV]
    export_formats = [CSV]
    list_display = [
        "email_address",
        "name",
        "locale",
        "external_id",
        "is_contactable",
        "created_at",
    ]
    list_display_links = ["email_address"]
    list_filter = [ContactableFilter, "locale", "created_at"]
    # Trigram indexes serve these (migration 0005).
    search_fields = ["email", "name", "external_id"]
    # Orderings an index serves: lower(email) (the unique one) and created_at;
    # sorting 1.3 million rows by name on each page would take a second.
    ordering = [Lower("email")]
    sortable_by = ["email_address", "created_at"]
    # One count per page, estimated on a large list (no second, unfiltered one).
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    # Unsubscribes, bounces and complaints are recorded by their services, as
    # they happen (customer_update takes none of them).
    readonly_fields = [
        "unsubscribed_at",
        "bounced_at",
        "complained_at",
        "created_at",
        "updated_at",
    ]

    def get_list_display(self, request):
        columns = [property_column(n) for n in settings.CUSTOMER_LIST_PROPERTIES]
        display = list(self.list_display)
        return [*display[:4], *columns, *display[4:]]

    def get_list_filter(self, request):
        properties = [property_filter(n) for n in settings.CUSTOMER_LIST_PROPERTIES]
        return [ContactableFilter, "locale", *properties, "created_at"]

    @admin.display(description=_("email"), ordering=Lower("email"))
    def email_address(self, obj):
        return obj.email

    @admin.display(boolean=True, description=_("contactable"))
    def is_contactable(self, obj):
        return obj.is_contactable

    def save_model(self, request, obj, form, change):
        fields = {
            name: form.cleaned_data[name]
            for name in services.CUSTOMER_FIELDS
            if name in form.cleaned_data
        }
        if change:
            original = Customer.objects.get(pk=obj.pk)
            services.customer_update(customer=original, **fields)
        else:
            original = services.customer_create(**fields)
        obj.pk = original.pk
        obj.created_at, obj.updated_at = original.created_at, original.updated_at

    def delete_service(self, obj):
        services.customer_delete(customer=obj)


@admin.register(Interaction)
class InteractionAdmin(LargeListMixin, ServiceDeleteMixin, admin.ModelAdmin):
    list_display = ["occurred_at", customer_link, "kind", "channel", "external_id"]
    list_filter = ["channel", "occurred_at"]
    list_select_related = ["customer"]
    search_fields = ["kind", "external_id", "customer__email"]
    raw_id_fields = ["customer"]
    readonly_fields = ["created_at"]
    date_hierarchy = "occurred_at"
    # A million rows: Django's exact count of the whole table is a scan each page.
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        # History is recorded, not rewritten: a recorded interaction is read only.
        if obj is not None:
            return [f.name for f in Interaction._meta.fields]
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            return
        recorded, _created = services.interaction_record(
            customer=obj.customer,
            kind=obj.kind,
            channel=obj.channel,
            occurred_at=obj.occurred_at,
            properties=obj.properties,
            external_id=obj.external_id,
        )
        obj.pk = recorded.pk

    def delete_service(self, obj):
        services.interaction_delete(interaction=obj)


@admin.register(Segment)
class SegmentAdmin(ServiceDeleteMixin, admin.ModelAdmin):
    list_display = ["name", "match", "conditions_count", "updated_at"]
    search_fields = ["name", "description"]
    readonly_fields = ["customers_now", "created_at", "updated_at"]
    fields = [
        "name",
        "description",
        "match",
        "conditions",
        "customers_now",
        "created_at",
        "updated_at",
    ]

    @admin.display(description=_("conditions"))
    def conditions_count(self, obj):
        return len(obj.conditions)

    @admin.display(description=_("customers now"))
    def customers_now(self, obj):
        if obj.pk is None:
            return "—"
        counts = segment_counts(segment=obj)
        return _("%(customers)d, of whom %(contactable)d may be emailed") % counts

    def save_model(self, request, obj, form, change):
        fields = {
            name: form.cleaned_data[name]
            for name in ("name", "description", "match", "conditions")
        }
        if change:
            services.segment_update(segment=obj, **fields)
        else:
            obj.pk = services.segment_create(**fields).pk

    def has_delete_permission(self, request, obj=None):
        # A segment campaigns target is their audience's history.
        if obj is not None and obj.campaigns.exists():
            return False
        return super().has_delete_permission(request, obj)

    def delete_service(self, obj):
        services.segment_delete(segment=obj)
