"""The API's one JSON parser: bounded in size and depth, and only storable values get through.

DRF reads the WSGI stream itself, bypassing Django's check on request.body, so without the
size check an oversized body would be parsed in full. The other refusals are here, once, so
that no endpoint can answer a hostile body with a 500:
- nesting deeper than MAX_DEPTH (deep enough documents raise RecursionError in the decoder,
  shallower ones later in serializers or in the encoder of a JSON column);
- numbers that are not finite (`NaN`, `Infinity`, and `1e999999`, which Python reads as inf);
- NUL characters and lone UTF-16 surrogates (`"\\ud800"`) in any string, map keys included:
  PostgreSQL's text and jsonb refuse both, so the insert would fail after validation. These
  are a validation_error naming the top-level field; the others are a parse_error.
"""

import json
import math
import re
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError

from mcpcontrol.api.errors import PayloadTooLarge

# Far deeper than any document the API takes; shallow enough for any recursive reader.
MAX_DEPTH = 64

# json decodes a valid surrogate pair into one character, so any surrogate left is lone.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]!r} is out of range")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _check_string(text: str, field: str) -> None:
    match = _UNSTORABLE.search(text)
    if match is not None:
        kind = "Null" if match.group() == "\x00" else "Lone surrogate"
        # A 400 naming the top-level field, like the serializers' own checks of values.
        raise ValidationError({field: [f"{kind} characters are not allowed."]})


def check_document(data: Any) -> None:
    """Refuse `data` unless it is within MAX_DEPTH and every string, key or value, is storable.

    Iterative, so that checking a deep document cannot itself hit the recursion limit.
    """
    stack: list[tuple[Any, str | None, int]] = [(data, None, 1)]
    while stack:
        value, field, depth = stack.pop()
        if isinstance(value, str):
            _check_string(value, field or "non_field_errors")
        elif isinstance(value, dict | list) and depth > MAX_DEPTH:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.")
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_string(key, field or "non_field_errors")
                stack.append((item, field or key, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, field, depth + 1) for item in value)


class LimitedJSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
        # DRF's own choice of charset: text codecs only, so no bz2_codec decompression bomb.
        encoding = parsers.get_encoding(parser_context or {})  # type: ignore[attr-defined]
        try:
            data = json.loads(
                body.decode(encoding), parse_float=_finite_float, parse_constant=_refuse_constant
            )
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.") from None
        except ValueError as exc:  # UnicodeDecodeError included
            raise ParseError(f"JSON parse error - {exc}") from None
        check_document(data)
        return data
