//! HTTP/1.1 message heads (RFC 9112) parsed with httparse, plus body framing.
//!
//! Engine.IO's polling transport and the WebSocket opening handshake both start as HTTP/1.1, so
//! this is the first decoder every connection meets.

use std::fmt;

/// A parsed request head. Names keep the case the client sent; lookups ignore case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    pub target: String,
    /// Minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    pub headers: Vec<(String, String)>,
    /// Bytes of the head, including the blank line.
    pub head_len: usize,
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub version: u8,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub head_len: usize,
}

/// How the body after a head is delimited (RFC 9112 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Length(u64),
    Chunked,
    /// Response body that ends when the server closes the connection (§6.3 rule 8).
    UntilClose,
}

/// What went wrong with a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// More header lines than the limit (answered with 431).
    TooManyHeaders,
    /// The head is longer than the limit without ending (answered with 431).
    HeadTooLarge,
    /// httparse refused the bytes: not HTTP/1.x syntax (answered with 400).
    Malformed(&'static str),
    /// Content-Length is not a number, or two differ (RFC 9112 §6.3 rule 5).
    BadContentLength,
    /// A chunk-size line is not hex, or a chunk lacks its CRLF (RFC 9112 §7.1).
    BadChunk,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::TooManyHeaders => f.write_str("too many header fields (RFC 6585 §5: 431)"),
            HttpError::HeadTooLarge => f.write_str("request head too large (RFC 6585 §5: 431)"),
            HttpError::Malformed(what) => {
                write!(f, "malformed HTTP/1.1 head: {what} (RFC 9112 §2)")
            }
            HttpError::BadContentLength => f.write_str("invalid Content-Length (RFC 9112 §6.3)"),
            HttpError::BadChunk => f.write_str("invalid chunked encoding (RFC 9112 §7.1)"),
        }
    }
}

impl std::error::Error for HttpError {}

fn httparse_error(e: httparse::Error) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders,
        httparse::Error::HeaderName => HttpError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => HttpError::Malformed("invalid header value"),
        httparse::Error::NewLine => HttpError::Malformed("invalid line ending"),
        httparse::Error::Status => HttpError::Malformed("invalid status line"),
        httparse::Error::Token => HttpError::Malformed("invalid token in the request line"),
        httparse::Error::Version => HttpError::Malformed("invalid HTTP version"),
    }
}

fn owned_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect()
}

/// Parses a request head from the start of `buf`. `Ok(None)`: the head is not complete yet.
pub fn parse_request(
    buf: &[u8],
    max_headers: usize,
    max_head_bytes: usize,
) -> Result<Option<RequestHead>, HttpError> {
    let mut storage = vec![httparse::EMPTY_HEADER; max_headers];
    let mut req = httparse::Request::new(&mut storage);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(head_len)) => {
            if head_len > max_head_bytes {
                return Err(HttpError::HeadTooLarge);
            }
            Ok(Some(RequestHead {
                method: req.method.unwrap_or_default().to_string(),
                target: req.path.unwrap_or_default().to_string(),
                version: req.version.unwrap_or(1),
                headers: owned_headers(req.headers),
                head_len,
            }))
        }
        Ok(httparse::Status::Partial) if buf.len() > max_head_bytes => Err(HttpError::HeadTooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(httparse_error(e)),
    }
}

/// Parses a response head from the start of `buf`. `Ok(None)`: not complete yet.
pub fn parse_response(buf: &[u8], max_headers: usize) -> Result<Option<ResponseHead>, HttpError> {
    let mut storage = vec![httparse::EMPTY_HEADER; max_headers];
    let mut res = httparse::Response::new(&mut storage);
    match res.parse(buf) {
        Ok(httparse::Status::Complete(head_len)) => Ok(Some(ResponseHead {
            version: res.version.unwrap_or(1),
            status: res.code.unwrap_or(0),
            reason: res.reason.unwrap_or_default().to_string(),
            headers: owned_headers(res.headers),
            head_len,
        })),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(httparse_error(e)),
    }
}

