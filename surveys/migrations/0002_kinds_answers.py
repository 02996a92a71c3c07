"""
Survey kinds and one answer per question.

Questions get a type and a role (the NPS score question becomes the "headline"
score, the comment its "reason") and a wording per language. Each response gets its
campaign, survey and customer as columns (the fact row metrics read), and one Answer
row per question it answered, made from its score and comment.
"""

import django.db.models.deletion
import django.utils.timezone
import surveys.models
from django.db import migrations, models


def questions_typed(apps, schema_editor):
    Question = apps.get_model("surveys", "Question")
    Question.objects.filter(kind="score").update(type="score", role="headline")
    Question.objects.filter(kind="comment").update(type="long_text", role="reason")


def responses_filled(apps, schema_editor):
    """Copies each response's campaign, survey and customer from its invitation and
    makes its answers, in set-based SQL (any number of rows, any backend)."""
    Response = apps.get_model("surveys", "Response")
    Invitation = apps.get_model("surveys", "Invitation")
    Campaign = apps.get_model("surveys", "Campaign")
    of_invitation = Invitation.objects.filter(pk=models.OuterRef("invitation_id"))
    Response.objects.update(
        campaign_id=models.Subquery(of_invitation.values("campaign_id")),
        customer_id=models.Subquery(of_invitation.values("customer_id")),
    )
    Response.objects.update(
        survey_id=models.Subquery(
            Campaign.objects.filter(pk=models.OuterRef("campaign_id")).values(
                "survey_id"
            )
        )
    )
    quote = schema_editor.quote_name
    with schema_editor.connection.cursor() as cursor:
        for role, column, condition in [
            ("headline", "number", "r.score IS NOT NULL"),
            ("reason", "text", "r.comment <> ''"),
        ]:
            value = "r.score" if column == "number" else "r.comment"
            other = "''" if column == "number" else "NULL"
            other_column = "text" if column == "number" else "number"
            cursor.execute(
                f"""
                INSERT INTO surveys_answer
                    (response_id, question_id, {quote(column)},
                     {quote(other_column)}, choices)
                SELECT r.id, q.id, {value}, {other}, '[]'
                FROM surveys_response r
                JOIN surveys_question q
                  ON q.survey_id = r.survey_id AND q.role = %s
                WHERE {condition}
                """,
                [role],
            )
        if schema_editor.connection.vendor == "postgresql":
            # Check the new foreign keys now: the ALTER TABLEs that follow in this
            # transaction refuse to run with their checks still pending.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0001_initial"),
        ("surveys", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="survey",
            name="kind",
            field=models.CharField(
                choices=[
                    ("nps", "NPS (0–10)"),
                    ("csat", "CSAT (1–5)"),
                    ("ces", "CES (1–7)"),
                    ("custom", "Custom (no headline score)"),
                ],
                default="nps",
                help_text=(
                    "NPS, CSAT and CES come with their standard score question; a "
                    "custom survey asks only the questions you add. The kind cannot "
                    "change later."
                ),
                max_length=10,
                verbose_name="kind",
            ),
        ),
        # Questions: a type and a role instead of the kind; a wording per language.
        migrations.RenameField(model_name="question", old_name="text", new_name="text_en"),
        migrations.AlterField(
            model_name="question",
            name="text_en",
            field=models.CharField(
                blank=True,
                help_text=(
                    "{company} stands for the company's name. Leave empty on a "
                    "standard question for its standard wording."
                ),
                max_length=500,
                verbose_name="wording (English)",
            ),
        ),
        migrations.AddField(
            model_name="question",
            name="type",
            field=models.CharField(
                choices=[
                    ("score", "Score"),
                    ("single_choice", "Single choice"),
                    ("multiple_choice", "Multiple choice"),
                    ("short_text", "Short text"),
                    ("long_text", "Long text"),
                ],
                default="long_text",
                max_length=20,
                verbose_name="type",
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="question",
            name="role",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "Extra question"),
                    ("headline", "Headline score"),
                    ("reason", "Reason for the score"),
                ],
                default="",
                max_length=10,
                verbose_name="role",
            ),
        ),
        migrations.RunPython(questions_typed, migrations.RunPython.noop),
        migrations.RemoveField(model_name="question", name="kind"),
        migrations.AddField(
            model_name="question",
            name="text_ko",
            field=models.CharField(
                blank=True,
                help_text=(
                    "Korean customers read this. Empty: the standard Korean wording, "
                    "or the English one for an extra question."
                ),
                max_length=500,
                verbose_name="wording (Korean)",
            ),
        ),
        migrations.AddField(
            model_name="question",
            name="scale_low",
            field=models.PositiveSmallIntegerField(
                blank=True, null=True, verbose_name="lowest score"
            ),
        ),
        migrations.AddField(
            model_name="question",
            name="scale_high",
            field=models.PositiveSmallIntegerField(
                blank=True, null=True, verbose_name="highest score"
            ),
        ),
        migrations.AddField(
            model_name="question",
            name="label_low_en",
            field=models.CharField(
                blank=True, max_length=100, verbose_name="low end (English)"
            ),
        ),
        migrations.AddField(
            model_name="question",
            name="label_low_ko",
            field=models.CharField(
                blank=True, max_length=100, verbose_name="low end (Korean)"
            ),
        ),
        migrations.AddField(
            model_name="question",
            name="label_high_en",
            field=models.CharField(
                blank=True, max_length=100, verbose_name="high end (English)"
            ),
        ),
        migrations.AddField(
            model_name="question",
            name="label_high_ko",
            field=models.CharField(
                blank=True, max_length=100, verbose_name="high end (Korean)"
            ),
        ),
        migrations.AddField(
            model_name="question",
            name="choices",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="The options of a choice question, in order.",
                validators=[surveys.models.validate_choices],
                verbose_name="choices",
            ),
        ),
        migrations.AddConstraint(
            model_name="question",
            constraint=models.UniqueConstraint(
                condition=models.Q(("role", ""), _negated=True),
                fields=("survey", "role"),
                name="question_one_per_role",
            ),
        ),
        migrations.AddConstraint(
            model_name="question",
            constraint=models.CheckConstraint(
                condition=models.Q(("role", "headline"), _negated=True)
                | models.Q(("type", "score")),
                name="question_headline_is_a_score",
            ),
        ),
        migrations.AddConstraint(
            model_name="question",
            constraint=models.CheckConstraint(
                condition=models.Q(("role", "reason"), _negated=True)
                | models.Q(("type", "long_text")),
                name="question_reason_is_long_text",
            ),
        ),
        migrations.AddConstraint(
            model_name="question",
            constraint=models.CheckConstraint(
                condition=models.Q(("role", ""), ("type", "score"), _negated=True)
                | models.Q(
                    ("scale_high__lte", 10),
                    ("scale_low__gte", 0),
                    ("scale_low__lt", models.F("scale_high")),
                ),
                name="question_score_scale",
            ),
        ),
        # Responses: the fact row carries its campaign, survey and customer.
        migrations.AddField(
            model_name="response",
            name="campaign",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="responses",
                to="surveys.campaign",
                verbose_name="campaign",
            ),
        ),
        migrations.AddField(
            model_name="response",
            name="survey",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="responses",
                to="surveys.survey",
                verbose_name="survey",
            ),
        ),
        migrations.AddField(
            model_name="response",
            name="customer",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="responses",
                to="customers.customer",
                verbose_name="customer",
            ),
        ),
        migrations.AlterField(
            model_name="response",
            name="score",
            field=models.PositiveSmallIntegerField(
                blank=True, null=True, verbose_name="score"
            ),
        ),
        migrations.AlterField(
            model_name="response",
            name="created_at",
            field=models.DateTimeField(
                default=django.utils.timezone.now, verbose_name="answered at"
            ),
        ),
        migrations.AlterField(
            model_name="response",
            name="updated_at",
            field=models.DateTimeField(
                default=django.utils.timezone.now, verbose_name="updated at"
            ),
        ),
        migrations.CreateModel(
            name="Answer",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                (
                    "number",
                    models.PositiveSmallIntegerField(
                        blank=True, null=True, verbose_name="number"
                    ),
                ),
                ("text", models.TextField(blank=True, verbose_name="text")),
                (
                    "choices",
                    models.JSONField(blank=True, default=list, verbose_name="choices"),
                ),
                (
                    "question",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="answers",
                        to="surveys.question",
                        verbose_name="question",
                    ),
                ),
                (
                    "response",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="answers",
                        to="surveys.response",
                        verbose_name="response",
                    ),
                ),
            ],
            options={
                "verbose_name": "answer",
                "verbose_name_plural": "answers",
                "ordering": ["id"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("response", "question"), name="answer_one_per_question"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="ResponseRevision",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                (
                    "score",
                    models.PositiveSmallIntegerField(
                        blank=True, null=True, verbose_name="score"
                    ),
                ),
                ("comment", models.TextField(blank=True, verbose_name="comment")),
                ("answers", models.JSONField(default=dict, verbose_name="answers")),
                ("answered_at", models.DateTimeField(verbose_name="answered at")),
                (
                    "replaced_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, verbose_name="replaced at"
                    ),
                ),
                (
                    "response",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="revisions",
                        to="surveys.response",
                        verbose_name="response",
                    ),
                ),
            ],
            options={
                "verbose_name": "earlier answer",
                "verbose_name_plural": "earlier answers",
                "ordering": ["response", "-replaced_at", "-id"],
            },
        ),
        migrations.RunPython(responses_filled, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="response",
            name="campaign",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="responses",
                to="surveys.campaign",
                verbose_name="campaign",
            ),
        ),
        migrations.AlterField(
            model_name="response",
            name="survey",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="responses",
                to="surveys.survey",
                verbose_name="survey",
            ),
        ),
        migrations.AlterField(
            model_name="response",
            name="customer",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="responses",
                to="customers.customer",
                verbose_name="customer",
            ),
        ),
        migrations.RenameIndex(
            model_name="response",
            new_name="response_created",
            old_name="surveys_res_created_f396a4_idx",
        ),
        migrations.AddIndex(
            model_name="response",
            index=models.Index(
                fields=["survey", "created_at"], name="response_survey_time"
            ),
        ),
    ]
