//! The few functions the models need that SQL does not say exactly: local-time quarters
//! (China Standard Time, +08:00, no DST) and ratios that are null on an empty denominator.
//!
//! A quarter is an integer `q = year × 4 + (quarter − 1)` inside the models (so that "the next
//! quarter" is `q + 1`) and a label `2025Q3` outside.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{
    ArrayRef, AsArray, Date32Array, Float64Array, Int64Array, StringArray,
};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use datafusion::error::Result;
use datafusion::logical_expr::{create_udf, ColumnarValue, ScalarUDF, Volatility};
use datafusion::prelude::SessionContext;

/// Seconds east of UTC of local time.
const LOCAL_OFFSET_S: i64 = 8 * 3600;
const MICROS_PER_DAY: i64 = 86_400_000_000;
/// Days from 0001-01-01 (CE day 1) to 1970-01-01.
const EPOCH_CE_DAYS: i32 = 719_163;

/// Registers every function in `ctx`.
pub fn register(ctx: &SessionContext) {
    for f in all() {
        ctx.register_udf(f);
    }
}

fn all() -> Vec<ScalarUDF> {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    vec![
        create_udf(
            "local_quarter",
            vec![ts.clone()],
            DataType::Int64,
            Volatility::Immutable,
            Arc::new(|args| unary(args, local_quarter)),
        ),
        create_udf(
            "local_date",
            vec![ts],
            DataType::Date32,
            Volatility::Immutable,
            Arc::new(|args| unary(args, local_date)),
        ),
        create_udf(
            "date_quarter",
            vec![DataType::Date32],
            DataType::Int64,
            Volatility::Immutable,
            Arc::new(|args| unary(args, date_quarter)),
        ),
        create_udf(
            "quarter_label",
            vec![DataType::Int64],
            DataType::Utf8,
            Volatility::Immutable,
            Arc::new(|args| unary(args, quarter_label)),
        ),
        create_udf(
            "quarter_last_day",
            vec![DataType::Int64],
            DataType::Date32,
            Volatility::Immutable,
            Arc::new(|args| unary(args, quarter_last_day)),
        ),
        create_udf(
            "ratio",
            vec![DataType::Float64, DataType::Float64],
            DataType::Float64,
            Volatility::Immutable,
            Arc::new(|args| binary(args, ratio)),
        ),
    ]
}

fn unary(args: &[ColumnarValue], f: fn(&ArrayRef) -> ArrayRef) -> Result<ColumnarValue> {
    let scalar = matches!(args[0], ColumnarValue::Scalar(_));
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let out = f(&arrays[0]);
    Ok(if scalar {
        ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(&out, 0)?)
    } else {
        ColumnarValue::Array(out)
    })
}

fn binary(
    args: &[ColumnarValue],
    f: fn(&ArrayRef, &ArrayRef) -> ArrayRef,
) -> Result<ColumnarValue> {
    let scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let out = f(&arrays[0], &arrays[1]);
    Ok(if scalar {
        ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(&out, 0)?)
    } else {
        ColumnarValue::Array(out)
    })
}

/// The local date (+08:00) of a UTC instant, as days since the epoch.
pub fn local_day(micros: i64) -> i32 {
    (micros + LOCAL_OFFSET_S * 1_000_000).div_euclid(MICROS_PER_DAY) as i32
}

fn date(days: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(days + EPOCH_CE_DAYS).unwrap_or_default()
}

/// The quarter number of a date (days since the epoch).
pub fn quarter_of_day(days: i32) -> i64 {
    let d = date(days);
    d.year() as i64 * 4 + d.month0() as i64 / 3
}

/// `2025Q3` for a quarter number.
pub fn label(q: i64) -> String {
    format!("{}Q{}", q.div_euclid(4), q.rem_euclid(4) + 1)
}

/// The last day of a quarter, days since the epoch.
pub fn last_day(q: i64) -> i32 {
    let next = q + 1;
    let first = NaiveDate::from_ymd_opt(
        next.div_euclid(4) as i32,
        next.rem_euclid(4) as u32 * 3 + 1,
        1,
    )
    .unwrap_or_default();
    first.num_days_from_ce() - EPOCH_CE_DAYS - 1
}

