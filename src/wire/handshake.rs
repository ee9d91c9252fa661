//! The WebSocket opening handshake (RFC 6455 §4): checks on the client's upgrade request, the
//! Sec-WebSocket-Accept computation, and permessage-deflate offers (RFC 7692 §7.1).

use std::fmt;

use sha1::{Digest, Sha1};

use super::http::{header, header_has_token};

/// The GUID every server appends to the client's key (RFC 6455 §1.3).
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Why a request is not a valid opening handshake. Checked in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// RFC 6455 §4.2.1 item 1: the method MUST be GET, HTTP/1.1 or higher.
    NotGetHttp11,
    /// §4.2.1 item 3: an `Upgrade` header containing "websocket".
    MissingUpgradeWebsocket,
    /// §4.2.1 item 4: a `Connection` header containing the token "Upgrade".
    MissingConnectionUpgrade,
    /// §4.2.1 item 5: `Sec-WebSocket-Key`, base64 of 16 bytes.
    BadSecWebSocketKey,
    /// §4.2.1 item 6: `Sec-WebSocket-Version` MUST be 13.
    UnsupportedVersion,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandshakeError::NotGetHttp11 => {
                "the opening handshake must be an HTTP/1.1 GET (RFC 6455 §4.2.1 item 1)"
            }
            HandshakeError::MissingUpgradeWebsocket => {
                "missing `Upgrade: websocket` (RFC 6455 §4.2.1 item 3)"
            }
            HandshakeError::MissingConnectionUpgrade => {
                "missing `Connection: Upgrade` (RFC 6455 §4.2.1 item 4)"
            }
            HandshakeError::BadSecWebSocketKey => {
                "Sec-WebSocket-Key must be base64 of 16 bytes (RFC 6455 §4.2.1 item 5)"
            }
            HandshakeError::UnsupportedVersion => {
                "Sec-WebSocket-Version must be 13 (RFC 6455 §4.2.1 item 6)"
            }
        })
    }
}

impl std::error::Error for HandshakeError {}

/// Is this request asking for a WebSocket at all (`Upgrade: websocket`)?
pub fn is_upgrade_request(headers: &[(String, String)]) -> bool {
    header_has_token(headers, "upgrade", "websocket")
}

/// Checks a client's opening handshake and returns its key.
pub fn check_request(
    method: &str,
    version: u8,
    headers: &[(String, String)],
) -> Result<String, HandshakeError> {
    if method != "GET" || version < 1 {
        return Err(HandshakeError::NotGetHttp11);
    }
    if !is_upgrade_request(headers) {
        return Err(HandshakeError::MissingUpgradeWebsocket);
    }
    if !header_has_token(headers, "connection", "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    let key = header(headers, "sec-websocket-key").ok_or(HandshakeError::BadSecWebSocketKey)?;
    use base64::Engine as _;
    match base64::engine::general_purpose::STANDARD.decode(key) {
        Ok(raw) if raw.len() == 16 => {}
        _ => return Err(HandshakeError::BadSecWebSocketKey),
    }
    if header(headers, "sec-websocket-version") != Some("13") {
        return Err(HandshakeError::UnsupportedVersion);
    }
    Ok(key.to_string())
}

/// The accept value worked through: `base64(SHA-1(key + GUID))` (RFC 6455 §4.2.2 item 5.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptComputation {
    pub key: String,
    /// Hex of the 20-byte SHA-1 digest of key + GUID.
    pub sha1_hex: String,
    pub accept: String,
}

pub fn compute_accept(key: &str) -> AcceptComputation {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    let digest = sha.finalize();
    use base64::Engine as _;
    AcceptComputation {
        key: key.to_string(),
        sha1_hex: super::hex(&digest),
        accept: base64::engine::general_purpose::STANDARD.encode(digest),
    }
}

/// Negotiated permessage-deflate parameters (RFC 7692 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeflateParams {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    pub server_max_window_bits: Option<u8>,
    pub client_max_window_bits: Option<u8>,
}

