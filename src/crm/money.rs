//! Exact money: decimal amounts as strings that keep their digits (`"1234.50"` stays
//! `"1234.50"`), sums without floating point, and ISO 4217 currency codes.

use std::str::FromStr;

use rust_decimal::Decimal;

/// The active ISO 4217 codes.
const CURRENCIES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC",
    "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS",
    "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
    "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL",
    "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD",
    "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD",
    "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP",
    "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VES",
    "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// An ISO 4217 code, upper-cased; `None` for anything else.
pub fn currency(code: &str) -> Option<&'static str> {
    let code = code.trim().to_ascii_uppercase();
    CURRENCIES.iter().copied().find(|c| *c == code)
}

/// The most digits after the point an amount may have.
const MAX_SCALE: u32 = 8;

/// A decimal amount in canonical form: the digits as given, without a leading `+` or
/// surrounding spaces; `None` when it is not a plain decimal (no exponents, no
/// thousands separators) or is too large to sum exactly.
pub fn decimal(s: &str) -> Option<String> {
    let t = s.trim();
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let plain = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && (frac.len() as u32) <= MAX_SCALE
        && int.len() <= 18
        && !(body.contains('.') && frac.is_empty());
    if !plain {
        return None;
    }
    let d = Decimal::from_str(t.strip_prefix('+').unwrap_or(t)).ok()?;
    // `Decimal` keeps the scale it was written with: "1234.50" prints as "1234.50".
    Some(d.to_string())
}

/// The exact sum of decimal strings, with the largest scale among them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sum(Decimal);

impl Sum {
    pub fn add(&mut self, amount: &str) {
        if let Ok(d) = Decimal::from_str(amount) {
            self.0 = self.0.checked_add(d).unwrap_or(self.0);
        }
    }
}

impl std::fmt::Display for Sum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_their_digits_and_sum_exactly() {
        assert_eq!(decimal("1234.50").as_deref(), Some("1234.50"));
        assert_eq!(decimal(" +7 ").as_deref(), Some("7"));
        assert_eq!(decimal("-0.10").as_deref(), Some("-0.10"));
        for bad in ["1e5", "1,000", "", ".5", "5.", "abc", "1.123456789", "--1", "NaN"] {
            assert_eq!(decimal(bad), None, "{bad}");
        }
        let mut sum = Sum::default();
        sum.add("0.10");
        sum.add("0.20");
        assert_eq!(sum.to_string(), "0.30");
        assert_eq!(currency("eur"), Some("EUR"));
        assert_eq!(currency("EURO"), None);
    }
}
