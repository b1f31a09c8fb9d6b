"""The shared vocabulary of the front and the workers (pure: pydantic and the standard library).

Entity catalogue and normalisation, content-addressed IDs, association rules, HTTP bodies
(``schemas.http``) and the queue envelope (``schemas.messages``).
"""

from schemas.catalogue import (
    CATALOGUE,
    DataType,
    EntityType,
    Kind,
    NormalisationError,
    UnknownEntityType,
    entity_type,
    main_attribute,
)
from schemas.ids import (
    ENTITY_ID_RE,
    InvalidEntityId,
    association_id,
    entity_id,
    entity_id_of_normalised,
    parse_entity_id,
)
from schemas.jobids import job_id_timestamp, new_job_id
from schemas.messages import (
    AssociationItem,
    AssociationMessage,
    EntityItem,
    EntityLink,
    EntityMessage,
    EntityRecord,
    ItemMeta,
    MessageKind,
    decode_message,
    encode_envelope,
    encode_item,
)
from schemas.normalise import MAX_TEXT_BYTES, fold_tags, normalise, refang
from schemas.rules import (
    DEFAULT_ASSOCIATION_TYPES,
    NOT_ALLOWED_ERR_CODE,
    NOT_ALLOWED_MESSAGE,
    AssociationRules,
    AssociationType,
    InvalidAssociationType,
    Rejection,
    RejectionCode,
    validate_custom_type,
)

__all__ = [
    "CATALOGUE",
    "DEFAULT_ASSOCIATION_TYPES",
    "ENTITY_ID_RE",
    "MAX_TEXT_BYTES",
    "NOT_ALLOWED_ERR_CODE",
    "NOT_ALLOWED_MESSAGE",
    "AssociationItem",
    "AssociationMessage",
    "AssociationRules",
    "AssociationType",
    "DataType",
    "EntityItem",
    "EntityLink",
    "EntityMessage",
    "EntityRecord",
    "EntityType",
    "InvalidAssociationType",
    "InvalidEntityId",
    "ItemMeta",
    "Kind",
    "MessageKind",
    "NormalisationError",
    "Rejection",
    "RejectionCode",
    "UnknownEntityType",
    "association_id",
    "decode_message",
    "encode_envelope",
    "encode_item",
    "entity_id",
    "entity_id_of_normalised",
    "entity_type",
    "fold_tags",
    "job_id_timestamp",
    "main_attribute",
    "new_job_id",
    "normalise",
    "parse_entity_id",
    "refang",
    "validate_custom_type",
]
