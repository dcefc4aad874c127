//! The merchant mapping: keeps every column of the Toss records and appends five.
//!
//! | column | type | value |
//! |---|---|---|
//! | `method` | Utf8, null when unknown | the payment method's Korean name, from `paytype` ([`method_name`]) |
//! | `issuer` | Utf8, null when unknown | the card company (card payments) or bank (transfers, virtual accounts), from `financecode` ([`issuer_name`]) |
//! | `signed_amount` | Int64 | `amount` for `AUTH`, `-amount` for `REV` |
//! | `fee` | Int64 | `round(amount × rate)`, half away from zero, in whole won |
//! | `net_amount` | Int64 | `signed_amount - sign × fee` (sign = +1 for AUTH, -1 for REV) |
//!
//! So an approval of 10,000 won at a rate of 0.03 gives `signed_amount` 10000, `fee` 300,
//! `net_amount` 9700, and its cancel gives -10000, 300, -9700: the fee is always the
//! magnitude the merchant pays (or, on a cancel, gets back), and an approval and its full
//! cancel sum to zero in both `signed_amount` and `net_amount`.
//!
//! The rate is the config's `fee_rate` (default 0), or `fee_rates[paytype]` when that table
//! has the row's paytype. A rate is taken as the decimal number written in the pipeline file
//! (`0.0275` is exactly 2.75 %, not the nearest binary fraction), and the product is computed
//! exactly in integers before rounding, so 1,050 won at 0.03 is 31.5 → 32 won.
//!
//! ```toml
//! [transforms.config]
//! fee_rate = 0.03            # 0 <= rate < 1, at most 12 decimal places
//! [transforms.config.fee_rates]
//! SC0030 = 0.018             # account transfers
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use toss_etl_sdk::arrow::array::{Array, ArrayRef, Int64Builder, StringBuilder};
use toss_etl_sdk::arrow::datatypes::{DataType, Field};
use toss_etl_sdk::{Config, Error, RecordBatch, Transform, columns};

/// The payment method of a Toss `paytype` code, in Korean.
///
/// | paytype | method |
/// |---|---|
/// | SC0010 | 카드 (credit/check card) |
/// | SC0030 | 계좌이체 (account transfer) |
/// | SC0040 | 가상계좌 (virtual account) |
/// | SC0060 | 휴대폰 (mobile phone billing) |
/// | SC0070 | 유선전화 (landline phone billing) |
/// | SC0111 | 문화상품권 (culture gift certificate) |
/// | SC0112 | 게임문화상품권 (game culture gift certificate) |
pub fn method_name(paytype: &str) -> Option<&'static str> {
    Some(match paytype.trim() {
        "SC0010" => "카드",
        "SC0030" => "계좌이체",
        "SC0040" => "가상계좌",
        "SC0060" => "휴대폰",
        "SC0070" => "유선전화",
        "SC0111" => "문화상품권",
        "SC0112" => "게임문화상품권",
        _ => return None,
    })
}

/// Card company codes of the XPay table (card payments, SC0010).
///
/// | code | card company | | code | card company |
/// |---|---|---|---|---|
/// | 11 | 국민 | | 41 | 신한 |
/// | 21 | 하나(외환) | | 42 | 제주 |
/// | 31 | 비씨 | | 46 | 광주 |
/// | 32 | 하나 | | 51 | 삼성 |
/// | 33 | 우리 | | 61 | 현대 |
/// | 34 | 수협 | | 71 | 롯데 |
/// | 35 | 전북 | | 91 | NH |
/// | 36 | 씨티 | | | |
pub fn card_company(code: u32) -> Option<&'static str> {
    Some(match code {
        11 => "국민",
        21 => "하나(외환)",
        31 => "비씨",
        32 => "하나",
        33 => "우리",
        34 => "수협",
        35 => "전북",
        36 => "씨티",
        41 => "신한",
        42 => "제주",
        46 => "광주",
        51 => "삼성",
        61 => "현대",
        71 => "롯데",
        91 => "NH",
        _ => return None,
    })
}

