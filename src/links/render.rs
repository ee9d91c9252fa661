//! Text, JSON and Markdown output of `dispel links`.

use std::io::Write;

use owo_colors::{OwoColorize, Style};
use serde_json::{json, Map, Value};

use super::{installed_path, Installed, Section, StepLink, StepStatus};

/// How `dispel links` prints the chains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Md,
}

pub fn print(
    sections: &[Section],
    installed: Option<&Installed>,
    format: Format,
    color: bool,
) -> Result<(), crate::Error> {
    let text = match format {
        Format::Text => text(sections, installed, color),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&json_value(sections))?;
            s.push('\n');
            s
        }
        Format::Md => markdown(sections, installed),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// The JSON array: `[{stage, title, steps: [{package, ..., url}]}]`.
pub fn json_value(sections: &[Section]) -> Value {
    Value::Array(
        sections
            .iter()
            .map(|s| {
                json!({
                    "stage": s.name,
                    "title": s.title,
                    "steps": s.links.iter().map(step_json).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn step_json(l: &StepLink) -> Value {
    let s = &l.step;
    let mut m = Map::new();
    m.insert("step_id".into(), s.step_id.clone().into());
    m.insert("package".into(), s.package.clone().into());
    m.insert("version".into(), s.version.clone().into());
    m.insert("repo".into(), s.repo.clone().into());
    m.insert("tag".into(), s.tag.clone().into());
    m.insert("path".into(), s.path.clone().into());
    m.insert("line_start".into(), s.line_start.into());
    m.insert("line_end".into(), s.line_end.into());
    m.insert("symbol".into(), s.symbol.clone().into());
    m.insert("anchor".into(), s.anchor.clone().into());
    m.insert("what".into(), s.what.clone().into());
    let url = if l.url.is_empty() {
        Value::Null
    } else {
        l.url.clone().into()
    };
    m.insert("url".into(), url);
    if let Some(p) = l.phase {
        m.insert("phase".into(), p.into());
    }
    match &l.status {
        None => {}
        Some(StepStatus::Same) => {
            m.insert("status".into(), "same".into());
        }
        Some(StepStatus::Builtin) => {
            m.insert("status".into(), "builtin".into());
        }
        Some(StepStatus::Relocated {
            from_start,
            from_end,
        }) => {
            m.insert("status".into(), "relocated".into());
            m.insert("moved_from".into(), json!([from_start, from_end]));
        }
        Some(StepStatus::Function {
            from_start,
            from_end,
        }) => {
            m.insert("status".into(), "function".into());
            m.insert("moved_from".into(), json!([from_start, from_end]));
        }
        Some(StepStatus::NotFound { reason }) => {
            m.insert("status".into(), "not_found".into());
            m.insert("reason".into(), reason.clone().into());
        }
        Some(StepStatus::NotHere { reason }) => {
            m.insert("status".into(), "not_here".into());
            m.insert("reason".into(), reason.clone().into());
        }
    }
    Value::Object(m)
}

fn lines_label(start: u32, end: u32) -> String {
    if end > start {
        format!("L{start}-L{end}")
    } else {
        format!("L{start}")
    }
}

fn paint(s: &str, style: Style, color: bool) -> String {
    if color {
        s.style(style).to_string()
    } else {
        s.to_string()
    }
}

fn installed_header(installed: &Installed) -> Vec<String> {
    let mut names: Vec<&String> = installed.dists.keys().collect();
    names.sort();
    let mut out = vec![format!(
        "Installed versions in {}",
        installed.site_packages.display()
    )];
    if let Some(v) = &installed.python_version {
        out.push(format!("CPython {v} (standard library steps relinked)"));
    } else {
        out.push("CPython steps: built-in version (pass --python to use the interpreter's)".into());
    }
    for n in names {
        if let Some(d) = installed.dists.get(n) {
            if KNOWN.contains(&n.as_str()) {
                out.push(format!("{} {}", d.name, d.version));
            }
        }
    }
    out
}

const KNOWN: &[&str] = &[
    "flask-socketio",
    "python-socketio",
    "python-engineio",
    "simple-websocket",
    "wsproto",
    "h11",
    "werkzeug",
    "flask",
];

fn counts(sections: &[Section]) -> (usize, usize, usize) {
    let mut same = 0;
    let mut moved = 0;
    let mut missing = 0;
    for l in sections.iter().flat_map(|s| &s.links) {
        match l.status {
            Some(StepStatus::Relocated { .. } | StepStatus::Function { .. }) => moved += 1,
            Some(StepStatus::NotFound { .. }) => missing += 1,
            _ => same += 1,
        }
    }
    (same, moved, missing)
}

fn text(sections: &[Section], installed: Option<&Installed>, color: bool) -> String {
    let head = Style::new().bold().cyan();
    let pkg = Style::new().green();
    let dim = Style::new().dimmed();
    let url = Style::new().blue();
    let warn = Style::new().yellow();
    let bad = Style::new().red();
    let mut o = String::new();
    if let Some(inst) = installed {
        for l in installed_header(inst) {
            o.push_str(&paint(&l, dim, color));
            o.push('\n');
        }
        let (same, moved, missing) = counts(sections);
        o.push_str(&format!(
            "{same} steps in place, {moved} relocated, {missing} not found\n\n"
        ));
    }
    for (i, s) in sections.iter().enumerate() {
        let title = format!("{}. {}  {}", i + 1, s.name, s.title);
        o.push_str(&paint(&title, head, color));
        o.push('\n');
        o.push_str(&format!("   {}\n", s.summary));
        if s.links.is_empty() {
            o.push_str("   (no steps)\n");
        }
        let mut phase = None;
        for (j, l) in s.links.iter().enumerate() {
            if l.phase.is_some() && l.phase != phase {
                phase = l.phase;
                let label = match l.phase {
                    Some("registration") => "   at registration (import time):",
                    _ => "   at call time:",
                };
                o.push_str(&paint(label, dim, color));
                o.push('\n');
            }
            let st = &l.step;
            let where_ = if st.line_end > st.line_start {
                format!(
                    "{}:{}-{}",
                    installed_path(&st.path),
                    st.line_start,
                    st.line_end
                )
            } else {
                format!("{}:{}", installed_path(&st.path), st.line_start)
            };
            o.push_str(&format!(
                "   {:>2}. {} {}  {}  {}\n",
                j + 1,
                paint(&st.package, pkg, color),
                st.version,
                where_,
                paint(&st.symbol, dim, color)
            ));
            o.push_str(&format!("       {}\n", st.what));
            match &l.status {
                Some(StepStatus::NotFound { reason }) => {
                    o.push_str(&format!(
                        "       {}\n",
                        paint(&format!("not found: {reason}"), bad, color)
                    ));
                }
                Some(StepStatus::Relocated {
                    from_start,
                    from_end,
                }) => {
                    let msg = format!(
                        "relocated: was {} in the built-in data",
                        lines_label(*from_start, *from_end)
                    );
                    o.push_str(&format!("       {}\n", paint(&msg, warn, color)));
                    o.push_str(&format!("       {}\n", paint(&l.url, url, color)));
                }
                Some(StepStatus::Function {
                    from_start,
                    from_end,
                }) => {
                    let msg = format!(
                        "changed: that line is gone, linked to its function (was {} in the built-in data)",
                        lines_label(*from_start, *from_end)
                    );
                    o.push_str(&format!("       {}\n", paint(&msg, warn, color)));
                    o.push_str(&format!("       {}\n", paint(&l.url, url, color)));
                }
                Some(StepStatus::Builtin) => {
                    o.push_str(&format!("       {}\n", paint(&l.url, url, color)));
                    o.push_str(&format!(
                        "       {}\n",
                        paint(
                            "(built-in CPython version; --python links the interpreter's own)",
                            dim,
                            color
                        )
                    ));
                }
                _ => o.push_str(&format!("       {}\n", paint(&l.url, url, color))),
            }
        }
        o.push('\n');
    }
    o
}

/// Escapes the Markdown characters that could turn prose into emphasis, links or HTML.
fn md_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#'
        ) {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

fn markdown(sections: &[Section], installed: Option<&Installed>) -> String {
    let mut o = String::new();
    if let Some(inst) = installed {
        let mut lines = installed_header(inst).into_iter();
        if let Some(first) = lines.next() {
            o.push_str(&format!("{}\n\n", md_escape(&first)));
        }
        for l in lines {
            o.push_str(&format!("- {}\n", md_escape(&l)));
        }
        let (same, moved, missing) = counts(sections);
        o.push_str(&format!(
            "\n{same} steps in place, {moved} relocated, {missing} not found.\n\n"
        ));
    }
    for s in sections {
        o.push_str(&format!(
            "## {} (`{}`)\n\n{}\n\n",
            md_escape(&s.title),
            s.name,
            md_escape(&s.summary)
        ));
        let mut phase = None;
        for (j, l) in s.links.iter().enumerate() {
            if l.phase.is_some() && l.phase != phase {
                phase = l.phase;
                let label = match l.phase {
                    Some("registration") => "At registration (import time):",
                    _ => "At call time:",
                };
                o.push_str(&format!("{}{label}\n\n", if j > 0 { "\n" } else { "" }));
            }
            let st = &l.step;
            let loc = format!(
                "`{}` {}",
                installed_path(&st.path),
                lines_label(st.line_start, st.line_end)
            );
            let link = if l.url.is_empty() {
                loc
            } else {
                format!("[{loc}]({})", l.url)
            };
            o.push_str(&format!(
                "{}. {link} `{}` ({} {}): {}",
                j + 1,
                st.symbol,
                st.package,
                st.version,
                md_escape(&st.what)
            ));
            match &l.status {
                Some(StepStatus::NotFound { reason }) => {
                    o.push_str(&format!(" **Not found:** {}.", md_escape(reason)));
                }
                Some(StepStatus::Relocated {
                    from_start,
                    from_end,
                }) => {
                    o.push_str(&format!(
                        " *(relocated from {})*",
                        lines_label(*from_start, *from_end)
                    ));
                }
                Some(StepStatus::Function {
                    from_start,
                    from_end,
                }) => {
                    o.push_str(&format!(
                        " *(that line changed: linked to the whole function, was {})*",
                        lines_label(*from_start, *from_end)
                    ));
                }
                _ => {}
            }
            o.push('\n');
        }
        o.push('\n');
    }
    o
}

#[cfg(test)]
pub(super) fn markdown_for_test(sections: &[Section]) -> String {
    markdown(sections, None)
}

#[cfg(test)]
pub(super) fn text_for_test(sections: &[Section]) -> String {
    text(sections, None, false)
}
