//! One self-contained HTML page from the report model: inline CSS, no scripts, no external
//! resources, every piece of text escaped. The sequence diagram is an inline SVG drawn by
//! `diagram::svg`.

use super::model::{Block, Doc, Inline};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#222}\
code,pre{font-family:ui-monospace,monospace;font-size:.9em}\
pre{background:#f5f5f5;padding:.75rem;overflow-x:auto;border-radius:4px}\
code{background:#f0f0f0;padding:0 .2em;border-radius:3px}pre code{background:none;padding:0}\
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;vertical-align:top;text-align:left}\
th{background:#eee}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.5rem}\
figure.sequence{margin:1rem 0;overflow-x:auto}figure.sequence svg{max-width:none}\
figure.bytes{margin:1rem 0}figure.bytes figcaption{font-weight:600;margin-bottom:.3rem}\
.strip{display:flex;flex-wrap:wrap;gap:.25rem;align-items:stretch}\
.strip .f{display:flex;flex-direction:column;border-radius:4px;padding:.2rem .4rem;border:1px solid #0002}\
.strip .f code{background:none;font-size:1em;word-break:break-all}.strip .f small{font-size:.75em;color:#333}\
.f0{background:#ffe3c2}.f1{background:#d7ecff}.f2{background:#dff5d8}.f3{background:#f4dcf7}.f4{background:#fff6bf}.f5{background:#e6e6e6}\
figure.bytes table{font-size:.9em}details.chain summary{cursor:pointer;color:#555}\
@media print{figure.sequence svg{max-width:100%;height:auto}.strip .f{break-inside:avoid}}";

pub fn render(doc: &Doc) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(&format!("<title>{}</title>\n", esc(&doc.title)));
    out.push_str(&format!("<style>{STYLE}</style>\n</head>\n<body>\n"));
    out.push_str(&format!("<h1>{}</h1>\n", esc(&doc.title)));
    blocks(&mut out, &doc.intro);
    if !doc.sections.is_empty() {
        out.push_str("<h2>Contents</h2>\n<ol>\n");
        for s in &doc.sections {
            out.push_str(&format!(
                "<li><a href=\"#{}\">{}</a></li>\n",
                esc(&super::model::slug(&s.title)),
                esc(&s.title)
            ));
        }
        out.push_str("</ol>\n");
    }
    for s in &doc.sections {
        out.push_str(&format!(
            "<section id=\"{}\">\n<h2>{}</h2>\n",
            esc(&super::model::slug(&s.title)),
            esc(&s.title)
        ));
        blocks(&mut out, &s.blocks);
        out.push_str("</section>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn blocks(out: &mut String, blocks: &[Block]) {
    for block in blocks {
        match block {
            Block::Para(spans) => out.push_str(&format!("<p>{}</p>\n", inlines(spans))),
            Block::Heading(h) => out.push_str(&format!("<h3>{}</h3>\n", esc(h))),
            Block::Code { lang, text } => {
                let class = if lang.is_empty() {
                    String::new()
                } else {
                    format!(" class=\"language-{}\"", esc(lang))
                };
                out.push_str(&format!("<pre><code{class}>{}</code></pre>\n", esc(text)));
            }
            Block::Sequence {
                participants,
                steps,
            } => {
                out.push_str("<figure class=\"sequence\">\n");
                out.push_str(&super::diagram::svg(participants, steps));
                out.push_str("</figure>\n");
            }
            Block::Table { head, rows } => {
                out.push_str("<table>\n<thead><tr>");
                for h in head {
                    out.push_str(&format!("<th>{}</th>", esc(h)));
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for row in rows {
                    out.push_str("<tr>");
                    for cell in row {
                        out.push_str(&format!("<td>{}</td>", inlines(cell)));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody>\n</table>\n");
            }
            Block::Bytes { caption, fields } => {
                out.push_str(&format!(
                    "<figure class=\"bytes\">\n<figcaption>{}</figcaption>\n<div class=\"strip\">",
                    esc(caption)
                ));
                for (i, f) in fields.iter().enumerate() {
                    out.push_str(&format!(
                        "<span class=\"f f{}\" title=\"{}\"><code>{}</code><small>{}</small></span>",
                        i % 6,
                        esc(&f.meaning),
                        esc(&f.bytes),
                        esc(&f.label)
                    ));
                }
                out.push_str("</div>\n<table>\n<thead><tr><th>field</th><th>bytes</th><th>meaning</th></tr></thead>\n<tbody>\n");
                for (i, f) in fields.iter().enumerate() {
                    out.push_str(&format!(
                        "<tr><td class=\"f{}\">{}</td><td><code>{}</code></td><td>{}</td></tr>\n",
                        i % 6,
                        esc(&f.label),
                        esc(&f.bytes),
                        esc(&f.meaning)
                    ));
                }
                out.push_str("</tbody>\n</table>\n</figure>\n");
            }
            Block::List { ordered, items } => {
                let tag = if *ordered { "ol" } else { "ul" };
                // A chain of source links folds away (open, so it prints).
                let chain = *ordered
                    && items.len() > 3
                    && items
                        .iter()
                        .all(|i| i.iter().any(|s| matches!(s, Inline::Link { .. })));
                if chain {
                    out.push_str(&format!(
                        "<details open class=\"chain\"><summary>{} steps, in the order they run</summary>\n",
                        items.len()
                    ));
                }
                out.push_str(&format!("<{tag}>\n"));
                for item in items {
                    out.push_str(&format!("<li>{}</li>\n", inlines(item)));
                }
                out.push_str(&format!("</{tag}>\n"));
                if chain {
                    out.push_str("</details>\n");
                }
            }
        }
    }
}

fn inlines(spans: &[Inline]) -> String {
    let mut out = String::new();
    for span in spans {
        match span {
            Inline::Text(s) => out.push_str(&esc(s)),
            Inline::Code(s) => out.push_str(&format!("<code>{}</code>", esc(s))),
            Inline::Strong(s) => out.push_str(&format!("<strong>{}</strong>", esc(s))),
            Inline::Link { text, url } => {
                // Only web links and in-page anchors become links; anything else is shown.
                if url.starts_with("https://") || url.starts_with("http://") || url.starts_with('#')
                {
                    out.push_str(&format!("<a href=\"{}\">{}</a>", esc(url), esc(text)));
                } else {
                    out.push_str(&format!("{} ({})", esc(text), esc(url)));
                }
            }
        }
    }
    out
}

/// Escapes text for element content and double-quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
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
    fn everything_is_escaped_and_nothing_is_loaded() {
        let doc = Doc {
            title: "<script>".into(),
            intro: vec![
                para(vec![t("a & b"), link("x", "javascript:alert(1)")]),
                Block::Sequence {
                    participants: vec![
                        ("C1".into(), "Client <1>".into()),
                        ("S".into(), "Server".into()),
                    ],
                    steps: vec![super::super::diagram::Step::Arrow {
                        from: "C1".into(),
                        to: "S".into(),
                        label: "\"<b>\" & <script>alert(1)</script>".into(),
                    }],
                },
            ],
            sections: vec![],
        };
        let html = render(&doc);
        assert!(!html.contains("<script"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("a &amp; b"));
        assert!(!html.contains("href=\"javascript"));
        // The diagram is drawn, not left as Mermaid source, and its text is escaped.
        assert!(html.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(html.contains("Client &lt;1&gt;"));
        assert!(html.contains("&quot;&lt;b&gt;&quot; &amp; &lt;script&gt;"));
        assert!(!html.contains("mermaid"));
    }
}
