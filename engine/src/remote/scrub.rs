//! Secrets out of everything a remote party says back. A server, or a proxy's error page, may
//! echo the request it got — the URL with Toss's key, the `Authorization` header, a webhook
//! token — and what it says ends up in error messages, on stderr, in `state.sqlite` and in
//! `engine status`. Every component that talks to another machine builds one [`Scrubber`] from
//! its secrets and passes everything it shows of an answer through it.
//!
//! A secret is looked for in the forms an echo takes: as it is, percent-encoded (the usual way
//! and every byte as `%XX`), and base64-encoded (on its own, or inside a longer base64 text
//! such as a Basic `Authorization` header, at each of the three alignments), all matched
//! without regard to ASCII letter case, since pages upper-case what they echo and hex and
//! percent escapes come in both cases. A page may also cut an echoed value short, so a run of
//! characters that appears inside one of those forms is blanked out too when it is at least half
//! as long as the form and at least [`RUN`] characters long: a value with a few characters cut
//! is caught, while fewer than half of a secret's characters do not give it away, and shorter
//! runs are too likely to be ordinary words (`receiver` inside `tok_Receiver-51e2d8`). Values
//! shorter than [`MIN_SECRET`] characters are not looked for, since they cannot be told apart
//! from ordinary words.

use std::collections::{BTreeMap, HashSet};

/// What a secret becomes in a message.
pub const REDACTED: &str = "***";

/// The shortest run of a secret's characters (in any of its forms) that is blanked out; runs
/// must also be at least half as long as the form.
pub const RUN: usize = 8;

/// The shortest value treated as a secret.
pub const MIN_SECRET: usize = 4;

/// Query parameters whose names contain one of these carry a credential.
const SECRET_PARAMETERS: [&str; 9] = [
    "key",
    "token",
    "secret",
    "sig",
    "auth",
    "pass",
    "pwd",
    "credential",
    "session",
];

/// Replaces secrets, and the forms they take in an echo, with `***`.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    /// Every form of every secret, ASCII-lower-cased.
    forms: Vec<Vec<u8>>,
    /// Per length, the runs of that length of the forms it applies to (half the form, at least
    /// [`RUN`]), ASCII-lower-cased.
    runs: BTreeMap<usize, HashSet<Vec<u8>>>,
}

impl Scrubber {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `secret` in all its forms (nothing when it is shorter than [`MIN_SECRET`]).
    pub fn add(&mut self, secret: &str) {
        if secret.chars().count() < MIN_SECRET {
            return;
        }
        let mut forms = vec![
            secret.to_owned(),
            percent_encode(secret, false),
            percent_encode(secret, true),
        ];
        forms.extend(base64_forms(secret.as_bytes()));
        for form in forms {
            let form = form.to_ascii_lowercase().into_bytes();
            if form.len() < MIN_SECRET || self.forms.contains(&form) {
                continue;
            }
            let length = form.len().div_ceil(2).max(RUN);
            let runs = self.runs.entry(length).or_default();
            for run in form.windows(length) {
                runs.insert(run.to_vec());
            }
            self.forms.push(form);
        }
    }

    /// Adds what an `Authorization` (or similar) header value gives away: the whole value,
    /// each word of it (the token after `Bearer`), and for `Basic` the decoded `user:password`
    /// and the password.
    pub fn add_header_value(&mut self, value: &str) {
        self.add(value);
        let mut words = value.split_whitespace();
        let scheme = words.next().unwrap_or("");
        // The scheme (`Bearer`, `Basic`) is no secret; the words after it are.
        for word in value.split_whitespace().skip(1) {
            self.add(word);
        }
        if scheme.eq_ignore_ascii_case("basic")
            && let Some(decoded) = words.next().and_then(base64_decode)
            && let Ok(credentials) = String::from_utf8(decoded)
        {
            self.add_basic_auth(&credentials);
        }
    }

