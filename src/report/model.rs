//! The report as data: sections of blocks of inline spans. Markdown and HTML are both rendered
//! from this one model, and the "how it works" snippets of `docs/stages/` are parsed into it.

/// A span of text inside a paragraph, list item or table cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    Text(String),
    Code(String),
    Strong(String),
    Link { text: String, url: String },
}

/// One block of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Para(Vec<Inline>),
    /// A fenced code block; `lang` may be empty.
    Code {
        lang: String,
        text: String,
    },
    /// A sequence diagram: Mermaid source in Markdown (GitHub draws it), an inline SVG that
    /// dispel draws itself in HTML (no script, works offline).
    Sequence {
        /// (id, name) of each lane, left to right.
        participants: Vec<(String, String)>,
        steps: Vec<super::diagram::Step>,
    },
    Table {
        head: Vec<String>,
        rows: Vec<Vec<Vec<Inline>>>,
    },
    List {
        ordered: bool,
        items: Vec<Vec<Inline>>,
    },
    /// A sub-heading inside a section.
    Heading(String),
    /// Real bytes, cut into their fields, each labelled: a strip of coloured boxes in HTML,
    /// a table in Markdown.
    Bytes {
        caption: String,
        fields: Vec<ByteField>,
    },
}

/// One field of a [`Block::Bytes`]: its bytes as shown (hex pairs, or text), a short label,
/// and what the value means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteField {
    pub label: String,
    pub bytes: String,
    pub meaning: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub title: String,
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    pub title: String,
    pub intro: Vec<Block>,
    pub sections: Vec<Section>,
}

/// The anchor GitHub gives a heading: lower case, punctuation other than `-` and `_` dropped,
/// spaces to hyphens. The HTML page uses the same ids so links work in both.
pub fn slug(title: &str) -> String {
    title
        .chars()
        .filter_map(|ch| {
            if ch == ' ' {
                Some('-')
            } else if ch.is_alphanumeric() || ch == '-' || ch == '_' {
                Some(ch.to_ascii_lowercase())
            } else {
                None
            }
        })
        .collect()
}

// Small constructors keep the section builders readable.
pub fn t(s: impl Into<String>) -> Inline {
    Inline::Text(s.into())
}
pub fn c(s: impl Into<String>) -> Inline {
    Inline::Code(s.into())
}
pub fn b(s: impl Into<String>) -> Inline {
    Inline::Strong(s.into())
}
pub fn link(text: impl Into<String>, url: impl Into<String>) -> Inline {
    Inline::Link {
        text: text.into(),
        url: url.into(),
    }
}
pub fn para(spans: Vec<Inline>) -> Block {
    Block::Para(spans)
}
pub fn text_para(s: impl Into<String>) -> Block {
    Block::Para(vec![t(s)])
}
pub fn code(lang: &str, text: impl Into<String>) -> Block {
    Block::Code {
        lang: lang.to_string(),
        text: text.into(),
    }
}
pub fn table(head: &[&str], rows: Vec<Vec<Vec<Inline>>>) -> Block {
    Block::Table {
        head: head.iter().map(|h| h.to_string()).collect(),
        rows,
    }
}

/// Parses the Markdown subset the stage pages use for their "how it works" snippets:
/// paragraphs, `-` and `1.` lists (one line per item), ``` fences, inline code, `**strong**`
/// and `[text](url)` links. Anything else is kept as text.
pub fn parse_markdown(src: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut para: Vec<&str> = Vec::new();
    let mut list: Option<(bool, Vec<Vec<Inline>>)> = None;
    let mut lines = src.lines();
    let flush_para = |para: &mut Vec<&str>, blocks: &mut Vec<Block>| {
        if !para.is_empty() {
            blocks.push(Block::Para(parse_inline(&para.join(" "))));
            para.clear();
        }
    };
    let flush_list = |list: &mut Option<(bool, Vec<Vec<Inline>>)>, blocks: &mut Vec<Block>| {
        if let Some((ordered, items)) = list.take() {
            blocks.push(Block::List { ordered, items });
        }
    };
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if let Some(lang) = trimmed.strip_prefix("```") {
            flush_para(&mut para, &mut blocks);
            flush_list(&mut list, &mut blocks);
            let mut text = String::new();
            for l in lines.by_ref() {
                if l.trim_start().starts_with("```") {
                    break;
                }
                text.push_str(l);
                text.push('\n');
            }
            blocks.push(code(lang.trim(), text));
        } else if trimmed.is_empty() {
            flush_para(&mut para, &mut blocks);
            flush_list(&mut list, &mut blocks);
        } else if let Some((ordered, item)) = list_item(trimmed) {
            flush_para(&mut para, &mut blocks);
            match &mut list {
                Some((o, items)) if *o == ordered => items.push(parse_inline(item)),
                _ => {
                    flush_list(&mut list, &mut blocks);
                    list = Some((ordered, vec![parse_inline(item)]));
                }
            }
        } else if let (Some((_, items)), true) = (&mut list, line.starts_with("  ")) {
            // A continuation line of the last list item.
            if let Some(last) = items.last_mut() {
                last.push(t(" "));
                last.extend(parse_inline(trimmed));
            }
        } else {
            flush_list(&mut list, &mut blocks);
            para.push(trimmed);
        }
    }
    flush_para(&mut para, &mut blocks);
    flush_list(&mut list, &mut blocks);
    blocks
}

