"""An end user's own choices: the preferences API, the one-click unsubscribe link and its page.

Owns the validation of a preferences update and its write (services.py), the state the API
returns (selectors.py) and the signed unsubscribe links. It builds on guardrails.policy (consent,
quiet hours), which never imports it.
"""
