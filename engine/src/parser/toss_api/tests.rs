//! Both datasets' rows as Toss really sends them: the samples of its docs and of merchants'
//! reports, with every drift the API is known for.

use arrow::array::{Array, AsArray, Decimal128Array};
use arrow::datatypes::Decimal128Type;
use chrono::NaiveDate;

use super::*;
use crate::parser::{BatchReader, Decoded, Reject};
use crate::unit::{FileVersion, LoadUnit};

fn unit(name: &str, labels: &[(&str, &str)]) -> LoadUnit {
    LoadUnit {
        name: name.to_owned(),
        origin: name.to_owned(),
        business_date: NaiveDate::from_ymd_opt(2023, 11, 25).unwrap(),
        labels: labels
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect(),
        partition: Vec::new(),
        version: FileVersion::default(),
    }
}

/// Every batch and reject of `rows` (one JSON row per entry, all on page 1), read in chunks of 7
/// bytes so that lines are cut anywhere.
fn read(
    format: &dyn BuildDecoder,
    rows: &[&str],
) -> (arrow::record_batch::RecordBatch, Vec<Reject>) {
    let input: String = rows.iter().map(|row| format!("1\t{row}\n")).collect();
    let decoder = format
        .decoder(&unit("settlements_2023-11-25", &[]))
        .unwrap();
    let mut reader = BatchReader::new(input.as_bytes(), decoder, "test").with_chunk_size(7);
    let mut batches = Vec::new();
    let mut rejects = Vec::new();
    for decoded in reader.by_ref() {
        match decoded.unwrap() {
            Decoded::Batch(batch) => batches.push(batch),
            Decoded::Rejects(more) => rejects.extend(more),
        }
    }
    let batch = arrow::compute::concat_batches(&format.schema(), &batches).unwrap();
    (batch, rejects)
}

fn decimals(batch: &arrow::record_batch::RecordBatch, column: &str) -> Vec<Option<String>> {
    let array: &Decimal128Array = batch
        .column_by_name(column)
        .unwrap()
        .as_primitive::<Decimal128Type>();
    (0..array.len())
        .map(|i| array.is_valid(i).then(|| array.value_as_string(i)))
        .collect()
}

fn texts(batch: &arrow::record_batch::RecordBatch, column: &str) -> Vec<Option<String>> {
    batch
        .column_by_name(column)
        .unwrap()
        .as_string::<i32>()
        .iter()
        .map(|value| value.map(str::to_owned))
        .collect()
}

/// The docs' settlement example: `fee` as a string in `fees[]`, no `transactionKey`... given
/// here with one, and `supplyAmount`.
const DOCS_SETTLEMENT: &str = r#"{"mId":"tosspayments","paymentKey":"5zJ4xY7m0kODnyRpQWGrN2xqGlNvLrKwv1M9ENjbeoPaZdL6","transactionKey":"8B4F6E3C7A61B5D1","orderId":"a4CWyWY5m89PNh7xJwhk1","currency":"KRW","method":"카드","amount":34000,"interestFee":0,"fees":[{"type":"BASE","fee":"800"},{"type":"INSTALLMENT_DISCOUNT","fee":60}],"supplyAmount":782,"vat":78,"payOutAmount":33140,"approvedAt":"2022-01-01T00:00:00+09:00","soldDate":"2022-01-01","paidOutDate":"2022-01-03","card":{"company":"현대"},"newField":{"added":"later"}}"#;

/// A same-day full cancel as a merchant pasted it: negative amounts, `cancel` with a positive
/// `cancelAmount`, the key equal to the cancel's.
const CANCEL_SETTLEMENT: &str = r#"{"mId":"tvivarepublica","paymentKey":"tviva20231125103000abcd1","transactionKey":"txrd_a01cancel","orderId":"71","currency":"KRW","method":"카드","amount":-99800,"interestFee":0,"fees":[{"type":"BASE","fee":-2250},{"type":"ETC","fee":0}],"fee":-2250,"supplyAmount":-2045,"vat":-205,"payOutAmount":-97550,"approvedAt":"2023-11-25T10:30:00+09:00","soldDate":"2023-11-25","paidOutDate":"2023-11-30","cancel":{"cancelAmount":99800,"cancelStatus":"DONE","cancelRequestId":null,"canceledAt":"2023-11-25T11:00:00+09:00","transactionKey":"txrd_a01cancel"}}"#;

/// A 2025 row: `fee` and no `fees[]`, `suppliedAmount` (the SPEC's spelling).
const FEE_ONLY_SETTLEMENT: &str = r#"{"mId":"m","paymentKey":"p3","transactionKey":"t3","orderId":"o3","currency":"KRW","method":"간편결제","amount":64601,"interestFee":0,"fee":1492,"suppliedAmount":1356,"vat":136,"payOutAmount":63109,"approvedAt":"2023-11-25T09:00:00+09:00","soldDate":"2023-11-25","paidOutDate":"2023-11-27"}"#;

