"""The register's web pages: sign-in with mfakit's flow, the profile, the admin report."""
