"""
Nothing in the admin writes around a service: every CX ModelAdmin's forms (add,
change, inlines, list edits), deletes and actions are walked, and each write is
shown to call the service the API (or the pages) call.
"""

import importlib
from html.parser import HTMLParser
from itertools import count
from unittest import mock

import pytest
from django.contrib import admin
from django.contrib.admin import ModelAdmin
from django.test import RequestFactory

from cxm.admin_site import CX_APPS, is_system_model
from cxm.customers.models import Customer, Interaction, Segment
from cxm.customers.services import interaction_record, segment_create
from cxm.followups.models import FollowUp, FollowUpRule, RootCause, Team, TeamMember
from cxm.followups.services import followup_open_manual
from journeys.models import Journey, Persona, Stage, Touchpoint
from surveys.models import Campaign, Response, Survey
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    SurveyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

CX_ADMINS = [
    pytest.param(model_admin, id=model._meta.label)
    for model, model_admin in admin.site._registry.items()
    if not is_system_model(model)
]


@pytest.fixture
def superuser_request(db):
    request = RequestFactory().get("/admin/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    return request


def overrides(model_admin, name: str) -> bool:
    """True if the admin's class replaces ModelAdmin's method `name` (which would
    write the object itself)."""
    return getattr(type(model_admin), name) is not getattr(ModelAdmin, name)


def test_it_walks_every_cx_model_admin():
    walked = {p.id.split(".")[0] for p in CX_ADMINS}
    assert walked == set(CX_APPS)


@pytest.mark.parametrize("model_admin", CX_ADMINS)
def test_it_saves_every_admin_form_through_a_service(model_admin, superuser_request):
    request = superuser_request
    can_save = (
        model_admin.has_add_permission(request)
        or model_admin.has_change_permission(request)
        or bool(model_admin.list_editable)
    )
    if can_save:
        assert overrides(model_admin, "save_model") or overrides(
            model_admin, "save_related"
        ), f"{type(model_admin).__name__} saves its form itself"


@pytest.mark.parametrize("model_admin", CX_ADMINS)
def test_it_saves_every_inline_through_a_service(model_admin, superuser_request):
    request = superuser_request
    for inline in model_admin.get_inline_instances(request):
        writes = (
            inline.has_add_permission(request, None)
            or inline.has_change_permission(request, None)
            or inline.has_delete_permission(request, None)
        ) and not set(inline.get_fields(request)) <= set(
            inline.get_readonly_fields(request)
        )
        if writes:
            assert overrides(model_admin, "save_formset") or overrides(
                model_admin, "save_related"
            ), f"{type(model_admin).__name__} saves {inline.model.__name__} itself"


@pytest.mark.parametrize("model_admin", CX_ADMINS)
def test_it_deletes_through_a_service(model_admin, superuser_request):
    request = superuser_request
    if model_admin.has_delete_permission(request):
        assert overrides(model_admin, "delete_model")
        assert overrides(model_admin, "delete_queryset")


@pytest.mark.parametrize("model_admin", CX_ADMINS)
def test_it_acts_through_a_service(model_admin, superuser_request):
    for name, (func, _name, _text) in model_admin.get_actions(
        superuser_request
    ).items():
        if name == "delete_selected":
            # Django's action deletes with delete_queryset (checked above).
            assert overrides(model_admin, "delete_queryset")
        else:
            # An action of our own, in the app's admin module; which service
            # each calls is shown in tests/test_admin.py (send, copy …).
            assert func.__module__.split(".")[-1] == "admin", name
            assert func.__module__ != "django.contrib.admin.actions", name


# The writes themselves, through the admin's pages, each seen at its service.


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


NUMBERS = count(1)


def _team():
    return Team.objects.create(name=f"Care {next(NUMBERS)}", time_zone="UTC")


def _interaction():
    recorded, _created = interaction_record(
        customer=CustomerFactory(), kind="purchase", channel="web"
    )
    return recorded


def _stage():
    return Stage.objects.create(
        journey=Journey.objects.create(name="Buy"), name="Use", position=1
    )


DELETES = [
    (Customer, CustomerFactory, "cxm.customers.services.customer_delete"),
    (Interaction, _interaction, "cxm.customers.services.interaction_delete"),
    (
        Segment,
        lambda: segment_create(name=f"VIP {next(NUMBERS)}", conditions=[]),
        "cxm.customers.services.segment_delete",
    ),
    (Survey, SurveyFactory, "surveys.admin.survey_delete"),
    (Campaign, CampaignFactory, "surveys.admin.campaign_delete"),
    (
        RootCause,
        lambda: RootCause.objects.create(
            code=f"x{next(NUMBERS)}", name_en=f"X {next(NUMBERS)}", name_ko="엑스"
        ),
        "cxm.followups.admin.root_cause_delete",
    ),
    (Team, _team, "cxm.followups.admin.team_delete"),
    (
        FollowUpRule,
        lambda: FollowUpRule.objects.create(name="Detractors", survey_kind="nps"),
        "cxm.followups.admin.followup_rule_delete",
    ),
    (
        Journey,
        lambda: Journey.objects.create(name="Buy"),
        "journeys.services.journey_delete",
    ),
    (Stage, _stage, "journeys.services.stage_delete"),
    (
        Persona,
        lambda: Persona.objects.create(name=f"Shopper {next(NUMBERS)}"),
        "journeys.services.persona_delete",
    ),
    (
        Touchpoint,
        lambda: Touchpoint.objects.create(stage=_stage(), name="App", channel="app"),
        "journeys.services.touchpoint_delete",
    ),
]


@pytest.mark.parametrize(
    "model, make, service", DELETES, ids=[d[0].__name__ for d in DELETES]
)
def test_it_deletes_each_object_through_its_service(admin_client, model, make, service):
    obj = make()
    opts = model._meta
    url = f"/admin/{opts.app_label}/{opts.model_name}/{obj.pk}/delete/"
    target = service.rsplit(".", 1)
    module = __import__(target[0], fromlist=[target[1]])
    with mock.patch(service, wraps=getattr(module, target[1])) as spy:
        r = admin_client.post(url, {"post": "yes"})
    assert r.status_code == 302, r.content.decode()[:500]
    assert spy.call_count == 1
    assert not model.objects.filter(pk=obj.pk).exists()


@pytest.mark.parametrize(
    "model, make, service", DELETES, ids=[d[0].__name__ for d in DELETES]
)
def test_it_deletes_selected_objects_through_the_service(
    admin_client, superuser_request, model, make, service
):
    if "delete_selected" not in admin.site.get_model_admin(model).get_actions(
        superuser_request
    ):
        return  # this admin offers no bulk delete (one by one, above)
    first, second = make(), make()
    opts = model._meta
    target = service.rsplit(".", 1)
    module = __import__(target[0], fromlist=[target[1]])
    with mock.patch(service, wraps=getattr(module, target[1])) as spy:
        r = admin_client.post(
            f"/admin/{opts.app_label}/{opts.model_name}/",
            {
                "action": "delete_selected",
                "_selected_action": [first.pk, second.pk],
                "post": "yes",
            },
        )
    assert r.status_code == 302
    assert spy.call_count == 2
    assert not model.objects.filter(pk__in=[first.pk, second.pk]).exists()


def test_it_saves_a_journey_and_its_stages_through_the_services(admin_client):
    with (
        mock.patch(
            "journeys.services.journey_save",
            wraps=__import__("journeys.services").services.journey_save,
        ) as journey_save,
        mock.patch(
            "journeys.services.stage_save",
            wraps=__import__("journeys.services").services.stage_save,
        ) as stage_save,
    ):
        r = admin_client.post(
            "/admin/journeys/journey/add/",
            {
                "name": "Onboarding",
                "description": "",
                "stages-TOTAL_FORMS": "1",
                "stages-INITIAL_FORMS": "0",
                "stages-0-name": "Sign-up",
                "stages-0-position": "1",
            },
        )
    assert r.status_code == 302, r.content.decode()[:2000]
    assert journey_save.call_count == 1
    assert stage_save.call_count == 1
    assert Stage.objects.get().journey.name == "Onboarding"


def test_it_saves_team_members_through_the_services(admin_client):
    team = _team()
    user = UserFactory(is_staff=True)
    with mock.patch(
        "cxm.followups.admin.team_member_save",
        wraps=__import__(
            "cxm.followups.services", fromlist=["team_member_save"]
        ).team_member_save,
    ) as member_save:
        r = admin_client.post(
            f"/admin/followups/team/{team.pk}/change/",
            {
                "name": team.name,
                "time_zone": "UTC",
                "workday_start": "09:00",
                "workday_end": "18:00",
                "workdays": "[0, 1, 2, 3, 4]",
                "memberships-TOTAL_FORMS": "1",
                "memberships-INITIAL_FORMS": "0",
                "memberships-0-user": str(user.pk),
                "memberships-0-available": "on",
            },
        )
    assert r.status_code == 302, (
        r.context["adminform"].form.errors,
        [f.errors for f in r.context["inline_admin_formsets"][0].formset],
    )
    assert member_save.call_count == 1
    assert TeamMember.objects.get(team=team).user == user


def test_it_saves_root_causes_edited_in_the_list_through_the_service(admin_client):
    cause = RootCause.objects.create(code="x", name_en="X", name_ko="엑스")
    with mock.patch(
        "cxm.followups.admin.root_cause_save",
        wraps=__import__(
            "cxm.followups.services", fromlist=["root_cause_save"]
        ).root_cause_save,
    ) as save:
        r = admin_client.post(
            "/admin/followups/rootcause/",
            {
                "form-TOTAL_FORMS": "1",
                "form-INITIAL_FORMS": "1",
                "form-0-id": str(cause.pk),
                "form-0-position": "3",
                "_save": "Save",
            },
        )
    assert r.status_code == 302, r.content.decode()[:3000]
    assert save.call_count == 1
    cause.refresh_from_db()
    assert cause.position == 3 and not cause.active


def test_it_keeps_the_system_models_from_staff_who_are_not_superusers(client):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.set(
        __import__(
            "django.contrib.auth.models", fromlist=["Permission"]
        ).Permission.objects.all()
    )
    client.force_login(staff)
    index = client.get("/admin/").content.decode()
    assert "Customers" in index and "Surveys and campaigns" in index
    assert "Periodic tasks" not in index and "Tokens" not in index
    assert client.get("/admin/django_celery_beat/periodictask/").status_code == 403
    assert client.get("/admin/customers/customer/").status_code == 200


# Every admin form, as a browser would post it: the page's own form read from its
# HTML (every input, select and textarea with its value), one field changed, then
# posted; the service that must do the write is spied on.


class _FormReader(HTMLParser):
    """The fields of the form with id `form_id`, as the browser would send them."""

    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id, self.inside, self.data = form_id, False, []
        self._select = self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        if not self.inside:
            return
        name = a.get("name")
        if tag == "input" and name and "disabled" not in a:
            kind = a.get("type", "text")
            if kind in ("submit", "button", "image", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.data.append((name, a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.data.append((self._select, a.get("value", "")))
        elif tag == "textarea" and name:
            self._textarea = [name, ""]

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            # The parser drops the newline right after <textarea>, as browsers do.
            self.data.append((self._textarea[0], self._textarea[1].removeprefix("\n")))
            self._textarea = None


def form_post(client, url: str, changes: dict):
    """GETs the admin page `url`, reads its form and posts it back with `changes`
    (a value of None drops the field): what a staff member's Save does."""
    page = client.get(url)
    assert page.status_code == 200, url
    model_name = url.strip("/").split("/")[2]
    reader = _FormReader(f"{model_name}_form")
    reader.feed(page.content.decode())
    assert reader.data, f"no form read at {url}"
    data: dict[str, list[str]] = {}
    for name, value in reader.data:
        data.setdefault(name, []).append(value)
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value if isinstance(value, list) else [value]
    data["_save"] = ["Save"]
    return client.post(url, data)


def _spied(path: str):
    module_name, name = path.rsplit(".", 1)
    module = importlib.import_module(module_name)
    return mock.patch(path, wraps=getattr(module, name))


def _followup():
    return followup_open_manual(
        customer=CustomerFactory(), actor=UserFactory(is_superuser=True)
    )


def _persona():
    return Persona.objects.create(name=f"Shopper {next(NUMBERS)}")


def _rule():
    return FollowUpRule.objects.create(name="Detractors", survey_kind="nps")


def _root_cause():
    n = next(NUMBERS)
    return RootCause.objects.create(code=f"c{n}", name_en=f"Cause {n}", name_ko="원인")


# (label, the object of a change form or None for the add form, the fields
# changed, the service that must write).
FORMS = [
    (
        "customer add",
        Customer,
        None,
        lambda: {"email": "new@example.com"},
        "cxm.customers.services.customer_create",
    ),
    (
        "customer change",
        Customer,
        CustomerFactory,
        lambda: {"name": "Renamed"},
        "cxm.customers.services.customer_update",
    ),
    (
        "interaction add",
        Interaction,
        None,
        lambda: {
            "customer": str(CustomerFactory().pk),
            "kind": "purchase",
            "channel": "web",
            "occurred_at_0": "2026-01-02",
            "occurred_at_1": "10:00:00",
        },
        "cxm.customers.services.interaction_record",
    ),
    (
        "segment add",
        Segment,
        None,
        lambda: {
            "name": "Pro",
            "conditions": '[{"type": "property", "name": "plan", '
            '"op": "equals", "value": "pro"}]',
        },
        "cxm.customers.services.segment_create",
    ),
    (
        "segment change",
        Segment,
        lambda: segment_create(name=f"VIP {next(NUMBERS)}", conditions=[]),
        lambda: {"name": "Renamed"},
        "cxm.customers.services.segment_update",
    ),
    (
        "survey change",
        Survey,
        SurveyFactory,
        lambda: {"name": "Renamed"},
        "surveys.admin.survey_update",
    ),
    (
        "campaign add",
        Campaign,
        None,
        lambda: {"name": "Spring", "survey": str(SurveyFactory().pk)},
        "surveys.admin.campaign_create",
    ),
    (
        "campaign change",
        Campaign,
        CampaignFactory,
        lambda: {"name": "Renamed"},
        "surveys.admin.campaign_update",
    ),
    (
        "follow-up change",
        FollowUp,
        _followup,
        lambda: {"priority": "high"},
        "cxm.followups.admin.followup_set_priority",
    ),
    (
        "follow-up rule change",
        FollowUpRule,
        _rule,
        lambda: {"name": "Renamed"},
        "cxm.followups.admin.followup_rule_save",
    ),
    (
        "root cause add",
        RootCause,
        None,
        lambda: {"code": "late", "name_en": "Late", "name_ko": "지연"},
        "cxm.followups.admin.root_cause_save",
    ),
    (
        "team change",
        Team,
        _team,
        lambda: {"name": "Renamed"},
        "cxm.followups.admin.team_save",
    ),
    (
        "journey change",
        Journey,
        lambda: Journey.objects.create(name="Buy"),
        lambda: {"name": "Renamed"},
        "journeys.services.journey_save",
    ),
    (
        "stage change",
        Stage,
        _stage,
        lambda: {"name": "Renamed"},
        "journeys.services.stage_save",
    ),
    (
        "touchpoint add",
        Touchpoint,
        None,
        lambda: {"stage": str(_stage().pk), "name": "App", "channel": "app"},
        "journeys.services.touchpoint_save",
    ),
    (
        "persona add",
        Persona,
        None,
        lambda: {"name": "Shopper"},
        "journeys.services.persona_update",
    ),
    (
        "persona change",
        Persona,
        _persona,
        lambda: {"name": "Renamed"},
        "journeys.services.persona_update",
    ),
]


@pytest.mark.parametrize(
    "model, make, changes, service", [f[1:] for f in FORMS], ids=[f[0] for f in FORMS]
)
def test_it_saves_each_admin_form_through_its_service(
    admin_client, model, make, changes, service
):
    opts = model._meta
    base = f"/admin/{opts.app_label}/{opts.model_name}/"
    url = f"{base}{make().pk}/change/" if make else f"{base}add/"
    edits = changes()
    with _spied(service) as spy:
        r = form_post(admin_client, url, edits)
    assert r.status_code == 302, (
        r.context and r.context.get("adminform") and r.context["adminform"].form.errors
    ) or r.content.decode()[:2000]
    assert spy.call_count >= 1, f"{service} was not called"
    name = edits.get("name")
    if name and make:
        assert model.objects.filter(name=name).count() == 1


# (model, make, action, service)
ACTIONS = [
    (
        Campaign,
        lambda: CampaignFactory(status="active"),
        "pause",
        "surveys.admin.campaign_pause",
    ),
    (
        Campaign,
        lambda: CampaignFactory(status="paused"),
        "resume",
        "surveys.admin.campaign_resume",
    ),
    (
        Campaign,
        lambda: CampaignFactory(status="active"),
        "stop",
        "surveys.admin.campaign_stop",
    ),
    (Campaign, CampaignFactory, "send", "surveys.admin.campaign_send"),
    (Survey, SurveyFactory, "copy", "surveys.admin.survey_copy"),
]


@pytest.mark.parametrize(
    "model, make, action, service", ACTIONS, ids=[a[2] for a in ACTIONS]
)
def test_it_runs_each_admin_action_through_its_service(
    admin_client, model, make, action, service
):
    obj = make()
    opts = model._meta
    with _spied(service) as spy:
        r = admin_client.post(
            f"/admin/{opts.app_label}/{opts.model_name}/",
            {"action": action, "_selected_action": [obj.pk]},
        )
    assert r.status_code == 302
    assert spy.call_count == 1
    assert spy.call_args.kwargs[opts.model_name] == obj


# Actions that only read (a download), so have no service to go through.
READING_ACTIONS = {(Response, "export_csv")}


def test_it_offers_no_action_of_its_own_the_walk_leaves_out(superuser_request):
    walked = {(a[0], a[2]) for a in ACTIONS} | READING_ACTIONS
    for model, model_admin in admin.site._registry.items():
        if is_system_model(model):
            continue
        for name in model_admin.get_actions(superuser_request):
            if name != "delete_selected":
                assert (model, name) in walked, f"{model.__name__}: {name}"


def test_the_form_walk_covers_every_admin_that_writes(superuser_request):
    walked = {f[1] for f in FORMS}
    for model, model_admin in admin.site._registry.items():
        if is_system_model(model):
            continue
        if model_admin.has_add_permission(
            superuser_request
        ) or model_admin.has_change_permission(superuser_request):
            assert model in walked, f"{model.__name__} has a form no test posts"
