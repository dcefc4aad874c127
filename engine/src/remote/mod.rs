//! Remote I/O: what every component that talks to another machine shares — the FTP and HTTP
//! sources, the webhook and PostgreSQL sinks, the watcher's retries. One layer, so that a
//! timeout, a retry, a `Retry-After` or a certificate means the same thing whichever party the
//! engine talks to.
//!
//! - [`retry`]: the retry policy (`timeout_secs`, `retries`, `retry_base_ms`), its limits, the
//!   backoff and the retry loop.
//! - [`retry_after`]: the `Retry-After` header of a busy HTTP server.
//! - [`http`]: the HTTP client (timeouts, User-Agent, redirects, TLS) and URL-free error text.
//! - [`tls`]: verified TLS, with `ca_file` and `tls_insecure`.
//! - [`scrub`]: secrets, and the forms an echo gives them, out of whatever a server answers.

pub mod http;
pub mod retry;
pub mod retry_after;
pub mod scrub;
pub mod tls;
