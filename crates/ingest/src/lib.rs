//! Reading drone photos and orthophotos: metadata, validation, content hashes, camera database.
