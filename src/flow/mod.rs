//! Per-connection sessions.
