//! GitHub-flavoured Markdown from the report model.

use super::model::{Block, Doc, Inline};

pub fn render(doc: &Doc) -> String {
    let mut out = format!("# {}\n\n", escape(&doc.title, false));
    blocks(&mut out, &doc.intro);
    if !doc.sections.is_empty() {
        out.push_str("## Contents\n\n");
        for s in &doc.sections {
            out.push_str(&format!(
                "- [{}](#{})\n",
                escape(&s.title, false),
                super::model::slug(&s.title)
            ));
        }
        out.push('\n');
    }
    for s in &doc.sections {
        out.push_str(&format!("## {}\n\n", escape(&s.title, false)));
        blocks(&mut out, &s.blocks);
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn blocks(out: &mut String, blocks: &[Block]) {
    for block in blocks {
        match block {
            Block::Para(spans) => {
                out.push_str(&inlines(spans, false));
                out.push_str("\n\n");
            }
            Block::Heading(h) => out.push_str(&format!("### {}\n\n", escape(h, false))),
            Block::Code { lang, text } => fence(out, lang, text),
            Block::Sequence {
                participants,
                steps,
            } => fence(
                out,
                "mermaid",
                &super::diagram::sequence(participants, steps),
            ),
            Block::Table { head, rows } => {
                let cells: Vec<String> = head.iter().map(|h| escape(h, true)).collect();
                out.push_str(&format!("| {} |\n", cells.join(" | ")));
                out.push_str(&format!("|{}\n", "---|".repeat(head.len().max(1))));
                for row in rows {
                    let cells: Vec<String> = row.iter().map(|c| inlines(c, true)).collect();
                    out.push_str(&format!("| {} |\n", cells.join(" | ")));
                }
                out.push('\n');
            }
            Block::Bytes { caption, fields } => {
                out.push_str(&format!("{}\n\n", escape(caption, false)));
                out.push_str("| field | bytes | meaning |\n|---|---|---|\n");
                for f in fields {
                    out.push_str(&format!(
                        "| {} | `{}` | {} |\n",
                        escape(&f.label, true),
                        f.bytes.replace('`', "'").replace('|', "\\|"),
                        escape(&f.meaning, true)
                    ));
                }
                out.push('\n');
            }
            Block::List { ordered, items } => {
                for (i, item) in items.iter().enumerate() {
                    let marker = if *ordered {
                        format!("{}.", i + 1)
                    } else {
                        "-".to_string()
                    };
                    out.push_str(&format!("{marker} {}\n", inlines(item, false)));
                }
                out.push('\n');
            }
        }
    }
}

/// A fence longer than any run of backticks inside the text.
fn fence(out: &mut String, lang: &str, text: &str) {
    let longest = longest_run(text, '`');
    let f = "`".repeat(longest.max(2) + 1);
    out.push_str(&format!("{f}{lang}\n{text}"));
    if !text.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("{f}\n\n"));
}

fn longest_run(s: &str, ch: char) -> usize {
    let (mut best, mut cur) = (0, 0);
    for c in s.chars() {
        cur = if c == ch { cur + 1 } else { 0 };
        best = best.max(cur);
    }
    best
}

fn inlines(spans: &[Inline], in_table: bool) -> String {
    let mut out = String::new();
    for span in spans {
        match span {
            Inline::Text(s) => out.push_str(&escape(s, in_table)),
            Inline::Strong(s) => out.push_str(&format!("**{}**", escape(s, in_table))),
            Inline::Code(s) => out.push_str(&inline_code(s, in_table)),
            Inline::Link { text, url } => {
                let url = url.replace(' ', "%20").replace(')', "%29");
                out.push_str(&format!("[{}]({url})", escape(text, in_table)));
            }
        }
    }
    out
}

fn inline_code(s: &str, in_table: bool) -> String {
    let s = s.replace('\n', " ");
    if s.is_empty() {
        return String::new();
    }
    // Inside a table a pipe must be escaped even in code (GFM table rule).
    let s = if in_table { s.replace('|', "\\|") } else { s };
    let ticks = "`".repeat(longest_run(&s, '`') + 1);
    if s.starts_with('`') || s.ends_with('`') || s.is_empty() {
        format!("{ticks} {s} {ticks}")
    } else {
        format!("{ticks}{s}{ticks}")
    }
}

/// Escapes the characters that would start Markdown syntax in running text.
pub fn escape(s: &str, in_table: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    for (i, &ch) in chars.iter().enumerate() {
        // `_` inside a word never starts emphasis in GFM, `#` only matters at a line start:
        // leaving them alone keeps file names and `#1` readable in the raw Markdown.
        let word = |j: Option<usize>| {
            j.and_then(|j| chars.get(j))
                .is_some_and(|c| c.is_alphanumeric())
        };
        let intraword = word(i.checked_sub(1)) && word(Some(i + 1));
        match ch {
            '_' if intraword => out.push(ch),
            '#' if i > 0 || in_table => out.push(ch),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' => {
                out.push('\\');
                out.push(ch);
            }
            '|' if in_table => out.push_str("\\|"),
            '\n' => out.push(' '),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::model::*;
    use super::*;

    #[test]
    fn escapes_and_fences() {
        let doc = Doc {
            title: "T".into(),
            intro: vec![
                para(vec![
                    t("#a*b_c _d_ <x> #1"),
                    c("x`y"),
                    link("l", "https://e.test/a b"),
                ]),
                code("text", "has ``` inside"),
                table(&["k", "v"], vec![vec![vec![t("a|b")], vec![c("c|d")]]]),
            ],
            sections: vec![],
        };
        let md = render(&doc);
        assert!(
            md.contains("\\#a\\*b_c \\_d\\_ \\<x\\> #1``x`y``[l](https://e.test/a%20b)"),
            "{md}"
        );
        assert!(md.contains("````text\nhas ``` inside\n````"), "{md}");
        assert!(md.contains("| a\\|b | `c\\|d` |"), "{md}");
    }
}
