//! What HF chat templates see from Python that minijinja does differently: how `{{ value }}`
//! prints (`str()`: `None`, `True`, `1.0`, `['a']`), `tojson` (`json.dumps` with HF's defaults:
//! `", "` / `": "` separators, keys in insertion order, no HTML escaping), `strftime_now`.

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Error as JinjaError, ErrorKind, Value};
use std::fmt::Write;

/// Python's `repr(float)`: the shortest digits that round-trip, in exponent form when the
/// exponent is below -4 or at least 16 (`1e-05`, `1e+16`), else positional with at least `.0`.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // Rust's `{:e}` prints the same shortest round-trip digits as Python: `d.ddde±x`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = mantissa.strip_prefix('-').map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !(-4..16).contains(&exp) {
        let mut m = digits[..1].to_string();
        if digits.len() > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        return format!("{sign}{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    let point = exp + 1; // digits before the decimal point
    let mut out = sign.to_string();
    if point <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat((-point) as usize));
        out.push_str(&digits);
    } else if point as usize >= digits.len() {
        out.push_str(&digits);
        out.push_str(&"0".repeat(point as usize - digits.len()));
        out.push_str(".0");
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
    out
}

/// Characters Python's `str.isprintable` rejects (the common ones: controls, line and paragraph
/// separators, spaces other than ' ', format characters), which `repr` escapes.
fn py_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{a0}' | '\u{ad}' | '\u{1680}' | '\u{2000}'..='\u{200f}' | '\u{2028}'..='\u{202f}')
        || matches!(c, '\u{205f}'..='\u{2064}' | '\u{3000}' | '\u{feff}')
}

/// Python's `repr(str)`: single quotes unless the text holds `'` and no `"`.
fn str_repr(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if py_unprintable(c) => {
                let _ = match c as u32 {
                    n @ 0..=0xff => write!(out, "\\x{n:02x}"),
                    n @ 0x100..=0xffff => write!(out, "\\u{n:04x}"),
                    n => write!(out, "\\U{n:08x}"),
                };
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// `str(value)` as Python prints a JSON-like value.
pub fn py_str(value: &Value, out: &mut String) {
    match value.kind() {
        ValueKind::Undefined => {}
        ValueKind::String => out.push_str(value.as_str().unwrap_or_default()),
        _ => py_repr(value, out),
    }
}

/// `repr(value)` for JSON-like values (`None`, `True`, `[1, 'a']`, `{'k': 2.0}`).
fn py_repr(value: &Value, out: &mut String) {
    match value.kind() {
        ValueKind::Undefined => {}
        ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if value.is_true() { "True" } else { "False" }),
        ValueKind::Number => number(value, out),
        ValueKind::String => str_repr(value.as_str().unwrap_or_default(), out),
        ValueKind::Map => {
            out.push('{');
            for (i, (k, v)) in pairs(value).iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                py_repr(k, out);
                out.push_str(": ");
                py_repr(v, out);
            }
            out.push('}');
        }
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            for (i, v) in value.try_iter().into_iter().flatten().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                py_repr(&v, out);
            }
            out.push(']');
        }
        _ => {
            let _ = write!(out, "{value}");
        }
    }
}

fn number(value: &Value, out: &mut String) {
    if value.is_integer() {
        let _ = write!(out, "{value}");
    } else {
        out.push_str(&float_repr(f64::try_from(value.clone()).unwrap_or(f64::NAN)));
    }
}

/// A map's entries in its own order.
fn pairs(value: &Value) -> Vec<(Value, Value)> {
    let Ok(keys) = value.try_iter() else { return Vec::new() };
    keys.map(|k| {
        let v = value.get_item(&k).unwrap_or(Value::UNDEFINED);
        (k, v)
    })
    .collect()
}

