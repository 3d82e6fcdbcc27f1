//! Maelstrom's error codes, and the one error the node raises on its own.
//!
//! An error reply is `{"type":"error","in_reply_to":N,"code":C,"text":"…"}`. Maelstrom treats a
//! *definite* code as "this certainly did not happen", so a `send` that fails with one must never
//! become visible; the node only uses definite codes for requests it rejected before touching the
//! store.

/// The Maelstrom error codes this node sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 10 `not-supported`, definite: "The operation is not implemented." Sent for an unknown
    /// request type.
    NotSupported,
    /// 11 `temporarily-unavailable`, definite: "Definitely not done right now, e.g. not
    /// initialised." Sent for any request before `init`.
    TemporarilyUnavailable,
    /// 12 `malformed-request`, definite: "The request was unintelligible and could not have been
    /// processed." Sent for a missing or mistyped field.
    MalformedRequest,
    /// 14 `abort`, definite: "known not to have happened". Sent when a key's log is full, which
    /// is detected before anything is stored.
    Abort,
}

impl ErrorCode {
    /// The number on the wire.
    pub fn code(self) -> u32 {
        match self {
            Self::NotSupported => 10,
            Self::TemporarilyUnavailable => 11,
            Self::MalformedRequest => 12,
            Self::Abort => 14,
        }
    }
}
