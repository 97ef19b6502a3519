//! Money as people read it: in the currency's own minor units (ISO 4217 exponents: JPY
//! has none, KWD three, USD two) with thousands separators, then the code:
//! `1,234.56 USD`, `1,234 JPY`, `1.234 KWD`.

/// Decimal digits of the currency's minor unit; 2 for a code ISO 4217 does not know
/// (what Stripe assumes for its own amounts).
pub fn exponent(code: &str) -> u32 {
    iso_currency::Currency::from_code(&code.trim().to_ascii_uppercase())
        .and_then(|c| c.exponent())
        .map_or(2, u32::from)
}

/// An amount in minor units (Stripe's `amount`, in cents for USD): every decimal the
/// currency has is shown. `123456, "usd"` is `1,234.56 USD`.
pub fn minor(amount: i64, currency: &str) -> String {
    let exp = exponent(currency);
    let abs = i128::from(amount).unsigned_abs();
    let unit = 10u128.pow(exp);
    let whole = group(abs / unit);
    let sign = if amount < 0 { "-" } else { "" };
    let code = currency.trim().to_ascii_uppercase();
    if exp == 0 {
        format!("{sign}{whole} {code}")
    } else {
        let frac = abs % unit;
        format!("{sign}{whole}.{frac:0w$} {code}", w = exp as usize)
    }
}

/// An amount in major units (HubSpot's `amount`, Pipedrive's `value`): a whole amount
/// without decimals (`48,000 EUR`), otherwise rounded to the currency's decimals
/// (`1,234.50 EUR`).
pub fn major(value: f64, currency: &str) -> String {
    let exp = exponent(currency);
    let scaled = (value * 10f64.powi(exp as i32)).round();
    // Beyond i64 the amount is not money a message should show digit by digit.
    if !scaled.is_finite() || scaled.abs() >= i64::MAX as f64 {
        return format!("{value} {}", currency.trim().to_ascii_uppercase());
    }
    let minor_units = scaled as i64;
    if minor_units % 10i64.pow(exp) == 0 {
        let sign = if minor_units < 0 { "-" } else { "" };
        let whole = group(i128::from(minor_units).unsigned_abs() / 10u128.pow(exp));
        format!("{sign}{whole} {}", currency.trim().to_ascii_uppercase())
    } else {
        minor(minor_units, currency)
    }
}

/// `1234567` as `1,234,567`.
fn group(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn minor_units_follow_the_currency() {
        assert_eq!(minor(123_456, "usd"), "1,234.56 USD");
        assert_eq!(minor(5, "USD"), "0.05 USD");
        assert_eq!(minor(1_234, "jpy"), "1,234 JPY");
        assert_eq!(minor(1_234, "KWD"), "1.234 KWD");
        assert_eq!(minor(1_234_567_890, "kwd"), "1,234,567.890 KWD");
        assert_eq!(minor(-2_500, "eur"), "-25.00 EUR");
        assert_eq!(minor(0, "usd"), "0.00 USD");
        assert_eq!(minor(i64::MIN, "usd"), "-92,233,720,368,547,758.08 USD");
        // A code ISO 4217 does not know: two decimals, as Stripe assumes.
        assert_eq!(minor(1_999, "xyz"), "19.99 XYZ");
    }

    #[test]
    fn major_units_drop_zero_decimals() {
        assert_eq!(major(48_000.0, "EUR"), "48,000 EUR");
        assert_eq!(major(1_234.5, "usd"), "1,234.50 USD");
        assert_eq!(major(1_234.567, "USD"), "1,234.57 USD");
        assert_eq!(major(1_000_000.0, "JPY"), "1,000,000 JPY");
        assert_eq!(major(12.3456, "KWD"), "12.346 KWD");
        assert_eq!(major(-75.0, "gbp"), "-75 GBP");
    }

    proptest! {
        #[test]
        fn grouping_round_trips(n in any::<u64>()) {
            prop_assert_eq!(group(u128::from(n)).replace(',', ""), n.to_string());
        }

        #[test]
        fn minor_keeps_every_digit(n in any::<i64>(), code in "(usd|jpy|kwd|eur)") {
            let s = minor(n, &code);
            let digits: String = s.chars().filter(char::is_ascii_digit).collect();
            let expected = i128::from(n).unsigned_abs().to_string();
            // Leading zeros appear only as "0.0x".
            prop_assert_eq!(digits.trim_start_matches('0'), expected.trim_start_matches('0'));
        }
    }
}
