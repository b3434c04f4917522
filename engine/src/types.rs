//! The values the engine's API hands out and takes: [`Value`] (a slice of
//! an HSTable's map, or decompressed bytes), [`Item`], [`Meta`], the
//! conditions and outcomes of a put, and [`Written`] with its sync ticket.

use std::sync::Arc;

use crate::durability::SyncTicket;
use crate::hstable::MappedFile;

/// A value: a slice of an HSTable's map, no copy (keeps the file mapped for
/// as long as it lives), or, for a compressed record, the decompressed bytes.
#[derive(Clone)]
pub struct Value {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    Mapped {
        file: Arc<MappedFile>,
        off: usize,
        len: usize,
    },
    Owned(Arc<[u8]>),
}

impl Value {
    pub(crate) fn mapped(file: Arc<MappedFile>, off: usize, len: usize) -> Value {
        Value {
            repr: Repr::Mapped { file, off, len },
        }
    }

    pub(crate) fn owned(bytes: Vec<u8>) -> Value {
        Value {
            repr: Repr::Owned(bytes.into()),
        }
    }
}

impl std::ops::Deref for Value {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match &self.repr {
            Repr::Mapped { file, off, len } => file.bytes(*off, *len),
            Repr::Owned(b) => b,
        }
    }
}

impl AsRef<[u8]> for Value {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Value({:?})", String::from_utf8_lossy(self))
    }
}

impl PartialEq<[u8]> for Value {
    fn eq(&self, other: &[u8]) -> bool {
        **self == *other
    }
}

/// Client metadata stored with a value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meta {
    /// memcached client flags, opaque to the engine.
    pub flags: u32,
    /// Absolute expiry in unix seconds; 0 = never.
    pub expiry: u32,
}

/// A live record.
#[derive(Debug, Clone)]
pub struct Item {
    pub value: Value,
    pub flags: u32,
    pub expiry: u32,
    /// Sequence number of the write; memcached's CAS value.
    pub seq: u64,
}

/// When a put applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Always,
    /// Only if the key is missing (or expired): memcached `add`.
    IfAbsent,
    /// Only if the key is live: memcached `replace`.
    IfPresent,
    /// Only if the key's sequence number is this one: memcached `cas`.
    IfSeq(u64),
}

/// What a put did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Stored {
        seq: u64,
    },
    /// `IfAbsent` found the key, or `IfPresent` did not.
    NotStored,
    /// `IfSeq` found another sequence number.
    Exists,
    /// `IfSeq` found no live key.
    NotFound,
}

/// What an [`Engine::update`] closure asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    Keep,
    Put { value: Vec<u8>, meta: Meta },
    Delete,
}

/// The result of a mutation and the ticket that says when it is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written<T> {
    pub result: T,
    pub ticket: SyncTicket,
}
