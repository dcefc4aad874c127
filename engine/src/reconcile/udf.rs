//! The two SQL functions the checks (and a merchant's own checks) use beside DataFusion's:
//! `amount_text(x)` writes an amount as people read it (`15000`, `12.5`, not `15000.0000`), and
//! `tolerance(currency, amount_tolerance)` is how far two amounts in that currency may differ
//! (nothing for won). Each is one place for a rule every check would otherwise repeat.

use arrow::array::{
    Array, ArrayRef, Decimal128Array, Decimal128Builder, StringArray, StringBuilder,
};
use arrow::datatypes::DataType;
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

/// Registers the functions in `ctx`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(AmountText {
        signature: Signature::any(1, Volatility::Immutable),
    }));
    ctx.register_udf(ScalarUDF::from(Tolerance {
        signature: Signature::any(2, Volatility::Immutable),
    }));
}

/// `amount_text(x)`: a number as text without trailing zeros after the point.
#[derive(Debug, PartialEq, Eq, Hash)]
struct AmountText {
    signature: Signature,
}

impl ScalarUDFImpl for AmountText {
    fn name(&self) -> &str {
        "amount_text"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let values = args.args[0].to_array(args.number_rows)?;
        let text = arrow::compute::cast(&values, &DataType::Utf8)?;
        let text = text
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8");
        let mut out = StringBuilder::with_capacity(text.len(), text.len() * 8);
        for value in text.iter() {
            out.append_option(value.map(trim_amount));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}

/// `15000.0000` → `15000`, `-12.5000` → `-12.5`; text without a point is left alone.
pub fn trim_amount(text: &str) -> &str {
    if !text.contains('.') {
        return text;
    }
    text.trim_end_matches('0').trim_end_matches('.')
}

/// `tolerance(currency, amount_tolerance)`: `0` for KRW (or no currency), else the tolerance,
/// as `Decimal(22, 4)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Tolerance {
    signature: Signature,
}

impl ScalarUDFImpl for Tolerance {
    fn name(&self) -> &str {
        "tolerance"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(super::inputs::MONEY)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let currency = arrow::compute::cast(&args.args[0].to_array(rows)?, &DataType::Utf8)?;
        let currency = currency
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8");
        let allowed = arrow::compute::cast(&args.args[1].to_array(rows)?, &super::inputs::MONEY)?;
        let allowed = allowed
            .as_any()
            .downcast_ref::<Decimal128Array>()
            .expect("cast to Decimal128");
        let mut out = Decimal128Builder::with_capacity(rows);
        for row in 0..rows {
            let is_won = currency.is_null(row) || currency.value(row).eq_ignore_ascii_case("KRW");
            if is_won || allowed.is_null(row) {
                out.append_value(0);
            } else {
                out.append_value(allowed.value(row));
            }
        }
        let array = out.finish().with_data_type(super::inputs::MONEY);
        if rows == 1 && matches!(args.args[0], ColumnarValue::Scalar(_)) {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &array, 0,
            )?));
        }
        Ok(ColumnarValue::Array(Arc::new(array)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_lose_only_trailing_zeros_after_the_point() {
        assert_eq!(trim_amount("15000.0000"), "15000");
        assert_eq!(trim_amount("-12.5000"), "-12.5");
        assert_eq!(trim_amount("1500"), "1500");
        assert_eq!(trim_amount("0.0000"), "0");
    }

    #[tokio::test]
    async fn the_functions_work_in_sql() {
        let ctx = SessionContext::new();
        register(&ctx);
        let batches = ctx
            .sql(
                "SELECT amount_text(CAST(15000 AS DECIMAL(22, 4))) AS a, \
                 amount_text(CAST(-2.5 AS DECIMAL(22, 4))) AS b, \
                 CAST(tolerance('USD', 0.01) AS VARCHAR) AS c, \
                 CAST(tolerance('KRW', 0.01) AS VARCHAR) AS d",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        assert!(
            text.contains("| 15000 | -2.5 | 0.0100 | 0.0000 |"),
            "{text}"
        );
    }
}
