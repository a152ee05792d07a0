"""The project's URLs: everything is in the portal app."""

from django.urls import include, path

urlpatterns = [path("", include("portal.urls"))]