fn list_item(line: &str) -> Option<(bool, &str)> {
    if let Some(rest) = line.strip_prefix("- ") {
        return Some((false, rest));
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 {
        if let Some(rest) = line[digits..].strip_prefix(". ") {
            return Some((true, rest));
        }
    }
    None
}

/// Inline code, strong, links and backslash escapes; everything else is text.
pub fn parse_inline(s: &str) -> Vec<Inline> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    let push_text = |text: &mut String, out: &mut Vec<Inline>| {
        if !text.is_empty() {
            out.push(Inline::Text(std::mem::take(text)));
        }
    };
    while let Some(ch) = rest.chars().next() {
        if ch == '\\' {
            let mut it = rest.chars();
            it.next();
            if let Some(next) = it.next().filter(|n| n.is_ascii_punctuation()) {
                text.push(next);
                rest = &rest[1 + next.len_utf8()..];
                continue;
            }
        } else if ch == '`' {
            let ticks = rest.bytes().take_while(|&b| b == b'`').count();
            let fence = &rest[..ticks];
            if let Some(end) = rest[ticks..].find(fence) {
                push_text(&mut text, &mut out);
                let inner = &rest[ticks..ticks + end];
                let inner = if inner.starts_with(' ') && inner.ends_with(' ') && inner.len() > 1 {
                    &inner[1..inner.len() - 1]
                } else {
                    inner
                };
                out.push(Inline::Code(inner.to_string()));
                rest = &rest[2 * ticks + end..];
                continue;
            }
        } else if let Some(after) = rest.strip_prefix("**") {
            if let Some(end) = after.find("**") {
                push_text(&mut text, &mut out);
                out.push(Inline::Strong(after[..end].to_string()));
                rest = &after[end + 2..];
                continue;
            }
        } else if ch == '[' {
            if let Some(close) = rest.find("](") {
                if let Some(end) = rest[close + 2..].find(')') {
                    push_text(&mut text, &mut out);
                    out.push(Inline::Link {
                        text: rest[1..close].to_string(),
                        url: rest[close + 2..close + 2 + end].to_string(),
                    });
                    rest = &rest[close + 3 + end..];
                    continue;
                }
            }
        }
        text.push(ch);
        rest = &rest[ch.len_utf8()..];
    }
    push_text(&mut text, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_subset_round_trips_into_blocks() {
        let blocks = parse_markdown(
            "A `42` packet is **two** layers, see [RFC](https://x.test/a).\nSecond line.\n\n- one\n- two\n  more\n\n1. first\n\n```text\nGET / HTTP/1.1\n```\n",
        );
        assert_eq!(blocks.len(), 4);
        assert_eq!(
            blocks[0],
            para(vec![
                t("A "),
                c("42"),
                t(" packet is "),
                b("two"),
                t(" layers, see "),
                link("RFC", "https://x.test/a"),
                t(". Second line.")
            ])
        );
        assert_eq!(
            blocks[1],
            Block::List {
                ordered: false,
                items: vec![vec![t("one")], vec![t("two"), t(" "), t("more")]]
            }
        );
        assert!(matches!(&blocks[2], Block::List { ordered: true, .. }));
        assert_eq!(blocks[3], code("text", "GET / HTTP/1.1\n"));
        // Unclosed markers stay text; escapes are decoded.
        assert_eq!(parse_inline("a `b **c [d \\_e"), vec![t("a `b **c [d _e")]);
    }
}