/// Python's `str.isspace`: Rust's whitespace plus the separators U+001C..U+001F.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Jinja's `trim` filter: `str(value).strip(chars)`.
pub fn trim(value: &Value, chars: Option<String>) -> String {
    let mut s = String::new();
    py_str(value, &mut s);
    match chars {
        Some(chars) => s.trim_matches(|c| chars.contains(c)).to_string(),
        None => s.trim_matches(py_space).to_string(),
    }
}

/// Jinja's `dictsort(value, case_sensitive=False, by='key', reverse=False)`: a map's `(key,
/// value)` pairs sorted, strings compared lower-cased unless `case_sensitive`; stable.
pub fn dictsort(value: &Value, case_sensitive: Option<bool>, kwargs: Kwargs) -> Result<Value, JinjaError> {
    if value.kind() != ValueKind::Map {
        return Err(bad("dictsort: not a mapping"));
    }
    let case_sensitive = match case_sensitive {
        Some(c) => c,
        None => kwargs.get::<Option<bool>>("case_sensitive")?.unwrap_or(false),
    };
    let by_value = match kwargs.get::<Option<String>>("by")?.as_deref() {
        None | Some("key") => false,
        Some("value") => true,
        Some(_) => return Err(bad("dictsort: by must be 'key' or 'value'")),
    };
    let reverse = kwargs.get::<Option<bool>>("reverse")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let sort_key = |v: &Value| match (v.as_str(), case_sensitive) {
        (Some(s), false) => Value::from(s.to_lowercase()),
        _ => v.clone(),
    };
    let mut items: Vec<(Value, Value, Value)> =
        pairs(value).into_iter().map(|(k, v)| (sort_key(if by_value { &v } else { &k }), k, v)).collect();
    if reverse {
        items.sort_by(|a, b| b.0.cmp(&a.0));
    } else {
        items.sort_by(|a, b| a.0.cmp(&b.0));
    }
    Ok(items.into_iter().map(|(_, k, v)| Value::from(vec![k, v])).collect())
}

/// Jinja's `sequence` test: anything with a length and items (strings, lists, mappings).
pub fn is_sequence(value: &Value) -> bool {
    matches!(value.kind(), ValueKind::String | ValueKind::Seq | ValueKind::Map)
}

/// Python's string methods where minijinja-contrib's differ: `strip`, `lstrip`, `rstrip` and
/// `split` without arguments use Python's whitespace. `None` for the others.
pub fn string_method(s: &str, method: &str, args: &[Value]) -> Option<Value> {
    if !args.is_empty() {
        return None;
    }
    Some(match method {
        "strip" => Value::from(s.trim_matches(py_space)),
        "lstrip" => Value::from(s.trim_start_matches(py_space)),
        "rstrip" => Value::from(s.trim_end_matches(py_space)),
        "split" => s.split(py_space).filter(|w| !w.is_empty()).map(Value::from).collect(),
        _ => return None,
    })
}

/// Jinja's `string` filter: `str(value)`.
pub fn string(value: &Value) -> String {
    let mut s = String::new();
    py_str(value, &mut s);
    s
}

/// The `tojson` filter HF installs: `json.dumps(x, ensure_ascii=False, indent=None,
/// separators=None, sort_keys=False)`.
pub fn tojson(value: &Value, kwargs: Kwargs) -> Result<String, JinjaError> {
    let ensure_ascii: bool = kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(false);
    let sort_keys: bool = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    let indent: Option<Value> = kwargs.get("indent")?;
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) if v.is_integer() => Some(" ".repeat(i64::try_from(v).unwrap_or(0).clamp(0, 64) as usize)),
        Some(v) => {
            Some(v.as_str().map(str::to_string).ok_or_else(|| bad("tojson: indent must be an int or a string"))?)
        }
    };
    let separators: Option<Value> = kwargs.get("separators")?;
    let (item_sep, key_sep) = match separators.filter(|v| !v.is_none()) {
        Some(v) => {
            let parts: Vec<Value> = v.try_iter()?.collect();
            match parts.as_slice() {
                [a, b] => (a.to_string(), b.to_string()),
                _ => return Err(bad("tojson: separators must be a pair of strings")),
            }
        }
        None if indent.is_some() => (",".to_string(), ": ".to_string()),
        None => (", ".to_string(), ": ".to_string()),
    };
    kwargs.assert_all_used()?;
    let opts = JsonOpts { ensure_ascii, sort_keys, indent, item_sep, key_sep };
    let mut out = String::new();
    json_value(value, &opts, 0, &mut out)?;
    Ok(out)
}

