"""
Loads demo data once: customers; a relationship NPS campaign to all, a post-purchase
CSAT campaign (with an extra choice question) to pro customers and a post-support
CES campaign to enterprise customers, sent and answered; the follow-ups their unhappy
answers opened (open, overdue and resolved); a draft campaign and a journey map.

Everything goes through the real services, so the outbox holds the emails the app
really writes. Deterministic (seeded), done in one transaction, and a second run
changes nothing.
"""

import itertools
import random
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from cxm.customers.models import Customer, Segment
from cxm.customers.services import (
    customer_create,
    customer_mark_bounced,
    customer_unsubscribe,
    interaction_record,
    segment_create,
)
from cxm.followups.models import EventKind, FollowUp, FollowUpEvent
from cxm.followups.services import (
    followup_add_note,
    followup_close,
    followup_due_at,
    followup_log_contact,
    followup_owner_notify,
    followup_resolve,
    followup_wait_on_customer,
    followups_sweep,
)
from cxm.outbox.models import OutboxEmail
from cxm.utils import batched
from journeys.models import Channel
from journeys.services import journey_create
from surveys.kinds import score_bucket
from surveys.models import Campaign, Invitation, InvitationStatus, Response
from surveys.services import (
    DELIVERY_BATCH,
    campaign_create,
    campaign_send,
    invitations_deliver,
    response_record,
    survey_from_template,
    survey_update,
)

SEED = 2026
CUSTOMERS = 300
RESPONSE_RATE = 0.4
# The first demo customer's external id: its presence means the demo was loaded.
MARKER = "DEMO-0001"

# (username, first name, last name, role): agents own follow-ups, managers get
# the escalations.
STAFF = [
    ("jiwoo", "Jiwoo", "Park", "agent"),
    ("emma", "Emma", "Clarke", "agent"),
    ("minho", "Minho", "Lee", "agent"),
    ("sora", "Sora", "Kim", "manager"),
]
# Resolves follow-ups that have no owner.
MANAGER = "sora"
PLANS = [("free", 50), ("pro", 35), ("enterprise", 15)]
# (region, share of Korean-speaking customers there)
REGIONS = [("Seoul", 0.9), ("Busan", 0.9), ("London", 0.05), ("New York", 0.1)]
DOMAINS = ["example.com", "example.org", "example.net"]

KO_SURNAMES = [
    ("김", "kim"),
    ("이", "lee"),
    ("박", "park"),
    ("최", "choi"),
    ("정", "jung"),
    ("강", "kang"),
    ("조", "cho"),
    ("윤", "yoon"),
    ("장", "jang"),
    ("임", "lim"),
    ("한", "han"),
    ("서", "seo"),
]
KO_GIVEN = [
    ("민준", "minjun"),
    ("서연", "seoyeon"),
    ("지훈", "jihoon"),
    ("하은", "haeun"),
    ("도윤", "doyun"),
    ("지우", "jiwoo"),
    ("예준", "yejun"),
    ("수아", "sua"),
    ("현우", "hyunwoo"),
    ("지민", "jimin"),
    ("서준", "seojun"),
    ("유진", "yujin"),
    ("민서", "minseo"),
    ("준호", "junho"),
    ("은지", "eunji"),
    ("태현", "taehyun"),
]
EN_FIRST = [
    "Olivia",
    "James",
    "Amelia",
    "Noah",
    "Sophia",
    "Liam",
    "Isla",
    "Oliver",
    "Grace",
    "Lucas",
    "Chloe",
    "Ethan",
    "Mia",
    "Henry",
    "Ava",
    "Samuel",
]
EN_LAST = [
    "Smith",
    "Johnson",
    "Brown",
    "Taylor",
    "Wilson",
    "Davies",
    "Evans",
    "Thomas",
    "Walker",
    "Wright",
    "Robinson",
    "Hughes",
    "Green",
    "Hall",
]

