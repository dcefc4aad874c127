//! Cutting a page of Toss's answer (a JSON array) into its rows' texts without building them:
//! each row is handed on exactly as Toss wrote it (its numbers' digits included), and the
//! allocation-heavy detour through `serde_json::Value` and back, which was most of a pull's
//! CPU time, is gone.

use std::ops::Range;

/// Where each element of the JSON array `body` is, or `None` when `body` is not a JSON array.
/// The body is checked to be valid JSON first, so the cutting only tracks strings and nesting.
pub(super) fn elements(body: &[u8]) -> Option<Vec<Range<usize>>> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).ok()?;
    let open = body.iter().position(|byte| !byte.is_ascii_whitespace())?;
    if body[open] != b'[' {
        return None;
    }
    let mut found = Vec::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut start = open + 1;
    for (at, &byte) in body.iter().enumerate().skip(open + 1) {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth > 0 => depth -= 1,
            b',' | b']' if depth == 0 => {
                let element = trimmed(body, start..at);
                if !element.is_empty() {
                    found.push(element);
                }
                if byte == b']' {
                    return Some(found);
                }
                start = at + 1;
            }
            _ => {}
        }
    }
    None
}

fn trimmed(body: &[u8], mut range: Range<usize>) -> Range<usize> {
    while range.start < range.end && body[range.start].is_ascii_whitespace() {
        range.start += 1;
    }
    while range.end > range.start && body[range.end - 1].is_ascii_whitespace() {
        range.end -= 1;
    }
    range
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(body: &str) -> Option<Vec<&str>> {
        elements(body.as_bytes()).map(|ranges| ranges.into_iter().map(|r| &body[r]).collect())
    }

    #[test]
    fn elements_are_cut_as_written_whatever_they_hold() {
        let body = r#" [ {"a":"x,]}\"[","b":[1,{"c":2}]} ,
            {"amount":726.24} ,"text", 3 ] "#;
        assert_eq!(
            texts(body).unwrap(),
            [
                r#"{"a":"x,]}\"[","b":[1,{"c":2}]}"#,
                r#"{"amount":726.24}"#,
                r#""text""#,
                "3"
            ]
        );
        assert_eq!(texts("[]").unwrap(), Vec::<&str>::new());
        assert_eq!(texts("[\n]").unwrap(), Vec::<&str>::new());
    }

    #[test]
    fn anything_but_a_valid_array_is_refused() {
        for body in ["", "{}", "\"[1]\"", "[1,", "<html>", "[1] x", "null"] {
            assert_eq!(texts(body), None, "{body:?}");
        }
    }
}
