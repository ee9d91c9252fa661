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
        t(", in the order they run:"),
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

/// One item of a chain as a reader follows it: a step, or the steps it passes through that
/// an earlier list has, by name.
pub(super) enum Item {
    Link(Box<StepLink>),
    Listed(Vec<String>),
}

impl Item {
    pub(super) fn link(&self) -> Option<&StepLink> {
        match self {
            Item::Link(l) => Some(l),
            Item::Listed(_) => None,
        }
    }
}

/// A chain for a reader who follows the path rather than studies each line: one short item
/// per step, in the order they run, each function a link to its lines, the package named
/// where it changes, and where it passes through lines listed above, their names.
pub(super) fn link_chain(items: &[Item]) -> Block {
    let mut out = Vec::new();
    let mut last: Option<&str> = None;
    for item in items {
        let l = match item {
            Item::Link(l) => l,
            Item::Listed(names) => {
                let shown = match names.as_slice() {
                    [] => String::new(),
                    [a] => a.clone(),
                    [a, b] => format!("{a} and {b}"),
                    [a, b, rest @ ..] => format!("{a}, {b} and {} more", rest.len()),
                };
                out.push(vec![t(format!("… {shown}, listed above"))]);
                last = None;
                continue;
            }
        };
        let s = &l.step;
        let mut line = Vec::new();
        if last != Some(s.package.as_str()) {
            line.push(b(format!("{} {}", s.package, s.version)));
            line.push(t(" "));
        }
        last = Some(s.package.as_str());
        let file = links::installed_path(&s.path);
        let file = file.rsplit_once('/').map_or(file, |(_, name)| name);
        let lines = if s.line_end > s.line_start {
            format!("{file}:{}-{}", s.line_start, s.line_end)
        } else {
            format!("{file}:{}", s.line_start)
        };
        line.push(c(lines));
        line.push(t(" "));
        line.push(link(name_of(s), l.url.clone()));
        if let Some(p) = l.phase {
            line.push(t(format!(" ({p})")));
        }
        match &l.status {
            Some(links::StepStatus::NotFound { .. }) => {
                line.push(t(" (not in your installed version)"));
            }
            Some(links::StepStatus::Function { .. }) => {
                line.push(t(
                    " (the whole function: this line changed in your version)",
                ));
            }
            _ => {}
        }
        out.push(line);
    }
    Block::List {
        ordered: false,
        items: out,
    }
}

/// How a chain names a step: its function, or for a module's constants what they are (they
/// are defined when the module is imported, not called).
fn name_of(s: &links::Step) -> String {
    if s.symbol != "<module>" {
        return s.symbol.clone();
    }
    let what = s.what.trim_end_matches('.');
    let what = what.split([':', ';']).next().unwrap_or(what);
    let what = what.split(". ").next().unwrap_or(what);
    format!(
        "{} (defined when the module is imported)",
        what.strip_prefix("The ").unwrap_or(what)
    )
}

/// The links of a chain not listed before (`fresh` says which), each run of the others
/// folded into one item that names them. A step the chain repeats (two stages' chains
/// joined) is left out of it without a mark.
pub(super) fn with_gaps(
    links: Vec<StepLink>,
    mut fresh: impl FnMut(&StepLink) -> bool,
) -> Vec<Item> {
    let mut out: Vec<Item> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for l in links {
        if !seen.insert(l.step.step_id.clone()) {
            continue;
        }
        if fresh(&l) {
            out.push(Item::Link(Box::new(l)));
            continue;
        }
        let name = format!("{}'s {}", l.step.package, name_of(&l.step));
        match out.last_mut() {
            Some(Item::Listed(names)) => {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            _ => out.push(Item::Listed(vec![name])),
        }
    }
    out
}
