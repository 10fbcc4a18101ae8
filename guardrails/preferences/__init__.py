"""An end user's own choices: the preferences API, the one-click unsubscribe link and its page.

Owns the validation of a preferences update and its write (services.py), the state the API
returns (selectors.py), the signed unsubscribe links, and the digests a suppression stores
instead of the address or user id it names.
"""
