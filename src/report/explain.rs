//! The "how it works" text of each stage. It lives in `docs/stages/*.md`, between
//! `<!-- how:STAGE -->` and `<!-- /how -->` markers, and is compiled in from there, so the
//! stage pages and the report never disagree.

use super::model::{parse_markdown, Block};
use crate::trace::Stage;

/// The stage pages, by file name.
pub const PAGES: &[(&str, &str)] = &[
    (
        "tcp-accept.md",
        include_str!("../../docs/stages/tcp-accept.md"),
    ),
    ("http.md", include_str!("../../docs/stages/http.md")),
    (
        "ws-handshake.md",
        include_str!("../../docs/stages/ws-handshake.md"),
    ),
    ("ws-frame.md", include_str!("../../docs/stages/ws-frame.md")),
    (
        "ws-message.md",
        include_str!("../../docs/stages/ws-message.md"),
    ),
    ("eio.md", include_str!("../../docs/stages/eio.md")),
    ("sio.md", include_str!("../../docs/stages/sio.md")),
    (
        "dispatch-broadcast.md",
        include_str!("../../docs/stages/dispatch-broadcast.md"),
    ),
    ("close.md", include_str!("../../docs/stages/close.md")),
    ("mq.md", include_str!("../../docs/stages/mq.md")),
];

/// The page that explains a stage.
pub fn page(stage: Stage) -> &'static str {
    match stage {
        Stage::TcpAccept => "tcp-accept.md",
        Stage::HttpRequest | Stage::HttpResponse => "http.md",
        Stage::WsHandshake => "ws-handshake.md",
        Stage::WsFrame => "ws-frame.md",
        Stage::WsMessage => "ws-message.md",
        Stage::EioPacket | Stage::EioUpgrade => "eio.md",
        Stage::SioPacket => "sio.md",
        Stage::SioDispatch | Stage::SioBroadcast | Stage::SioEmit | Stage::SioRoom => {
            "dispatch-broadcast.md"
        }
        Stage::MqPublish | Stage::MqMessage => "mq.md",
        Stage::WsClose
        | Stage::TcpClose
        | Stage::TcpData
        | Stage::Error
        | Stage::Diagnosis
        | Stage::App => "close.md",
    }
}

/// The raw Markdown snippet for a stage, if its page has one.
pub fn snippet(stage: Stage) -> Option<&'static str> {
    let name = page(stage);
    let text = PAGES.iter().find(|(n, _)| *n == name)?.1;
    let open = format!("<!-- how:{} -->", stage.as_str());
    let start = text.find(&open)? + open.len();
    let end = text[start..].find("<!-- /how -->")? + start;
    Some(text[start..end].trim())
}

/// The snippet parsed into report blocks.
pub fn how(stage: Stage) -> Vec<Block> {
    snippet(stage).map(parse_markdown).unwrap_or_default()
}

/// The stages the report explains, in the order a connection lives.
pub const ORDER: &[Stage] = Stage::LIFECYCLE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reported_stage_has_its_explanation() {
        for &stage in ORDER {
            let s = snippet(stage).unwrap_or_else(|| panic!("no how:{stage} in {}", page(stage)));
            assert!(s.len() > 100, "{stage}: explanation too short");
            assert!(
                s.contains("RFC") || s.contains("protocol") || s.contains("Protocol"),
                "{stage}: cite the spec"
            );
            assert!(!how(stage).is_empty());
        }
    }
}