/// Bank codes of the KFTC (금융결제원) table (account transfers SC0030, virtual accounts
/// SC0040).
///
/// | code | bank | | code | bank |
/// |---|---|---|---|---|
/// | 2 | 산업 | | 37 | 전북 |
/// | 3 | 기업 | | 39 | 경남 |
/// | 4 | 국민 | | 45 | 새마을금고 |
/// | 7 | 수협 | | 48 | 신협 |
/// | 11 | 농협 | | 71 | 우체국 |
/// | 20 | 우리 | | 81 | 하나 |
/// | 23 | SC제일 | | 88 | 신한 |
/// | 27 | 씨티 | | 89 | 케이뱅크 |
/// | 31 | 대구 | | 90 | 카카오뱅크 |
/// | 32 | 부산 | | 92 | 토스뱅크 |
/// | 34 | 광주 | | | |
/// | 35 | 제주 | | | |
pub fn bank(code: u32) -> Option<&'static str> {
    Some(match code {
        2 => "산업",
        3 => "기업",
        4 => "국민",
        7 => "수협",
        11 => "농협",
        20 => "우리",
        23 => "SC제일",
        27 => "씨티",
        31 => "대구",
        32 => "부산",
        34 => "광주",
        35 => "제주",
        37 => "전북",
        39 => "경남",
        45 => "새마을금고",
        48 => "신협",
        71 => "우체국",
        81 => "하나",
        88 => "신한",
        89 => "케이뱅크",
        90 => "카카오뱅크",
        92 => "토스뱅크",
        _ => return None,
    })
}

/// The issuer of a payment: for a card payment (SC0010) the card company of `financecode`
/// (two digits; the five-digit forms such as `61100` or `31000` use their first two), for an
/// account transfer or virtual account (SC0030, SC0040) the bank (the code may be zero-padded:
/// `088`, `04`). Anything else — another method, an empty, non-numeric or unknown code — is
/// `None`, never an error.
pub fn issuer_name(paytype: &str, financecode: &str) -> Option<&'static str> {
    let code = financecode.trim();
    if code.is_empty() || code.len() > 9 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match paytype.trim() {
        "SC0010" => {
            let code = if code.len() == 5 { &code[..2] } else { code };
            card_company(code.parse().ok()?)
        }
        "SC0030" | "SC0040" => bank(code.parse().ok()?),
        _ => None,
    }
}

/// A fee rate as an exact decimal fraction `numerator / 10^scale`, `0 <= rate < 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    numerator: i128,
    denominator: i128,
}

impl Rate {
    /// At most this many decimal places.
    pub const MAX_DECIMALS: usize = 12;

    /// The rate `value` as written (its shortest decimal form); `key` names it in errors.
    pub fn new(value: f64, key: &str) -> Result<Self, Error> {
        if !(value.is_finite() && (0.0..1.0).contains(&value)) {
            return Err(Error::config(format!(
                "{key}: must be at least 0 and less than 1 (0.03 is 3 %), found {value}"
            )));
        }
        // `Display` of an f64 is its shortest round-trip decimal form, never in exponent
        // notation: 0.0275 → "0.0275", 1e-7 → "0.0000001".
        let text = value.to_string();
        let fraction = match text.split_once('.') {
            None => "",
            Some((_, fraction)) => fraction,
        };
        if fraction.len() > Self::MAX_DECIMALS {
            return Err(Error::config(format!(
                "{key}: {text} has more than {} decimal places",
                Self::MAX_DECIMALS
            )));
        }
        let numerator = if fraction.is_empty() {
            0
        } else {
            fraction
                .parse::<i128>()
                .map_err(|e| Error::config(format!("{key}: cannot read {text}: {e}")))?
        };
        Ok(Self {
            numerator,
            denominator: 10i128.pow(fraction.len() as u32),
        })
    }

