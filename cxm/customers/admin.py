from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import Customer


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
class CustomerAdmin(admin.ModelAdmin):
    list_display = [
        "email",
        "name",
        "locale",
        "external_id",
        "is_contactable",
        "created_at",
    ]
    list_filter = [ContactableFilter, "locale", "created_at"]
    search_fields = ["email", "name", "external_id"]
    readonly_fields = ["created_at", "updated_at"]

    @admin.display(boolean=True, description=_("contactable"))
    def is_contactable(self, obj):
        return obj.is_contactable
