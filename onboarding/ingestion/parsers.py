"""Request bodies as Segment sends them: JSON, optionally gzip-compressed, size-limited."""

import zlib

import orjson
from django.conf import settings
from rest_framework import exceptions, parsers, status


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes ({limit // 1024} KB).")


def _gunzip(body: bytes, limit: int) -> bytes:
    """Inflate every gzip member (RFC 1952 allows several, one after the other), never more than
    `limit` + 1 bytes in all: zlib's max_length stops a bomb while it inflates, not after."""
    inflated = bytearray()
    remaining = body
    while remaining:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            inflated += decompressor.decompress(remaining, limit + 1 - len(inflated))
        except zlib.error as error:
            raise exceptions.ParseError(f"Body is not valid gzip: {error}.") from None
        if len(inflated) > limit:
            raise _too_large(limit)
        if not decompressor.eof:
            raise exceptions.ParseError("Body is not valid gzip: the stream is truncated.")
        remaining = decompressor.unused_data.lstrip(b"\x00")  # zero padding after the last member
    return bytes(inflated)


class SegmentJSONParser(parsers.BaseParser):
    """Any content type is read as JSON (Segment clients are not consistent about it)."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        view = parser_context["view"]
        request = parser_context["request"]
        limit = getattr(view, "max_body_bytes", settings.INGEST_MAX_BATCH_BYTES)
        encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
        if encoding not in ("", "identity", "gzip"):
            raise exceptions.UnsupportedMediaType(
                media_type, f"Content-Encoding {encoding!r} is not supported; use gzip or none."
            )
        compressed = encoding == "gzip"
        # Compressed bodies are read with room for gzip's overhead; the decompressed size decides.
        read_limit = 2 * limit if compressed else limit
        body = stream.read(read_limit + 1) if stream is not None else b""
        if len(body) > read_limit:
            raise _too_large(limit)
        if compressed:
            body = _gunzip(body, limit)
        if len(body) > limit:
            raise _too_large(limit)
        if not body.strip():
            raise exceptions.ParseError("Request body is empty; expected a JSON object.")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise exceptions.ParseError(f"Malformed JSON: {error}.") from None
        if not isinstance(data, dict):
            raise exceptions.ParseError("Request body must be a JSON object.")
        return data