    /// `round(amount × rate)`, half away from zero.
    pub fn fee(&self, amount: i64) -> i64 {
        let product = i128::from(amount) * self.numerator;
        let quotient = product / self.denominator;
        let remainder = product % self.denominator;
        let rounded = if 2 * remainder.abs() >= self.denominator {
            quotient + product.signum()
        } else {
            quotient
        };
        // |rate| < 1, so |fee| <= |amount| and the result fits.
        rounded as i64
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    fee_rate: f64,
    #[serde(default)]
    fee_rates: BTreeMap<String, f64>,
}

/// The mapping plugin. Config: `fee_rate` (default 0) and `fee_rates` (paytype → rate).
#[derive(Debug)]
pub struct MerchantMapping {
    fee_rate: Rate,
    fee_rates: BTreeMap<String, Rate>,
}

/// The columns this plugin appends, in order.
pub const ADDED_COLUMNS: [&str; 5] = ["method", "issuer", "signed_amount", "fee", "net_amount"];

impl MerchantMapping {
    fn rate(&self, paytype: &str) -> &Rate {
        self.fee_rates.get(paytype).unwrap_or(&self.fee_rate)
    }
}

impl Transform for MerchantMapping {
    fn new(config: Config) -> Result<Self, Error> {
        let settings: Settings = config.parse()?;
        let fee_rate = Rate::new(settings.fee_rate, "fee_rate")?;
        let fee_rates = settings
            .fee_rates
            .into_iter()
            .map(|(paytype, rate)| {
                let parsed = Rate::new(rate, &format!("fee_rates.{paytype}"))?;
                Ok((paytype, parsed))
            })
            .collect::<Result<_, Error>>()?;
        Ok(Self {
            fee_rate,
            fee_rates,
        })
    }

    fn transform(&mut self, batch: RecordBatch) -> Result<RecordBatch, Error> {
        let kind = columns::string(&batch, "record_kind")?;
        let paytype = columns::string(&batch, "paytype")?;
        let financecode = columns::string(&batch, "financecode")?;
        let amount = columns::int64(&batch, "amount")?;
        let rows = batch.num_rows();

        let mut method = StringBuilder::with_capacity(rows, rows * 12);
        let mut issuer = StringBuilder::with_capacity(rows, rows * 12);
        let mut signed = Int64Builder::with_capacity(rows);
        let mut fee = Int64Builder::with_capacity(rows);
        let mut net = Int64Builder::with_capacity(rows);

        for row in 0..rows {
            let pay = (!paytype.is_null(row)).then(|| paytype.value(row));
            method.append_option(pay.and_then(method_name));
            let code = (!financecode.is_null(row)).then(|| financecode.value(row));
            issuer.append_option(pay.zip(code).and_then(|(p, c)| issuer_name(p, c)));

            if amount.is_null(row) {
                signed.append_null();
                fee.append_null();
                net.append_null();
                continue;
            }
            let value = amount.value(row);
            let sign: i64 = match (!kind.is_null(row)).then(|| kind.value(row)) {
                Some("AUTH") => 1,
                Some("REV") => -1,
                other => {
                    return Err(Error::data(format!(
                        "row {}: record_kind is {}, expected AUTH or REV{}",
                        row + 1,
                        other.map_or("null".to_string(), |k| format!("{k:?}")),
                        where_from(&batch, row)
                    )));
                }
            };
            let signed_value = value.checked_mul(sign).ok_or_else(|| {
                Error::data(format!(
                    "row {}: amount {value} cannot be negated{}",
                    row + 1,
                    where_from(&batch, row)
                ))
            })?;
            let fee_value = self.rate(pay.unwrap_or("")).fee(value);
            // |fee| <= |amount|, so neither step overflows.
            signed.append_value(signed_value);
            fee.append_value(fee_value);
            net.append_value(signed_value - sign * fee_value);
        }

        let nullable = batch
            .schema_ref()
            .field_with_name("amount")
            .map(|f| f.is_nullable())
            .unwrap_or(true);
        let added: [(Field, ArrayRef); 5] = [
            (
                Field::new("method", DataType::Utf8, true),
                Arc::new(method.finish()),
            ),
            (
                Field::new("issuer", DataType::Utf8, true),
                Arc::new(issuer.finish()),
            ),
            (
                Field::new("signed_amount", DataType::Int64, nullable),
                Arc::new(signed.finish()),
            ),
            (
                Field::new("fee", DataType::Int64, nullable),
                Arc::new(fee.finish()),
            ),
            (
                Field::new("net_amount", DataType::Int64, nullable),
                Arc::new(net.finish()),
            ),
        ];
        columns::append(&batch, added)
    }
}

/// ` (file:line)` of a row when the batch has the parser's `source_file`/`source_line`.
fn where_from(batch: &RecordBatch, row: usize) -> String {
    match (
        columns::string(batch, "source_file"),
        columns::int64(batch, "source_line"),
    ) {
        (Ok(file), Ok(line)) if file.is_valid(row) && line.is_valid(row) => {
            format!(" ({}:{})", file.value(row), line.value(row))
        }
        _ => String::new(),
    }
}

toss_etl_sdk::export_transform!(MerchantMapping);

#[cfg(test)]
mod tests {
    use toss_etl_sdk::arrow::array::{Int64Array, StringArray};
    use toss_etl_sdk::serde_json::{self, json};
    use toss_etl_sdk::toss::{self, Row};
    use toss_etl_sdk::{Instance, ipc};

