"""Contrib and third-party apps with ObjectId primary keys: their own AppConfigs pin
AutoField, which DEFAULT_AUTO_FIELD does not override (settings.py swaps these in)."""

from bson import ObjectId
from django.contrib.admin.apps import AdminConfig
from django.contrib.auth.apps import AuthConfig
from django.contrib.contenttypes.apps import ContentTypesConfig
from django_celery_beat.apps import BeatConfig
from kombu.utils.json import register_type

OBJECT_ID = "django_mongodb_backend.fields.ObjectIdAutoField"


class MongoAdminConfig(AdminConfig):
    default_auto_field = OBJECT_ID


class MongoAuthConfig(AuthConfig):
    default_auto_field = OBJECT_ID


class MongoContentTypesConfig(ContentTypesConfig):
    default_auto_field = OBJECT_ID

    def ready(self) -> None:
        super().ready()
        # Task arguments carry primary keys (Celery's JSON): ObjectIds travel as marked
        # strings and come back as ObjectIds, in the web process and the worker alike.
        register_type(ObjectId, "objectid", str, ObjectId)


class MongoBeatConfig(BeatConfig):  # type: ignore[misc]  # untyped package
    default_auto_field = OBJECT_ID