    /// Adds `user:password` as Basic authentication sends it, and the password alone.
    fn add_basic_auth(&mut self, credentials: &str) {
        self.add(credentials);
        if let Some((_, password)) = credentials.split_once(':') {
            self.add(password);
        }
    }

    /// Adds the credentials a URL carries: its password (and the `user:password` Basic
    /// authentication made of it) and the values of query parameters named like a key, token,
    /// signature or password.
    pub fn add_url(&mut self, url: &reqwest::Url) {
        if let Some(password) = url.password() {
            self.add(password);
            let user = percent_decode(url.username());
            self.add_basic_auth(&format!("{user}:{}", percent_decode(password)));
        }
        for (name, value) in url.query_pairs() {
            let name = name.to_ascii_lowercase();
            if is_secret_parameter(&name) {
                self.add(&value);
            }
        }
    }

    /// `text` with every secret form, and every long enough run of characters of one, replaced
    /// by `***` (adjacent ones by a single `***`).
    pub fn scrub(&self, text: &str) -> String {
        if self.forms.is_empty() {
            return text.to_owned();
        }
        let lower = text.to_ascii_lowercase().into_bytes();
        let mut hidden = vec![false; lower.len()];
        for form in &self.forms {
            let mut from = 0;
            while let Some(at) = find(&lower[from..], form) {
                hidden[from + at..from + at + form.len()].fill(true);
                from += at + 1;
            }
        }
        for (&length, runs) in &self.runs {
            for (at, run) in lower.windows(length).enumerate() {
                if runs.contains(run) {
                    hidden[at..at + length].fill(true);
                }
            }
        }
        let mut scrubbed = String::with_capacity(text.len());
        let mut in_secret = false;
        for (at, c) in text.char_indices() {
            if hidden[at..at + c.len_utf8()].contains(&true) {
                if !in_secret {
                    scrubbed.push_str(REDACTED);
                }
                in_secret = true;
            } else {
                scrubbed.push(c);
                in_secret = false;
            }
        }
        scrubbed
    }

