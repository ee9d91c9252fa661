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
