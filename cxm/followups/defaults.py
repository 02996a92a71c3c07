"""
The follow-up rules and root causes a new installation starts with, as plain
data: the migrations create them, and tests that empty the database restore
them (services.followup_defaults_ensure).
"""

# Today's behaviour, per kind: the negative bucket opens a follow-up, and the
# angriest scores are high priority (surveys.kinds, services.followup_priority).
DEFAULT_RULES = [
    {"name": "NPS detractors (0–6)", "survey_kind": "nps", "high": 6},
    {"name": "CSAT dissatisfied (1–2)", "survey_kind": "csat", "high": 2},
    {"name": "CES hard (1–3)", "survey_kind": "ces", "high": 3},
]

# (code, English, Korean): the root causes offered before they were managed.
DEFAULT_ROOT_CAUSES = [
    ("product", "Product or quality", "제품 또는 품질"),
    ("service", "Customer service", "고객 서비스"),
    ("delivery", "Delivery or availability", "배송 또는 재고"),
    ("price", "Price or billing", "가격 또는 결제"),
    ("usability", "Ease of use", "사용 편의성"),
    ("communication", "Communication", "커뮤니케이션"),
    ("other", "Other", "기타"),
]


def rules_create(FollowUpRule) -> None:
    """Creates the default rules with `FollowUpRule` (a model, maybe historical)."""
    FollowUpRule.objects.bulk_create(
        [
            FollowUpRule(
                name=rule["name"],
                position=(i + 1) * 10,
                survey_kind=rule["survey_kind"],
                score_high=rule["high"],
            )
            for i, rule in enumerate(DEFAULT_RULES)
        ]
    )


def root_causes_create(RootCause) -> None:
    RootCause.objects.bulk_create(
        [
            RootCause(code=code, name_en=en, name_ko=ko, position=(i + 1) * 10)
            for i, (code, en, ko) in enumerate(DEFAULT_ROOT_CAUSES)
        ],
        ignore_conflicts=True,
    )
