from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from cxm.access import cx_staff_users
from cxm.admin_site import CxTabularInline, EditableListMixin, ServiceDeleteMixin
from cxm.customers.admin import customer_link

from .models import (
    UNRESOLVED,
    FollowUp,
    FollowUpEvent,
    FollowUpRule,
    RootCause,
    StaffProfile,
    Team,
    TeamMember,
)
from .selectors import followups_visible_to
from .services import (
    followup_assign,
    followup_owner_validate,
    followup_rule_delete,
    followup_rule_save,
    followup_rule_validate,
    followup_set_priority,
    root_cause_delete,
    root_cause_save,
    team_delete,
    team_member_delete,
    team_member_save,
    team_save,
    team_validate,
)


class OverdueFilter(admin.SimpleListFilter):
    title = _("overdue")
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", _("Overdue"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.overdue()
        return queryset


class EventInline(CxTabularInline):
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
        done = FollowUp.objects.filter(pk=self.instance.pk).exclude(
            status__in=UNRESOLVED
        )
        if self.changed_data and done.exists():
            raise ValidationError(_("This follow-up was resolved meanwhile."))
        return cleaned

    def clean_owner(self):
        owner = self.cleaned_data["owner"]
        if owner is not None and "owner" in self.changed_data:
            try:
                followup_owner_validate(owner, team=self.instance.team)
            except ValidationError as e:
                raise ValidationError(e.message_dict["owner"]) from None
        return owner


@admin.register(FollowUp)
class FollowUpAdmin(admin.ModelAdmin):
    form = FollowUpForm
    list_display = [
        "__str__",
        customer_link,
        "score",
        "team",
        "owner",
        "priority",
        "status",
        "overdue",
        "due_at",
    ]
    list_filter = [
        "status",
        OverdueFilter,
        "priority",
        "team",
        "owner",
        "root_cause",
    ]
    search_fields = ["customer__email", "response__comment"]
    list_select_related = ["owner", "team", "customer", "response"]
    raw_id_fields = ["response"]
    # Status and resolution change through the follow-up pages (or the API), which
    # record the timeline; the admin changes owner and priority.
    readonly_fields = [
        "customer",
        "team",
        "rule",
        "status",
        "first_contact_due_at",
        "first_contact_at",
        "due_at",
        "resolution",
        "root_cause",
        "closed_at",
        "no_action_needed",
        "created_at",
        "opened_by",
        "assigned_at",
        "owner_notified_at",
        "first_contact_reminded_for",
        "resolution_reminded_for",
        "escalated_at",
        "escalated_again_at",
        "resolved_at",
        "resolved_by",
        "checkin_sent_at",
        "recovered",
        "recovered_at",
        "emails",
    ]
    inlines = [EventInline]

    def has_add_permission(self, request):
        # A follow-up opens from a detractor's response, with its due time and owner.
        return False

    def has_delete_permission(self, request, obj=None):
        # A follow-up is the closed loop's history: close it instead.
        return False

    def get_queryset(self, request):
        # The same roles as the pages and the API.
        return followups_visible_to(request.user)

    def get_readonly_fields(self, request, obj=None):
        fields = ["response", *self.readonly_fields]
        if obj is not None and not obj.is_unresolved:
            return [*fields, "owner", "priority"]
        return fields

    @admin.display(description=_("score"), ordering="response__score")
    def score(self, obj):
        return obj.response.score if obj.response_id else None

    @admin.display(description=_("emails"))
    def emails(self, obj):
        # Read only, as sent: a list rather than an inline keeps the form's fields.
        return (
            format_html_join(
                mark_safe("<br>"),
                "{} · {} · {} · {}",
                (
                    (
                        m.get_direction_display(),
                        m.created_at.strftime("%Y-%m-%d %H:%M"),
                        m.subject,
                        _("sent")
                        if m.sent_at or m.direction == "in"
                        else _("not sent"),
                    )
                    for m in obj.messages.all()
                ),
            )
            or "—"
        )

    @admin.display(description=_("overdue"), boolean=True)
    def overdue(self, obj):
        return obj.is_overdue

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
        except PermissionDenied as e:
            self.message_user(request, str(e), messages.ERROR)
        obj.refresh_from_db()


def _service_errors(form, validate) -> None:
    """Adds what a service's validation says to the form, by field."""
    try:
        validate(form.instance)
    except ValidationError as e:
        form._update_errors(e)