    use super::*;

    fn plugin(config: serde_json::Value) -> Result<MerchantMapping, Error> {
        MerchantMapping::new(Config::from_value(config)?)
    }

    fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
        let array: &StringArray = columns::string(batch, name).unwrap();
        array.iter().map(|v| v.map(str::to_string)).collect()
    }

    fn ints(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
        let array: &Int64Array = columns::int64(batch, name).unwrap();
        array.iter().collect()
    }

    #[test]
    fn method_names() {
        assert_eq!(method_name("SC0010"), Some("카드"));
        assert_eq!(method_name("SC0030"), Some("계좌이체"));
        assert_eq!(method_name("SC0040"), Some("가상계좌"));
        assert_eq!(method_name("SC0060"), Some("휴대폰"));
        assert_eq!(method_name("SC0070"), Some("유선전화"));
        assert_eq!(method_name("SC0111"), Some("문화상품권"));
        assert_eq!(method_name("SC0112"), Some("게임문화상품권"));
        assert_eq!(method_name("SC9999"), None);
        assert_eq!(method_name(""), None);
    }

    #[test]
    fn issuers() {
        // Card companies: two digits, or five with the first two significant.
        assert_eq!(issuer_name("SC0010", "11"), Some("국민"));
        assert_eq!(issuer_name("SC0010", "11100"), Some("국민"));
        assert_eq!(issuer_name("SC0010", "61100"), Some("현대"));
        assert_eq!(issuer_name("SC0010", "71100"), Some("롯데"));
        assert_eq!(issuer_name("SC0010", "31000"), Some("비씨"));
        assert_eq!(issuer_name("SC0010", "21"), Some("하나(외환)"));
        assert_eq!(issuer_name("SC0010", "91"), Some("NH"));
        assert_eq!(issuer_name("SC0010", "99"), None);
        assert_eq!(issuer_name("SC0010", "4"), None);
        // Banks: KFTC codes, zero-padded or not.
        assert_eq!(issuer_name("SC0030", "088"), Some("신한"));
        assert_eq!(issuer_name("SC0030", "88"), Some("신한"));
        assert_eq!(issuer_name("SC0040", "04"), Some("국민"));
        assert_eq!(issuer_name("SC0040", "4"), Some("국민"));
        assert_eq!(issuer_name("SC0030", "092"), Some("토스뱅크"));
        assert_eq!(issuer_name("SC0030", "011"), Some("농협"));
        assert_eq!(issuer_name("SC0030", " 020 "), Some("우리"));
        assert_eq!(issuer_name("SC0030", "61100"), None);
        // Other methods, empty, junk, absurdly long: null, never an error.
        assert_eq!(issuer_name("SC0060", "11"), None);
        assert_eq!(issuer_name("SC0010", ""), None);
        assert_eq!(issuer_name("SC0010", "AB"), None);
        assert_eq!(issuer_name("SC0030", "-4"), None);
        assert_eq!(issuer_name("SC0030", "0000000000000000000088"), None);
    }

