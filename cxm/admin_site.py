"""
The admin as CX staff use it: their models first, grouped as they think of them
(customers, surveys and campaigns, follow-ups, journeys); the developer and system
models (users, API tokens, periodic tasks and their schedules, the outbox,
lockouts) only for superusers, in the index and behind their pages alike.
"""

from django.contrib import admin, messages
from django.contrib.admin.apps import AdminConfig
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

# The CX staff's sections, in order: the app, its title, its models in the
# order staff reach for them (any other model of the app after them).
CX_SECTIONS = [
    ("customers", _("Customers"), ["Customer", "Segment", "Interaction"]),
    (
        "surveys",
        _("Surveys and campaigns"),
        ["Campaign", "Survey", "Response", "Invitation"],
    ),
    ("followups", _("Follow-ups"), ["FollowUp", "FollowUpRule", "Team", "RootCause"]),
    ("journeys", _("Journeys"), ["Journey", "Stage", "Touchpoint"]),
]
CX_APPS = [label for label, _title, _models in CX_SECTIONS]


def is_system_model(model) -> bool:
    """True for a model that is no CX staff's business (see the module)."""
    return model._meta.app_label not in CX_APPS


class CxAdminSite(admin.AdminSite):
    site_header = _("cxm administration")
    site_title = _("cxm admin")
    index_title = _("Customer experience management")
    # The sidebar repeats the index and took 276 of a 1280 px screen's pixels
    # from the lists, whose last columns then hid in a box scrolled sideways;
    # the breadcrumbs lead back to the index.
    enable_nav_sidebar = False

    def get_app_list(self, request, app_label=None):
        """Returns the sections of the index and the sidebar: the CX ones in
        CX_SECTIONS' order, then (superusers only) the system apps by name."""
        app_dict = self._build_app_dict(request, app_label)
        sections = []
        for label, title, order in CX_SECTIONS:
            app = app_dict.pop(label, None)
            if app is None:
                continue
            app["name"] = title
            app["models"].sort(
                key=lambda m: (
                    order.index(m["object_name"])
                    if m["object_name"] in order
                    else len(order),
                    str(m["name"]),
                )
            )
            sections.append(app)
        if request.user.is_superuser:
            system = sorted(app_dict.values(), key=lambda app: str(app["name"]))
            for app in system:
                app["models"].sort(key=lambda m: str(m["name"]))
            sections += system
        return sections

    def system_models_restrict(self) -> None:
        """Lets only superusers see or change the system models' admin pages,
        whatever permissions a staff user's groups hold."""
        for model, model_admin in self._registry.items():
            if not is_system_model(model):
                continue
            for name in (
                "has_module_permission",
                "has_view_permission",
                "has_add_permission",
                "has_change_permission",
                "has_delete_permission",
            ):
                original = getattr(model_admin, name)
                setattr(model_admin, name, _superuser_only(original))


class ServiceDeleteMixin:
    """
    A ModelAdmin whose deletes (the delete page and the "delete selected" action)
    go through a service, delete_service(obj), one object at a time, never a bare
    queryset delete.
    """

    def delete_service(self, obj) -> None:
        raise NotImplementedError

    def delete_model(self, request, obj):
        try:
            self.delete_service(obj)
        except ValidationError as e:
            self.message_user(request, " ".join(e.messages), messages.ERROR)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class LargeListMixin:
    """
    A list of a million rows: Django's checkbox of each row is rendered through a
    widget template (a quarter of a 100-row page's time); the same input is
    written directly here.
    """

    list_per_page = 50

    def action_checkbox(self, obj):
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" '
            'aria-label="{}">',
            ACTION_CHECKBOX_NAME,
            obj.pk,
            format_html(gettext("Select this object for an action - {}"), str(obj)),
        )


def labelled_formset(formset_class):
    """
    Returns `formset_class` whose inputs are named by their field's label
    (aria-label): in a table's cells, under a column header that is no <label>,
    a screen reader would otherwise announce an input with no name.
    """

    class Labelled(formset_class):
        def add_fields(self, form, index):
            super().add_fields(form, index)
            for field in form.fields.values():
                # The input itself, inside the add/change links' wrapper (whose
                # own attrs are not its input's once the form copied it).
                widget = getattr(field.widget, "widget", field.widget)
                if field.label and not widget.is_hidden:
                    widget.attrs.setdefault("aria-label", field.label)

    Labelled.__name__ = formset_class.__name__
    return Labelled


class CxTabularInline(admin.TabularInline):
    """A tabular inline whose inputs have names (labelled_formset)."""

    def get_formset(self, request, obj=None, **kwargs):
        return labelled_formset(super().get_formset(request, obj, **kwargs))


class EditableListMixin:
    """A ModelAdmin with list_editable columns whose inputs have names
    (labelled_formset)."""

    def get_changelist_formset(self, request, **kwargs):
        return labelled_formset(super().get_changelist_formset(request, **kwargs))


def _superuser_only(check):
    def restricted(request, *args, **kwargs):
        return request.user.is_superuser and check(request, *args, **kwargs)

    return restricted


class CxAdminConfig(AdminConfig):
    default_site = "cxm.admin_site.CxAdminSite"

    def ready(self):
        super().ready()  # autodiscover: every app's admin.py registers
        from django.contrib.admin import site

        site.system_models_restrict()
