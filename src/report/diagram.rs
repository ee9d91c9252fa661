//! Drawings: a WebSocket frame header as RFC 6455 §5.2's bit diagram filled with the real
//! bits, and the observed exchange as a sequence diagram: Mermaid source for Markdown, an SVG
//! drawn here for the HTML page.

use crate::wire::ws_frame::{FrameHeader, LengthForm};

/// One field of the header: its label lines and its bits, most significant first.
struct Field {
    label: Vec<String>,
    bits: Vec<u8>,
}

fn bits_of(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
        .collect()
}

fn one_bit(label: &str, bit: u8) -> Field {
    Field {
        label: label.chars().map(String::from).collect(),
        bits: vec![bit],
    }
}

fn wide(label: &[&str], bits: Vec<u8>) -> Field {
    Field {
        label: label.iter().map(|s| s.to_string()).collect(),
        bits,
    }
}

/// The header of a frame drawn as the RFC's bit diagram (32 bits a row), each field labelled
/// and filled with the bits that were on the wire. `None` when `header` is not a whole header.
pub fn frame_bit_diagram(header: &[u8]) -> Option<String> {
    let h = FrameHeader::parse(header).ok().flatten()?;
    let all = bits_of(header.get(..h.header_len)?);
    let mut fields = vec![
        one_bit("FIN ", all[0]),
        one_bit("RSV1", all[1]),
        one_bit("RSV2", all[2]),
        one_bit("RSV3", all[3]),
        wide(&["opcode", "(4)"], all[4..8].to_vec()),
        one_bit("MASK", all[8]),
        wide(&["Payload len", "(7)"], all[9..16].to_vec()),
    ];
    let mut pos = 16;
    match h.length_form {
        LengthForm::Bits7 => {}
        LengthForm::Bits16 => {
            fields.push(wide(
                &["Extended payload length", "(16)"],
                all[16..32].to_vec(),
            ));
            pos = 32;
        }
        LengthForm::Bits64 => {
            fields.push(wide(
                &["Extended payload length", "(64)"],
                all[16..80].to_vec(),
            ));
            pos = 80;
        }
    }
    if h.mask.is_some() {
        fields.push(wide(&["Masking-key", "(32)"], all[pos..pos + 32].to_vec()));
    }
    Some(draw(fields))
}

fn draw(fields: Vec<Field>) -> String {
    // Split fields into rows of 32 bits; a field crossing a row edge continues below.
    let mut rows: Vec<Vec<Field>> = vec![Vec::new()];
    let mut used = 0;
    for f in fields {
        let mut bits = f.bits.as_slice();
        let mut label = f.label.clone();
        while !bits.is_empty() {
            if used == 32 {
                rows.push(Vec::new());
                used = 0;
            }
            let take = bits.len().min(32 - used);
            if let Some(row) = rows.last_mut() {
                row.push(Field {
                    label: label.clone(),
                    bits: bits[..take].to_vec(),
                });
            }
            used += take;
            bits = &bits[take..];
            if !bits.is_empty() {
                label = vec![
                    f.label.first().cloned().unwrap_or_default(),
                    "(continued)".into(),
                ];
            }
        }
    }
    let mut out = String::new();
    out.push_str(" 0                   1                   2                   3\n");
    out.push_str(" 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1\n");
    for (i, row) in rows.iter().enumerate() {
        let border: String = {
            let mut s = String::from("+");
            for f in row {
                s.push_str(&"-".repeat(2 * f.bits.len() - 1));
                s.push('+');
            }
            s
        };
        if i == 0 {
            out.push_str(&border);
            out.push('\n');
        }
        let lines = row.iter().map(|f| f.label.len()).max().unwrap_or(0);
        for l in 0..lines {
            out.push('|');
            for f in row {
                let w = 2 * f.bits.len() - 1;
                let text = f.label.get(l).map(String::as_str).unwrap_or("");
                out.push_str(&center(text, w));
                out.push('|');
            }
            out.push('\n');
        }
        out.push_str(&border);
        out.push('\n');
        out.push('|');
        for f in row {
            let bits: Vec<String> = f.bits.iter().map(|b| b.to_string()).collect();
            out.push_str(&bits.join(" "));
            out.push('|');
        }
        out.push('\n');
        out.push_str(&border);
        out.push('\n');
    }
    out
}

fn center(text: &str, width: usize) -> String {
    let text: String = text.chars().take(width).collect();
    let len = text.chars().count();
    let left = (width - len) / 2;
    format!(
        "{}{text}{}",
        " ".repeat(left),
        " ".repeat(width - len - left)
    )
}

