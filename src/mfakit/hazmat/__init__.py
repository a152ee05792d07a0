"""Low-level primitives. You should only use these if you know exactly what you are doing.

Like ``cryptography.hazmat``, this package holds the building blocks the safe, high-level
API of mfakit is made of: HOTP/TOTP maths (RFC 4226 / RFC 6238), constant-time comparison,
code normalisation, argon2id hashing and the AES-GCM secret box. They make no policy
decisions: replay protection, attempt limits and key management live above them.
"""