struct JsonOpts {
    ensure_ascii: bool,
    sort_keys: bool,
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
}

/// Deeper structures than this are refused, as Python's recursion limit would.
const MAX_DEPTH: usize = 256;

fn json_value(value: &Value, o: &JsonOpts, depth: usize, out: &mut String) -> Result<(), JinjaError> {
    if depth > MAX_DEPTH {
        return Err(bad("tojson: nesting too deep"));
    }
    match value.kind() {
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number if value.is_integer() => number(value, out),
        ValueKind::Number => {
            let f = f64::try_from(value.clone()).unwrap_or(f64::NAN);
            match f {
                f if f.is_nan() => out.push_str("NaN"),
                f if f.is_infinite() => out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" }),
                f => out.push_str(&float_repr(f)),
            }
        }
        ValueKind::String => json_str(value.as_str().unwrap_or_default(), o.ensure_ascii, out),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            container(out, o, depth, '[', ']', items.len(), |i, out| json_value(&items[i], o, depth + 1, out))?;
        }
        ValueKind::Map => {
            let mut entries = Vec::new();
            for (k, v) in pairs(value) {
                entries.push((json_key(&k)?, v));
            }
            if o.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            container(out, o, depth, '{', '}', entries.len(), |i, out| {
                json_str(&entries[i].0, o.ensure_ascii, out);
                out.push_str(&o.key_sep);
                json_value(&entries[i].1, o, depth + 1, out)
            })?;
        }
        _ => return Err(bad(&format!("tojson: a {} is not JSON serializable", value.kind()))),
    }
    Ok(())
}

/// `[`/`{`, the items separated and indented as `json.dumps` does, `]`/`}`.
fn container(
    out: &mut String,
    o: &JsonOpts,
    depth: usize,
    open: char,
    close: char,
    n: usize,
    mut item: impl FnMut(usize, &mut String) -> Result<(), JinjaError>,
) -> Result<(), JinjaError> {
    out.push(open);
    if n == 0 {
        out.push(close);
        return Ok(());
    }
    let newline = |out: &mut String, level: usize| {
        if let Some(ind) = &o.indent {
            out.push('\n');
            for _ in 0..level {
                out.push_str(ind);
            }
        }
    };
    for i in 0..n {
        if i > 0 {
            out.push_str(&o.item_sep);
        }
        newline(out, depth + 1);
        item(i, out)?;
    }
    newline(out, depth);
    out.push(close);
    Ok(())
}

/// A key as `json.dumps` converts it: strings as they are, `true`/`false`/`null`, numbers.
fn json_key(k: &Value) -> Result<String, JinjaError> {
    Ok(match k.kind() {
        ValueKind::String => k.as_str().unwrap_or_default().to_string(),
        ValueKind::Bool | ValueKind::None | ValueKind::Number => {
            let mut s = String::new();
            json_value(k, &JsonOpts::compact(), 0, &mut s)?;
            s
        }
        kind => return Err(bad(&format!("tojson: keys must be str, int, float, bool or None, not {kind}"))),
    })
}

impl JsonOpts {
    fn compact() -> Self {
        JsonOpts { ensure_ascii: false, sort_keys: false, indent: None, item_sep: ",".into(), key_sep: ":".into() }
    }
}

fn json_str(s: &str, ensure_ascii: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if ensure_ascii && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn bad(msg: &str) -> JinjaError {
    JinjaError::new(ErrorKind::InvalidOperation, msg.to_string())
}

/// `strftime_now(format)`: the current UTC time through Python's `strftime` codes (the common
/// ones; others are kept verbatim).
pub fn strftime_now(format: &str) -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    strftime(secs as i64, format)
}