/// Makes text safe inside a Mermaid message or note: characters that end a statement, start
/// an entity or a comment, or break quoting become Mermaid entity codes (`#59;` etc.).
pub fn mermaid_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '#' => out.push_str("#35;"),
            '&' => out.push_str("#amp;"),
            ';' => out.push_str("#59;"),
            '"' => out.push_str("#quot;"),
            '%' => out.push_str("#37;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// One line of a sequence diagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An arrow `from ->> to: label` (participant ids).
    Arrow {
        from: String,
        to: String,
        label: String,
    },
    /// A note over one or two participants.
    Note { over: String, text: String },
}

/// At most this many arrows; the rest is summarised in a note.
pub const MAX_ARROWS: usize = 40;

/// The Mermaid source: participants (id, name) in order, then the steps, capped.
pub fn sequence(participants: &[(String, String)], steps: &[Step]) -> String {
    let mut out = String::from("sequenceDiagram\n");
    for (id, name) in participants {
        out.push_str(&format!(
            "    participant {id} as {}\n",
            mermaid_escape(name)
        ));
    }
    let total = steps
        .iter()
        .filter(|s| matches!(s, Step::Arrow { .. }))
        .count();
    let mut arrows = 0;
    for step in steps {
        match step {
            Step::Arrow { from, to, label } => {
                if arrows == MAX_ARROWS {
                    let over = participants
                        .first()
                        .map(|(id, _)| id.as_str())
                        .unwrap_or("Server");
                    out.push_str(&format!(
                        "    Note over {over}: {} more messages not drawn (see the sections below)\n",
                        total - MAX_ARROWS
                    ));
                    break;
                }
                arrows += 1;
                out.push_str(&format!("    {from}->>{to}: {}\n", mermaid_escape(label)));
            }
            Step::Note { over, text } => {
                out.push_str(&format!("    Note over {over}: {}\n", mermaid_escape(text)));
            }
        }
    }
    out
}

/// Lane spacing, box size, row height of the SVG drawing, in pixels.
const LANE: usize = 340;
const BOX_W: usize = 180;
const BOX_H: usize = 34;
const ROW: usize = 30;
const MARGIN: usize = 20;
/// Characters of a label drawn (the whole label is the arrow's tooltip).
const LABEL_CHARS: usize = 44;

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn clipped(s: &str) -> String {
    if s.chars().count() <= LABEL_CHARS {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(LABEL_CHARS - 1).collect::<String>())
    }
}

/// The same diagram as [`sequence`], drawn as a self-contained SVG: a lane per participant,
/// an arrow per message (client to server and back in two colours, the full label as its
/// tooltip), notes across the lanes they are over. Capped like the Mermaid source.
pub fn svg(participants: &[(String, String)], steps: &[Step]) -> String {
    let lane_x = |id: &str| -> Option<usize> {
        participants
            .iter()
            .position(|(p, _)| p == id)
            .map(|i| MARGIN + BOX_W / 2 + i * LANE)
    };
    let width = MARGIN * 2 + BOX_W + LANE * participants.len().saturating_sub(1);
    // Rows: the steps drawn, and one note for what is left out.
    let total = steps
        .iter()
        .filter(|s| matches!(s, Step::Arrow { .. }))
        .count();
    let mut rows: Vec<Step> = Vec::new();
    let mut arrows = 0;
    for step in steps {
        if let Step::Arrow { .. } = step {
            if arrows == MAX_ARROWS {
                rows.push(Step::Note {
                    over: participants
                        .iter()
                        .map(|(id, _)| id.clone())
                        .collect::<Vec<_>>()
                        .join(","),
                    text: format!(
                        "{} more messages not drawn (see the sections below)",
                        total - MAX_ARROWS
                    ),
                });
                break;
            }
            arrows += 1;
        }
        rows.push(step.clone());
    }
    let top = MARGIN + BOX_H + ROW;
    let height = top + rows.len() * ROW + MARGIN;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"sequence diagram\" font-family=\"ui-monospace, monospace\" font-size=\"12\">\n\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"context-stroke\"/></marker></defs>\n"
    );
    for (id, name) in participants {
        let Some(x) = lane_x(id) else { continue };
        out.push_str(&format!(
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#999\" stroke-dasharray=\"4 4\"/>\n\
             <rect x=\"{}\" y=\"{MARGIN}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"4\" fill=\"#eef2f7\" stroke=\"#556\"/>\n\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>\n",
            MARGIN + BOX_H,
            height - MARGIN,
            x - BOX_W / 2,
            MARGIN + BOX_H / 2 + 4,
            // Bold monospace is wider than the arrows' labels: fitted to the box.
            xml(&clipped_note(name, BOX_W - 20))
        ));
    }
    for (i, step) in rows.iter().enumerate() {
        let y = top + i * ROW;
        match step {
            Step::Arrow { from, to, label } => {
                let (Some(x1), Some(x2)) = (lane_x(from), lane_x(to)) else {
                    continue;
                };
                // Messages from the server in green, to it in blue.
                let colour = if from == "S" { "#2a7d2a" } else { "#2456a6" };
                let mid = (x1 + x2) / 2;
                out.push_str(&format!(
                    "<g><title>{}</title><line x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"{colour}\" stroke-width=\"1.5\" marker-end=\"url(#arrow)\"/>\n\
                     <text x=\"{mid}\" y=\"{}\" text-anchor=\"middle\" fill=\"{colour}\">{}</text></g>\n",
                    xml(label),
                    y - 5,
                    xml(&clipped(label))
                ));
            }
            Step::Note { over, text } => {
                let xs: Vec<usize> = over.split(',').filter_map(|id| lane_x(id.trim())).collect();
                let (Some(&lo), Some(&hi)) = (xs.iter().min(), xs.iter().max()) else {
                    continue;
                };
                let (left, right) = (lo - BOX_W / 2 + 10, hi + BOX_W / 2 - 10);
                out.push_str(&format!(
                    "<g><title>{}</title><rect x=\"{left}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\" fill=\"#fff8d6\" stroke=\"#c9b458\"/>\n\
                     <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text></g>\n",
                    xml(text),
                    y - ROW / 2 + 3,
                    right - left,
                    ROW - 6,
                    (left + right) / 2,
                    y + 4,
                    xml(&clipped_note(text, right - left))
                ));
            }
        }
    }
    out.push_str("</svg>\n");
    out
}

