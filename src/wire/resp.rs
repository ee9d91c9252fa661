//! RESP, the Redis serialization protocol (RESP2, and the RESP3 types a RESP2 client may
//! still meet): what crosses the wire between a Socket.IO server and Redis when Flask-SocketIO
//! runs with `message_queue="redis://..."`.
//!
//! ```text
//! client  *3\r\n$7\r\nPUBLISH\r\n$14\r\nflask-socketio\r\n$123\r\n{"method": "emit", ...}\r\n
//! server  :2\r\n                                        (how many subscribers got it)
//! server  *3\r\n$7\r\nmessage\r\n$14\r\nflask-socketio\r\n$123\r\n{"method": "emit", ...}\r\n
//! ```
//!
//! Every value starts with a type byte and ends with CRLF (the protocol spec, "RESP protocol
//! description"): `+` simple string, `-` error, `:` integer, `$` bulk string (length, CRLF,
//! bytes, CRLF; `$-1` is null), `*` array (count, then that many values; `*-1` is null), and
//! from RESP3 `_` null, `#` boolean, `,` double, `(` big number, `!` bulk error, `=` verbatim
//! string, `%` map, `~` set, `>` push.
//!
//! Sans-IO like the rest of `wire`: [`decode`] reads one value from the front of a buffer and
//! says how many bytes it took, or that it needs more (`Ok(None)`).

use std::fmt;

/// Bulk strings longer than this are refused (Redis's own `proto-max-bulk-len` default).
pub const MAX_BULK: usize = 512 * 1024 * 1024;
/// Aggregates nested deeper than this are refused, so a hostile peer cannot exhaust the stack.
pub const MAX_DEPTH: usize = 32;
/// Aggregates with more elements than this are refused.
pub const MAX_ELEMENTS: usize = 1 << 20;

/// One RESP value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `+OK`
    Simple(String),
    /// `-ERR ...`, and RESP3's bulk error `!`.
    Error(String),
    /// `:1`
    Integer(i64),
    /// `$5\r\nhello`; `None` is the null bulk string `$-1`.
    Bulk(Option<Vec<u8>>),
    /// `*2\r\n...`; `None` is the null array `*-1`.
    Array(Option<Vec<Value>>),
    /// RESP3 `_`.
    Null,
    /// RESP3 `#t` / `#f`.
    Boolean(bool),
    /// RESP3 `,`, kept as written (`inf`, `-inf`, `nan` are legal).
    Double(String),
    /// RESP3 `(`, kept as written.
    BigNumber(String),
    /// RESP3 `=`: a three-letter format, then the text.
    Verbatim(String, Vec<u8>),
    /// RESP3 `%`: key, value, key, value...
    Map(Vec<(Value, Value)>),
    /// RESP3 `~`.
    Set(Vec<Value>),
    /// RESP3 `>`: data the server pushes (a pub/sub `message` under RESP3).
    Push(Vec<Value>),
}

/// A rule of the protocol broken by the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The first byte is no RESP type.
    UnknownType(u8),
    /// A line that should be a number is not one.
    BadNumber(String),
    /// A length below -1, or over the limits.
    BadLength(i64),
    /// The bytes after a bulk string's data are not CRLF.
    MissingCrlf,
    /// A line holds a bare CR or LF.
    BadLine,
    /// Aggregates nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A RESP3 boolean other than `t` or `f`.
    BadBoolean,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownType(b) => write!(
                f,
                "byte 0x{b:02x} starts no RESP value (RESP: the first byte is the type: + - : $ * _ # , ( ! = % ~ >)"
            ),
            Error::BadNumber(s) => write!(f, "{s:?} is not a number (RESP: lengths and integers are decimal)"),
            Error::BadLength(n) => write!(
                f,
                "length {n} is out of range (RESP: -1 for null, else 0 up to {MAX_BULK} bytes or {MAX_ELEMENTS} elements)"
            ),
            Error::MissingCrlf => f.write_str("a bulk string's data is not followed by CRLF (RESP: bulk strings)"),
            Error::BadLine => f.write_str("a line holds a bare CR or LF (RESP: simple types end at the first CRLF)"),
            Error::TooDeep => write!(f, "aggregates nested deeper than {MAX_DEPTH}"),
            Error::BadBoolean => f.write_str("a boolean other than #t or #f (RESP3: booleans)"),
        }
    }
}

