//! The values of Toss's JSON as they really come: money as a number or a string (`"800"` in
//! Toss's own settlement example), times with `+09:00` or without an offset, days as
//! `YYYY-MM-DD`. Each is read tolerantly and exactly, or said to be unreadable.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Deserializer};

use toss_etl_sdk::toss_api::MONEY_SCALE;

/// An amount as Toss wrote it: a JSON number or a string holding one.
///
/// Numbers are kept as text until [`Money::units`] reads them in decimal, so `726.24` is
/// 726.2400, not the nearest binary fraction. (serde_json hands over a number with a fraction
/// as an `f64`; its shortest round-trip text is the number as written for every amount of up
/// to 15 significant digits, and whole numbers are exact up to 2^63.)
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Money(pub String);

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Money;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an amount (a number, or a string holding one)")
            }
            fn visit_i64<E>(self, value: i64) -> Result<Money, E> {
                Ok(Money(value.to_string()))
            }
            fn visit_u64<E>(self, value: u64) -> Result<Money, E> {
                Ok(Money(value.to_string()))
            }
            fn visit_f64<E>(self, value: f64) -> Result<Money, E> {
                Ok(Money(value.to_string()))
            }
            fn visit_str<E>(self, value: &str) -> Result<Money, E> {
                Ok(Money(value.trim().to_owned()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Money {
    /// The amount in units of 10^-[`MONEY_SCALE`], or why it is not one.
    pub(crate) fn units(&self) -> Result<i128, String> {
        decimal_units(&self.0).ok_or_else(|| format!("{:?} is not an amount", self.0))
    }
}

/// `text` (`-1234`, `726.24`, `1e3`) in units of 10^-[`MONEY_SCALE`]; `None` when it is not a
/// number or has more decimals than the scale keeps (it is never rounded).
fn decimal_units(text: &str) -> Option<i128> {
    let scale = MONEY_SCALE as u32;
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (negative, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let fraction = fraction.trim_end_matches('0');
    // The value is (whole.fraction) × 10^exponent; shift the decimal point.
    let shift = exponent - fraction.len() as i32 + scale as i32;
    if shift < 0 {
        return None;
    }
    let mut value: i128 = 0;
    for byte in whole.bytes().chain(fraction.bytes()) {
        value = value
            .checked_mul(10)?
            .checked_add(i128::from(byte - b'0'))?;
    }
    value = value.checked_mul(10i128.checked_pow(shift as u32)?)?;
    // Decimal128(22, _) holds 22 digits.
    if value >= 10i128.pow(22) {
        return None;
    }
    Some(if negative { -value } else { value })
}

/// A time as Toss writes it, in microseconds since the epoch: RFC 3339 (`…+09:00`), or a
/// Korea-time wall clock without an offset (webhooks and older answers), with any fraction.
pub(crate) fn korea_time_micros(text: &str) -> Result<i64, String> {
    if let Ok(time) = DateTime::<FixedOffset>::parse_from_rfc3339(text) {
        return Ok(time.timestamp_micros());
    }
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .map_err(|_| format!("{text:?} is not a time (expected e.g. 2026-12-01T12:11:34+09:00)"))?;
    let korea = FixedOffset::east_opt(9 * 3600).expect("+09:00 is a valid offset");
    Ok(naive
        .and_local_timezone(korea)
        .single()
        .expect("a fixed offset has one local time")
        .timestamp_micros())
}

/// A `YYYY-MM-DD` day (a time after it is ignored), as days since the epoch.
pub(crate) fn day(text: &str) -> Result<i32, String> {
    let date = text.get(..10).unwrap_or(text);
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is not a day (expected YYYY-MM-DD)"))?;
    Ok(days_since_epoch(date))
}

pub(crate) use crate::dates::days_since_epoch;

/// A JSON value that should be text, accepted as a string or a number (ids sometimes arrive as
/// numbers: `"orderId": 71`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("text")
            }
            fn visit_str<E>(self, value: &str) -> Result<Text, E> {
                Ok(Text(value.to_owned()))
            }
            fn visit_i64<E>(self, value: i64) -> Result<Text, E> {
                Ok(Text(value.to_string()))
            }
            fn visit_u64<E>(self, value: u64) -> Result<Text, E> {
                Ok(Text(value.to_string()))
            }
            fn visit_f64<E>(self, value: f64) -> Result<Text, E> {
                Ok(Text(value.to_string()))
            }
            fn visit_bool<E>(self, value: bool) -> Result<Text, E> {
                Ok(Text(value.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The text of an optional field, `None` when missing, null or empty.
pub(crate) fn text(field: &Option<Text>) -> Option<&str> {
    field
        .as_ref()
        .map(|text| text.0.as_str())
        .filter(|text| !text.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_exactly_in_every_form() {
        let units = |text: &str| decimal_units(text);
        assert_eq!(units("15000"), Some(150_000_000));
        assert_eq!(units("-99800"), Some(-998_000_000));
        assert_eq!(units("726.24"), Some(7_262_400));
        assert_eq!(units("0.0001"), Some(1));
        assert_eq!(units("1e3"), Some(10_000_000));
        assert_eq!(units("800"), Some(8_000_000));
        assert_eq!(units("1.00000"), Some(10_000));
        // Never rounded: more decimals than the scale keeps is not an amount.
        assert_eq!(units("0.00001"), None);
        for bad in ["", "-", ".", "12a", "1.2.3", "NaN", "１２"] {
            assert_eq!(units(bad), None, "{bad:?}");
        }
        let from_json = |json: &str| serde_json::from_str::<Money>(json).unwrap().units();
        assert_eq!(from_json("726.24"), Ok(7_262_400));
        assert_eq!(from_json("\"800\""), Ok(8_000_000));
        assert_eq!(from_json("-2250"), Ok(-22_500_000));
    }

    #[test]
    fn times_with_or_without_an_offset_are_korea_time() {
        let with = korea_time_micros("2022-01-03T12:11:34+09:00").unwrap();
        assert_eq!(korea_time_micros("2022-01-03T12:11:34").unwrap(), with);
        assert_eq!(korea_time_micros("2022-01-03T03:11:34Z").unwrap(), with);
        assert_eq!(
            korea_time_micros("2022-01-03T12:11:34.65327").unwrap(),
            with + 653_270
        );
        assert!(korea_time_micros("yesterday").is_err());
        assert_eq!(day("1970-01-02").unwrap(), 1);
        assert!(day("2022-13-01").is_err());
    }
}
