"""Typed errors a user can cause; pages turn them into messages next to the fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class CrmError(Exception):
    """Base of every error the crm package raises on purpose."""


@dataclass(frozen=True)
class FieldError:
    """Why one field was refused: an i18n message key and its parameters."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)


class ValidationError(CrmError):
    """Input was refused; `fields` maps each bad field to the reason."""

    def __init__(self, fields: dict[str, FieldError]) -> None:
        self.fields = fields
        super().__init__("; ".join(f"{name}: {err.key}" for name, err in fields.items()))


class NotFoundError(CrmError):
    """The record does not exist or the actor may not see it (one message for both)."""

    def __init__(self, entity: str, entity_id: object) -> None:
        self.entity = entity
        self.entity_id = entity_id
        super().__init__(f"{entity} {entity_id} not found or not yours")


class PermissionDeniedError(CrmError):
    """The actor may see the record but not perform this action."""

    def __init__(self, action: str) -> None:
        self.action = action
        super().__init__(f"not allowed: {action}")


class ConflictError(CrmError):
    """A stale edit: someone saved the record after the editor loaded it."""

    def __init__(self, entity: str, entity_id: object, changed_by: str | None, changed_at: datetime | None) -> None:
        self.entity = entity
        self.entity_id = entity_id
        self.changed_by = changed_by
        self.changed_at = changed_at
        super().__init__(f"{entity} {entity_id} was changed by {changed_by or 'someone'} at {changed_at}")


class AuthenticationError(CrmError):
    """Login refused; deliberately the same for unknown user, bad password and locked account."""


class Validator:
    """Collects field errors so a form reports every bad field at once."""

    def __init__(self) -> None:
        self.errors: dict[str, FieldError] = {}

    def add(self, name: str, key: str, **params: Any) -> None:
        self.errors.setdefault(name, FieldError(key, params))

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(dict(self.errors))