impl std::error::Error for Error {}

/// Decodes one value from the front of `buf`: the value and how many bytes it took, `Ok(None)`
/// when `buf` ends before the value does.
pub fn decode(buf: &[u8]) -> Result<Option<(Value, usize)>, Error> {
    let mut at = 0;
    match value(buf, &mut at, 0)? {
        Some(v) => Ok(Some((v, at))),
        None => Ok(None),
    }
}

/// The line starting at `*at` (without its CRLF), or `None` if it has not ended yet.
fn line<'a>(buf: &'a [u8], at: &mut usize) -> Result<Option<&'a [u8]>, Error> {
    let rest = buf.get(*at..).unwrap_or(&[]);
    let Some(end) = rest.iter().position(|&b| b == b'\n') else {
        if rest.contains(&b'\r') && !rest.ends_with(b"\r") {
            return Err(Error::BadLine);
        }
        return Ok(None);
    };
    if end == 0 || rest[end - 1] != b'\r' || rest[..end - 1].contains(&b'\r') {
        return Err(Error::BadLine);
    }
    *at += end + 1;
    Ok(Some(&rest[..end - 1]))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn number(bytes: &[u8]) -> Result<i64, Error> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| Error::BadNumber(text(bytes)))
}

/// A length line: `None` for -1 (null), else checked against `max`.
fn length(bytes: &[u8], max: usize) -> Result<Option<usize>, Error> {
    match number(bytes)? {
        -1 => Ok(None),
        n if n < 0 || n as u64 > max as u64 => Err(Error::BadLength(n)),
        n => Ok(Some(n as usize)),
    }
}

/// `n` bytes and their CRLF.
fn bulk_bytes(buf: &[u8], at: &mut usize, n: usize) -> Result<Option<Vec<u8>>, Error> {
    let start = *at;
    let Some(end) = start.checked_add(n) else {
        return Err(Error::BadLength(n as i64));
    };
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(Error::MissingCrlf);
    }
    *at = end + 2;
    Ok(Some(buf[start..end].to_vec()))
}

fn elements(
    buf: &[u8],
    at: &mut usize,
    n: usize,
    depth: usize,
) -> Result<Option<Vec<Value>>, Error> {
    // Each element takes at least 3 bytes: never reserve more than the buffer could hold.
    let mut out = Vec::with_capacity(n.min(buf.len() / 3 + 1));
    for _ in 0..n {
        match value(buf, at, depth + 1)? {
            Some(v) => out.push(v),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

fn value(buf: &[u8], at: &mut usize, depth: usize) -> Result<Option<Value>, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::TooDeep);
    }
    let Some(&kind) = buf.get(*at) else {
        return Ok(None);
    };
    let mut cur = *at + 1;
    let Some(head) = line(buf, &mut cur)? else {
        // An unknown type byte is an error even before its line ends.
        return match kind {
            b'+' | b'-' | b':' | b'$' | b'*' | b'_' | b'#' | b',' | b'(' | b'!' | b'=' | b'%'
            | b'~' | b'>' => Ok(None),
            other => Err(Error::UnknownType(other)),
        };
    };
    let v = match kind {
        b'+' => Value::Simple(text(head)),
        b'-' => Value::Error(text(head)),
        b':' => Value::Integer(number(head)?),
        b'_' => Value::Null,
        b'#' => match head {
            b"t" => Value::Boolean(true),
            b"f" => Value::Boolean(false),
            _ => return Err(Error::BadBoolean),
        },
        b',' => Value::Double(text(head)),
        b'(' => Value::BigNumber(text(head)),
        b'$' | b'!' | b'=' => {
            let Some(n) = length(head, MAX_BULK)? else {
                *at = cur;
                return Ok(Some(Value::Bulk(None)));
            };
            let Some(data) = bulk_bytes(buf, &mut cur, n)? else {
                return Ok(None);
            };
            match kind {
                b'$' => Value::Bulk(Some(data)),
                b'!' => Value::Error(text(&data)),
                _ => {
                    // "txt:" or "mkd:" before the text.
                    let (format, rest) = if data.len() >= 4 && data[3] == b':' {
                        (text(&data[..3]), data[4..].to_vec())
                    } else {
                        (String::new(), data)
                    };
                    Value::Verbatim(format, rest)
                }
            }
        }
        b'*' | b'~' | b'>' => {
            let Some(n) = length(head, MAX_ELEMENTS)? else {
                *at = cur;
                return Ok(Some(Value::Array(None)));
            };
            let Some(items) = elements(buf, &mut cur, n, depth)? else {
                return Ok(None);
            };
            match kind {
                b'*' => Value::Array(Some(items)),
                b'~' => Value::Set(items),
                _ => Value::Push(items),
            }
        }
        b'%' => {
            let Some(n) = length(head, MAX_ELEMENTS / 2)? else {
                return Err(Error::BadLength(-1));
            };
            let Some(items) = elements(buf, &mut cur, n * 2, depth)? else {
                return Ok(None);
            };
            let mut pairs = Vec::with_capacity(n);
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            Value::Map(pairs)
        }
        other => return Err(Error::UnknownType(other)),
    };
    *at = cur;
    Ok(Some(v))
}

