//! The memcached text protocol (as spoken by memcached 1.6.18), as a pure
//! codec: bytes in, requests or replies out, no I/O and no storage.
//!
//! Layers, server side: bytes -> [`Decoder::decode`] -> [`Frame`] /
//! [`Request`] -> (the service executes it) -> [`Response::encode`] -> bytes.
//! Client side (the load generator, tests): [`encode_request`] and
//! [`decode_response`]. Both sides share these types, so a request the
//! client encodes is exactly what the server decodes.
//!
//! Nothing is copied: requests borrow keys and values from the input buffer,
//! responses borrow their data from the caller.

mod client;
mod decoder;
mod error;
mod expiry;
pub mod invariants;
mod limits;
mod number;
mod request;
mod response;

pub use client::{decode_response, ResponseError};
pub use decoder::{Decoder, Frame};
pub use error::{ErrorKind, ProtocolError};
pub use expiry::{expiry_from_exptime, Expiry, MAX_RELATIVE_EXPTIME};
pub use limits::{Limits, ITEM_OVERHEAD, MAX_ITEM_SIZE_LIMIT};
pub use request::{
    encode_request, encode_storage_header, MetaFlags, Request, StorageCommand, StorageHeader,
    TokenIter, Tokens,
};
pub use response::{encode_value_header, MetaStatus, Response};
