"""The operator console's landing page: a dashboard over the admin (see dashboard.py)."""
