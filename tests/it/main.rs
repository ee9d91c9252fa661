//! Integration tests: start the binary and drive it with real clients.