/// Extension offers or responses, as (name, [(param, value)]) in header order.
pub fn parse_extensions(headers: &[(String, String)]) -> Vec<(String, Vec<(String, String)>)> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-extensions"))
        .flat_map(|(_, v)| v.split(','))
        .filter_map(|ext| {
            let mut parts = ext.split(';').map(str::trim);
            let name = parts.next().filter(|n| !n.is_empty())?.to_ascii_lowercase();
            let params = parts
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (
                        k.trim().to_ascii_lowercase(),
                        v.trim().trim_matches('"').to_string(),
                    )
                })
                .collect();
            Some((name, params))
        })
        .collect()
}

/// The permessage-deflate parameters a server's 101 response agreed to, if any.
pub fn accepted_deflate(response_headers: &[(String, String)]) -> Option<DeflateParams> {
    let (_, params) = parse_extensions(response_headers)
        .into_iter()
        .find(|(n, _)| n == "permessage-deflate")?;
    let mut d = DeflateParams::default();
    for (k, v) in params {
        match k.as_str() {
            "server_no_context_takeover" => d.server_no_context_takeover = true,
            "client_no_context_takeover" => d.client_no_context_takeover = true,
            "server_max_window_bits" => d.server_max_window_bits = v.parse().ok(),
            "client_max_window_bits" => d.client_max_window_bits = v.parse().ok(),
            _ => {}
        }
    }
    Some(d)
}

