"""Every user-facing key exists in both catalogs, and every key the code names is defined."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crm import i18n

ROOT = Path(__file__).resolve().parents[2]
# t("key") and t('key') with a literal key; keys built with f-strings are checked by the page tests.
LITERAL_KEY = re.compile(r"""\bt\(\s*["']([a-z_]+(?:\.[A-Za-z0-9_]+)+)["']""")
SOURCES = [*ROOT.glob("app.py"), *ROOT.glob("pages/*.py"), *ROOT.glob("crm/**/*.py")]


def test_both_languages_define_every_key_with_text() -> None:
    catalogs = i18n.catalogs()
    assert set(catalogs[i18n.EN]) == set(catalogs[i18n.ZH])
    empty = [
        key for key in catalogs[i18n.EN] if not catalogs[i18n.EN][key].strip() or not catalogs[i18n.ZH][key].strip()
    ]
    assert empty == []


def test_chinese_catalog_is_really_chinese() -> None:
    catalogs = i18n.catalogs()
    # Page titles and navigation must not fall back to English text.
    untranslated = [
        key for key in catalogs[i18n.EN] if key.startswith("nav.") and catalogs[i18n.ZH][key] == catalogs[i18n.EN][key]
    ]
    assert untranslated == []


def test_every_literal_key_in_the_code_exists() -> None:
    defined = set(i18n.catalogs()[i18n.EN])
    used = {key for path in SOURCES for key in LITERAL_KEY.findall(path.read_text(encoding="utf-8"))}
    # The scan must really see the code's keys (a broken pattern would pass vacuously).
    assert {"app.title", "common.save", "auth.invalid_credentials"} <= used
    assert len(used) > 200
    missing = sorted(
        f"{path.relative_to(ROOT)}: {key}"
        for path in SOURCES
        for key in LITERAL_KEY.findall(path.read_text(encoding="utf-8"))
        if key not in defined
    )
    assert missing == []


@pytest.mark.parametrize(
    ("language", "expected"),
    [(i18n.EN, "At most 5 characters."), (i18n.ZH, "最多 5 个字符。")],
)
def test_parameters_are_filled_in_each_language(language: str, expected: str) -> None:
    i18n.set_language(language)
    try:
        assert i18n.t("error.too_long", max=5) == expected
    finally:
        i18n.set_language(i18n.EN)


def test_missing_parameter_renders_empty_and_unknown_key_shows_itself() -> None:
    i18n.set_language(i18n.EN)
    assert i18n.t("error.not_allowed") == "You are not allowed to choose this. "
    assert i18n.t("no.such.key") == "no.such.key"


def test_a_callback_without_a_language_uses_the_session_fallback() -> None:
    token = i18n._language.set(None)
    i18n.set_fallback(lambda: i18n.ZH)
    try:
        assert i18n.t("nav.overview") == "总览"
    finally:
        i18n.set_fallback(lambda: None)
        i18n._language.reset(token)
