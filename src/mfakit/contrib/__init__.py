"""Framework integrations: :mod:`mfakit.contrib.django` and :mod:`mfakit.contrib.flask`.

Each needs its framework installed (``pip install "mfakit[django]"`` or
``"mfakit[flask]"``); importing :mod:`mfakit` never imports a web framework.
"""
