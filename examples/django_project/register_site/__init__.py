"""The register demo's Django project: settings, URLs, WSGI entry point."""
