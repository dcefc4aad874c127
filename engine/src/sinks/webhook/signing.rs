//! How a request proves it came from this pipeline: the signature headers, in one of two formats.
//!
//! - **Standard Webhooks** (the default): `webhook-id`, `webhook-timestamp` and
//!   `webhook-signature`, the last holding `v1,<base64 HMAC-SHA256>` over `id.timestamp.body`
//!   under the key a `whsec_…` secret encodes. Receivers verify it with a maintained library in
//!   their own language instead of code copied from a README.
//! - **`toss-etl`**, the engine's first format, kept so that running receivers need not change:
//!   `X-Toss-Etl-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over `timestamp.body`, keyed
//!   by the secret's bytes as written.
//!
//! Several secrets (a rotation) give several signatures in the one header, so a receiver that
//! knows either the new or the old secret accepts the request while it moves over.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// The header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub const TOSS_ETL_HEADER: &str = "X-Toss-Etl-Signature";
/// The Standard Webhooks headers.
pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// The prefix of a Standard Webhooks secret; the rest is the key in base64.
const SECRET_PREFIX: &str = "whsec_";

/// Key lengths the Standard Webhooks specification allows: shorter is too weak, and its
/// libraries refuse longer.
const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// `signature = "…"` on a webhook sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureFormat {
    #[default]
    StandardWebhooks,
    TossEtl,
}

impl SignatureFormat {
    /// As written in the pipeline file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StandardWebhooks => "standard-webhooks",
            Self::TossEtl => "toss-etl",
        }
    }
}

/// Signs requests with every configured secret.
pub struct Signer {
    format: SignatureFormat,
    /// The HMAC keys, in the order the secrets are listed.
    keys: Vec<Vec<u8>>,
}

/// Why a secret cannot sign: which one (1-based, in the order listed) and what to do. Never
/// holds the secret.
#[derive(Debug, PartialEq, Eq)]
pub struct BadSecret {
    pub position: usize,
    pub why: String,
}

