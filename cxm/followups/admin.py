from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from cxm.access import cx_staff_users

from .models import FollowUp, FollowUpEvent, FollowUpStatus
from .services import followup_assign, followup_owner_validate, followup_set_priority


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
    fields = readonly_fields = ["kind", "actor", "description", "created_at"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # the timeline is written by what happens, not typed in


class FollowUpForm(forms.ModelForm):
    class Meta:
        model = FollowUp
        fields = ["owner", "priority"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "owner" in self.fields:
            # The current owner stays listed even if no longer CX staff, so that
            # saving a priority change does not unassign them.
            owners = get_user_model().objects.filter(
                Q(pk__in=cx_staff_users().values("pk")) | Q(pk=self.instance.owner_id)
            )
            self.fields["owner"].queryset = owners.order_by("username")

    def clean(self):
        cleaned = super().clean()
        resolved = FollowUp.objects.filter(
            pk=self.instance.pk, status=FollowUpStatus.RESOLVED
        )
        if self.changed_data and resolved.exists():
            raise ValidationError(_("This follow-up was resolved meanwhile."))
        return cleaned

    def clean_owner(self):
        owner = self.cleaned_data["owner"]
        if owner is not None and "owner" in self.changed_data:
            try:
                followup_owner_validate(owner)
            except ValidationError as e:
                raise ValidationError(e.message_dict["owner"]) from None
        return owner


@admin.register(FollowUp)
class FollowUpAdmin(admin.ModelAdmin):
    form = FollowUpForm
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
    search_fields = ["response__customer__email", "response__comment"]
    list_select_related = ["owner", "response__customer"]
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

    def has_add_permission(self, request):
        # A follow-up opens from a detractor's response, with its due time and owner.
        return False

    def get_readonly_fields(self, request, obj=None):
        fields = ["response", *self.readonly_fields]
        if obj is not None and obj.status == FollowUpStatus.RESOLVED:
            return [*fields, "owner", "priority"]
        return fields

    @admin.display(description=_("score"), ordering="response__score")
    def score(self, obj):
        return obj.response.score

    def save_model(self, request, obj, form, change):
        # Write only what the admin changes, through the services that keep the
        # timeline, never the form's whole (possibly stale) copy: a resolve that
        # happened meanwhile must stay resolved.
        try:
            if "priority" in form.changed_data:
                followup_set_priority(
                    followup=obj, priority=obj.priority, actor=request.user
                )
            if "owner" in form.changed_data:
                followup_assign(followup=obj, owner=obj.owner, actor=request.user)
        except ValidationError as e:
            self.message_user(request, " ".join(e.messages), messages.ERROR)
        obj.refresh_from_db()
