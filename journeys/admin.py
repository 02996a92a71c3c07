from django.contrib import admin

from .models import Journey, Stage, Touchpoint


class StageInline(admin.TabularInline):
    model = Stage
    extra = 1


class TouchpointInline(admin.TabularInline):
    model = Touchpoint
    extra = 1


@admin.register(Journey)
class JourneyAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]
    inlines = [StageInline]


@admin.register(Stage)
class StageAdmin(admin.ModelAdmin):
    list_display = ["name", "journey", "position"]
    list_filter = ["journey"]
    inlines = [TouchpointInline]


@admin.register(Touchpoint)
class TouchpointAdmin(admin.ModelAdmin):
    list_display = ["name", "stage", "channel"]
    list_filter = ["channel", "stage__journey"]
    search_fields = ["name"]
