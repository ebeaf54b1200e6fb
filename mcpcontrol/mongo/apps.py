"""Contrib and third-party apps with ObjectId primary keys: their own AppConfigs pin
AutoField, which DEFAULT_AUTO_FIELD does not override (settings.py swaps these in)."""

from django.contrib.admin.apps import AdminConfig
from django.contrib.auth.apps import AuthConfig
from django.contrib.contenttypes.apps import ContentTypesConfig
from django_celery_beat.apps import BeatConfig

OBJECT_ID = "django_mongodb_backend.fields.ObjectIdAutoField"


class MongoAdminConfig(AdminConfig):
    default_auto_field = OBJECT_ID


class MongoAuthConfig(AuthConfig):
    default_auto_field = OBJECT_ID


class MongoContentTypesConfig(ContentTypesConfig):
    default_auto_field = OBJECT_ID


class MongoBeatConfig(BeatConfig):
    default_auto_field = OBJECT_ID
