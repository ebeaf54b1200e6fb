"""Health columns and the "Check now" action for the server admin (filled by the health engine)."""


class HealthAdminMixin:
    pass
