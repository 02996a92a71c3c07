from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from . import services
from .models import Journey, Persona, Stage, Touchpoint


class StageInline(admin.TabularInline):
    model = Stage
    extra = 0
    show_change_link = True  # its touchpoints are edited on the stage's page


class TouchpointInline(admin.TabularInline):
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
class PersonaAdmin(admin.ModelAdmin):
    list_display = ["name", "segment"]
    search_fields = ["name"]

    def save_model(self, request, obj, form, change):
        services.persona_update(persona=obj)


@admin.register(Journey)
class JourneyAdmin(admin.ModelAdmin):
    list_display = ["name", "persona", "created_at", "map_link"]
    search_fields = ["name"]
    list_filter = ["persona"]
    inlines = [StageInline]

    @admin.display(description=_("journey map"))
    def map_link(self, obj):
        return format_html('<a href="{}">{}</a>', obj.get_absolute_url(), _("Map"))

    def save_model(self, request, obj, form, change):
        services.journey_save(journey=obj)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # A new journey saved without stages starts with the classic five.
        if not change and not form.instance.stages.exists():
            services.journey_add_default_stages(journey=form.instance)


@admin.register(Stage)
class StageAdmin(admin.ModelAdmin):
    list_display = ["name", "journey", "position"]
    list_filter = ["journey"]
    inlines = [TouchpointInline]


@admin.register(Touchpoint)
class TouchpointAdmin(admin.ModelAdmin):
    list_display = ["name", "stage", "channel", "interaction_kind", "expected_emotion"]
    list_filter = ["channel", "stage__journey"]
    search_fields = ["name", "interaction_kind"]
    filter_horizontal = ["campaigns"]