/// Case-insensitive header lookup (first match).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// True when a comma-separated header (Connection, Upgrade...) lists `token`, ignoring case.
pub fn header_has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn content_length(headers: &[(String, String)]) -> Result<Option<u64>, HttpError> {
    let mut found: Option<u64> = None;
    for (_, v) in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        let n: u64 = v.trim().parse().map_err(|_| HttpError::BadContentLength)?;
        if found.is_some_and(|f| f != n) {
            return Err(HttpError::BadContentLength);
        }
        found = Some(n);
    }
    Ok(found)
}

impl RequestHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The path part of the target, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// A decoded query parameter of the target.
    pub fn query(&self, name: &str) -> Option<String> {
        query_param(&self.target, name)
    }

    /// Request body framing (RFC 9112 §6.3): chunked wins over Content-Length; none otherwise.
    pub fn body_kind(&self) -> Result<BodyKind, HttpError> {
        if header_has_token(&self.headers, "transfer-encoding", "chunked") {
            return Ok(BodyKind::Chunked);
        }
        Ok(match content_length(&self.headers)? {
            Some(0) | None => BodyKind::None,
            Some(n) => BodyKind::Length(n),
        })
    }

    /// Whether the connection stays open after this exchange (RFC 9112 §9.3).
    pub fn keep_alive(&self) -> bool {
        if header_has_token(&self.headers, "connection", "close") {
            return false;
        }
        self.version >= 1 || header_has_token(&self.headers, "connection", "keep-alive")
    }
}

impl ResponseHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// Response body framing (RFC 9112 §6.3), given the request method it answers.
    pub fn body_kind(&self, request_method: Option<&str>) -> Result<BodyKind, HttpError> {
        if request_method == Some("HEAD")
            || (100..200).contains(&self.status)
            || self.status == 204
            || self.status == 304
        {
            return Ok(BodyKind::None);
        }
        if header_has_token(&self.headers, "transfer-encoding", "chunked") {
            return Ok(BodyKind::Chunked);
        }
        Ok(match content_length(&self.headers)? {
            Some(0) => BodyKind::None,
            Some(n) => BodyKind::Length(n),
            None => BodyKind::UntilClose,
        })
    }
}