/// A server's answer to the client's permessage-deflate offers, the way wsproto (under
/// simple-websocket, so Flask-SocketIO's threading mode) answers them: the value of its
/// `Sec-WebSocket-Extensions` header, and what it agreed to.
///
/// wsproto accepts any offer whose window sizes are 9 to 15 and echoes what was asked: each
/// `*_no_context_takeover`, and each `*_max_window_bits` with its value (15 for a bare
/// `client_max_window_bits`, which only says the client could take one; RFC 7692 §7.1.2.2).
/// Later offers overwrite earlier ones; a `*_no_context_takeover` once seen stays.
pub fn answer_deflate_offer(
    request_headers: &[(String, String)],
) -> Option<(String, DeflateParams)> {
    let mut answer = None;
    let mut agreed = DeflateParams::default();
    for (name, params) in parse_extensions(request_headers) {
        if name != "permessage-deflate" {
            continue;
        }
        let (mut client_bits, mut server_bits) = (None, None);
        let mut bad = false;
        for (k, v) in &params {
            // wsproto matches parameter names by prefix.
            if k.starts_with("client_no_context_takeover") {
                agreed.client_no_context_takeover = true;
            } else if k.starts_with("server_no_context_takeover") {
                agreed.server_no_context_takeover = true;
            } else if k.starts_with("client_max_window_bits") {
                client_bits = Some(if v.is_empty() {
                    agreed.client_max_window_bits.unwrap_or(15)
                } else {
                    v.parse::<u8>().unwrap_or(0)
                });
            } else if k.starts_with("server_max_window_bits") {
                server_bits = Some(if v.is_empty() {
                    agreed.server_max_window_bits.unwrap_or(15)
                } else {
                    v.parse::<u8>().unwrap_or(0)
                });
            }
        }
        let mut parts = Vec::new();
        if agreed.client_no_context_takeover {
            parts.push("client_no_context_takeover".to_string());
        }
        if agreed.server_no_context_takeover {
            parts.push("server_no_context_takeover".to_string());
        }
        for (label, bits, slot) in [
            (
                "client_max_window_bits",
                client_bits,
                &mut agreed.client_max_window_bits,
            ),
            (
                "server_max_window_bits",
                server_bits,
                &mut agreed.server_max_window_bits,
            ),
        ] {
            if let Some(b) = bits {
                if !(9..=15).contains(&b) {
                    bad = true;
                    break;
                }
                parts.push(format!("{label}={b}"));
                *slot = Some(b);
            }
        }
        if bad {
            continue;
        }
        answer = Some(if parts.is_empty() {
            "permessage-deflate".to_string()
        } else {
            format!("permessage-deflate; {}", parts.join("; "))
        });
    }
    answer.map(|a| (a, agreed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn rfc_example_accept() {
        // RFC 6455 §1.3's worked example.
        let c = compute_accept("dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(c.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(c.sha1_hex, "b37a4f2cc0624f1690f64606cf385945b2bec4ea");
        // tungstenite's own derivation agrees.
        assert_eq!(
            tokio_tungstenite::tungstenite::handshake::derive_accept_key(
                b"dGhlIHNhbXBsZSBub25jZQ=="
            ),
            c.accept
        );
    }

    #[test]
    fn request_checks_in_order() {
        let good = h(&[
            ("Upgrade", "websocket"),
            ("Connection", "keep-alive, Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
        ]);
        assert_eq!(
            check_request("GET", 1, &good).as_deref(),
            Ok("dGhlIHNhbXBsZSBub25jZQ==")
        );
        assert_eq!(
            check_request("POST", 1, &good),
            Err(HandshakeError::NotGetHttp11)
        );
        let mut bad = good.clone();
        bad[3].1 = "8".into();
        assert_eq!(
            check_request("GET", 1, &bad),
            Err(HandshakeError::UnsupportedVersion)
        );
        let mut bad = good.clone();
        bad[2].1 = "c2hvcnQ=".into();
        assert_eq!(
            check_request("GET", 1, &bad),
            Err(HandshakeError::BadSecWebSocketKey)
        );
        assert_eq!(
            check_request("GET", 1, &good[1..]),
            Err(HandshakeError::MissingUpgradeWebsocket)
        );
    }

    #[test]
    fn extensions() {
        let offer = h(&[(
            "Sec-WebSocket-Extensions",
            "permessage-deflate; client_max_window_bits, x-foo",
        )]);
        let exts = parse_extensions(&offer);
        assert_eq!(exts.len(), 2);
        assert_eq!(exts[0].0, "permessage-deflate");
        assert_eq!(exts[0].1[0].0, "client_max_window_bits");
        let resp = h(&[(
            "Sec-WebSocket-Extensions",
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=10",
        )]);
        let d = accepted_deflate(&resp).unwrap();
        assert!(d.server_no_context_takeover);
        assert!(!d.client_no_context_takeover);
        assert_eq!(d.client_max_window_bits, Some(10));
        assert_eq!(accepted_deflate(&[]), None);
    }

    #[test]
    fn deflate_offers_answered_as_wsproto_does() {
        let answer = |offer: &str| {
            answer_deflate_offer(&h(&[("Sec-WebSocket-Extensions", offer)])).map(|(a, _)| a)
        };
        // What browsers and Node's ws offer.
        assert_eq!(
            answer("permessage-deflate; client_max_window_bits").as_deref(),
            Some("permessage-deflate; client_max_window_bits=15")
        );
        assert_eq!(
            answer("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
                .as_deref(),
            Some("permessage-deflate; client_no_context_takeover; server_no_context_takeover")
        );
        assert_eq!(
            answer("permessage-deflate; server_max_window_bits=10").as_deref(),
            Some("permessage-deflate; server_max_window_bits=10")
        );
        assert_eq!(
            answer("permessage-deflate").as_deref(),
            Some("permessage-deflate")
        );
        assert_eq!(answer("permessage-deflate; server_max_window_bits=8"), None);
        assert_eq!(answer("x-webkit-deflate-frame"), None);
        let (_, agreed) = answer_deflate_offer(&h(&[(
            "Sec-WebSocket-Extensions",
            "permessage-deflate; server_max_window_bits=10; client_no_context_takeover",
        )]))
        .unwrap();
        assert_eq!(agreed.server_max_window_bits, Some(10));
        assert!(agreed.client_no_context_takeover);
    }
}
