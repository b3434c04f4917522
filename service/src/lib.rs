//! Executes parsed memcached requests against the storage engine, for both
//! front-ends: the per-connection [`Session`], the shared [`Service`] with its
//! [`ServerStats`], the command-line [`Flags`] both binaries flatten, and the
//! [`conformance`] suite every front-end is tested with.

pub mod conformance;