#[test]
fn settlement_rows_in_every_known_shape_become_records() {
    let format = SettlementsFormatConfig::default();
    let (batch, rejects) = read(
        &format,
        &[DOCS_SETTLEMENT, CANCEL_SETTLEMENT, FEE_ONLY_SETTLEMENT],
    );
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(batch.num_rows(), 3);
    let some = |values: &[&str]| {
        values
            .iter()
            .map(|v| Some(v.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        decimals(&batch, "amount"),
        some(&["34000.0000", "-99800.0000", "64601.0000"])
    );
    // The total fee: the sum of fees[] when no `fee` is given, else `fee`.
    assert_eq!(
        decimals(&batch, "fee"),
        some(&["860.0000", "-2250.0000", "1492.0000"])
    );
    assert_eq!(
        decimals(&batch, "supply_amount"),
        some(&["782.0000", "-2045.0000", "1356.0000"])
    );
    assert_eq!(
        decimals(&batch, "pay_out_amount"),
        some(&["33140.0000", "-97550.0000", "63109.0000"])
    );
    assert_eq!(
        decimals(&batch, "fee_base"),
        vec![Some("800.0000".into()), Some("-2250.0000".into()), None]
    );
    assert_eq!(
        decimals(&batch, "fee_installment_discount"),
        vec![Some("60.0000".into()), None, None]
    );
    assert_eq!(
        decimals(&batch, "cancel_amount"),
        vec![None, Some("99800.0000".into()), None]
    );
    let cancels: Vec<bool> = batch
        .column_by_name("is_cancel")
        .unwrap()
        .as_boolean()
        .iter()
        .map(Option::unwrap)
        .collect();
    assert_eq!(cancels, [false, true, false]);
    assert_eq!(texts(&batch, "order_id")[1].as_deref(), Some("71"));
    assert_eq!(
        texts(&batch, "load_unit"),
        vec![Some("settlements_2023-11-25".to_owned()); 3]
    );
}

#[test]
fn transactions_keep_decimals_zero_amounts_and_unknown_values() {
    let format = TransactionsFormatConfig::default();
    let rows = [
        r#"{"mId":"tvivarepublica","transactionKey":"42B9BB5ECF555F940E064C5D18CBE3BE","paymentKey":"tviva20231208004903pIlD7","orderId":"o1","method":"가상계좌","customerKey":null,"useEscrow":false,"receiptUrl":"https://pgweb.tosspayments.com:9091/MpFlowCtrl","status":"WAITING_FOR_DEPOSIT","transactionAt":"2023-12-08T16:08:45+09:00","currency":"KRW","amount":0}"#,
        r#"{"transactionKey":"txrd_usd","status":"SOME_NEW_STATUS","transactionAt":"2023-12-08T17:00:00","currency":"USD","amount":726.24,"futureField":[1,2]}"#,
    ];
    let (batch, rejects) = read(&format, &rows);
    assert!(rejects.is_empty(), "{rejects:?}");
    assert_eq!(
        decimals(&batch, "amount"),
        vec![Some("0.0000".into()), Some("726.2400".into())]
    );
    assert_eq!(
        texts(&batch, "status"),
        vec![
            Some("WAITING_FOR_DEPOSIT".into()),
            Some("SOME_NEW_STATUS".into())
        ]
    );
    assert_eq!(texts(&batch, "customer_key"), vec![None, None]);
}

#[test]
fn rows_that_cannot_be_records_are_rejected_with_the_page_and_the_reason() {
    let format = TransactionsFormatConfig::default();
    let rows = [
        r#"{"paymentKey":"p","amount":100}"#,
        r#"{"transactionKey":"t1","amount":"lots"}"#,
        r#"{"transactionKey":"t2","transactionAt":"yesterday"}"#,
        r#"{"transactionKey":"t3","amount":1}"#,
        r#"{"transactionKey":"t3","amount":1}"#,
        r#"{"transactionKey":"t3","amount":2}"#,
        r#"not json"#,
    ];
    let (batch, rejects) = read(&format, &rows);
    assert_eq!(batch.num_rows(), 1, "t3 once");
    let reasons: Vec<(u64, &str)> = rejects
        .iter()
        .map(|r| (r.line, r.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert!(
        reasons[0]
            .1
            .starts_with("page 1: transactionKey is missing"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].1.contains("amount: \"lots\" is not an amount"),
        "{reasons:?}"
    );
    assert!(reasons[2].1.contains("transactionAt"), "{reasons:?}");
    assert_eq!(reasons[3].0, 6);
    assert!(reasons[3].1.contains("came before (row 4)"), "{reasons:?}");
    assert!(reasons[4].1.contains("not a transaction"), "{reasons:?}");
    // The reject keeps the row's JSON as it came.
    assert_eq!(rejects[0].raw, rows[0]);
}
