from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import FollowUp, FollowUpEvent
from .services import followup_assign


class OverdueFilter(admin.SimpleListFilter):
    title = _("overdue")
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", _("Overdue"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.overdue()
        return queryset


class EventInline(admin.TabularInline):
    model = FollowUpEvent
    extra = 0
    readonly_fields = ["kind", "actor", "text", "created_at"]
    can_delete = False


@admin.register(FollowUp)
class FollowUpAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "customer",
        "score",
        "owner",
        "priority",
        "status",
        "due_at",
    ]
    list_filter = ["status", OverdueFilter, "priority", "owner", "root_cause"]
    search_fields = ["response__invitation__customer__email", "response__comment"]
    list_select_related = ["owner", "response__invitation__customer"]
    raw_id_fields = ["response"]
    # Status and resolution change through the follow-up pages (or the API), which
    # record the timeline; the admin changes owner and priority.
    readonly_fields = [
        "status",
        "due_at",
        "resolution",
        "root_cause",
        "created_at",
        "assigned_at",
        "owner_notified_at",
        "escalated_at",
        "resolved_at",
        "resolved_by",
    ]
    inlines = [EventInline]

    @admin.display(description=_("score"), ordering="response__score")
    def score(self, obj):
        return obj.response.score

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        return ["response", *self.readonly_fields]

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        # Write only what the admin changes, never the form's whole (possibly stale)
        # copy: a resolve that happened meanwhile must stay resolved.
        if "priority" in form.changed_data:
            FollowUp.objects.filter(pk=obj.pk).update(priority=obj.priority)
        if "owner" in form.changed_data:
            followup_assign(followup=obj, owner=obj.owner, actor=request.user)
        obj.refresh_from_db()