# How customers score, per kind: (score, weight).
SCORES = {
    "nps": [(0, 1), (1, 1), (2, 2), (3, 3), (4, 3), (5, 4), (6, 5), (7, 12), (8, 15)]
    + [(9, 22), (10, 23)],
    "csat": [(1, 6), (2, 8), (3, 16), (4, 38), (5, 32)],
    "ces": [(1, 4), (2, 6), (3, 10), (4, 14), (5, 22), (6, 26), (7, 18)],
}
# The post-purchase survey's extra question.
IMPROVE = {
    "type": "single_choice",
    "text_en": "What should we improve first?",
    "text_ko": "가장 먼저 개선해야 할 점은 무엇인가요?",
    "choices": [
        {"value": "delivery", "en": "Delivery", "ko": "배송"},
        {"value": "price", "en": "Price", "ko": "가격"},
        {"value": "quality", "en": "Product quality", "ko": "제품 품질"},
        {"value": "support", "en": "Support", "ko": "고객 지원"},
    ],
}
# Comments by locale and the tone of the score (negative, neutral, positive), as
# NPS names them: what customers of a subscription product say.
COMMENTS = {
    "en": {
        "promoter": [
            "Setup took ten minutes and support answered within the hour.",
            "The new dashboard saves our team hours every week.",
            "Reliable and fast, and the mobile app just works.",
            "Great onboarding call, everything was explained clearly.",
            "Fair pricing for what we get. I already recommended you to two friends.",
            "Exports finally work the way our finance team needs.",
        ],
        "passive": [
            "Does the job, but the reports could be more flexible.",
            "Good product; the price went up a bit too much this year.",
            "Fine overall. Search is slow on our larger accounts.",
            "Support is friendly but it took two days to get an answer.",
        ],
        "detractor": [
            "I was charged twice this month and nobody has replied to my ticket.",
            "The app logs me out every few hours. Very frustrating.",
            "The hardware delivery was a week late and tracking never updated.",
            "Support closed my ticket without fixing anything.",
            "Too expensive for the features we actually use.",
            "The last update removed the CSV export I relied on.",
            "I could not find anything in the new settings page and gave up.",
        ],
    },
    "ko": {
        "promoter": [
            "설치가 간단하고 상담원이 친절하게 안내해 주었어요.",
            "대시보드가 정말 편해서 팀 전체가 매일 사용합니다.",
            "앱이 빠르고 안정적이에요. 친구에게도 추천했습니다.",
            "문의하면 바로 답변이 와서 믿음이 갑니다.",
        ],
        "passive": [
            "전반적으로 괜찮지만 보고서 기능이 조금 아쉽습니다.",
            "가격 대비 무난해요. 검색 속도가 개선되면 좋겠습니다.",
            "쓸 만하지만 업데이트 후 메뉴가 헷갈려요.",
        ],
        "detractor": [
            "이번 달 요금이 두 번 결제됐는데 아직 답변이 없습니다.",
            "앱이 자꾸 로그아웃돼서 너무 불편합니다.",
            "장비 배송이 일주일이나 늦었고 아무 안내도 없었어요.",
            "상담원 연결까지 40분이 걸렸습니다.",
            "기능에 비해 가격이 너무 비쌉니다.",
            "업데이트 후 CSV 내보내기 기능이 사라졌어요.",
        ],
    },
}
TONE_COMMENTS = {"negative": "detractor", "neutral": "passive", "positive": "promoter"}
# (root cause, resolution) as agents write them when they close the loop.
RESOLUTIONS = [
    (
        "price",
        "Refunded the duplicate charge and called the customer to apologise.",
    ),
    (
        "product",
        "Reproduced the logout bug; the fix ships Thursday. Customer informed.",
    ),
    (
        "delivery",
        "Courier lost the parcel; sent a replacement by express, tracking shared.",
    ),
    (
        "service",
        "Reopened the ticket, solved it on a call and coached the team.",
    ),
    (
        "usability",
        "Walked the customer through the new settings page on a screen share.",
    ),
    ("price", "요금제를 연간 결제로 변경해 드리고 차액을 환불했습니다."),
    ("communication", "전화로 사과드리고 업데이트 변경 사항을 안내했습니다."),
]
NOTES = [
    "Called, no answer. Will try again tomorrow morning.",
    "Asked billing for the payment logs.",
    "고객에게 이메일로 연락드렸고 회신을 기다리는 중입니다.",
]
# The demo journey: stages of touchpoints (name, channel, the interaction kind that
# marks a customer passing through, the campaign measuring it, the emotion the team
# expects), and the share of the customers who reach each stage in turn.
NPS_CAMPAIGN = "Customer NPS, all customers"
CSAT_CAMPAIGN = "After purchase, pro plan"
CES_CAMPAIGN = "After support, enterprise plan"
JOURNEY = [
    (
        "Awareness",
        1.0,
        [
            ("Search ad", Channel.WEB, "ad_click", None, 0),
            ("A friend's recommendation", Channel.SOCIAL, "referral_visit", None, 1),
        ],
    ),
    (
        "Consideration",
        0.7,
        [
            ("Pricing page", Channel.WEB, "pricing_view", None, 0),
            ("Sales demo call", Channel.PHONE, "demo_call", None, 1),
        ],
    ),
    (
        "Purchase",
        0.6,
        [
            ("Checkout", Channel.WEB, "purchase", CSAT_CAMPAIGN, 1),
            ("Welcome email", Channel.EMAIL, "welcome_email_open", None, 1),
        ],
    ),
    (
        "Use",
        0.75,
        [
            ("Mobile app", Channel.APP, "app_visit", NPS_CAMPAIGN, 1),
            ("Support chat", Channel.CHAT, "support_chat", CES_CAMPAIGN, -1),
        ],
    ),
    (
        "Loyalty",
        0.5,
        [
            ("Renewal reminder", Channel.EMAIL, "renewal", None, 0),
            ("Referral programme", Channel.WEB, "referral_sent", NPS_CAMPAIGN, 2),
        ],
    ),
]


