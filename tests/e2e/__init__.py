"""Browser tests of the example applications (headless chromium via Playwright)."""