@admin.register(RootCause)
class RootCauseAdmin(EditableListMixin, ServiceDeleteMixin, admin.ModelAdmin):
    list_display = ["name_en", "name_ko", "code", "active", "position"]
    list_editable = ["active", "position"]
    prepopulated_fields = {"code": ["name_en"]}

    def has_delete_permission(self, request, obj=None):
        # Resolved follow-ups name it; make it inactive instead.
        if obj is not None and obj.followups.exists():
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        root_cause_save(root_cause=obj)

    def delete_service(self, obj):
        root_cause_delete(root_cause=obj)


class TeamMemberInline(CxTabularInline):
    model = TeamMember
    extra = 1
    fields = ["user", "available", "last_assigned_at"]
    readonly_fields = ["last_assigned_at"]
    raw_id_fields = ["user"]


class TeamForm(forms.ModelForm):
    slack_webhook_url = forms.URLField(
        assume_scheme="https",
        required=False,
        max_length=500,
        label=Team._meta.get_field("slack_webhook_url").verbose_name,
        help_text=Team._meta.get_field("slack_webhook_url").help_text,
    )

    class Meta:
        model = Team
        fields = [
            "name",
            "manager",
            "time_zone",
            "business_hours_only",
            "workday_start",
            "workday_end",
            "workdays",
            "holiday_country",
            "slack_webhook_url",
        ]

    def _post_clean(self):
        super()._post_clean()
        _service_errors(self, team_validate)


@admin.register(Team)
class TeamAdmin(ServiceDeleteMixin, admin.ModelAdmin):
    form = TeamForm
    list_display = ["name", "manager", "time_zone", "business_hours_only"]
    list_select_related = ["manager"]
    inlines = [TeamMemberInline]

    def save_model(self, request, obj, form, change):
        team_save(team=obj)

    def save_formset(self, request, form, formset, change):
        # The members, one by one through the services.
        members = formset.save(commit=False)
        for member in formset.deleted_objects:
            team_member_delete(member=member)
        for member in members:
            team_member_save(member=member)

    def delete_service(self, obj):
        team_delete(team=obj)


class FollowUpRuleForm(forms.ModelForm):
    class Meta:
        model = FollowUpRule
        fields = [
            "name",
            "position",
            "active",
            "survey",
            "survey_kind",
            "score_low",
            "score_high",
            "comment_words",
            "customer_properties",
            "segment",
            "priority",
            "team",
            "assignment",
            "first_contact_sla_hours",
            "resolution_sla_hours",
        ]

    def _post_clean(self):
        super()._post_clean()
        _service_errors(self, followup_rule_validate)


@admin.register(FollowUpRule)
class FollowUpRuleAdmin(EditableListMixin, ServiceDeleteMixin, admin.ModelAdmin):
    form = FollowUpRuleForm
    list_display = [
        "name",
        "position",
        "active",
        "survey_kind",
        "score_low",
        "score_high",
        "priority",
        "team",
    ]
    list_editable = ["position", "active"]
    list_select_related = ["team"]
    raw_id_fields = ["survey", "segment"]
    fieldsets = [
        (None, {"fields": ["name", "position", "active"]}),
        (
            _("When an answer matches"),
            {
                "fields": [
                    "survey",
                    "survey_kind",
                    "score_low",
                    "score_high",
                    "comment_words",
                    "customer_properties",
                    "segment",
                ]
            },
        ),
        (
            _("It opens a follow-up"),
            {
                "fields": [
                    "priority",
                    "team",
                    "assignment",
                    "first_contact_sla_hours",
                    "resolution_sla_hours",
                ]
            },
        ),
    ]

    def save_model(self, request, obj, form, change):
        followup_rule_save(rule=obj)

    def delete_service(self, obj):
        followup_rule_delete(rule=obj)


class StaffProfileInline(admin.StackedInline):
    model = StaffProfile
    can_delete = False
    fields = ["language"]


# The user's page carries their email language (StaffProfile), so that staff
# edit it where they edit the user.
User = get_user_model()
if admin.site.is_registered(User):
    user_admin = type(admin.site.get_model_admin(User))
    admin.site.unregister(User)
else:
    user_admin = UserAdmin


@admin.register(User)
class CxUserAdmin(user_admin):
    inlines = [*user_admin.inlines, StaffProfileInline]
