"""Translations: `t("key", **params)` over the en and zh-CN catalogs in crm/locales/."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from contextvars import ContextVar
from functools import cache

import crm.locales

EN = "en"
ZH = "zh-CN"
LANGUAGES = (EN, ZH)
LANGUAGE_NAMES = {EN: "English", ZH: "简体中文"}

# Streamlit runs each session's script in its own thread; a ContextVar keeps languages apart.
_language: ContextVar[str | None] = ContextVar("language", default=None)
# Where to read the language when the current run has not set it yet: widget callbacks run
# before the script (and its set_language) does. crm.ui registers the browser session's choice.
_fallback: Callable[[], str | None] | None = None


def set_fallback(provider: Callable[[], str | None]) -> None:
    """Register where t() reads the language before set_language ran in this thread."""
    global _fallback
    _fallback = provider


@cache
def catalogs() -> dict[str, dict[str, str]]:
    """Merge every fragment in crm/locales/ into one catalog per language."""
    merged: dict[str, dict[str, str]] = {EN: {}, ZH: {}}
    for info in sorted(pkgutil.iter_modules(crm.locales.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"crm.locales.{info.name}")
        for key, (english, chinese) in module.MESSAGES.items():
            if key in merged[EN]:
                raise ValueError(f"i18n key {key!r} is defined twice (crm/locales/{info.name}.py)")
            merged[EN][key] = english
            merged[ZH][key] = chinese
    return merged


def set_language(language: str) -> None:
    """Use this language for t() in the current thread (one Streamlit script run)."""
    _language.set(language if language in LANGUAGES else EN)


def get_language() -> str:
    """Return the language of the current run (English if none is known)."""
    language = _language.get()
    if language is None and _fallback is not None:
        language = _fallback()
    return language if language in LANGUAGES else EN


def t(key: str, **params: object) -> str:
    """Translate a key into the current language; a missing key shows itself, never crashes."""
    catalog = catalogs()[get_language()]
    text = catalog.get(key) or catalogs()[EN].get(key) or key
    try:
        # A parameter the caller did not pass renders empty instead of showing "{name}".
        return text.format_map(_Blank(params))
    except (IndexError, ValueError):
        return text


class _Blank(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return ""


def enum_label(kind: str, value: str | None) -> str:
    """Translate an enum value such as a tier or stage (key `enum.<kind>.<value>`)."""
    if value is None:
        return "—"
    key = f"enum.{kind}.{value}"
    return t(key) if key in catalogs()[EN] else value
