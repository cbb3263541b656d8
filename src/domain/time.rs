//! Time as Hoist records it.

/// Milliseconds since the Unix epoch, the unit of every time Hoist records.
pub type Millis = i64;

/// The current time in [`Millis`].
pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}
