"""The portal app."""

from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Register portal"
    default_auto_field = "django.db.models.BigAutoField"
