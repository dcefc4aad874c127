//! The forms a secret takes when a server echoes it back, for the tests that check that the
//! engine shows and stores none of them.

/// Every byte as `%XX`: the most thorough percent-encoding of `text`.
pub fn percent_all(text: &str) -> String {
    text.bytes().map(|byte| format!("%{byte:02X}")).collect()
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let word = chunk.iter().enumerate().fold(0u32, |word, (at, &byte)| {
            word | (u32::from(byte) << (16 - 8 * at))
        });
        for at in 0..4 {
            if at <= chunk.len() {
                out.push(ALPHABET[((word >> (18 - 6 * at)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The form of `secret` that `text` shows, if any: whole in any letter case, percent-encoded,
/// base64-encoded, or any ten characters of it in a row (a secret with a few characters cut).
pub fn shown_form_of(secret: &str, text: &str) -> Option<String> {
    let text = text.to_lowercase();
    let secret = secret.to_lowercase();
    let encoded = [
        percent_all(&secret),
        base64(secret.as_bytes()).to_lowercase(),
    ];
    let windows = secret
        .char_indices()
        .filter(|(at, _)| at + 10 <= secret.len())
        .map(|(at, _)| secret[at..at + 10].to_owned());
    encoded
        .into_iter()
        .map(|form| form.to_lowercase())
        .chain(windows)
        .find(|form| text.contains(form.as_str()))
}
