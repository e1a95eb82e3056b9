//! API keys: `tg_<id>.<secret>`. Only the SHA-256 of the secret is kept, and presented
//! keys are compared with it in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

/// A key as presented: its public id and its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedKey {
    /// The public part, which names the stored key.
    pub id: String,
    secret: String,
}

impl PresentedKey {
    /// Parses `tg_<id>.<secret>`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let (id, secret) = text.trim().strip_prefix("tg_")?.split_once('.')?;
        let valid = |part: &str, max: usize| {
            !part.is_empty()
                && part.len() <= max
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        (valid(id, 64) && valid(secret, 128)).then(|| Self {
            id: id.to_owned(),
            secret: secret.to_owned(),
        })
    }

    /// Whether the secret's SHA-256 is `secret_sha256` (hex), compared in constant time.
    pub fn matches(&self, secret_sha256: &str) -> bool {
        same_text(&secret_hash(&self.secret), secret_sha256)
    }
}

/// Whether `a` and `b` are equal, compared in constant time for texts of one length.
pub fn same_text(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |difference, (x, y)| difference | (x ^ y))
            == 0
}

/// A new key: the full text (shown once) and the hex SHA-256 of its secret (kept).
///
/// # Errors
/// If the system random generator fails.
pub fn generate() -> Result<(String, String, String), ring::error::Unspecified> {
    let id = random_text(9)?;
    let secret = random_text(32)?;
    let hash = secret_hash(&secret);
    Ok((id.clone(), format!("tg_{id}.{secret}"), hash))
}

/// URL-safe random text of `bytes` random bytes.
///
/// # Errors
/// If the system random generator fails.
pub fn random_text(bytes: usize) -> Result<String, ring::error::Unspecified> {
    let mut buffer = vec![0u8; bytes];
    SystemRandom::new().fill(&mut buffer)?;
    Ok(URL_SAFE_NO_PAD
        .encode(buffer)
        .replace('-', "x")
        .replace('_', "y"))
}

/// Hex SHA-256 of a key's secret.
pub fn secret_hash(secret: &str) -> String {
    digest(&SHA256, secret.as_bytes())
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_matches_its_hash_and_no_other() {
        let (id, text, hash) = generate().expect("random");
        let key = PresentedKey::parse(&text).expect("parses");
        assert_eq!(key.id, id);
        assert!(key.matches(&hash));
        let (_, other, other_hash) = generate().expect("random");
        assert!(!key.matches(&other_hash));
        assert!(!PresentedKey::parse(&other).expect("parses").matches(&hash));
    }

    #[test]
    fn malformed_keys_are_refused() {
        for text in [
            "",
            "tg_",
            "tg_abc",
            "tg_.x",
            "tg_a.",
            "Bearer tg_a.b",
            "tg_a b.c",
        ] {
            assert_eq!(PresentedKey::parse(text), None, "{text}");
        }
    }
}
