"""mfakit: multi-factor authentication for any Python web application."""
