import factory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from cxm.customers.models import Customer, Segment
from cxm.customers.services import segment_create
from surveys.models import Campaign, Invitation, Survey
from surveys.services import survey_create


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@cx.example.com")
    password = factory.django.Password("correct horse battery")

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        for name in extracted or []:
            self.groups.add(Group.objects.get_or_create(name=name)[0])


def agent(**kwargs):
    return UserFactory(groups=[settings.FOLLOWUP_AGENTS_GROUP], **kwargs)


def manager(**kwargs):
    return UserFactory(groups=[settings.FOLLOWUP_MANAGERS_GROUP], **kwargs)


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    name = factory.Faker("name")
    locale = "en"
    properties = factory.LazyFunction(dict)


class SurveyFactory(factory.django.DjangoModelFactory):
    """An NPS survey with its standard questions, made by the real service."""

    class Meta:
        model = Survey

    name = factory.Sequence(lambda n: f"NPS survey {n}")
    kind = "nps"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return survey_create(**kwargs)


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    survey = factory.SubFactory(SurveyFactory)


class InvitationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invitation

    campaign = factory.SubFactory(CampaignFactory)
    customer = factory.SubFactory(CustomerFactory)


def property_segment(name: str, value) -> Segment:
    """A segment of the customers whose property `name` equals `value`."""
    return segment_create(
        name=f"{name} = {value!r} ({Segment.objects.count()})",
        conditions=[{"type": "property", "name": name, "op": "equals", "value": value}],
    )