    #[test]
    fn every_table_entry() {
        let cards = [
            (11, "국민"),
            (21, "하나(외환)"),
            (31, "비씨"),
            (32, "하나"),
            (33, "우리"),
            (34, "수협"),
            (35, "전북"),
            (36, "씨티"),
            (41, "신한"),
            (42, "제주"),
            (46, "광주"),
            (51, "삼성"),
            (61, "현대"),
            (71, "롯데"),
            (91, "NH"),
        ];
        for (code, name) in cards {
            assert_eq!(card_company(code), Some(name));
            assert_eq!(issuer_name("SC0010", &format!("{code}100")), Some(name));
        }
        assert_eq!((0..100).filter(|c| card_company(*c).is_some()).count(), 15);
        let banks = [
            (2, "산업"),
            (3, "기업"),
            (4, "국민"),
            (7, "수협"),
            (11, "농협"),
            (20, "우리"),
            (23, "SC제일"),
            (27, "씨티"),
            (31, "대구"),
            (32, "부산"),
            (34, "광주"),
            (35, "제주"),
            (37, "전북"),
            (39, "경남"),
            (45, "새마을금고"),
            (48, "신협"),
            (71, "우체국"),
            (81, "하나"),
            (88, "신한"),
            (89, "케이뱅크"),
            (90, "카카오뱅크"),
            (92, "토스뱅크"),
        ];
        for (code, name) in banks {
            assert_eq!(bank(code), Some(name));
            assert_eq!(issuer_name("SC0040", &format!("{code:03}")), Some(name));
        }
        assert_eq!((0..1000).filter(|c| bank(*c).is_some()).count(), 22);
    }

    #[test]
    fn rates_are_exact_decimals() {
        let r = Rate::new(0.03, "fee_rate").unwrap();
        assert_eq!(r.fee(10_000), 300);
        assert_eq!(r.fee(1_050), 32); // 31.5 rounds away from zero
        assert_eq!(r.fee(1_049), 31); // 31.47
        assert_eq!(r.fee(-1_050), -32);
        assert_eq!(r.fee(0), 0);
        let r = Rate::new(0.0275, "fee_rate").unwrap();
        assert_eq!(r.fee(20_000), 550);
        assert_eq!(r.fee(1_000), 28); // 27.5
        let r = Rate::new(0.0, "fee_rate").unwrap();
        assert_eq!(r.fee(i64::MAX), 0);
        let r = Rate::new(0.999_999_999_999, "fee_rate").unwrap();
        // No overflow at the extremes: 9_223_372.0368… is taken off and rounded.
        assert_eq!(r.fee(i64::MAX), i64::MAX - 9_223_372);
        assert_eq!(r.fee(i64::MIN), i64::MIN + 9_223_372);
        assert_eq!(Rate::new(1e-7, "x").unwrap().fee(5_000_000), 1); // 0.5 → 1

        for bad in [1.0, 1.5, -0.01, f64::NAN, f64::INFINITY] {
            let err = Rate::new(bad, "fee_rate").unwrap_err();
            assert_eq!(err.kind(), "config");
            assert!(err.message().starts_with("fee_rate: "), "{err}");
        }
        let err = Rate::new(1e-13, "fee_rate").unwrap_err();
        assert!(err.message().contains("decimal places"), "{err}");
    }

    #[test]
    fn config_errors_name_the_key() {
        for (config, key) in [
            (json!({"fee_rate": 1.0}), "fee_rate: "),
            (json!({"fee_rate": -0.5}), "fee_rate: "),
            (json!({"fee_rate": "3%"}), "fee_rate: "),
            (json!({"fee_rates": {"SC0030": 2}}), "fee_rates.SC0030: "),
            (json!({"fee_rates": {"SC0030": "x"}}), "fee_rates.SC0030: "),
            (json!({"fee_rates": 0.1}), "fee_rates: "),
        ] {
            let err = plugin(config.clone()).unwrap_err();
            assert_eq!(err.kind(), "config", "{config}");
            assert!(err.message().starts_with(key), "{config}: {err}");
        }
        let err = plugin(json!({"fee_rat": 0.1})).unwrap_err();
        assert!(err.message().contains("fee_rat"), "{err}");
        assert!(plugin(json!({})).is_ok());
        assert!(plugin(json!({"fee_rate": 0})).is_ok());
    }

