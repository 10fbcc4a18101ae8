"""config/settings/services.py: operator mail (anomaly alerts) configured from the environment."""

import importlib

import pytest

from config.settings import services as services_settings

EMAIL_VARIABLES = ("EMAIL_URL", "DEFAULT_FROM_EMAIL", "SERVER_EMAIL")


@pytest.fixture
def reload_services(monkeypatch):
    """Reloads the settings part under the test's environment, then restores it as it was."""
    before = {name for name in vars(services_settings) if name.startswith("EMAIL_")}
    for variable in EMAIL_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    yield lambda: importlib.reload(services_settings)
    monkeypatch.undo()
    for name in {name for name in vars(services_settings) if name.startswith("EMAIL_")} - before:
        delattr(services_settings, name)
    importlib.reload(services_settings)


def test_without_email_url_django_defaults_stand(reload_services):
    """Unset: no EMAIL_* setting of ours but the timeout, so Django's SMTP to localhost:25 from
    root@localhost, given up after 10 s of silence."""
    reloaded = reload_services()

    assert [name for name in vars(reloaded) if name.startswith("EMAIL_")] == ["EMAIL_TIMEOUT"]
    assert reloaded.EMAIL_TIMEOUT == 10
    assert reloaded.SERVER_EMAIL == "root@localhost"
    assert reloaded.DEFAULT_FROM_EMAIL == "webmaster@localhost"


def test_email_url_and_senders_come_from_the_environment(reload_services, monkeypatch):
    monkeypatch.setenv("EMAIL_URL", "smtp+tls://alerts%40example.com:p%40ss@smtp.example.com:587")
    monkeypatch.setenv("SERVER_EMAIL", "alerts@example.com")
    monkeypatch.setenv("DEFAULT_FROM_EMAIL", "noreply@example.com")

    reloaded = reload_services()

    assert reloaded.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend"
    assert (reloaded.EMAIL_HOST, reloaded.EMAIL_PORT) == ("smtp.example.com", 587)
    assert (reloaded.EMAIL_HOST_USER, reloaded.EMAIL_HOST_PASSWORD) == ("alerts@example.com", "p@ss")
    assert reloaded.EMAIL_USE_TLS is True
    assert reloaded.SERVER_EMAIL == "alerts@example.com"
    assert reloaded.DEFAULT_FROM_EMAIL == "noreply@example.com"


def test_a_console_email_url_sets_the_backend_only(reload_services, monkeypatch):
    """consolemail:// has no host: Django's own defaults stay for the rest."""
    monkeypatch.setenv("EMAIL_URL", "consolemail://")

    reloaded = reload_services()

    assert reloaded.EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend"
    assert not hasattr(reloaded, "EMAIL_HOST")