/// The RESP2 bytes of a command (an array of bulk strings), as clients send them.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl Value {
    /// The bytes of a bulk or simple string, if this is one.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(Some(b)) | Value::Verbatim(_, b) => Some(b),
            Value::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// The elements of an array, set or push.
    pub fn items(&self) -> Option<&[Value]> {
        match self {
            Value::Array(Some(v)) | Value::Set(v) | Value::Push(v) => Some(v),
            _ => None,
        }
    }

    /// A command or a pub/sub push as words: `PUBLISH flask-socketio {...}`.
    pub fn words(&self) -> Option<Vec<String>> {
        self.items()?
            .iter()
            .map(|v| match v {
                Value::Integer(i) => Some(i.to_string()),
                other => other.bytes().map(text),
            })
            .collect()
    }
}

impl fmt::Display for Value {
    /// The way redis-cli shows values, on one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Simple(s) => write!(f, "{s}"),
            Value::Error(s) => write!(f, "(error) {s}"),
            Value::Integer(i) => write!(f, "(integer) {i}"),
            Value::Bulk(None) | Value::Array(None) | Value::Null => f.write_str("(nil)"),
            Value::Bulk(Some(b)) | Value::Verbatim(_, b) => write!(f, "{:?}", text(b)),
            Value::Boolean(b) => write!(f, "(boolean) {b}"),
            Value::Double(s) => write!(f, "(double) {s}"),
            Value::BigNumber(s) => write!(f, "(big number) {s}"),
            Value::Array(Some(v)) | Value::Set(v) | Value::Push(v) => {
                f.write_str("[")?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_str("]")
            }
            Value::Map(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Value {
        let (v, n) = decode(bytes).unwrap().unwrap();
        assert_eq!(n, bytes.len(), "{bytes:?}");
        v
    }

    #[test]
    fn a_publish_and_its_pushed_message() {
        let cmd = encode_command(&["PUBLISH", "flask-socketio", "{\"method\": \"emit\"}"]);
        assert_eq!(
            cmd,
            b"*3\r\n$7\r\nPUBLISH\r\n$14\r\nflask-socketio\r\n$18\r\n{\"method\": \"emit\"}\r\n"
        );
        assert_eq!(
            one(&cmd).words().unwrap(),
            ["PUBLISH", "flask-socketio", "{\"method\": \"emit\"}"]
        );
        let push = b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n";
        assert_eq!(one(push).words().unwrap(), ["message", "c", "hi"]);
        // SUBSCRIBE's confirmation carries the count of channels as an integer.
        let sub = b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n";
        assert_eq!(one(sub).words().unwrap(), ["subscribe", "c", "1"]);
    }

    #[test]
    fn every_type() {
        assert_eq!(one(b"+OK\r\n"), Value::Simple("OK".into()));
        assert_eq!(one(b"-ERR no\r\n"), Value::Error("ERR no".into()));
        assert_eq!(one(b":-42\r\n"), Value::Integer(-42));
        assert_eq!(one(b"$-1\r\n"), Value::Bulk(None));
        assert_eq!(one(b"$0\r\n\r\n"), Value::Bulk(Some(vec![])));
        assert_eq!(one(b"*-1\r\n"), Value::Array(None));
        assert_eq!(one(b"*0\r\n"), Value::Array(Some(vec![])));
        assert_eq!(one(b"_\r\n"), Value::Null);
        assert_eq!(one(b"#t\r\n"), Value::Boolean(true));
        assert_eq!(one(b",1.5\r\n"), Value::Double("1.5".into()));
        assert_eq!(one(b"(123\r\n"), Value::BigNumber("123".into()));
        assert_eq!(one(b"!3\r\nbad\r\n"), Value::Error("bad".into()));
        assert_eq!(
            one(b"=8\r\ntxt:some\r\n"),
            Value::Verbatim("txt".into(), b"some".to_vec())
        );
        assert_eq!(
            one(b"%1\r\n+a\r\n:1\r\n"),
            Value::Map(vec![(Value::Simple("a".into()), Value::Integer(1))])
        );
        assert_eq!(one(b"~1\r\n:1\r\n"), Value::Set(vec![Value::Integer(1)]));
        assert_eq!(
            one(b">2\r\n+message\r\n:1\r\n").words().unwrap(),
            ["message", "1"]
        );
        // Binary-safe: a bulk string may hold CR, LF and NUL.
        assert_eq!(
            one(b"$4\r\n\r\n\0x\r\n"),
            Value::Bulk(Some(b"\r\n\0x".to_vec()))
        );
    }

    #[test]
    fn two_values_in_one_buffer_are_read_one_at_a_time() {
        let buf = b":1\r\n+OK\r\n";
        let (v, n) = decode(buf).unwrap().unwrap();
        assert_eq!((v, n), (Value::Integer(1), 4));
        assert_eq!(
            decode(&buf[n..]).unwrap().unwrap().0,
            Value::Simple("OK".into())
        );
    }

    #[test]
    fn rules_broken_are_named() {
        assert_eq!(decode(b"?x\r\n"), Err(Error::UnknownType(b'?')));
        assert_eq!(decode(b"?"), Err(Error::UnknownType(b'?')));
        assert_eq!(decode(b":x\r\n"), Err(Error::BadNumber("x".into())));
        assert_eq!(decode(b"$-2\r\n"), Err(Error::BadLength(-2)));
        assert_eq!(decode(b"$1\r\nab\r\n"), Err(Error::MissingCrlf));
        assert_eq!(decode(b"+a\rb\r\n"), Err(Error::BadLine));
        assert_eq!(decode(b"+a\n"), Err(Error::BadLine));
        assert_eq!(decode(b"#x\r\n"), Err(Error::BadBoolean));
        assert_eq!(
            decode(b"$99999999999\r\n"),
            Err(Error::BadLength(99_999_999_999))
        );
        let deep = "*1\r\n".repeat(MAX_DEPTH + 2);
        assert_eq!(decode(deep.as_bytes()), Err(Error::TooDeep));
        // A huge count with few bytes behind it is incomplete, not an allocation.
        assert_eq!(decode(b"*1000000\r\n:1\r\n"), Ok(None));
        for e in [Error::UnknownType(0), Error::MissingCrlf, Error::TooDeep] {
            assert!(!e.to_string().is_empty());
        }
    }

    /// Every prefix of a valid value is incomplete, never an error or a panic.
    #[test]
    fn every_prefix_is_incomplete() {
        let whole = b"*3\r\n$7\r\nmessage\r\n$14\r\nflask-socketio\r\n%1\r\n+k\r\n>1\r\n:7\r\n";
        for n in 0..whole.len() {
            assert_eq!(decode(&whole[..n]), Ok(None), "prefix {n}");
        }
        assert!(decode(whole).unwrap().is_some());
    }
}
