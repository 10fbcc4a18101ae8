"""Append-only rows: written once, never updated or deleted through the ORM.

An abstract model needs no app, so the audit trail (tenancy) and the LLM call log (guardrails)
share this one base without either importing the other.
"""

from django.core.exceptions import PermissionDenied
from django.db import models


class AppendOnlyModel(models.Model):
    """Rows are written once: updates and deletes through the ORM are refused."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise PermissionDenied(f"{type(self).__name__} is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionDenied(f"{type(self).__name__} is append-only.")


class AppendOnlyQuerySet(models.QuerySet):
    """Bulk updates and deletes are refused too. Cascades from a deleted workspace or user go
    through the base manager and still apply."""

    def update(self, **kwargs):
        raise PermissionDenied(f"{self.model.__name__} is append-only.")

    def delete(self):
        raise PermissionDenied(f"{self.model.__name__} is append-only.")
