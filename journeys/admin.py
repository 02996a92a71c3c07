from django.contrib import admin

from cxm.admin_site import ServiceDeleteMixin

from . import services
from .models import Journey, Stage, Touchpoint


class StageInline(admin.TabularInline):
    model = Stage
    extra = 1


class TouchpointInline(admin.TabularInline):
    model = Touchpoint
    extra = 1


def _formset_save(formset, *, save, delete) -> None:
    """Saves an inline formset's rows through the services `save` and `delete`."""
    instances = formset.save(commit=False)
    for obj in formset.deleted_objects:
        delete(obj)
    for obj in instances:
        save(obj)


@admin.register(Journey)
class JourneyAdmin(ServiceDeleteMixin, admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]
    inlines = [StageInline]

    def save_model(self, request, obj, form, change):
        services.journey_save(journey=obj)

    def save_formset(self, request, form, formset, change):
        _formset_save(
            formset,
            save=lambda stage: services.stage_save(stage=stage),
            delete=lambda stage: services.stage_delete(stage=stage),
        )

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
    list_display = ["name", "stage", "channel"]
    list_filter = ["channel", "stage__journey"]
    list_select_related = ["stage"]
    search_fields = ["name"]

    def save_model(self, request, obj, form, change):
        services.touchpoint_save(touchpoint=obj)

    def delete_service(self, obj):
        services.touchpoint_delete(touchpoint=obj)
