"""GDPR / CCPA rights of one person: the export of everything held on them, and their erasure.

Owns the export and erasure registries (an app added later registers its sections and erasers),
the erasure's steps (erasure.py, its services) and its events' scrubbing, ingestion's guard
against re-creating an erased person (with the reads of selectors.py), the VACUUM after an
erasure, and the API for both.
"""