fn local_quarter(a: &ArrayRef) -> ArrayRef {
    let a = a.as_primitive::<TimestampMicrosecondType>();
    Arc::new(
        a.iter()
            .map(|v| v.map(|t| quarter_of_day(local_day(t))))
            .collect::<Int64Array>(),
    )
}

fn local_date(a: &ArrayRef) -> ArrayRef {
    let a = a.as_primitive::<TimestampMicrosecondType>();
    Arc::new(a.iter().map(|v| v.map(local_day)).collect::<Date32Array>())
}

fn date_quarter(a: &ArrayRef) -> ArrayRef {
    let a = a.as_primitive::<Date32Type>();
    Arc::new(
        a.iter()
            .map(|v| v.map(quarter_of_day))
            .collect::<Int64Array>(),
    )
}

fn quarter_label(a: &ArrayRef) -> ArrayRef {
    let a = a.as_primitive::<Int64Type>();
    Arc::new(a.iter().map(|v| v.map(label)).collect::<StringArray>())
}

fn quarter_last_day(a: &ArrayRef) -> ArrayRef {
    let a = a.as_primitive::<Int64Type>();
    Arc::new(a.iter().map(|v| v.map(last_day)).collect::<Date32Array>())
}

/// `a / b`, null when either is null or `b` is 0: a rate with no denominator is unknown, not 0.
fn ratio(a: &ArrayRef, b: &ArrayRef) -> ArrayRef {
    let a = a.as_primitive::<Float64Type>();
    let b = b.as_primitive::<Float64Type>();
    let out: Float64Array = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| match (x, y) {
            (Some(x), Some(y)) if y != 0.0 => Some(x / y),
            _ => None,
        })
        .collect();
    debug_assert_eq!(out.len(), a.len());
    Arc::new(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(local: &str) -> i64 {
        let t = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S").unwrap();
        (t.and_utc().timestamp() - LOCAL_OFFSET_S) * 1_000_000
    }

    #[test]
    fn quarters_are_taken_in_local_time() {
        let q3 = 2025 * 4 + 2;
        assert_eq!(quarter_of_day(local_day(micros("2025-09-30 23:59:59"))), q3);
        assert_eq!(
            quarter_of_day(local_day(micros("2025-10-01 00:00:00"))),
            q3 + 1
        );
        // 2025-10-01 00:30 local is still September 30th in UTC.
        assert_eq!(
            quarter_of_day(local_day(micros("2025-10-01 00:30:00"))),
            q3 + 1
        );
        assert_eq!(
            quarter_of_day(local_day(micros("2025-01-01 00:00:00"))),
            2025 * 4
        );
        assert_eq!(
            quarter_of_day(local_day(micros("2024-12-31 23:59:59"))),
            2024 * 4 + 3
        );
        assert_eq!(label(q3), "2025Q3");
        assert_eq!(label(2025 * 4), "2025Q1");
        assert_eq!(
            date(last_day(q3)),
            NaiveDate::from_ymd_opt(2025, 9, 30).unwrap()
        );
        assert_eq!(
            date(last_day(2024 * 4)),
            NaiveDate::from_ymd_opt(2024, 3, 31).unwrap()
        );
        assert_eq!(
            date(last_day(2024 * 4 + 3)),
            NaiveDate::from_ymd_opt(2024, 12, 31).unwrap()
        );
        assert_eq!(local_day(0), 0);
        assert_eq!(date(0), NaiveDate::from_ymd_opt(1970, 1, 1).unwrap());
    }

    #[test]
    fn ratio_is_null_without_a_denominator() {
        let a: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(1.0),
            Some(1.0),
            None,
            Some(0.0),
        ]));
        let b: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(4.0),
            Some(0.0),
            Some(2.0),
            Some(5.0),
        ]));
        let r = ratio(&a, &b);
        let r = r.as_primitive::<Float64Type>();
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            vec![Some(0.25), None, None, Some(0.0)]
        );
    }
}
