"""The OpenAPI schema at /api/schema is generated without a warning: a warning means a client
generator gets a wrong or ambiguous schema (two components with one name, an unknown type)."""

import pytest
from django.core.management import CommandError, call_command


def test_the_schema_is_generated_without_warnings(tmp_path):
    try:
        call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    except (CommandError, SystemExit) as error:  # spectacular exits on a warning
        pytest.fail(f"drf-spectacular warned while generating the schema: {error}")
    schema = (tmp_path / "schema.yaml").read_text()
    assert "/api/v1/analytics/paths/{path_key}/funnel:" in schema
    assert "/api/v1/signals:" in schema