    /// The start of a remote party's answer on one line, at most `chars` characters, secrets
    /// blanked out first (so a cut can never leave part of one behind).
    pub fn excerpt(&self, body: &[u8], chars: usize) -> String {
        // Enough of the answer that the cut below never falls inside a secret it holds.
        let head = &body[..body.len().min(chars * 8 + 1024)];
        let text: String = String::from_utf8_lossy(head)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let text = self.scrub(&text);
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut shown: String = text.chars().take(chars).collect();
        if text.chars().count() > chars {
            shown.push('…');
        }
        shown
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// `text` percent-encoded: every byte but the unreserved ones (RFC 3986), or every byte.
fn percent_encode(text: &str, every_byte: bool) -> String {
    text.bytes()
        .map(|byte| {
            if !every_byte && (byte.is_ascii_alphanumeric() || b"-._~".contains(&byte)) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = (bytes[at] == b'%')
            .then(|| bytes.get(at + 1..at + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                at += 3;
            }
            None => {
                out.push(bytes[at]);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64, with padding.
fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = chunk.iter().enumerate().fold(0u32, |group, (at, &byte)| {
            group | (u32::from(byte) << (16 - 8 * at))
        });
        for at in 0..4 {
            if at <= chunk.len() {
                out.push(BASE64[((group >> (18 - 6 * at)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard or URL-safe base64, padded or not; `None` when `text` is not base64.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut group = 0u32;
    let mut bits = 0;
    for byte in text.trim_end_matches('=').bytes() {
        let value = match byte {
            b'-' => 62,
            b'_' => 63,
            _ => BASE64.iter().position(|&c| c == byte)? as u32,
        };
        group = (group << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((group >> bits) as u8);
            group &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The base64 text `secret`'s bytes become wherever they sit in a longer base64-encoded text:
/// for each of the three alignments, the characters that depend on the secret's bytes alone
/// (those shorter than [`RUN`] are dropped; the whole encoding, padding and all, is kept).
/// URL-safe base64 differs only in two characters, which case-insensitive matching does not
/// cover, so those forms are added too.
fn base64_forms(secret: &[u8]) -> Vec<String> {
    let mut forms = vec![base64_encode(secret)];
    for offset in 0..3usize {
        let mut shifted = vec![0u8; offset];
        shifted.extend_from_slice(secret);
        let encoded = base64_encode(&shifted);
        // Character `i` covers bits 6i..6i+6 of the stream; the secret's are 8·offset..
        let first = (8 * offset).div_ceil(6);
        let end = (8 * (offset + secret.len())) / 6;
        if end > first && end - first >= RUN {
            forms.push(encoded[first..end].to_owned());
        }
    }
    let url_safe: Vec<String> = forms
        .iter()
        .filter(|form| form.contains(['+', '/']))
        .map(|form| form.replace('+', "-").replace('/', "_"))
        .collect();
    forms.extend(url_safe);
    forms
}

/// Whether a URL query parameter named `name` is named like a credential (a key, token,
/// signature or password), so that its value is never shown or stored.
pub fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMETERS.iter().any(|word| name.contains(word))
}

/// `url` without what may be a credential: its `user:password@` and every query parameter
/// named like one. What users see of an address (messages, the `source_file` column).
pub fn public_url(mut url: reqwest::Url) -> reqwest::Url {
    // Both fail only for URLs that cannot carry credentials, which then have none.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    if url.query().is_some() {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(name, _)| !is_secret_parameter(name))
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        url.set_query(None);
        if !kept.is_empty() {
            url.query_pairs_mut().extend_pairs(kept);
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0b27e4f74c8e3a717f0cff410d9ba50b";

    fn scrubber(secrets: &[&str]) -> Scrubber {
        let mut scrubber = Scrubber::new();
        for secret in secrets {
            scrubber.add(secret);
        }
        scrubber
    }

    #[test]
    fn base64_matches_the_standard_encoding() {
        // Computed independently: printf 'user:pass' | base64, and so on.
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64_encode(b"mk-Secret-4242"), "bWstU2VjcmV0LTQyNDI=");
        assert_eq!(base64_encode(b"ab"), "YWI=");
        assert_eq!(base64_decode("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert!(base64_decode("not base64!").is_none());
    }

    #[test]
    fn a_secret_is_blanked_out_in_any_letter_case() {
        let scrubber = scrubber(&[KEY]);
        let text = format!("GET /trxdown.jsp?mertid=toss&key={KEY} HTTP/1.1");
        assert_eq!(
            scrubber.scrub(&text),
            "GET /trxdown.jsp?mertid=toss&key=*** HTTP/1.1"
        );
        assert_eq!(
            scrubber.scrub(&format!("<title>KEY {}</title>", KEY.to_uppercase())),
            "<title>KEY ***</title>"
        );
        assert_eq!(scrubber.scrub("nothing secret here"), "nothing secret here");
    }

    #[test]
    fn percent_and_base64_encoded_forms_are_blanked_out() {
        let scrubber = scrubber(&["mk/Secret+4242 x"]);
        for echoed in [
            "mk%2FSecret%2B4242%20x",
            "mk%2fsecret%2b4242%20x",
            "%6D%6B%2F%53%65%63%72%65%74%2B%34%32%34%32%20%78",
            // printf 'mk/Secret+4242 x' | base64
            "bWsvU2VjcmV0KzQyNDIgeA==",
        ] {
            let shown = scrubber.scrub(&format!("said: {echoed}."));
            assert_eq!(shown, "said: ***.", "{echoed}");
        }
    }

    #[test]
    fn a_secret_inside_a_longer_base64_text_is_blanked_out_at_every_alignment() {
        let scrubber = scrubber(&["hunter2-password"]);
        for prefix in ["", "a", "ab", "abc", "user:"] {
            let encoded = base64_encode(format!("{prefix}hunter2-password!").as_bytes());
            let shown = scrubber.scrub(&format!("Authorization: Basic {encoded}"));
            assert!(shown.contains("***"), "{prefix}: {shown}");
            // Only the characters of the neighbouring bytes remain: the prefix's, at most one
            // shared with the secret at each end, the `!` and the padding.
            let left = shown
                .replace("Authorization: Basic ", "")
                .replace("***", "");
            assert!(
                left.len() <= (prefix.len() * 8).div_ceil(6) + 5,
                "{prefix}: {shown}"
            );
        }
    }

    #[test]
    fn a_secret_cut_short_is_blanked_out_down_to_half_its_length() {
        let token = scrubber(&["tok_Receiver-51e2d8"]);
        let scrubber = scrubber(&[KEY, "mk-Secret-4242"]);
        let cut = &KEY[1..KEY.len() - 1];
        assert_eq!(
            scrubber.scrub(&format!("key={cut} and {}", "K-SECRET-424")),
            "key=*** and ***"
        );
        // Fewer than half of a secret's characters, or fewer than eight, are left alone.
        assert_eq!(scrubber.scrub("0b27e4f74c8e3a7"), "0b27e4f74c8e3a7");
        assert_eq!(scrubber.scrub("Secret-"), "Secret-");
        assert_eq!(token.scrub("the receiver said no"), "the receiver said no");
        // A secret cut at the end of an excerpt leaves nothing of it.
        let excerpt = scrubber.excerpt(format!("{}{KEY}", "x".repeat(10)).as_bytes(), 15);
        assert_eq!(excerpt, "xxxxxxxxxx***");
    }

    #[test]
    fn short_values_are_not_secrets_and_nothing_is_scrubbed_without_secrets() {
        assert_eq!(scrubber(&["ab"]).scrub("abc ab"), "abc ab");
        assert_eq!(Scrubber::new().scrub("any text"), "any text");
    }

    #[test]
    fn header_values_give_away_their_token_and_basic_credentials() {
        let mut scrubber = Scrubber::new();
        scrubber.add_header_value("Bearer tok-123456789");
        // printf 'toss:pw-Secret-77' | base64
        scrubber.add_header_value("Basic dG9zczpwdy1TZWNyZXQtNzc=");
        assert_eq!(
            scrubber.scrub("bad token (tok-123456789) for user toss:pw-Secret-77 / PW-SECRET-77"),
            "bad token (***) for user *** / ***"
        );
        assert_eq!(
            scrubber.scrub("Authorization: Basic dG9zczpwdy1TZWNyZXQtNzc="),
            "Authorization: ***"
        );
    }

    #[test]
    fn urls_give_away_their_password_and_token_parameters() {
        let url = reqwest::Url::parse(
            "https://toss:pw%2Fsecret9@hooks.example/in?access_token=tok-9f8e7d6c5b&page=27&SIG=abcd1234",
        )
        .unwrap();
        let mut scrubber = Scrubber::new();
        scrubber.add_url(&url);
        let shown = scrubber.scrub(&format!(
            "rejected {url} as toss:pw/secret9 ({})",
            base64_encode(b"toss:pw/secret9")
        ));
        assert_eq!(
            shown,
            "rejected https://toss:***@hooks.example/in?access_token=***&page=27&SIG=*** as *** (***)"
        );
    }

    #[test]
    fn text_around_non_ascii_characters_is_kept_whole() {
        let scrubber = scrubber(&["비밀번호-secret"]);
        assert_eq!(
            scrubber.scrub("오류: 비밀번호-SECRET 거부"),
            "오류: *** 거부"
        );
    }

    #[test]
    fn a_public_url_has_no_credentials_and_no_secret_parameters() {
        let url = reqwest::Url::parse(
            "https://user:pw@toss.example/trxdown.jsp?mertid=m&api_token=T0k&servicecode=TRX&SIG=x",
        )
        .unwrap();
        assert_eq!(
            public_url(url).as_str(),
            "https://toss.example/trxdown.jsp?mertid=m&servicecode=TRX"
        );
    }
}
