"""Images: a spec (images/*.yaml) is a base plus ordered building blocks; each block is one small
Jinja2 template (Dockerfile.templates/<block>.j2) whose header declares its options with
defaults. Rendering gives a Dockerfile; building tags the result by a content hash of the
Dockerfile, the files it copies and the base image id, so unchanged inputs never rebuild.

    spec (yaml, pydantic)  ->  plan (blocks + resolved options)  ->  Dockerfile text
        -> build context dir (Dockerfile + copied files)  ->  sha256  ->  containerctl/<name>:<hash12>

A base is either an image reference (`base.image`, used as is: local, or pulled by the build) or
a bootstrap recipe (`base.bootstrap`: mmdebstrap/debootstrap into a tarball that is imported
under `base.tag`), for hosts that cannot reach a registry.

One module per step, each importing only the ones before it:

    where.py      the spec and template directories, display names, YAML line numbers
    blocks.py     block templates and their declared options
    spec.py       the image spec (pydantic) and its loading and checks
    render.py     spec + overrides -> plan -> Dockerfile text
    bootstrap.py  offline bases (mmdebstrap/debootstrap -> docker import), the build lock
    build.py      build context, content hash, tag; ensure_image

This file re-exports the names callers use (`from containerctl import images; images.render(...)`).
Not to be confused with the repository's images/ folder (the YAML specs, packaged as
containerctl/_data/images). Nothing here imports `docker` (engine.py does) and jinja2 is imported
only when rendering.
"""
from __future__ import annotations

from ..labels import BASE as BASE_LABEL, HASH as HASH_LABEL, IMAGE as IMAGE_LABEL
from .blocks import TOP_TEMPLATE, BlockDef, Option, block_def, block_names
from .bootstrap import BOOTSTRAP_RECIPE, OnLine, bootstrap_key, ensure_base
from .build import REPO_PREFIX, built_tags, current_tag, digest_dir, ensure_image, image_tag, \
    materialize
from .render import ContextItem, Plan, PlannedBlock, override_keys, plan, render
from .spec import BaseSpec, BlockSpec, Bootstrap, ImageSpec, list_images, load_image
from .where import image_dirs, suggest, template_dirs

__all__ = [
    "BASE_LABEL", "HASH_LABEL", "IMAGE_LABEL",   # the labels an image and a base carry (labels.py)
    "BOOTSTRAP_RECIPE", "REPO_PREFIX", "TOP_TEMPLATE", "BaseSpec", "BlockDef", "BlockSpec",
    "Bootstrap", "ContextItem", "ImageSpec", "OnLine", "Option", "Plan", "PlannedBlock",
    "block_def", "block_names", "bootstrap_key", "built_tags", "current_tag", "ensure_base",
    "ensure_image", "image_dirs", "image_tag", "list_images", "load_image", "materialize",
    "override_keys", "plan", "render", "template_dirs",
    "digest_dir", "suggest",   # used by tests/test_images.py and cli/image.py
]
