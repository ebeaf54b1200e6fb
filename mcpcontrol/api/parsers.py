"""A JSON parser that enforces DATA_UPLOAD_MAX_MEMORY_SIZE.

DRF reads the WSGI stream itself, bypassing Django's check on request.body, so without this
an oversized body would be parsed in full.
"""

import io
from typing import Any

from django.conf import settings
from rest_framework.parsers import JSONParser

from mcpcontrol.api.errors import PayloadTooLarge


class LimitedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
        if stream is not None:
            body = stream.read(limit + 1)
            if len(body) > limit:
                raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
            stream = io.BytesIO(body)
        return super().parse(stream, media_type, parser_context)