impl Signer {
    /// The keys of `secrets` in `format`; a Standard Webhooks secret must be `whsec_` + base64
    /// of 24 to 64 bytes.
    pub fn new(format: SignatureFormat, secrets: &[&str]) -> Result<Self, BadSecret> {
        let keys = secrets
            .iter()
            .enumerate()
            .map(|(index, secret)| {
                key_of(format, secret).map_err(|why| BadSecret {
                    position: index + 1,
                    why,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Signer { format, keys })
    }

    /// The headers that sign `body`, sent as the request `id` at `timestamp` (Unix seconds).
    pub fn headers(&self, id: &str, timestamp: u64, body: &[u8]) -> Vec<(&'static str, String)> {
        match self.format {
            SignatureFormat::StandardWebhooks => {
                let timestamp = timestamp.to_string();
                let signed = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body];
                let signatures: Vec<String> = self
                    .keys
                    .iter()
                    .map(|key| format!("v1,{}", BASE64.encode(hmac(key, &signed))))
                    .collect();
                vec![
                    (ID_HEADER, id.to_owned()),
                    (TIMESTAMP_HEADER, timestamp),
                    (SIGNATURE_HEADER, signatures.join(" ")),
                ]
            }
            SignatureFormat::TossEtl => {
                let seconds = timestamp.to_string();
                let signed = [seconds.as_bytes(), b".", body];
                let mut value = format!("t={timestamp}");
                for key in &self.keys {
                    value.push_str(",v1=");
                    value.push_str(&hex::encode(hmac(key, &signed)));
                }
                vec![(TOSS_ETL_HEADER, value)]
            }
        }
    }
}

fn key_of(format: SignatureFormat, secret: &str) -> Result<Vec<u8>, String> {
    if secret.is_empty() {
        return Err("is empty; set it from the environment: \"${WEBHOOK_SECRET}\"".to_owned());
    }
    if format == SignatureFormat::TossEtl {
        return Ok(secret.as_bytes().to_vec());
    }
    let new_secret = "make a new one with \
                      `echo whsec_$(head -c 32 /dev/urandom | base64)` and give it to the receiver";
    let Some(encoded) = secret.strip_prefix(SECRET_PREFIX) else {
        return Err(format!(
            "is not a Standard Webhooks secret (`{SECRET_PREFIX}` + base64); {new_secret}, \
             or keep the old headers for a receiver that checks them with \
             signature = \"toss-etl\""
        ));
    };
    let key = BASE64
        .decode(encoded)
        .map_err(|_| format!("is not `{SECRET_PREFIX}` + valid base64; {new_secret}"))?;
    if !KEY_BYTES.contains(&key.len()) {
        return Err(format!(
            "encodes a key of {} bytes; Standard Webhooks keys are {} to {} bytes: {new_secret}",
            key.len(),
            KEY_BYTES.start(),
            KEY_BYTES.end()
        ));
    }
    Ok(key)
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries: this secret,
    /// id, timestamp and body sign to this value.
    #[test]
    fn signs_as_the_specifications_example() {
        let signer = Signer::new(
            SignatureFormat::StandardWebhooks,
            &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        )
        .unwrap();
        let headers = signer.headers(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            headers,
            vec![
                (ID_HEADER, "msg_p5jXN8AQM9LWM0D4loKWxJek".to_owned()),
                (TIMESTAMP_HEADER, "1614265330".to_owned()),
                (
                    SIGNATURE_HEADER,
                    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn a_rotation_signs_with_every_secret_in_order() {
        let new = format!("whsec_{}", BASE64.encode([7u8; 32]));
        let old = format!("whsec_{}", BASE64.encode([9u8; 24]));
        let both = Signer::new(SignatureFormat::StandardWebhooks, &[&new, &old]).unwrap();
        let alone = |secret: &str| {
            Signer::new(SignatureFormat::StandardWebhooks, &[secret])
                .unwrap()
                .headers("id", 1, b"x")[2]
                .1
                .clone()
        };
        let header = both.headers("id", 1, b"x")[2].1.clone();
        assert_eq!(header, format!("{} {}", alone(&new), alone(&old)));

        let toss = Signer::new(SignatureFormat::TossEtl, &["a", "b"]).unwrap();
        let value = &toss.headers("id", 5, b"x")[0].1;
        assert!(value.starts_with("t=5,v1="), "{value}");
        assert_eq!(value.matches(",v1=").count(), 2, "{value}");
    }

    /// Receivers already verify this format: its bytes must not change.
    #[test]
    fn the_old_format_signs_timestamp_and_body_with_the_secret_as_written() {
        // Computed independently: hmac.new(b"whsec_test", b'1700000000.{"records":[]}',
        // hashlib.sha256).hexdigest()
        let signer = Signer::new(SignatureFormat::TossEtl, &["whsec_test"]).unwrap();
        assert_eq!(
            signer.headers("ignored", 1_700_000_000, br#"{"records":[]}"#),
            vec![(
                TOSS_ETL_HEADER,
                "t=1700000000,v1=039a25bfba8a9a26e45079bf46ae189a835a82359dd7ab71e0f84728e9e127d9"
                    .to_owned()
            )]
        );
    }

    #[test]
    fn bad_secrets_say_which_and_what_to_do_without_showing_it() {
        let short = format!("whsec_{}", BASE64.encode([1u8; 16]));
        let good = format!("whsec_{}", BASE64.encode([1u8; 32]));
        for (secret, says) in [
            ("plain-old-secret", "signature = \"toss-etl\""),
            ("whsec_not base64!", "valid base64"),
            (short.as_str(), "16 bytes"),
            ("", "is empty"),
        ] {
            let err = Signer::new(SignatureFormat::StandardWebhooks, &[&good, secret])
                .err()
                .unwrap();
            assert_eq!(err.position, 2);
            assert!(err.why.contains(says), "{secret}: {}", err.why);
            if !secret.is_empty() {
                assert!(!err.why.contains(secret), "{}", err.why);
            }
        }
        assert!(Signer::new(SignatureFormat::TossEtl, &["plain-old-secret"]).is_ok());
    }
}
