//! Shared test helpers: locating the binary and data, tshark, namespaces.
