from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import metrics
from .models import Campaign, CampaignStatus, Invitation, Question, Response, Survey
from .services import campaign_send


class QuestionInline(admin.TabularInline):
    """A survey's questions come with its kind; staff may reword them."""

    model = Question
    extra = 0
    fields = ["position", "type", "text_en", "text_ko", "required"]
    readonly_fields = ["position", "type", "required"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Survey)
class SurveyAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name"]
    inlines = [QuestionInline]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "survey",
        "status",
        "sent_at",
        "invited",
        "responses",
        "nps",
    ]
    list_filter = ["status", "survey"]
    search_fields = ["name"]
    readonly_fields = ["status", "sent_at", "created_at", "nps_summary"]
    actions = ["send"]

    def get_queryset(self, request):
        return metrics.campaigns_with_counts(super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if obj is not None and obj.status != CampaignStatus.DRAFT:
            # Who was invited to what is history once the campaign went out.
            return [*fields, "survey", "audience"]
        return fields

    @admin.display(description=_("invited"), ordering="invited")
    def invited(self, obj):
        return obj.invited

    @admin.display(description=_("responses"), ordering="responses")
    def responses(self, obj):
        return obj.responses

    @admin.display(description=_("NPS"))
    def nps(self, obj):
        value = metrics.nps_from_row(obj).nps
        return "—" if value is None else value

    @admin.display(description=_("NPS"))
    def nps_summary(self, obj):
        if obj.pk is None:
            return "—"
        result = metrics.nps(campaign=obj)
        if result.nps is None:
            return _("No responses yet.")
        return _(
            "%(nps)s ± %(moe)s from %(n)d responses: %(p)d promoters, "
            "%(pa)d passives, %(d)d detractors"
        ) % {
            "nps": result.nps,
            "moe": result.margin_of_error,
            "n": result.responses,
            "p": result.promoters,
            "pa": result.passives,
            "d": result.detractors,
        }

    @admin.action(description=_("Send the selected campaigns"))
    def send(self, request, queryset):
        for campaign in queryset:
            try:
                count = campaign_send(campaign=campaign)
            except ValidationError as e:
                self.message_user(
                    request, f"{campaign}: {' '.join(e.messages)}", messages.ERROR
                )
            else:
                self.message_user(
                    request,
                    ngettext(
                        "%(campaign)s: %(count)d invitation queued.",
                        "%(campaign)s: %(count)d invitations queued.",
                        count,
                    )
                    % {"campaign": campaign, "count": count},
                )


class HistoryAdmin(admin.ModelAdmin):
    """
    Rows that record what happened (created by sending and by customers' answers):
    viewed in the admin, never added or edited there, which would bypass the rules
    that send them and open follow-ups.
    """

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting one would take its follow-up and timeline with it; deleting the
        # customer (erasure) is the way to remove what a customer gave us.
        return False


@admin.register(Invitation)
class InvitationAdmin(HistoryAdmin):
    list_display = ["customer", "campaign", "status", "sent_at", "answered_at"]
    list_filter = ["status", "campaign"]
    search_fields = ["customer__email", "token"]
    list_select_related = ["customer", "campaign"]
    raw_id_fields = ["customer", "campaign"]
    readonly_fields = [
        "token",
        "created_at",
        "sent_at",
        "answered_at",
        "claimed_at",
        "attempts",
    ]


@admin.register(Response)
class ResponseAdmin(HistoryAdmin):
    list_display = ["customer", "campaign", "score", "created_at"]
    list_filter = ["invitation__campaign"]
    search_fields = ["invitation__customer__email", "comment"]
    list_select_related = ["invitation__customer", "invitation__campaign"]
    raw_id_fields = ["invitation"]

    @admin.display(description=_("customer"))
    def customer(self, obj):
        return obj.invitation.customer

    @admin.display(description=_("campaign"))
    def campaign(self, obj):
        return obj.invitation.campaign