/// A decoded query parameter (`%XX` and `+` decoded) of a request target.
pub fn query_param(target: &str, name: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hi = (bytes[i + 1] as char).to_digit(16);
                let lo = (bytes[i + 2] as char).to_digit(16);
                if let (Some(h), Some(l)) = (hi, lo) {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes a complete chunked body at the start of `buf` (RFC 9112 §7.1).
/// Returns the body and the bytes consumed, `Ok(None)` while incomplete.
pub fn decode_chunked(buf: &[u8], max_body: usize) -> Result<Option<(Vec<u8>, usize)>, HttpError> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(line_end) = find_crlf(&buf[pos..]) else {
            // A size line longer than any sane one is not a size line.
            return if buf.len() - pos > 1024 {
                Err(HttpError::BadChunk)
            } else {
                Ok(None)
            };
        };
        let line = &buf[pos..pos + line_end];
        let size_text = line.split(|&b| b == b';').next().unwrap_or(b"");
        let size_text = std::str::from_utf8(size_text).map_err(|_| HttpError::BadChunk)?;
        let size = usize::from_str_radix(size_text.trim(), 16).map_err(|_| HttpError::BadChunk)?;
        pos += line_end + 2;
        if size == 0 {
            // Trailer section: header lines until an empty line.
            loop {
                let Some(end) = find_crlf(&buf[pos..]) else {
                    return Ok(None);
                };
                pos += end + 2;
                if end == 0 {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if body.len().saturating_add(size) > max_body {
            return Err(HttpError::BadChunk);
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Err(HttpError::BadChunk);
        }
        pos += size + 2;
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// Request methods: a stream that starts with one of these (and a space) is an HTTP client's.
const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"HEAD ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

/// Whether bytes start like an HTTP/1.x request line: a method and a space.
pub fn starts_request(b: &[u8]) -> bool {
    METHODS.iter().any(|m| b.starts_with(m))
}

/// Whether bytes are still too short to say, but could become a request line.
pub fn could_start_request(b: &[u8]) -> bool {
    METHODS.iter().any(|m| m.starts_with(b))
}

/// Whether bytes start like an HTTP/1.x status line.
pub fn starts_response(b: &[u8]) -> bool {
    b.starts_with(b"HTTP/1.")
}

/// Whether bytes are still too short to say, but could become a status line.
pub fn could_start_response(b: &[u8]) -> bool {
    b"HTTP/1.".starts_with(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &[u8] = b"GET /socket.io/?EIO=4&transport=polling&t=N8hyd6w HTTP/1.1\r\nHost: localhost:5000\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n";

    #[test]
    fn parses_a_polling_request() {
        let head = parse_request(REQ, 64, 8192).unwrap().unwrap();
        assert_eq!(head.method, "GET");
        assert_eq!(head.path(), "/socket.io/");
        assert_eq!(head.query("EIO").as_deref(), Some("4"));
        assert_eq!(head.query("transport").as_deref(), Some("polling"));
        assert_eq!(head.query("sid"), None);
        assert_eq!(head.header("host"), Some("localhost:5000"));
        assert_eq!(head.head_len, REQ.len());
        assert_eq!(head.body_kind(), Ok(BodyKind::None));
        assert!(head.keep_alive());
    }

    #[test]
    fn every_prefix_is_incomplete() {
        for n in 0..REQ.len() {
            assert_eq!(parse_request(&REQ[..n], 64, 8192), Ok(None), "prefix {n}");
        }
    }

    #[test]
    fn limits_are_errors() {
        assert_eq!(parse_request(REQ, 2, 8192), Err(HttpError::TooManyHeaders));
        assert_eq!(parse_request(REQ, 64, 40), Err(HttpError::HeadTooLarge));
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nX: aaaaaaaaaaaaaaa", 64, 20),
            Err(HttpError::HeadTooLarge)
        );
        assert!(matches!(
            parse_request(b"\x16\x03\x01\x02\x00\x01\x00\x01", 64, 8192),
            Err(HttpError::Malformed(_))
        ));
    }

    #[test]
    fn response_framing() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 16)
            .unwrap()
            .unwrap();
        assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
        assert_eq!(r.body_kind(Some("GET")), Ok(BodyKind::Length(5)));
        assert_eq!(r.body_kind(Some("HEAD")), Ok(BodyKind::None));
        let r = parse_response(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", 16)
            .unwrap()
            .unwrap();
        assert_eq!(r.body_kind(Some("GET")), Ok(BodyKind::None));
        let r = parse_response(b"HTTP/1.0 200 OK\r\n\r\n", 16)
            .unwrap()
            .unwrap();
        assert_eq!(r.body_kind(Some("GET")), Ok(BodyKind::UntilClose));
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", 16)
            .unwrap()
            .unwrap();
        assert_eq!(r.body_kind(None), Err(HttpError::BadContentLength));
    }

    #[test]
    fn chunked_bodies() {
        let body = b"4\r\nWiki\r\n6;ext=1\r\npedia \r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let (data, used) = decode_chunked(body, 1000).unwrap().unwrap();
        assert_eq!(data, b"Wikipedia ");
        assert_eq!(&body[used..], b"NEXT");
        for n in 0..used {
            assert_eq!(decode_chunked(&body[..n], 1000), Ok(None), "prefix {n}");
        }
        assert_eq!(decode_chunked(b"zz\r\n", 1000), Err(HttpError::BadChunk));
        assert_eq!(
            decode_chunked(b"4\r\nWikiXX", 1000),
            Err(HttpError::BadChunk)
        );
        assert_eq!(decode_chunked(b"ffff\r\n", 10), Err(HttpError::BadChunk));
    }

    #[test]
    fn query_decoding() {
        assert_eq!(query_param("/x?a=1%2F2&b=c+d", "a").as_deref(), Some("1/2"));
        assert_eq!(query_param("/x?a=1%2F2&b=c+d", "b").as_deref(), Some("c d"));
        assert_eq!(query_param("/x?a=%", "a").as_deref(), Some("%"));
        assert_eq!(query_param("/x?a=%4", "a").as_deref(), Some("%4"));
        assert_eq!(query_param("/x", "a"), None);
    }
}
