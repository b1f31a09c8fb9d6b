"""STIX 2.1 in our vocabulary: bundles in (``convert_bundle``), bundles out (``export``).

Pure functions over parsed JSON (see ``schemas.stix.convert`` and ``schemas.stix.export``);
the front, the CLI and the TAXII poller share them.
"""

from schemas.stix.convert import (
    Conversion,
    ConvertedEntity,
    ConvertedLink,
    ObjectOutcome,
    bundle_objects,
    convert_bundle,
)
from schemas.stix.provenance import Provenance

__all__ = [
    "Conversion",
    "ConvertedEntity",
    "ConvertedLink",
    "ObjectOutcome",
    "Provenance",
    "bundle_objects",
    "convert_bundle",
]
