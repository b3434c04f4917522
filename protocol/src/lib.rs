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
//!
//! ```
//! use protocol::{decode_response, Decoder, Frame, Limits, Request, Response};
//!
//! // Server side: decode what a connection sent, reply into a buffer.
//! let input = b"set k 0 0 2\r\nhi\r\nget k\r\nbogus\r\n";
//! let mut decoder = Decoder::new(Limits::default());
//! let (mut pos, mut out) = (0, Vec::new());
//! loop {
//!     match decoder.decode(&input[pos..]) {
//!         Ok(None) => break, // read more bytes
//!         Ok(Some((frame, used))) => {
//!             pos += used;
//!             match frame {
//!                 Frame::Request(Request::Store { .. }) => Response::Stored.encode(&mut out),
//!                 Frame::Request(Request::Get { keys }) => {
//!                     for key in keys {
//!                         Response::Value { key, flags: 0, data: b"hi", cas: None }.encode(&mut out);
//!                     }
//!                     Response::End.encode(&mut out);
//!                 }
//!                 _ => {}
//!             }
//!         }
//!         Err(e) => {
//!             pos += e.consumed;
//!             out.extend_from_slice(e.reply());
//!             if e.close {
//!                 break;
//!             }
//!         }
//!     }
//! }
//! assert_eq!(out, b"STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\nERROR\r\n");
//!
//! // Client side: the same replies, decoded one at a time.
//! let (reply, used) = decode_response(&out).unwrap().unwrap();
//! assert_eq!((reply, used), (Response::Stored, 8));
//! ```

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
    encode_request, encode_storage_header, MetaFlags, OwnedStorageHeader, Request, StorageCommand,
    StorageHeader, TokenIter, Tokens,
};
pub use response::{
    encode_data_end, encode_meta_line, encode_server_error, encode_stat, encode_value_header,
    MetaItem, MetaStatus, ReplySink, Response, TOO_MANY_CONNECTIONS,
};
