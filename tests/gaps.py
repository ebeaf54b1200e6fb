"""Known SecantusDB emulator gaps, one marker each, so every test hit by one says the same."""

import pytest

# has_perm reads a non-superuser's permissions with values_list('content_type__app_label',
# 'codename'): a $lookup join that the emulator answers with the content type's id.
PERMISSION_JOIN = pytest.mark.emulator_gap(
    "SecantusDB 0.7.0b3 answers values_list('content_type__app_label', 'codename') (a $lookup"
    " join, which auth's has_perm uses) with the content type's id instead of its app_label,"
    " so a non-superuser's model permissions never match (403)"
)
