"""Sphinx configuration for the mfakit documentation (MyST Markdown + autodoc).

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html``. Warnings are errors,
so keep the build clean. No extension here reaches the network (no intersphinx).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sphinx.application import Sphinx

# Document the source tree itself, so the docs build without installing mfakit.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import mfakit

project = "mfakit"
author = "mfakit developers"
copyright = "2026, mfakit developers"
release = mfakit.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# MyST
myst_enable_extensions = ["colon_fence", "deflist", "fieldlist"]
myst_heading_anchors = 3

# autodoc: signatures stay short; types go into the parameter descriptions.
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autoclass_content = "class"

# napoleon: Google-style docstrings only.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

# Unresolvable cross-references (third-party types) are not errors.
nitpicky = False

html_theme = "furo"
html_title = f"mfakit {release}"


def _keep_property_summaries(
    app: object, what: str, name: str, obj: object, options: object, lines: list[str]
) -> None:
    """Stop napoleon reading "Summary: more" in a property or data docstring as "type: text".

    Runs before napoleon (priority 400 < 500): a leading empty reST comment leaves napoleon
    no inline type to find, and renders as nothing.
    """
    if what in ("property", "data", "attribute") and lines and ":" in lines[0]:
        lines[:0] = ["..", ""]


def _resolve_short_names(app: Sphinx, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve a short Python reference (``Keyring.rotate``) to the one object it names.

    Docstrings refer to objects by the names their own module sees (``MemoryStore``), but
    each object is documented once, where the public imports it from
    (``mfakit.storage.MemoryStore``). A reference that names exactly one documented object
    by its dotted suffix links there; anything else stays unresolved, as before.
    """
    if node.get("refdomain") != "py":
        return None
    from sphinx.util.nodes import make_refnode

    objects = env.get_domain("py").objects
    target = str(node["reftarget"])
    for suffix in (target, target.rsplit(".", 1)[-1]):
        matches = [
            name
            for name, entry in objects.items()
            if not entry.aliased and (name == suffix or name.endswith("." + suffix))
        ]
        if len(matches) == 1:
            entry = objects[matches[0]]
            return make_refnode(
                app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, matches[0]
            )
    return None


def setup(app: Sphinx) -> None:
    """Register the docstring hook and the short-name resolver."""
    app.connect("autodoc-process-docstring", _keep_property_summaries, priority=400)
    app.connect("missing-reference", _resolve_short_names)
