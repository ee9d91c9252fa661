//! The Python chain behind one event of a stage, numbered, shallow to deep.

use super::*;

/// The Python chain behind one event of the stage, numbered, shallow to deep.
pub(super) fn chain_blocks(ctx: &Ctx, stage: Stage, rep: &Ev) -> Vec<Block> {
    let kind = rep.kind;
    let links = ctx.links(stage, kind);
    // `dispel links` accepts a kind only where the table distinguishes kinds.
    let listed = kind.filter(|k| stage.kinds().contains(k));
    let name = match listed {
        Some(k) => format!("{stage}:{k}"),
        None => stage.to_string(),
    };
    let mut blocks = vec![Block::Heading(format!("The code that does it ({name})"))];
    if links.is_empty() {
        blocks.push(text_para("No Python code is linked to this stage."));
        return blocks;
    }
    blocks.push(para(vec![
        t("For "),
        c(shorten(&rep.summary, 70)),
        t(", outermost call first:"),
    ]));
    blocks.push(link_list(&links));
    blocks
}

pub(super) fn link_list(links: &[StepLink]) -> Block {
    Block::List {
        ordered: true,
        items: links.iter().map(link_item).collect(),
    }
}

pub(super) fn link_item(l: &StepLink) -> Vec<Inline> {
    let s = &l.step;
    let lines = if s.line_end > s.line_start {
        format!(
            "{}:{}-{}",
            links::installed_path(&s.path),
            s.line_start,
            s.line_end
        )
    } else {
        format!("{}:{}", links::installed_path(&s.path), s.line_start)
    };
    let mut out = vec![
        b(format!("{} {}", s.package, s.version)),
        t(" "),
        c(lines),
        t(" "),
        c(s.symbol.clone()),
    ];
    if let Some(p) = l.phase {
        out.push(t(format!(" ({p})")));
    }
    out.push(t(format!(": {} ", s.what)));
    match &l.status {
        Some(links::StepStatus::NotFound { reason }) => {
            out.push(t(format!(
                "(not in your installed version: {reason}; the link is to the built-in version) "
            )));
        }
        Some(links::StepStatus::Function { .. }) => {
            out.push(t(
                "(this line changed in your version: the link is to the whole function) ",
            ));
        }
        _ => {}
    }
    out.push(link("source", l.url.clone()));
    out
}

/// A chain in one paragraph, for a reader who follows the path rather than studies each line:
/// each function a link to its lines, the package and file named where they change, calls
/// joined by arrows, outermost first.
pub(super) fn link_chain(links: &[StepLink]) -> Block {
    let mut spans = Vec::new();
    let mut last: Option<(&str, &str)> = None;
    for (i, l) in links.iter().enumerate() {
        let s = &l.step;
        // A module's constants or table are not a call: named by what they are, beside
        // the call that uses them.
        let module = s.symbol == "<module>";
        if i > 0 {
            spans.push(t(if module { ", with " } else { " → " }));
        }
        let file = links::installed_path(&s.path);
        let file = file.rsplit_once('/').map_or(file, |(_, name)| name);
        if last.map(|(p, _)| p) != Some(s.package.as_str()) {
            spans.push(b(format!("{} {}", s.package, s.version)));
            spans.push(t(" "));
            spans.push(c(file.to_string()));
            spans.push(t(": "));
        } else if last.map(|(_, f)| f) != Some(file) {
            spans.push(c(file.to_string()));
            spans.push(t(": "));
        }
        last = Some((s.package.as_str(), file));
        let lines = if s.line_end > s.line_start {
            format!("lines {}-{}", s.line_start, s.line_end)
        } else {
            format!("line {}", s.line_start)
        };
        let name = if module {
            let what = s.what.trim_end_matches('.');
            let what = what.split([':', ';']).next().unwrap_or(what);
            let what = what.split(". ").next().unwrap_or(what);
            let what = what.strip_prefix("The ").unwrap_or(what);
            format!("the {what}")
        } else {
            s.symbol.clone()
        };
        spans.push(link(format!("{name} ({lines})"), l.url.clone()));
        if let Some(p) = l.phase {
            spans.push(t(format!(" ({p})")));
        }
        match &l.status {
            Some(links::StepStatus::NotFound { .. }) => {
                spans.push(t(" (not in your installed version)"));
            }
            Some(links::StepStatus::Function { .. }) => {
                spans.push(t(
                    " (the whole function: this line changed in your version)",
                ));
            }
            _ => {}
        }
    }
    Block::Para(spans)
}