/// `format` applied to the UTC time `secs` after the Unix epoch.
pub fn strftime(secs: i64, format: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
    let days = secs.div_euclid(86400);
    let tod = secs.rem_euclid(86400);
    let (h, mi, s) = (tod / 3600, tod / 60 % 60, tod % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy_mar = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy_mar + 2) / 153;
    let d = doy_mar - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let cum = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = cum[(m - 1) as usize] + d + i64::from(leap && m > 2);
    let h12 = if h % 12 == 0 { 12 } else { h % 12 };

    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        // `%-d` (glibc): no padding.
        let mut spec = chars.next();
        let unpadded = spec == Some('-');
        if unpadded {
            spec = chars.next();
        }
        let num = |out: &mut String, v: i64, w: usize| {
            if unpadded {
                let _ = write!(out, "{v}");
            } else {
                let _ = write!(out, "{v:0w$}");
            }
        };
        match spec {
            Some('Y') => num(&mut out, y, 4),
            Some('y') => num(&mut out, y % 100, 2),
            Some('m') => num(&mut out, m, 2),
            Some('d') => num(&mut out, d, 2),
            Some('e') => {
                let _ = write!(out, "{d:2}");
            }
            Some('H') => num(&mut out, h, 2),
            Some('I') => num(&mut out, h12, 2),
            Some('M') => num(&mut out, mi, 2),
            Some('S') => num(&mut out, s, 2),
            Some('j') => num(&mut out, yday, 3),
            Some('p') => out.push_str(if h < 12 { "AM" } else { "PM" }),
            Some('B') => out.push_str(MONTHS[(m - 1) as usize]),
            Some('b') | Some('h') => out.push_str(&MONTHS[(m - 1) as usize][..3]),
            Some('A') => out.push_str(DAYS[weekday]),
            Some('a') => out.push_str(&DAYS[weekday][..3]),
            Some('F') => {
                let _ = write!(out, "{y:04}-{m:02}-{d:02}");
            }
            Some('T') => {
                let _ = write!(out, "{h:02}:{mi:02}:{s:02}");
            }
            Some('Z') => out.push_str("UTC"),
            Some('z') => out.push_str("+0000"),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                if unpadded {
                    out.push('-');
                }
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python() {
        let cases = [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.6, "123456789012345.6"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (100.0, "100.0"),
            (f64::INFINITY, "inf"),
        ];
        for (f, want) in cases {
            assert_eq!(float_repr(f), want, "{f}");
        }
    }

    #[test]
    fn str_and_repr() {
        let v = Value::from(minijinja::value::Serde(serde_json::json!([null, true, "it's", 2, 2.0, {"a": "b"}])));
        let mut s = String::new();
        py_str(&v, &mut s);
        assert_eq!(s, "[None, True, \"it's\", 2, 2.0, {'a': 'b'}]");
    }

    #[test]
    fn trim_and_string() {
        assert_eq!(trim(&Value::from("\u{1c} a \n\u{3000}"), None), "a");
        assert_eq!(trim(&Value::from("xxaxx"), Some("x".into())), "a");
        assert_eq!(trim(&Value::from(()), None), "None");
        assert_eq!(string(&Value::from(true)), "True");
    }

    #[test]
    fn dates() {
        // 2024-02-29 13:05:09 UTC, a Thursday.
        let t = 1_709_211_909;
        assert_eq!(strftime(t, "%Y-%m-%d %H:%M:%S"), "2024-02-29 13:05:09");
        assert_eq!(strftime(t, "%d %b %Y, %A %B %-d %j %I%p %%"), "29 Feb 2024, Thursday February 29 060 01PM %");
        assert_eq!(strftime(0, "%F %T %a"), "1970-01-01 00:00:00 Thu");
    }
}
