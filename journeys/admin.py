from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from cxm.admin_site import CxTabularInline, ServiceDeleteMixin

from . import services
from .models import Journey, Persona, Stage, Touchpoint


class StageInline(CxTabularInline):
    model = Stage
    extra = 0
    show_change_link = True  # its touchpoints are edited on the stage's page


class TouchpointInline(CxTabularInline):
    model = Touchpoint
    extra = 1
    fields = [
        "name",
        "channel",
        "position",
        "interaction_kind",
        "campaigns",
        "expected_emotion",
    ]


@admin.register(Persona)
class PersonaAdmin(ServiceDeleteMixin, admin.ModelAdmin):
    list_display = ["name", "segment"]
    search_fields = ["name"]

    def save_model(self, request, obj, form, change):
        services.persona_update(persona=obj)

    def delete_service(self, obj):
        services.persona_delete(persona=obj)


def _formset_save(formset, *, save, delete) -> None:
    """Saves an inline formset's rows through the services `save` and `delete`."""
    instances = formset.save(commit=False)
    for obj in formset.deleted_objects:
        delete(obj)
    for obj in instances:
        save(obj)


@admin.register(Journey)
class JourneyAdmin(ServiceDeleteMixin, admin.ModelAdmin):
    list_display = ["name", "persona", "created_at", "map_link"]
    search_fields = ["name"]
    list_filter = ["persona"]
    inlines = [StageInline]

    @admin.display(description=_("journey map"))
    def map_link(self, obj):
        return format_html('<a href="{}">{}</a>', obj.get_absolute_url(), _("Map"))

    def save_model(self, request, obj, form, change):
        services.journey_save(journey=obj)

    def save_formset(self, request, form, formset, change):
        _formset_save(
            formset,
            save=lambda stage: services.stage_save(stage=stage),
            delete=lambda stage: services.stage_delete(stage=stage),
        )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # A new journey saved without stages starts with the classic five.
        if not change and not form.instance.stages.exists():
            services.journey_add_default_stages(journey=form.instance)

    def delete_service(self, obj):
        services.journey_delete(journey=obj)


@admin.register(Stage)
class StageAdmin(ServiceDeleteMixin, admin.ModelAdmin):
    list_display = ["name", "journey", "position"]
    list_filter = ["journey"]
    list_select_related = ["journey"]
    inlines = [TouchpointInline]

    def save_model(self, request, obj, form, change):
        services.stage_save(stage=obj)

    def save_formset(self, request, form, formset, change):
        _formset_save(
            formset,
            save=lambda touchpoint: services.touchpoint_save(touchpoint=touchpoint),
            delete=lambda touchpoint: services.touchpoint_delete(touchpoint=touchpoint),
        )

    def delete_service(self, obj):
        services.stage_delete(stage=obj)


@admin.register(Touchpoint)
class TouchpointAdmin(ServiceDeleteMixin, admin.ModelAdmin):
    list_display = ["name", "stage", "channel", "interaction_kind", "expected_emotion"]
    list_filter = ["channel", "stage__journey"]
    list_select_related = ["stage"]
    search_fields = ["name", "interaction_kind"]
    # The campaigns in a plain list to pick from: Django's filter_horizontal
    # widget puts an aria-label on a bare <span>, which ARIA forbids, and its
    # autocomplete's search box has no label.

    def save_model(self, request, obj, form, change):
        services.touchpoint_save(touchpoint=obj)

    def delete_service(self, obj):
        services.touchpoint_delete(touchpoint=obj)