def weighted(rng: random.Random, pairs):
    return rng.choices([v for v, _ in pairs], weights=[w for _, w in pairs])[0]


def last_outbox_pk() -> int:
    """Returns the id of the newest outbox email, to find the ones written after."""
    return OutboxEmail.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def plan_segment(plan: str) -> Segment:
    """The demo's segment of the customers on one plan."""
    return segment_create(
        name=f"{plan.title()} plan",
        conditions=[
            {"type": "property", "name": "plan", "op": "equals", "value": plan}
        ],
    )


class Command(BaseCommand):
    help = "Loads demo customers, a sent NPS campaign, follow-ups and a journey, once."

    def handle(self, *args, **options):
        if Customer.objects.filter(external_id=MARKER).exists():
            self.stdout.write("Demo data already loaded.")
            return
        self.rng = random.Random(SEED)
        self.now = timezone.now()
        self.sla = timedelta(hours=settings.FOLLOWUP_SLA_HOURS)
        # The campaign went out long enough ago for some follow-ups to be overdue.
        self.sent_at = self.now - self.sla - timedelta(days=3)
        with transaction.atomic():
            staff = self.load_staff()
            self.load_customers()
            nps = survey_from_template(template="relationship_nps")
            csat = survey_from_template(template="post_purchase_csat")
            survey_update(
                survey=csat,
                questions=[{"id": q.pk} for q in csat.questions.all()] + [IMPROVE],
            )
            ces = survey_from_template(template="post_support_ces")
            responses = []
            pro = plan_segment("pro")
            enterprise = plan_segment("enterprise")
            for name, survey, segment in [
                (NPS_CAMPAIGN, nps, None),
                (CSAT_CAMPAIGN, csat, pro),
                (CES_CAMPAIGN, ces, enterprise),
            ]:
                campaign = self.send_campaign(name, survey, segment)
                responses += self.answer(campaign)
            self.close_the_loop(responses, staff)
            swept = followups_sweep(now=self.now)
            segment_create(
                name="NPS detractors, last 90 days",
                conditions=[
                    {
                        "type": "answered",
                        "survey_kind": "nps",
                        "bucket": "detractor",
                        "within_days": 90,
                    }
                ],
            )
            Campaign.objects.create(name="Pro plan check-in", survey=nps, segment=pro)
            self.load_journey()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data loaded: {CUSTOMERS} customers, "
                f"{Invitation.objects.count()} invitations, "
                f"{len(responses)} responses, "
                f"{FollowUp.objects.count()} follow-ups "
                f"({FollowUp.objects.overdue(self.now).count()} overdue, "
                f"{swept['escalated']} escalated), "
                f"{OutboxEmail.objects.count()} emails in the outbox."
            )
        )

    def load_staff(self) -> dict:
        """Creates the CX agents and the CX manager; returns them by username."""
        User = get_user_model()
        staff = {}
        groups = {
            "agent": settings.FOLLOWUP_AGENTS_GROUP,
            "manager": settings.FOLLOWUP_MANAGERS_GROUP,
        }
        for username, first, last, role in STAFF:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": f"{username}@cx.example.com",
                },
            )
            if created:
                # Staff log in once an admin sets a password for them.
                user.set_unusable_password()
                user.save(update_fields=["password"])
            user.groups.add(Group.objects.get_or_create(name=groups[role])[0])
            staff[username] = user
        return staff

    def load_customers(self) -> None:
        rng = self.rng
        customers = []
        for i in range(1, CUSTOMERS + 1):
            region, korean_share = rng.choice(REGIONS)
            if rng.random() < korean_share:
                (surname, surname_latin), (given, given_latin) = (
                    rng.choice(KO_SURNAMES),
                    rng.choice(KO_GIVEN),
                )
                locale, name = "ko", surname + given
                local = f"{given_latin}.{surname_latin}"
            else:
                first, last = rng.choice(EN_FIRST), rng.choice(EN_LAST)
                locale, name = "en", f"{first} {last}"
                local = f"{first}.{last}".lower()
            customers.append(
                customer_create(
                    email=f"{local}{i}@{rng.choice(DOMAINS)}",
                    name=name,
                    locale=locale,
                    external_id=f"DEMO-{i:04d}",
                    properties={"plan": weighted(rng, PLANS), "region": region},
                )
            )
        # A few who left the list or whose mailbox bounced: campaigns skip them.
        # Through their services, then moved back in time like the campaigns.
        for customer in customers[-5:-2]:
            customer_unsubscribe(customer=customer)
        for customer in customers[-2:]:
            customer_mark_bounced(customer_id=customer.pk)
        Customer.objects.filter(pk__in=[c.pk for c in customers[-5:-2]]).update(
            unsubscribed_at=self.sent_at - timedelta(days=30)
        )
        Customer.objects.filter(pk__in=[c.pk for c in customers[-2:]]).update(
            bounced_at=self.sent_at - timedelta(days=20)
        )

    def send_campaign(self, name, survey, segment) -> Campaign:
        """Sends a campaign and delivers its emails here, not in a worker."""
        # The demo sends its three campaigns at once, to overlapping audiences: no
        # contact-frequency limit, or the later two would skip most of theirs.
        campaign = campaign_create(
            name=name, survey=survey, segment=segment, contact_frequency_days=0
        )
        last_email = last_outbox_pk()
        campaign_send(campaign=campaign)
        ids = campaign.invitations.order_by("pk").values_list("pk", flat=True)
        for batch in batched(list(ids), DELIVERY_BATCH):
            invitations_deliver(invitation_ids=list(batch))
        # Move the send back in time, so answers and follow-ups can have an age.
        Campaign.objects.filter(pk=campaign.pk).update(sent_at=self.sent_at)
        campaign.invitations.update(
            due_at=self.sent_at, sent_at=self.sent_at, created_at=self.sent_at
        )
        OutboxEmail.objects.filter(pk__gt=last_email).update(created_at=self.sent_at)
        return campaign

    def answer(self, campaign) -> list[Response]:
        """Records the answers of a share of the invited customers."""
        rng = self.rng
        invitations = list(
            campaign.invitations.filter(status=InvitationStatus.SENT)
            .select_related("campaign__survey", "customer")
            .order_by("pk")
        )
        chosen = rng.sample(invitations, round(len(invitations) * RESPONSE_RATE))
        kind = campaign.survey.kind
        extra = campaign.survey.questions.filter(role="").first()
        responses = []
        for invitation in sorted(chosen, key=lambda i: i.pk):
            score = weighted(rng, SCORES[kind])
            tone = score_bucket(kind, score).tone
            answers = {"score": score}
            if rng.random() < 0.8:
                comments = COMMENTS[invitation.customer.locale]
                answers["comment"] = rng.choice(comments[TONE_COMMENTS[tone]])
            if extra and rng.random() < 0.7:
                answers[extra.field_name] = rng.choice(extra.choices)["value"]
            responses.append(response_record(invitation=invitation, answers=answers))
        return responses

    def close_the_loop(self, responses: list[Response], staff: dict) -> None:
        """
        Gives the answers and their follow-ups an age, then notifies owners, resolves
        some and notes progress on others; the sweep afterwards finds the old ones
        overdue.
        """
        rng = self.rng
        followups = list(
            FollowUp.objects.filter(response__in=responses)
            .select_related("owner", "response")
            .order_by("pk")
        )
        # A third of each: resolved, overdue, still open within the SLA.
        roles = [("resolved", "overdue", "open")[i % 3] for i in range(len(followups))]
        rng.shuffle(roles)
        role_of = {
            f.response_id: role for f, role in zip(followups, roles, strict=True)
        }
        earliest = self.sent_at + timedelta(minutes=10)
        answered = {}
        for response in responses:
            role = role_of.get(response.pk)
            if role == "overdue":
                at = self.now - self.sla - timedelta(hours=rng.uniform(2, 60))
            elif role == "open":
                at = self.now - self.sla * rng.uniform(0.1, 0.7)
            else:
                at = earliest + (self.now - earliest) * rng.uniform(0, 0.95)
            answered[response.pk] = at = max(at, earliest)
            Response.objects.filter(pk=response.pk).update(created_at=at, updated_at=at)
            Invitation.objects.filter(pk=response.invitation_id).update(answered_at=at)

        manager = staff[MANAGER]
        # Each status of the workflow shows: some resolved ones closed, the open
        # ones in turn new, contacted and waiting on the customer.
        closing = itertools.cycle([False, True])
        stage = itertools.cycle(["new", "contacted", "waiting"])
        for followup in followups:
            opened = answered[followup.response_id]
            FollowUp.objects.filter(pk=followup.pk).update(
                created_at=opened, assigned_at=opened, due_at=followup_due_at(opened)
            )
            followup.events.update(created_at=opened)
            self.notify_owner(followup, at=opened + timedelta(minutes=1))
            actor = followup.owner or manager
            if role_of[followup.response_id] == "resolved":
                root_cause, resolution = rng.choice(RESOLUTIONS)
                followup_resolve(
                    followup=followup,
                    actor=actor,
                    resolution=resolution,
                    root_cause=root_cause,
                )
                resolved = min(
                    opened + self.sla * rng.uniform(0.05, 0.9),
                    self.now - timedelta(minutes=5),
                )
                FollowUp.objects.filter(pk=followup.pk).update(resolved_at=resolved)
                followup.events.filter(kind=EventKind.RESOLVED).update(
                    created_at=resolved
                )
                if next(closing):
                    followup_close(followup=followup, actor=manager)
                continue
            now_at = next(stage)
            if now_at != "new":
                followup_log_contact(
                    followup=followup, actor=actor, channel="phone", note=""
                )
            if now_at == "waiting":
                followup_wait_on_customer(followup=followup, actor=actor)
            if rng.random() < 0.4:
                event = followup_add_note(
                    followup=followup, actor=actor, text=rng.choice(NOTES)
                )
                noted = opened + (self.now - opened) * rng.uniform(0.2, 0.9)
                FollowUpEvent.objects.filter(pk=event.pk).update(created_at=noted)

    def notify_owner(self, followup: FollowUp, *, at) -> None:
        """Emails the owner as the worker would have when the follow-up opened."""
        last_email = last_outbox_pk()
        if not followup_owner_notify(followup_id=followup.pk):
            return
        FollowUp.objects.filter(pk=followup.pk).update(owner_notified_at=at)
        followup.events.filter(kind=EventKind.OWNER_NOTIFIED).update(created_at=at)
        OutboxEmail.objects.filter(pk__gt=last_email).update(created_at=at)

    def load_journey(self) -> None:
        """The journey map, its touchpoints measured by the campaigns, and the
        customers' way through it as interactions (fewer at each stage)."""
        campaigns = {c.name: c for c in Campaign.objects.all()}
        journey_create(
            name="Subscription customer journey",
            description=(
                "From first hearing of us to recommending us: where customers meet "
                "the product, and which surveys measure each step."
            ),
            stages=[
                {
                    "name": stage_name,
                    "touchpoints": [
                        {
                            "name": name,
                            "channel": channel,
                            "interaction_kind": kind,
                            "campaigns": [campaigns[campaign]] if campaign else [],
                            "expected_emotion": emotion,
                        }
                        for name, channel, kind, campaign, emotion in touchpoints
                    ],
                }
                for stage_name, _, touchpoints in JOURNEY
            ],
        )
        rng = self.rng
        for customer in Customer.objects.order_by("pk"):
            # Early enough that the last stage is in the past too.
            at = self.now - timedelta(days=rng.randint(30, 80))
            for _, share, touchpoints in JOURNEY:
                if rng.random() >= share:
                    break
                _, channel, kind, _, _ = rng.choice(touchpoints)
                at += timedelta(days=rng.randint(1, 6), minutes=rng.randint(0, 600))
                interaction_record(
                    customer=customer, kind=kind, channel=channel, occurred_at=at
                )
