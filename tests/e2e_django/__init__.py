"""Browser tests of the Django example (examples/django_project), in headless chromium."""