    #[test]
    fn maps_value_by_value() {
        let mut p = plugin(json!({"fee_rate": 0.03, "fee_rates": {"SC0030": 0.018}})).unwrap();
        let input = toss::batch(&[
            Row::auth("a", 10_000).financecode("61100"),
            Row::rev("a", 10_000).financecode("61100"),
            Row::auth("b", 1_050).paytype("SC0030").financecode("088"),
            Row::rev("c", 1_050).paytype("SC0040").financecode("04"),
            Row::auth("d", 777).paytype("SC0060").financecode(""),
            Row::auth("e", 100).paytype("SC0999").financecode("11"),
            Row::auth("f", 5).financecode("99"),
        ]);
        let out = p.transform(input.clone()).unwrap();

        // Every input column is kept as it was, in order, then the five new ones.
        assert_eq!(out.num_columns(), input.num_columns() + 5);
        for (i, field) in input.schema().fields().iter().enumerate() {
            assert_eq!(out.schema().field(i), field.as_ref());
            assert_eq!(out.column(i), input.column(i));
        }
        let names: Vec<&str> = out.schema_ref().fields()[input.num_columns()..]
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, ADDED_COLUMNS);

        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            strings(&out, "method"),
            [
                s("카드"),
                s("카드"),
                s("계좌이체"),
                s("가상계좌"),
                s("휴대폰"),
                None,
                s("카드")
            ]
        );
        assert_eq!(
            strings(&out, "issuer"),
            [s("현대"), s("현대"), s("신한"), s("국민"), None, None, None]
        );
        assert_eq!(
            ints(&out, "signed_amount"),
            [
                Some(10_000),
                Some(-10_000),
                Some(1_050),
                Some(-1_050),
                Some(777),
                Some(100),
                Some(5)
            ]
        );
        // SC0030 uses 1.8 % (18.9 → 19); SC0040 and the rest 3 % (31.5 → 32, 23.31 → 23,
        // 3 → 3, 0.15 → 0).
        assert_eq!(
            ints(&out, "fee"),
            [
                Some(300),
                Some(300),
                Some(19),
                Some(32),
                Some(23),
                Some(3),
                Some(0)
            ]
        );
        assert_eq!(
            ints(&out, "net_amount"),
            [
                Some(9_700),
                Some(-9_700),
                Some(1_031),
                Some(-1_018),
                Some(754),
                Some(97),
                Some(5)
            ]
        );
    }

    #[test]
    fn zero_rate_by_default_and_stable_schema() {
        let mut p = plugin(json!({})).unwrap();
        let probe = p.transform(ipc::empty_batch(toss::schema())).unwrap();
        assert_eq!(probe.num_rows(), 0);
        let out = p.transform(toss::batch(&[Row::rev("a", 1234)])).unwrap();
        assert_eq!(out.schema(), probe.schema());
        assert_eq!(ints(&out, "fee"), [Some(0)]);
        assert_eq!(ints(&out, "net_amount"), [Some(-1234)]);
    }

    #[test]
    fn bad_data_is_a_data_error() {
        let mut p = plugin(json!({})).unwrap();
        let mut row = Row::auth("a", 1);
        row.record_kind = "XYZ".into();
        row.source_line = 7;
        let err = p.transform(toss::batch(&[row])).unwrap_err();
        assert_eq!(err.kind(), "data");
        assert!(
            err.message().contains("\"XYZ\"") && err.message().contains(":7)"),
            "{err}"
        );

        let mut row = Row::auth("a", 1);
        row.amount = i64::MIN;
        let mut rev = row.clone();
        rev.record_kind = "REV".into();
        assert!(p.transform(toss::batch(&[row])).is_ok());
        assert_eq!(p.transform(toss::batch(&[rev])).unwrap_err().kind(), "data");

        let no_amount = toss::batch(&[Row::auth("a", 1)])
            .project(&[0, 3, 6])
            .unwrap();
        let err = p.transform(no_amount).unwrap_err();
        assert!(err.message().contains("\"amount\" is missing"), "{err}");
    }

    #[test]
    fn through_the_engine_path() {
        let mut instance = Instance::<MerchantMapping>::new();
        instance.init(r#"{"fee_rate": 0.1}"#).unwrap();
        let input = ipc::encode(&toss::batch(&[Row::auth("a", 15)])).unwrap();
        let out = ipc::decode(&instance.transform_ipc(input).unwrap()).unwrap();
        assert_eq!(ints(&out, "fee"), [Some(2)]); // 1.5 → 2
        assert_eq!(ints(&out, "net_amount"), [Some(13)]);
        let err = instance.init(r#"{"fee_rate": 2}"#).unwrap_err();
        assert_eq!(
            err,
            Error::Config(
                "fee_rate: must be at least 0 and less than 1 (0.03 is 3 %), found 2".into()
            )
        );
    }
}
