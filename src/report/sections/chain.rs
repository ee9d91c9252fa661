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

/// A chain for a reader who follows the path rather than studies each line: one short item
/// per step, in the order they run, each function a link to its lines, the package named
/// where it changes; `None` stands for lines an earlier step listed.
pub(super) fn link_chain(links: &[Option<StepLink>]) -> Block {
    let mut items = Vec::new();
    let mut last: Option<&str> = None;
    for l in links {
        let Some(l) = l else {
            items.push(vec![t("… (lines listed above)")]);
            continue;
        };
        let s = &l.step;
        let mut item = Vec::new();
        if last != Some(s.package.as_str()) {
            item.push(b(format!("{} {}", s.package, s.version)));
            item.push(t(" "));
        }
        last = Some(s.package.as_str());
        let file = links::installed_path(&s.path);
        let file = file.rsplit_once('/').map_or(file, |(_, name)| name);
        let lines = if s.line_end > s.line_start {
            format!("{file}:{}-{}", s.line_start, s.line_end)
        } else {
            format!("{file}:{}", s.line_start)
        };
        // A module's constants or table are not a call: named by what they are.
        let name = if s.symbol == "<module>" {
            let what = s.what.trim_end_matches('.');
            let what = what.split([':', ';']).next().unwrap_or(what);
            let what = what.split(". ").next().unwrap_or(what);
            format!(
                "{} (module level)",
                what.strip_prefix("The ").unwrap_or(what)
            )
        } else {
            s.symbol.clone()
        };
        item.push(c(lines));
        item.push(t(" "));
        item.push(link(name, l.url.clone()));
        if let Some(p) = l.phase {
            item.push(t(format!(" ({p})")));
        }
        match &l.status {
            Some(links::StepStatus::NotFound { .. }) => {
                item.push(t(" (not in your installed version)"));
            }
            Some(links::StepStatus::Function { .. }) => {
                item.push(t(
                    " (the whole function: this line changed in your version)",
                ));
            }
            _ => {}
        }
        items.push(item);
    }
    Block::List {
        ordered: false,
        items,
    }
}

/// The links of a chain not listed before (`fresh` says which), each run of the others
/// folded into one `None`. A step the chain repeats (two stages' chains joined) is left out
/// of it without a mark.
pub(super) fn with_gaps(
    links: Vec<StepLink>,
    mut fresh: impl FnMut(&StepLink) -> bool,
) -> Vec<Option<StepLink>> {
    let mut out: Vec<Option<StepLink>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for l in links {
        if !seen.insert(l.step.step_id.clone()) {
            continue;
        }
        if fresh(&l) {
            out.push(Some(l));
        } else if out.last().is_none_or(Option::is_some) {
            out.push(None);
        }
    }
    out
}
