//! Tokens and initial data sequence numbers from MPTCP keys (RFC 6824 §3.1, RFC 8684 §3.1):
//! hash the 8-byte big-endian key with SHA-1 (v0) or SHA-256 (v1); the token is the hash's first
//! 4 bytes, the IDSN its last 8 bytes, both big-endian.
