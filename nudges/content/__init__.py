"""Content: what a nudge says.

Owns the templates and their version workflow (versions.py: draft, approval, activation), the
checks a version passes before approval (checks.py, links.py, link_scan.py), choosing the
template and variant (composer.py, bandit.py: Thompson sampling), rendering variables
(rendering.py), the context a nudge is written from (context.py: features, progress, recent
events; never contact data), the preview for an end user (preview.py), per-variant rates
(stats.py), and the template admin with its forms (admin.py, forms.py).
"""
