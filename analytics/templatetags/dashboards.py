"""Filters for the dashboards' headline numbers, formatted as their tables format them."""

from django import template

from analytics.dashboards.tables import HOURS, RATIO, shown

register = template.Library()


@register.filter
def percent(value) -> str:
    return shown(value, RATIO)


@register.filter
def hours(value) -> str:
    return shown(value, HOURS)