/// A note's text cut to the width of its box (about 7 px a character).
fn clipped_note(s: &str, width: usize) -> String {
    let max = (width / 7).max(8);
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_rows(d: &str) -> Vec<String> {
        d.lines()
            .filter(|l| l.starts_with('|') && l.chars().all(|c| "|01 ".contains(c)))
            .map(|l| l.replace(['|', ' '], ""))
            .collect()
    }

    #[test]
    fn rfc6455_5_7_masked_hello() {
        // §5.7: a single-frame masked text message "Hello".
        let frame = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d];
        let d = frame_bit_diagram(&frame).unwrap();
        let rows = value_rows(&d);
        assert_eq!(
            rows,
            vec!["10000001100001010011011111111010", "0010000100111101"],
            "{d}"
        );
        // The key continues on the second row.
        assert!(d.contains("Masking-key"), "{d}");
        assert!(d.contains("(continued)"), "{d}");
        assert!(d.contains("|F|R|R|R|"), "{d}");
        assert!(d.contains("| opcode|") || d.contains("|opcode |"), "{d}");
        // Every line of the first row is 65 characters wide, like the RFC's.
        for l in d.lines().skip(2).take(8) {
            assert_eq!(l.chars().count(), 65, "{l:?}");
        }
    }

    #[test]
    fn rfc6455_5_7_unmasked_and_extended_lengths() {
        let d = frame_bit_diagram(&[0x81, 0x05]).unwrap();
        assert_eq!(value_rows(&d), vec!["1000000100000101"]);
        // 256 bytes binary: 16-bit extended length 0x0100.
        let d = frame_bit_diagram(&[0x82, 0x7e, 0x01, 0x00]).unwrap();
        assert_eq!(value_rows(&d), vec!["10000010011111100000000100000000"]);
        assert!(d.contains("Extended payload length"));
        // 64 KiB binary: 64-bit extended length 0x10000, spread over three rows.
        let d = frame_bit_diagram(&[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]).unwrap();
        let rows = value_rows(&d);
        assert_eq!(rows.len(), 3, "{d}");
        assert_eq!(rows[2], "0000000000000000");
        assert_eq!(rows[1], "00000000000000000000000000000001");
        // Not a whole header: no drawing, no panic.
        assert!(frame_bit_diagram(&[0x81]).is_none());
        assert!(frame_bit_diagram(&[0x81, 0xfe, 0x01]).is_none());
        assert!(frame_bit_diagram(&[]).is_none());
    }

    #[test]
    fn mermaid_labels_are_escaped_and_capped() {
        assert_eq!(
            mermaid_escape("42[\"a;b\"] #1 100%\n<x> a&b"),
            "42[#quot;a#59;b#quot;] #35;1 100#37; #lt;x#gt; a#amp;b"
        );
        let steps: Vec<Step> = (0..50)
            .map(|i| Step::Arrow {
                from: "C".into(),
                to: "S".into(),
                label: format!("m{i}"),
            })
            .collect();
        let m = sequence(&[("C".into(), "Client (conn 1)".into())], &steps);
        assert_eq!(m.matches("->>").count(), MAX_ARROWS);
        assert!(m.contains("10 more messages not drawn"));
        assert!(m.starts_with("sequenceDiagram\n    participant C as Client (conn 1)\n"));
    }
}
