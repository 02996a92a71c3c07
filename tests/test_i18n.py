import re
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest
from django.conf import settings

from surveys.services import invitation_message
from tests.factories import InvitationFactory

PO = settings.BASE_DIR / "locale" / "ko" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")


def test_it_translates_every_korean_entry():
    po = polib.pofile(str(PO))
    untranslated = [e.msgid for e in po.untranslated_entries()]
    fuzzy = [e.msgid for e in po.fuzzy_entries()]
    assert untranslated == [] and fuzzy == []


def test_it_words_korean_without_particle_fill_ins():
    """No "을(를)", "이(가)", "(으)로" …: a sentence is worded so no particle follows a
    name we fill in, or the particle fits the word before it."""
    po = polib.pofile(str(PO))
    fill_ins = re.compile(
        r"\((을|를|이|가|은|는|으|와|과)\)|[을은이과와]\([를는가와과]\)"
    )
    found = [
        text
        for e in po
        if not e.obsolete
        for text in [e.msgstr, *e.msgstr_plural.values()]
        if fill_ins.search(text)
    ]
    assert found == []


def test_it_ships_the_compiled_catalog_of_the_current_po():
    po = {
        (e.msgctxt, e.msgid): e.msgstr or e.msgstr_plural for e in polib.pofile(str(PO))
    }
    mo = {
        (e.msgctxt, e.msgid): e.msgstr or e.msgstr_plural for e in polib.mofile(str(MO))
    }
    assert {k: v for k, v in po.items() if k[1]} == {
        k: v for k, v in mo.items() if k[1]
    }


def test_it_has_a_catalog_entry_for_every_string_in_the_code(tmp_path: Path):
    """makemessages over a copy of the code finds no string the catalog lacks."""
    for name in ["cxm", "surveys", "journeys", "templates", "locale"]:
        shutil.copytree(settings.BASE_DIR / name, tmp_path / name)
    shutil.copy(settings.BASE_DIR / "manage.py", tmp_path)
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "ko", "--no-obsolete"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        env={"CXM_VAR_DIR": str(tmp_path / "var"), "PATH": "/usr/bin:/bin"},
    )
    fresh = polib.pofile(str(tmp_path / "locale" / "ko" / "LC_MESSAGES" / "django.po"))
    missing = [e.msgid for e in fresh.untranslated_entries() + fresh.fuzzy_entries()]
    assert missing == []


@pytest.mark.django_db
def test_it_writes_the_invitation_in_korean_for_a_korean_customer(settings):
    settings.COMPANY_NAME = "한빛상사"
    invitation = InvitationFactory(customer__locale="ko", customer__name="김민준")
    message = invitation_message(invitation=invitation)
    html = message.alternatives[0][0]
    assert message.subject == "고객님의 경험에 대해 간단히 여쭙니다"
    assert "김민준님, 안녕하세요." in message.body
    assert "친구나 동료에게 한빛상사 서비스를 추천하실 가능성" in html
    assert "수신 거부" in html


@pytest.mark.django_db
def test_it_writes_the_invitation_in_english_for_an_english_customer():
    invitation = InvitationFactory(customer__locale="en", customer__name="Ann")
    message = invitation_message(invitation=invitation)
    assert message.subject == "A quick question about your experience"
    assert "Hello Ann," in message.body
